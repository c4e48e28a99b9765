/* Saving and loading transformer weights (format in checkpoint.h). */
#include "checkpoint.h"

#include "../sim/common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TF_PREFIX "tf_"
#define HEADER_MAX 8192 /* bytes: 9 fixed lines and NN_MAX_TENSORS tensor lines fit */

static int is_tf(const nn_tensor *t)
{
    return strncmp(t->name, TF_PREFIX, strlen(TF_PREFIX)) == 0;
}

/* The config fields by name, in header order. */
static void config_fields(const transformer_config *cfg, const char **names, int *values)
{
    static const char *const field_names[5] = {"context", "layers", "heads", "width",
                                               "mlp_ratio"};
    int v[5] = {cfg->context, cfg->layers, cfg->heads, cfg->width, cfg->mlp_ratio};
    for (int i = 0; i < 5; i++) {
        names[i] = field_names[i];
        values[i] = v[i];
    }
}

/* ---- payload encoding ---- */

static void put_le_double(unsigned char *out, double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    for (int b = 0; b < 8; b++)
        out[b] = (unsigned char)(bits >> (8 * b));
}

static double get_le_double(const unsigned char *in)
{
    uint64_t bits = 0;
    for (int b = 0; b < 8; b++)
        bits |= (uint64_t)in[b] << (8 * b);
    double x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* ---- save ---- */

/* The header text into buf[cap]; its length, or -1 if it does not fit. */
static int format_header(char *buf, size_t cap, const transformer_config *cfg, int n_items,
                         const nn_layout *layout, size_t n_doubles, uint64_t checksum)
{
    const char *names[5];
    int values[5];
    config_fields(cfg, names, values);
    int n_tf = 0;
    for (int i = 0; i < layout->n_tensors; i++)
        n_tf += is_tf(&layout->tensors[i]);
    size_t used = 0;
    int n = snprintf(buf, cap, "%s %d\n", CHECKPOINT_MAGIC, CHECKPOINT_VERSION);
    for (int i = 0; i < 5 && n >= 0 && (used += (size_t)n) < cap; i++)
        n = snprintf(buf + used, cap - used, "%s %d\n", names[i], values[i]);
    if (n >= 0 && (used += (size_t)n) < cap)
        n = snprintf(buf + used, cap - used, "n_items %d\ntensors %d\n", n_items, n_tf);
    for (int i = 0; i < layout->n_tensors && n >= 0 && (used += (size_t)n) < cap; i++) {
        const nn_tensor *t = &layout->tensors[i];
        n = is_tf(t) ? snprintf(buf + used, cap - used, "tensor %s %d %d\n", t->name,
                                t->rows, t->cols)
                     : 0;
    }
    if (n >= 0 && (used += (size_t)n) < cap)
        n = snprintf(buf + used, cap - used, "payload %zu\nchecksum fnv1a64 %016" PRIx64
                     "\nend\n", n_doubles, checksum);
    if (n < 0 || (used += (size_t)n) >= cap)
        return -1;
    return (int)used;
}

/* The tf_ tensors of w as little-endian bytes, [n_doubles * 8]; NULL if out of memory. */
static unsigned char *encode_payload(const nn_layout *layout, const double *w,
                                     size_t *n_doubles)
{
    size_t n = 0;
    for (int i = 0; i < layout->n_tensors; i++)
        if (is_tf(&layout->tensors[i]))
            n += (size_t)layout->tensors[i].rows * (size_t)layout->tensors[i].cols;
    unsigned char *bytes = malloc(n * 8 + 1);
    if (!bytes)
        return NULL;
    size_t at = 0;
    for (int i = 0; i < layout->n_tensors; i++) {
        const nn_tensor *t = &layout->tensors[i];
        if (!is_tf(t))
            continue;
        size_t len = (size_t)t->rows * (size_t)t->cols;
        for (size_t j = 0; j < len; j++, at++)
            put_le_double(bytes + 8 * at, w[t->offset + j]);
    }
    *n_doubles = n;
    return bytes;
}

/* Writes header and payload to a new temporary file beside path, then renames it. */
static int write_atomically(const char *path, const char *header, size_t header_len,
                            const unsigned char *payload, size_t payload_len, char *err)
{
    size_t len = strlen(path) + 16;
    char *tmp = malloc(len);
    if (!tmp)
        return err_set(err, DS_ENOMEM, "out of memory saving checkpoint '%s'", path);
    snprintf(tmp, len, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = err_set(err, DS_EIO, "cannot write checkpoint '%s': %s", path,
                         strerror(errno));
        free(tmp);
        return rc;
    }
    int ok = fd_write_all(fd, header, header_len) == 0 &&
             fd_write_all(fd, payload, payload_len) == 0 && fsync(fd) == 0;
    int saved_errno = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        saved_errno = errno;
        ok = 0;
    }
    int rc = DS_OK;
    if (!ok) {
        unlink(tmp);
        rc = err_set(err, DS_EIO, "cannot write checkpoint '%s': %s", path,
                     strerror(saved_errno));
    }
    free(tmp);
    return rc;
}

