/* Tests of agents/checkpoint.c: a bit-exact round trip, and a clear refusal of
 * every kind of damage or mismatch, leaving the weights untouched. */
#include "../agents/checkpoint.h"
#include "../agents/nn.h"
#include "../agents/transformer.h"
#include "../sim/common.h"
#include "testutil.h"

#include <check.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_ITEMS 40
#define N_TOPICS 4

static const int item_topic[N_ITEMS] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1,
                                        2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,
                                        0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};

typedef struct {
    transformer_config cfg;
    transformer tf;
    nn_layout layout;
    double *w; /* [layout.size] */
    env_spec spec;
} model;

static void model_make(model *m, const transformer_config *cfg, int n_items, unsigned seed)
{
    char err[ERR_LEN];
    m->cfg = *cfg;
    m->spec = (env_spec){.n_items = n_items, .n_users = 4, .slate = 3, .n_topics = N_TOPICS,
                         .max_steps = 10, .item_topic = item_topic};
    nn_layout_init(&m->layout);
    ck_assert_int_eq(transformer_init(&m->tf, &m->spec, cfg, &m->layout, err), DS_OK);
    m->w = calloc(m->layout.size, sizeof *m->w);
    ck_assert_ptr_nonnull(m->w);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    transformer_init_weights(&m->tf, m->w, r);
    gsl_rng_free(r);
}

static void small_config(transformer_config *cfg)
{
    transformer_config_defaults(cfg);
    cfg->context = 6;
    cfg->width = 8;
}

static char path[64];

static void temp_path(void)
{
    snprintf(path, sizeof path, "/tmp/ckpt_test_%ld.bin", (long)getpid());
}

/* A model of the small config saved to path. */
static void saved_model(model *a, unsigned seed)
{
    char err[ERR_LEN];
    transformer_config cfg;
    small_config(&cfg);
    model_make(a, &cfg, N_ITEMS, seed);
    temp_path();
    ck_assert_int_eq(checkpoint_save(path, &cfg, N_ITEMS, &a->layout, a->w, err), DS_OK);
}

START_TEST(test_round_trip_bit_exact)
{
    char err[ERR_LEN];
    transformer_config cfg;
    small_config(&cfg);
    model a, b;
    model_make(&a, &cfg, N_ITEMS, 1);
    model_make(&b, &cfg, N_ITEMS, 2);
    /* values whose bits a decimal round trip would lose */
    a.w[0] = 1.0 / 3.0;
    a.w[1] = -0x1.fffffffffffffp-1022;
    temp_path();
    ck_assert_int_eq(checkpoint_save(path, &cfg, N_ITEMS, &a.layout, a.w, err), DS_OK);
    ck_assert_int_eq(checkpoint_load(path, &cfg, N_ITEMS, &b.layout, b.w, err), DS_OK);
    ck_assert_int_eq(memcmp(a.w, b.w, a.layout.size * sizeof *a.w), 0);
    /* saving again over the file replaces it */
    a.w[5] = 42.0;
    ck_assert_int_eq(checkpoint_save(path, &cfg, N_ITEMS, &a.layout, a.w, err), DS_OK);
    ck_assert_int_eq(checkpoint_load(path, &cfg, N_ITEMS, &b.layout, b.w, err), DS_OK);
    ck_assert(b.w[5] == 42.0);
    unlink(path);
    free(a.w);
    free(b.w);
}
END_TEST

/* Non-tf_ tensors of a layout (a policy head) are neither saved nor loaded. */
START_TEST(test_other_tensors_ignored)
{
    char err[ERR_LEN];
    transformer_config cfg;
    small_config(&cfg);
    model a;
    model_make(&a, &cfg, N_ITEMS, 3);
    size_t head;
    ck_assert_int_eq(nn_layout_add(&a.layout, "policy_W", 3, 5, &head, err), DS_OK);
    double *w = calloc(a.layout.size, sizeof *w);
    memcpy(w, a.w, (a.layout.size - 15) * sizeof *w);
    for (int i = 0; i < 15; i++)
        w[head + (size_t)i] = 7.0;
    temp_path();
    ck_assert_int_eq(checkpoint_save(path, &cfg, N_ITEMS, &a.layout, w, err), DS_OK);
    double *back = calloc(a.layout.size, sizeof *back);
    ck_assert_int_eq(checkpoint_load(path, &cfg, N_ITEMS, &a.layout, back, err), DS_OK);
    ck_assert(back[head] == 0.0);
    ck_assert_int_eq(memcmp(back, w, head * sizeof *w), 0);
    unlink(path);
    free(w);
    free(back);
    free(a.w);
}
END_TEST

