/* madvise(MADV_HUGEPAGE) is Linux's, beyond POSIX */
#define _DEFAULT_SOURCE
#include "common.h"

#include <errno.h>
#include <inttypes.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

int err_set(char *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}

uint64_t hash_bytes(const void *data, size_t n, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

int fd_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fd_read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 && got == 0 ? 0 : -1;
        got += (size_t)r;
    }
    return 1;
}

int path_for_seed(const char *pattern, uint64_t seed, char *out, size_t cap, char *err)
{
    static const char mark[] = "{seed}";
    const size_t mark_len = sizeof mark - 1;
    char digits[24];
    size_t n_digits = (size_t)snprintf(digits, sizeof digits, "%" PRIu64, seed);
    size_t used = 0;
    for (const char *p = pattern; *p;) {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, mark, mark_len) == 0) {
            piece = digits;
            len = n_digits;
            p += mark_len;
        } else
            p++;
        if (used + len >= cap)
            return err_set(err, DS_EINPUT, "'%s' for seed %" PRIu64 " is longer than %zu "
                           "bytes", pattern, seed, cap ? cap - 1 : 0);
        memcpy(out + used, piece, len);
        used += len;
    }
    out[used] = '\0';
    return DS_OK;
}

void *alloc_cache_aligned(size_t bytes)
{
    enum { LINE = 64 };
    if (bytes > SIZE_MAX - LINE)
        return NULL;
    /* aligned_alloc wants a size that is a multiple of the alignment */
    return aligned_alloc(LINE, (bytes + LINE - 1) / LINE * LINE + (bytes == 0) * LINE);
}

void *alloc_random_access(size_t bytes)
{
    enum { HUGE_PAGE = 2 << 20 };
    void *p;
    if (bytes < HUGE_PAGE) {
        p = alloc_cache_aligned(bytes);
    } else {
        if (bytes > SIZE_MAX - HUGE_PAGE)
            return NULL;
        p = aligned_alloc(HUGE_PAGE, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (p)
            (void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint: refused, pages stay small */
#endif
    }
    if (p)
        memset(p, 0, bytes); /* before the first read, and faulting the pages in now */
    return p;
}