int checkpoint_save(const char *path, const transformer_config *cfg, int n_items,
                    const nn_layout *layout, const double *w, char *err)
{
    size_t n_doubles = 0;
    unsigned char *payload = encode_payload(layout, w, &n_doubles);
    if (!payload)
        return err_set(err, DS_ENOMEM, "out of memory saving checkpoint '%s'", path);
    if (n_doubles == 0) {
        free(payload);
        return err_set(err, DS_EINPUT, "checkpoint '%s': the model has no '" TF_PREFIX
                       "' tensor to save", path);
    }
    uint64_t checksum = hash_bytes(payload, n_doubles * 8, HASH_INIT);
    char header[HEADER_MAX];
    int header_len = format_header(header, sizeof header, cfg, n_items, layout, n_doubles,
                                   checksum);
    int rc = header_len < 0
                 ? err_set(err, DS_EINTERNAL, "checkpoint '%s': header too long", path)
                 : write_atomically(path, header, (size_t)header_len, payload, n_doubles * 8,
                                    err);
    free(payload);
    return rc;
}

/* ---- load ---- */

/* The largest checkpoint read: far above any model the learners build, and a
 * guard against a path that names a device or a huge unrelated file. */
#define CHECKPOINT_MAX_BYTES ((off_t)1 << 32)

/* The whole file into *data [*len]: a regular file of at most
 * CHECKPOINT_MAX_BYTES (not a directory, device or pipe, which could block or
 * never end). DS_EINPUT for those, DS_EIO, DS_ENOMEM. */