/* ---- damage ---- */

static unsigned char *slurp(size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(*len);
    ck_assert_uint_eq(fread(d, 1, *len, f), *len);
    fclose(f);
    return d;
}

static void spit(const unsigned char *d, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(d, 1, len, f), len);
    fclose(f);
}

/* Saves a fresh model, lets edit change the bytes, and expects the load to fail
 * with DS_EINPUT, a message containing want, and the weights untouched. */
static void expect_refusal(void (*edit)(unsigned char **d, size_t *len), const char *want)
{
    char err[ERR_LEN];
    model a;
    saved_model(&a, 4);
    size_t len;
    unsigned char *d = slurp(&len);
    edit(&d, &len);
    spit(d, len);
    free(d);
    double *w = calloc(a.layout.size, sizeof *w);
    ck_assert_int_eq(checkpoint_load(path, &a.cfg, N_ITEMS, &a.layout, w, err), DS_EINPUT);
    ck_assert_msg(strstr(err, want) && strstr(err, path), "'%s' lacks '%s'", err, want);
    for (size_t i = 0; i < a.layout.size; i++)
        ck_assert(w[i] == 0.0);
    unlink(path);
    free(w);
    free(a.w);
}

static void flip_last_byte(unsigned char **d, size_t *len)
{
    (*d)[*len - 1] ^= 0x01;
}

static void truncate_payload(unsigned char **d, size_t *len)
{
    (void)d;
    *len -= 8;
}

static void truncate_header(unsigned char **d, size_t *len)
{
    *len = (size_t)((unsigned char *)strstr((char *)*d, "tensors") - *d);
}

static void append_byte(unsigned char **d, size_t *len)
{
    *d = realloc(*d, *len + 1);
    (*d)[(*len)++] = 0;
}

/* One more tensor line, naming the first tensor again. */
static void repeat_tensor(unsigned char **d, size_t *len)
{
    const char *from = "tensors 15\n", *to = "tensors 16\ntensor tf_item 40 8\n";
    size_t at = (size_t)((unsigned char *)strstr((char *)*d, from) - *d);
    size_t grow = strlen(to) - strlen(from);
    unsigned char *e = malloc(*len + grow);
    memcpy(e, *d, at);
    memcpy(e + at, to, strlen(to));
    memcpy(e + at + strlen(to), *d + at + strlen(from), *len - at - strlen(from));
    free(*d);
    *d = e;
    *len += grow;
}

static void bump_version(unsigned char **d, size_t *len)
{
    (void)len;
    (*d)[strlen(CHECKPOINT_MAGIC) + 1] = '9';
}

static void break_magic(unsigned char **d, size_t *len)
{
    (void)len;
    (*d)[0] = 'x';
}

START_TEST(test_damage_refused)
{
    expect_refusal(flip_last_byte, "checksum");
    expect_refusal(truncate_payload, "truncated");
    expect_refusal(append_byte, "trailing data");
    expect_refusal(truncate_header, "expected tensors");
    expect_refusal(bump_version, "format version 9");
    expect_refusal(repeat_tensor, "listed twice");
    expect_refusal(break_magic, "not a divsim checkpoint");
}
END_TEST

START_TEST(test_missing_file)
{
    char err[ERR_LEN];
    transformer_config cfg;
    small_config(&cfg);
    model a;
    model_make(&a, &cfg, N_ITEMS, 5);
    ck_assert_int_eq(checkpoint_load("/nonexistent/x.ckpt", &cfg, N_ITEMS, &a.layout, a.w,
                                     err), DS_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.ckpt"));
    ck_assert_int_eq(checkpoint_save("/nonexistent/x.ckpt", &cfg, N_ITEMS, &a.layout, a.w,
                                     err), DS_EIO);
    /* what is not a regular file is refused before it is opened: a directory, a
     * device that never ends, a pipe that would wait for a writer */
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/ckpt_fifo_%ld", (long)getpid());
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *not_files[] = {"/tmp", "/dev/zero", fifo};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(checkpoint_load(not_files[i], &cfg, N_ITEMS, &a.layout, a.w, err),
                         DS_EINPUT);
        ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
        ck_assert_int_eq(checkpoint_check(not_files[i], &cfg, N_ITEMS, err), DS_EINPUT);
    }
    unlink(fifo);
    free(a.w);
}
END_TEST

