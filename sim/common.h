/* Shared error conventions: library code returns one of these codes and fills a
 * caller-owned message buffer of ERR_LEN bytes; only sim/main.c decides to exit. */
#ifndef DIVSIM_COMMON_H
#define DIVSIM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define ERR_LEN 512

enum {
    DS_OK = 0,
    DS_EINPUT = -1,    /* bad experiment file, bad value, bad command line */
    DS_ENOMEM = -2,    /* allocation failed or would not fit */
    DS_EIO = -3,       /* file or database error */
    DS_ENUMERIC = -4,  /* NaN or Inf: the run diverged */
    DS_EINTERNAL = -5  /* a broken invariant: a bug */
};

/* Writes a printf-style message into err (ERR_LEN bytes); returns code. */
int err_set(char *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 64-bit FNV-1a of a byte string, for configuration hashes and run ids. */
uint64_t hash_bytes(const void *data, size_t n, uint64_t h);
#define HASH_INIT 0xcbf29ce484222325ULL

/* pattern with every "{seed}" replaced by the decimal seed, into out [cap]:
 * per-seed files named in an experiment (e.g. init = ckpt/cf-{seed}.ckpt).
 * DS_EINPUT if the result does not fit. */
int path_for_seed(const char *pattern, uint64_t seed, char *out, size_t cap, char *err);

/* Writes all n bytes to fd, retrying after signals; 0, or -1 on error. */
int fd_write_all(int fd, const void *buf, size_t n);
/* Reads exactly n bytes from fd, retrying after signals; 1, or 0 at end of
 * file before the first byte, or -1 on error or a short read. */
int fd_read_all(int fd, void *buf, size_t n);

/* malloc for arrays whose rows are read at random: the block starts on a
 * 64-byte cache line, so a row of a multiple of 64 bytes spans only its own
 * lines (from malloc's 16-byte alignment, a 128-byte row straddles three).
 * Freed with free(); NULL when out of memory. */
void *alloc_cache_aligned(size_t bytes);

/* Zeroed memory for a large table read at random, one record per touch (a
 * million users): from 2 MiB on it starts on a 2 MiB boundary and asks the
 * kernel for huge pages where it offers them on request (Linux), so a record
 * costs its cache misses and not also a page walk. Smaller sizes as
 * alloc_cache_aligned. Freed with free(); NULL when out of memory. */
void *alloc_random_access(size_t bytes);

#endif