static int read_file(const char *path, unsigned char **data, size_t *len, char *err)
{
    struct stat st; /* before opening: opening a pipe would wait for a writer */
    if (stat(path, &st) != 0)
        return err_set(err, DS_EIO, "cannot read checkpoint '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) || st.st_size > CHECKPOINT_MAX_BYTES)
        return err_set(err, DS_EINPUT, "cannot read checkpoint '%s': not a regular file of at "
                       "most 4 GiB", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(err, DS_EIO, "cannot read checkpoint '%s': %s", path, strerror(errno));
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return err_set(err, DS_ENOMEM, "out of memory reading checkpoint '%s'", path);
    }
    size_t got = fread(buf, 1, n, f);
    int failed = ferror(f) || got != n;
    fclose(f);
    if (failed) {
        free(buf);
        return err_set(err, DS_EIO, "cannot read checkpoint '%s'", path);
    }
    *data = buf;
    *len = n;
    return DS_OK;
}

/* A cursor over the header's lines. */
typedef struct {
    const char *path;
    const unsigned char *data;
    size_t len, at;
    int line;
    char text[256]; /* the current line, NUL-terminated */
} header_reader;

/* The next line into r->text; 0, or -1 at the end of the data or a line too
 * long for a header line (not a checkpoint, or damaged). */
static int next_line(header_reader *r)
{
    size_t n = 0;
    while (r->at < r->len && r->data[r->at] != '\n') {
        if (n + 1 >= sizeof r->text || r->data[r->at] == '\0')
            return -1;
        r->text[n++] = (char)r->data[r->at++];
    }
    if (r->at >= r->len)
        return -1;
    r->at++; /* the newline */
    r->text[n] = '\0';
    r->line++;
    return 0;
}

static int damaged(const header_reader *r, const char *expected, char *err)
{
    return err_set(err, DS_EINPUT, "checkpoint '%s' line %d: expected %s (the file is "
                   "damaged or not a divsim checkpoint)", r->path, r->line + 1, expected);
}

/* Reads a line "KEY INTEGER" into *value. */
static int read_int_line(header_reader *r, const char *key, long long *value, char *err)
{
    char name[64];
    char extra;
    if (next_line(r) != 0 ||
        sscanf(r->text, "%63s %lld %c", name, value, &extra) != 2 || strcmp(name, key) != 0)
        return damaged(r, key, err);
    return DS_OK;
}

/* One file tensor, as the header names it. */
typedef struct {
    char name[NN_NAME_LEN];
    long long rows, cols;
} file_tensor;

typedef struct {
    long long config[5];
    long long n_items;
    int n_tensors;
    file_tensor tensors[NN_MAX_TENSORS];
    long long n_doubles;
    uint64_t checksum;
} file_header;

static int read_magic(header_reader *r, char *err)
{
    char magic[32];
    long long version;
    char extra;
    if (next_line(r) != 0 ||
        sscanf(r->text, "%31s %lld %c", magic, &version, &extra) != 2 ||
        strcmp(magic, CHECKPOINT_MAGIC) != 0)
        return err_set(err, DS_EINPUT, "'%s' is not a divsim checkpoint (no '%s' line)",
                       r->path, CHECKPOINT_MAGIC);
    if (version != CHECKPOINT_VERSION)
        return err_set(err, DS_EINPUT, "checkpoint '%s' has format version %lld; this "
                       "divsim reads version %d", r->path, version, CHECKPOINT_VERSION);
    return DS_OK;
}

static int read_tensor_table(header_reader *r, file_header *h, char *err)
{
    long long n;
    int rc = read_int_line(r, "tensors", &n, err);
    if (rc != DS_OK)
        return rc;
    if (n < 1 || n > NN_MAX_TENSORS)
        return damaged(r, "a tensor count the model can hold", err);
    h->n_tensors = (int)n;
    for (int i = 0; i < h->n_tensors; i++) {
        file_tensor *t = &h->tensors[i];
        char word[16], extra;
        if (next_line(r) != 0 ||
            sscanf(r->text, "%15s %31s %lld %lld %c", word, t->name, &t->rows, &t->cols,
                   &extra) != 4 ||
            strcmp(word, "tensor") != 0 || t->rows < 1 || t->cols < 1)
            return damaged(r, "'tensor NAME ROWS COLS'", err);
    }
    return DS_OK;
}

static int read_header(header_reader *r, file_header *h, char *err)
{
    const char *names[5];
    int unused[5];
    config_fields(&(transformer_config){0}, names, unused);
    int rc = read_magic(r, err);
    for (int i = 0; i < 5 && rc == DS_OK; i++)
        rc = read_int_line(r, names[i], &h->config[i], err);
    if (rc == DS_OK)
        rc = read_int_line(r, "n_items", &h->n_items, err);
    if (rc == DS_OK)
        rc = read_tensor_table(r, h, err);
    if (rc == DS_OK)
        rc = read_int_line(r, "payload", &h->n_doubles, err);
    if (rc != DS_OK)
        return rc;
    char word[16], algo[16], extra;
    if (next_line(r) != 0 ||
        sscanf(r->text, "%15s %15s %" SCNx64 " %c", word, algo, &h->checksum, &extra) != 3 ||
        strcmp(word, "checksum") != 0 || strcmp(algo, "fnv1a64") != 0)
        return damaged(r, "'checksum fnv1a64 HEX'", err);
    if (next_line(r) != 0 || strcmp(r->text, "end") != 0)
        return damaged(r, "'end'", err);
    return DS_OK;
}

/* The file's config and n_items against the caller's. */
static int check_config(const char *path, const file_header *h,
                        const transformer_config *cfg, int n_items, char *err)
{
    const char *names[5];
    int values[5];
    config_fields(cfg, names, values);
    for (int i = 0; i < 5; i++)
        if (h->config[i] != values[i])
            return err_set(err, DS_EINPUT, "checkpoint '%s' has %s %lld, the model %d",
                           path, names[i], h->config[i], values[i]);
    if (n_items >= 0 && h->n_items != n_items)
        return err_set(err, DS_EINPUT, "checkpoint '%s' has n_items %lld, the model %d "
                       "(a different catalogue size)", path, h->n_items, n_items);
    return DS_OK;
}

static const file_tensor *find_file_tensor(const file_header *h, const char *name)
{
    for (int i = 0; i < h->n_tensors; i++)
        if (strcmp(h->tensors[i].name, name) == 0)
            return &h->tensors[i];
    return NULL;
}

/* Every tf_ tensor of layout in the file with its shape, every file tensor in
 * layout, and the payload length the table implies. */
static int check_tensors(const char *path, const file_header *h, const nn_layout *layout,
                         char *err)
{
    for (int i = 0; i < layout->n_tensors; i++) {
        const nn_tensor *t = &layout->tensors[i];
        if (!is_tf(t))
            continue;
        const file_tensor *f = find_file_tensor(h, t->name);
        if (!f)
            return err_set(err, DS_EINPUT, "checkpoint '%s' has no tensor '%s'", path,
                           t->name);
        if (f->rows != t->rows || f->cols != t->cols)
            return err_set(err, DS_EINPUT, "checkpoint '%s': tensor '%s' is %lld x %lld, "
                           "the model's %d x %d", path, t->name, f->rows, f->cols, t->rows,
                           t->cols);
    }
    long long total = 0;
    for (int i = 0; i < h->n_tensors; i++) {
        const file_tensor *f = &h->tensors[i];
        const nn_tensor *t = nn_layout_find(layout, f->name);
        if (!t || !is_tf(t))
            return err_set(err, DS_EINPUT, "checkpoint '%s' has tensor '%s', which the "
                           "model does not", path, f->name);
        if (find_file_tensor(h, f->name) != f)
            return err_set(err, DS_EINPUT, "checkpoint '%s' is damaged: tensor '%s' is listed "
                           "twice", path, f->name);
        total += f->rows * f->cols; /* the model's shape, checked above */
    }
    if (total != h->n_doubles)
        return err_set(err, DS_EINPUT, "checkpoint '%s' is damaged: its tensors hold %lld "
                       "values, its payload line says %lld", path, total, h->n_doubles);
    return DS_OK;
}

static int check_payload(const char *path, const file_header *h, const unsigned char *payload,
                         size_t len, char *err)
{
    size_t want = (size_t)h->n_doubles * 8;
    if (len != want)
        return err_set(err, DS_EINPUT, "checkpoint '%s' is damaged: %zu payload bytes, the "
                       "header says %zu (%s)", path, len, want,
                       len < want ? "truncated" : "trailing data");
    uint64_t sum = hash_bytes(payload, len, HASH_INIT);
    if (sum != h->checksum)
        return err_set(err, DS_EINPUT, "checkpoint '%s' is damaged: payload checksum "
                       "%016" PRIx64 ", the header says %016" PRIx64, path, sum, h->checksum);
    return DS_OK;
}

static void copy_tensors(const file_header *h, const nn_layout *layout,
                         const unsigned char *payload, double *w)
{
    size_t at = 0;
    for (int i = 0; i < h->n_tensors; i++) {
        const nn_tensor *t = nn_layout_find(layout, h->tensors[i].name);
        size_t len = (size_t)t->rows * (size_t)t->cols;
        for (size_t j = 0; j < len; j++, at++)
            w[t->offset + j] = get_le_double(payload + 8 * at);
    }
}

/* The checks of a load, and the copy into w when layout is not NULL. */
static int read_checked(const char *path, const transformer_config *cfg, int n_items,
                        const nn_layout *layout, double *w, char *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len, err);
    if (rc != DS_OK)
        return rc;
    header_reader r = {.path = path, .data = data, .len = len};
    file_header h = {0};
    rc = read_header(&r, &h, err);
    if (rc == DS_OK)
        rc = check_config(path, &h, cfg, n_items, err);
    if (rc == DS_OK && layout)
        rc = check_tensors(path, &h, layout, err);
    if (rc == DS_OK)
        rc = check_payload(path, &h, data + r.at, len - r.at, err);
    if (rc == DS_OK && layout)
        copy_tensors(&h, layout, data + r.at, w);
    free(data);
    return rc;
}

int checkpoint_load(const char *path, const transformer_config *cfg, int n_items,
                    const nn_layout *layout, double *w, char *err)
{
    return read_checked(path, cfg, n_items, layout, w, err);
}

int checkpoint_check(const char *path, const transformer_config *cfg, int n_items, char *err)
{
    return read_checked(path, cfg, n_items, NULL, NULL, err);
}