/* ---- mismatches ---- */

/* Saves with the small config, loads into a model built with other, expecting
 * a refusal naming want. */
static void expect_mismatch(const transformer_config *other, int n_items, const char *want)
{
    char err[ERR_LEN];
    model a, b;
    saved_model(&a, 6);
    model_make(&b, other, n_items, 7);
    ck_assert_int_eq(checkpoint_load(path, other, n_items, &b.layout, b.w, err), DS_EINPUT);
    ck_assert_msg(strstr(err, want) != NULL, "'%s' lacks '%s'", err, want);
    unlink(path);
    free(a.w);
    free(b.w);
}

START_TEST(test_config_mismatch_each_field)
{
    transformer_config base, c;
    small_config(&base);
    c = base, c.context = 5;
    expect_mismatch(&c, N_ITEMS, "context 6, the model 5");
    c = base, c.layers = 1;
    expect_mismatch(&c, N_ITEMS, "layers 2, the model 1");
    c = base, c.heads = 4;
    expect_mismatch(&c, N_ITEMS, "heads 2, the model 4");
    c = base, c.width = 16;
    expect_mismatch(&c, N_ITEMS, "width 8, the model 16");
    c = base, c.mlp_ratio = 2;
    expect_mismatch(&c, N_ITEMS, "mlp_ratio 4, the model 2");
    expect_mismatch(&base, N_ITEMS - 4, "n_items 40, the model 36");
}
END_TEST

/* The layout itself disagrees with the file (same config passed): a tensor
 * missing from the file, one of a different shape, one the model lacks. */
START_TEST(test_tensor_table_mismatch)
{
    char err[ERR_LEN];
    model a;
    saved_model(&a, 8);
    const transformer_config cfg = a.cfg;

    nn_layout extra = a.layout;
    size_t off;
    ck_assert_int_eq(nn_layout_add(&extra, "tf_gap_emb", 4, 8, &off, err), DS_OK);
    double *w = calloc(extra.size, sizeof *w);
    ck_assert_int_eq(checkpoint_load(path, &cfg, N_ITEMS, &extra, w, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "has no tensor 'tf_gap_emb'"));

    nn_layout reshaped = a.layout;
    reshaped.tensors[2].rows += 1; /* tf_pos */
    ck_assert_int_eq(checkpoint_load(path, &cfg, N_ITEMS, &reshaped, w, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "tensor 'tf_pos' is 7 x 8, the model's 8 x 8"));

    nn_layout fewer = a.layout;
    snprintf(fewer.tensors[3].name, NN_NAME_LEN, "kind_emb"); /* no longer tf_ */
    ck_assert_int_eq(checkpoint_load(path, &cfg, N_ITEMS, &fewer, w, err), DS_EINPUT);
    ck_assert_ptr_nonnull(strstr(err, "has tensor 'tf_kind', which the model does not"));
    for (size_t i = 0; i < extra.size; i++)
        ck_assert(w[i] == 0.0);
    unlink(path);
    free(w);
    free(a.w);
}
END_TEST

START_TEST(test_nothing_to_save)
{
    char err[ERR_LEN];
    transformer_config cfg;
    small_config(&cfg);
    nn_layout l;
    nn_layout_init(&l);
    size_t off;
    ck_assert_int_eq(nn_layout_add(&l, "policy_W", 2, 2, &off, err), DS_OK);
    double w[4] = {0};
    temp_path();
    ck_assert_int_eq(checkpoint_save(path, &cfg, N_ITEMS, &l, w, err), DS_EINPUT);
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *tc = tcase_create("checkpoint");
    tcase_add_test(tc, test_round_trip_bit_exact);
    tcase_add_test(tc, test_other_tensors_ignored);
    tcase_add_test(tc, test_damage_refused);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_config_mismatch_each_field);
    tcase_add_test(tc, test_tensor_table_mismatch);
    tcase_add_test(tc, test_nothing_to_save);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(checkpoint_suite)
