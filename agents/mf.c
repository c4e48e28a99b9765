/* Implicit ALS and the agent code shared by cf and mmr; mf.h states the model. */
#include "mf.h"

#include "rank.h"
#include "sample.h"

#include "../sim/vecmath.h"

#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_randist.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model ---- */

/* The interactions of one user, sorted by item id. */
typedef struct {
    int *items;   /* [cap] */
    double *conf; /* [cap] c_ui > 0 */
    int len, cap;
} mf_row;

struct mf_model {
    mf_config cfg;
    int n_users, n_items, d;
    int *user_row;      /* [n_users] row of each user, -1 while unseen */
    int *row_user;      /* [row_cap] user of each row; rows in order of first sight */
    mf_row *rows;       /* [row_cap] */
    int n_rows, row_cap;
    int n_solved;       /* rows 0..n_solved-1 have factors from a user sweep */
    double *X;          /* [row_cap][d] user factors */
    double *Y;          /* [n_items][d] item factors */
    double *popularity; /* [n_items] total confidence of each item */
    rank_sketch sketch; /* Y in int8, refilled after every item sweep */
    long nnz;
    /* The interactions packed by user (CSR) and by item (CSC) for the sweeps,
     * rebuilt when the store changed since (version != packed_version). */
    long version, packed_version;
    int *user_start;    /* [row_cap + 1] */
    int *user_item;     /* [nnz_cap] */
    double *user_conf;  /* [nnz_cap] */
    int *item_start;    /* [n_items + 1] */
    int *item_row;      /* [nnz_cap] */
    double *item_conf;  /* [nnz_cap] */
    long nnz_cap;
    int longest;        /* most entries of one user or item */
    int gather_cap;
    double *gathered;   /* [gather_cap][d] sqrt(c_e) f_e of one entity's entries */
    double *weight;     /* [gather_cap] (1 + c_e) / sqrt(c_e) */
    double *gram;       /* [d][d] F'F of the fixed side */
    double *A;          /* [d][d] one normal-equation matrix */
    double *b;          /* [d] its right-hand side */
};

int mf_model_create(const mf_config *cfg, int n_users, int n_items, gsl_rng *init,
                    mf_model **out, char *err)
{
    *out = NULL;
    if (n_users < 1 || n_items < 1 || cfg->factors < 1)
        return err_set(err, DS_EINPUT, "matrix factorisation needs users, items and "
                       "factors, got %d, %d and %d", n_users, n_items, cfg->factors);
    mf_model *m = calloc(1, sizeof *m);
    if (!m)
        return err_set(err, DS_ENOMEM, "out of memory for the factor model");
    m->cfg = *cfg;
    m->n_users = n_users;
    m->n_items = n_items;
    m->d = cfg->factors;
    size_t d = (size_t)m->d;
    m->user_row = malloc((size_t)n_users * sizeof *m->user_row);
    m->Y = malloc((size_t)n_items * d * sizeof *m->Y);
    m->popularity = calloc((size_t)n_items, sizeof *m->popularity);
    m->item_start = calloc((size_t)n_items + 1, sizeof *m->item_start);
    m->user_start = calloc(1, sizeof *m->user_start);
    m->gram = malloc(d * d * sizeof *m->gram);
    m->A = malloc(d * d * sizeof *m->A);
    m->b = malloc(d * sizeof *m->b);
    if (!m->user_row || !m->Y || !m->popularity || !m->item_start || !m->user_start
        || !m->gram || !m->A || !m->b || rank_sketch_init(&m->sketch, n_items, m->d) != DS_OK) {
        mf_model_destroy(m);
        return err_set(err, DS_ENOMEM, "out of memory for the factor model");
    }
    for (int u = 0; u < n_users; u++)
        m->user_row[u] = -1;
    for (size_t j = 0; j < (size_t)n_items * d; j++)
        m->Y[j] = gsl_ran_gaussian(init, 0.01);
    rank_sketch_fill(&m->sketch, m->Y);
    *out = m;
    return DS_OK;
}

void mf_model_destroy(mf_model *m)
{
    if (!m)
        return;
    for (int r = 0; r < m->n_rows; r++) {
        free(m->rows[r].items);
        free(m->rows[r].conf);
    }
    free(m->rows);
    free(m->row_user);
    free(m->user_row);
    free(m->X);
    free(m->Y);
    free(m->popularity);
    free(m->user_start);
    free(m->user_item);
    free(m->user_conf);
    free(m->item_start);
    free(m->item_row);
    free(m->item_conf);
    free(m->gathered);
    free(m->weight);
    free(m->gram);
    free(m->A);
    free(m->b);
    rank_sketch_free(&m->sketch);
    free(m);
}

/* Room for need entries in a row (need is at most one more than it holds). */
static int row_reserve(mf_row *row, int need)
{
    if (need <= row->cap)
        return DS_OK;
    int cap = row->cap ? 2 * row->cap : 4;
    int *items = realloc(row->items, (size_t)cap * sizeof *items);
    if (!items)
        return DS_ENOMEM;
    row->items = items;
    double *conf = realloc(row->conf, (size_t)cap * sizeof *conf);
    if (!conf)
        return DS_ENOMEM;
    row->conf = conf;
    row->cap = cap;
    return DS_OK;
}

/* The row of user, created (with zero factors) on first sight; -1 if out of memory. */
static int row_of(mf_model *m, int user)
{
    if (m->user_row[user] >= 0)
        return m->user_row[user];
    if (m->n_rows == m->row_cap) {
        int cap = m->row_cap ? 2 * m->row_cap : 64;
        size_t d = (size_t)m->d;
        mf_row *rows = realloc(m->rows, (size_t)cap * sizeof *rows);
        if (!rows)
            return -1;
        m->rows = rows;
        int *row_user = realloc(m->row_user, (size_t)cap * sizeof *row_user);
        if (!row_user)
            return -1;
        m->row_user = row_user;
        double *X = realloc(m->X, (size_t)cap * d * sizeof *X);
        if (!X)
            return -1;
        m->X = X;
        int *start = realloc(m->user_start, ((size_t)cap + 1) * sizeof *start);
        if (!start)
            return -1;
        m->user_start = start;
        m->row_cap = cap;
    }
    int r = m->n_rows++;
    m->rows[r] = (mf_row){0};
    m->row_user[r] = user;
    memset(m->X + (size_t)r * (size_t)m->d, 0, (size_t)m->d * sizeof *m->X);
    m->user_row[user] = r;
    return r;
}

/* Position of item in a sorted row, or where it would be inserted. */
static int row_find(const mf_row *row, int item)
{
    int lo = 0, hi = row->len;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (row->items[mid] < item)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int mf_model_add(mf_model *m, int user, int item, double confidence, char *err)
{
    if (user < 0 || user >= m->n_users)
        return err_set(err, DS_EINPUT, "user %d out of range [0, %d)", user, m->n_users);
    if (item < 0 || item >= m->n_items)
        return err_set(err, DS_EINPUT, "item %d out of range [0, %d)", item, m->n_items);
    if (!(confidence > 0) || !isfinite(confidence))
        return err_set(err, DS_EINPUT, "confidence must be positive and finite, got %g",
                       confidence);
    int r = row_of(m, user);
    if (r < 0)
        return err_set(err, DS_ENOMEM, "out of memory recording user %d", user);
    mf_row *row = &m->rows[r];
    int at = row_find(row, item);
    if (at == row->len || row->items[at] != item) {
        if (row_reserve(row, row->len + 1) != DS_OK)
            return err_set(err, DS_ENOMEM, "out of memory recording user %d", user);
        memmove(row->items + at + 1, row->items + at,
                (size_t)(row->len - at) * sizeof *row->items);
        memmove(row->conf + at + 1, row->conf + at,
                (size_t)(row->len - at) * sizeof *row->conf);
        row->items[at] = item;
        row->conf[at] = 0;
        row->len++;
        m->nnz++;
    }
    row->conf[at] += confidence;
    m->popularity[item] += confidence;
    m->version++;
    return DS_OK;
}

/* Rebuilds the CSR and CSC copies of the store if it changed. */
static int pack(mf_model *m)
{
    if (m->packed_version == m->version)
        return DS_OK;
    if (m->nnz > INT_MAX)
        return DS_ENOMEM; /* the packed indices are ints */
    if (m->nnz > m->nnz_cap) {
        long cap = m->nnz_cap ? m->nnz_cap : 256;
        while (cap < m->nnz)
            cap *= 2;
        int *ui = realloc(m->user_item, (size_t)cap * sizeof *ui);
        if (ui)
            m->user_item = ui;
        double *uc = realloc(m->user_conf, (size_t)cap * sizeof *uc);
        if (uc)
            m->user_conf = uc;
        int *ir = realloc(m->item_row, (size_t)cap * sizeof *ir);
        if (ir)
            m->item_row = ir;
        double *ic = realloc(m->item_conf, (size_t)cap * sizeof *ic);
        if (ic)
            m->item_conf = ic;
        if (!ui || !uc || !ir || !ic)
            return DS_ENOMEM;
        m->nnz_cap = cap;
    }
    int e = 0;
    m->longest = 0;
    memset(m->item_start, 0, ((size_t)m->n_items + 1) * sizeof *m->item_start);
    for (int r = 0; r < m->n_rows; r++) {
        const mf_row *row = &m->rows[r];
        if (row->len > m->longest)
            m->longest = row->len;
        m->user_start[r] = e;
        memcpy(m->user_item + e, row->items, (size_t)row->len * sizeof *row->items);
        memcpy(m->user_conf + e, row->conf, (size_t)row->len * sizeof *row->conf);
        e += row->len;
        for (int j = 0; j < row->len; j++)
            m->item_start[row->items[j] + 1]++;
    }
    m->user_start[m->n_rows] = e;
    for (int i = 0; i < m->n_items; i++) {
        if (m->item_start[i + 1] > m->longest)
            m->longest = m->item_start[i + 1];
        m->item_start[i + 1] += m->item_start[i];
    }
    /* Counting sort by item; rows are visited in order, so each column is sorted. */
    for (int r = 0; r < m->n_rows; r++) {
        for (int q = m->user_start[r]; q < m->user_start[r + 1]; q++) {
            int slot = m->item_start[m->user_item[q]]++;
            m->item_row[slot] = r;
            m->item_conf[slot] = m->user_conf[q];
        }
    }
    for (int i = m->n_items; i > 0; i--)
        m->item_start[i] = m->item_start[i - 1];
    m->item_start[0] = 0;
    if (m->longest > m->gather_cap) {
        double *g = realloc(m->gathered, (size_t)m->longest * (size_t)m->d * sizeof *g);
        if (g)
            m->gathered = g;
        double *w = realloc(m->weight, (size_t)m->longest * sizeof *w);
        if (w)
            m->weight = w;
        if (!g || !w)
            return DS_ENOMEM;
        m->gather_cap = m->longest;
    }
    m->packed_version = m->version;
    return DS_OK;
}

static void symmetrize_from_lower(double *S, int d)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++)
            S[j * d + i] = S[i * d + j];
}

/* G = F'F for F [n][d]. */
static void gram_of(const double *F, int n, int d, double *G)
{
    if (n == 0) {
        memset(G, 0, (size_t)d * (size_t)d * sizeof *G);
        return;
    }
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, d, n, 1.0, F, d, 0.0, G, d);
    symmetrize_from_lower(G, d);
}

static int all_finite(const double *v, size_t n)
{
    for (size_t j = 0; j < n; j++)
        if (!isfinite(v[j]))
            return 0;
    return 1;
}

/* Solves every entity s of one side: with F the other side's factors [n_other][d],
 * self[s] = (F'F + sum_e c_e f_e f_e' + lambda I)^-1 sum_e (1 + c_e) f_e over
 * the entries e in start[s]..start[s+1] (idx: row of F, conf: c_e). The entries'
 * rows are gathered scaled by sqrt(c_e), so that one syrk and one gemv replace a
 * rank-one update per entry. */
static int solve_side(mf_model *m, const double *F, int n_other, double *self, int n_self,
                      const int *start, const int *idx, const double *conf, char *err)
{
    int d = m->d;
    size_t dd = (size_t)d * (size_t)d;
    gram_of(F, n_other, d, m->gram);
    gsl_matrix_view A = gsl_matrix_view_array(m->A, (size_t)d, (size_t)d);
    gsl_vector_view b = gsl_vector_view_array(m->b, (size_t)d);
    for (int s = 0; s < n_self; s++) {
        double *x = self + (size_t)s * (size_t)d;
        if (start[s] == start[s + 1]) { /* p = 0: the solution is 0 */
            memset(x, 0, (size_t)d * sizeof *x);
            continue;
        }
        memcpy(m->A, m->gram, dd * sizeof *m->A);
        for (int j = 0; j < d; j++)
            m->A[j * d + j] += m->cfg.regularization;
        int len = start[s + 1] - start[s];
        for (int q = 0; q < len; q++) {
            int e = start[s] + q;
            double root = sqrt(conf[e]);
            const double *f = F + (size_t)idx[e] * (size_t)d;
            double *g = m->gathered + (size_t)q * (size_t)d;
            for (int j = 0; j < d; j++)
                g[j] = root * f[j];
            m->weight[q] = (1.0 + conf[e]) / root;
        }
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, d, len, 1.0, m->gathered, d,
                    1.0, m->A, d);
        cblas_dgemv(CblasRowMajor, CblasTrans, len, d, 1.0, m->gathered, d, m->weight, 1,
                    0.0, m->b, 1);
        symmetrize_from_lower(m->A, d);
        gsl_vector_view xv = gsl_vector_view_array(x, (size_t)d);
        if (gsl_linalg_cholesky_decomp1(&A.matrix) != GSL_SUCCESS
            || gsl_linalg_cholesky_solve(&A.matrix, &b.vector, &xv.vector) != GSL_SUCCESS)
            return err_set(err, DS_ENUMERIC, "matrix factorisation: normal equations "
                           "not positive definite (diverged?)");
    }
    if (!all_finite(self, (size_t)n_self * (size_t)d))
        return err_set(err, DS_ENUMERIC, "matrix factorisation: factors are not finite");
    return DS_OK;
}

int mf_model_sweep(mf_model *m, mf_side side, char *err)
{
    if (pack(m) != DS_OK)
        return err_set(err, DS_ENOMEM, "out of memory packing %ld interactions", m->nnz);
    if (side == MF_USERS) {
        int rc = solve_side(m, m->Y, m->n_items, m->X, m->n_rows, m->user_start,
                            m->user_item, m->user_conf, err);
        if (rc == DS_OK)
            m->n_solved = m->n_rows;
        return rc;
    }
    int rc = solve_side(m, m->X, m->n_rows, m->Y, m->n_items, m->item_start, m->item_row,
                        m->item_conf, err);
    rank_sketch_fill(&m->sketch, m->Y);
    return rc;
}

int mf_model_train(mf_model *m, char *err)
{
    for (int it = 0; it < m->cfg.iterations; it++) {
        int rc = mf_model_sweep(m, MF_USERS, err);
        if (rc == DS_OK)
            rc = mf_model_sweep(m, MF_ITEMS, err);
        if (rc != DS_OK)
            return rc;
    }
    return DS_OK;
}

static double dot(const double *a, const double *b, int d)
{
    return cblas_ddot(d, a, 1, b, 1);
}

/* Over every (row, item) cell, C (p - s)^2 = s^2 for the empty cells, so the sum
 * is sum_u x_u'(Y'Y)x_u plus a correction on the stored cells: O(nnz d + rows d^2). */
double mf_model_loss(const mf_model *m)
{
    int d = m->d;
    double *G = malloc((size_t)d * (size_t)d * sizeof *G);
    double *Gx = malloc((size_t)d * sizeof *Gx);
    if (!G || !Gx) {
        free(G);
        free(Gx);
        return NAN;
    }
    gram_of(m->Y, m->n_items, d, G);
    double loss = 0, norms = 0;
    for (int r = 0; r < m->n_rows; r++) {
        const double *x = m->X + (size_t)r * (size_t)d;
        cblas_dsymv(CblasRowMajor, CblasLower, d, 1.0, G, d, x, 1, 0.0, Gx, 1);
        loss += dot(x, Gx, d);
        norms += dot(x, x, d);
        const mf_row *row = &m->rows[r];
        for (int j = 0; j < row->len; j++) {
            double s = dot(x, m->Y + (size_t)row->items[j] * (size_t)d, d);
            loss += (1.0 + row->conf[j]) * (1.0 - s) * (1.0 - s) - s * s;
        }
    }
    /* Item by item: n_items * d can exceed INT_MAX, the length cblas_ddot takes. */
    for (int i = 0; i < m->n_items; i++) {
        const double *y = m->Y + (size_t)i * (size_t)d;
        norms += dot(y, y, d);
    }
    free(G);
    free(Gx);
    return loss + m->cfg.regularization * norms;
}

int mf_model_dim(const mf_model *m) { return m->d; }

long mf_model_interactions(const mf_model *m) { return m->nnz; }

double mf_model_confidence(const mf_model *m, int user, int item)
{
    if (user < 0 || user >= m->n_users || m->user_row[user] < 0)
        return 0;
    const mf_row *row = &m->rows[m->user_row[user]];
    int at = row_find(row, item);
    return at < row->len && row->items[at] == item ? row->conf[at] : 0;
}

double mf_model_popularity(const mf_model *m, int item)
{
    return item >= 0 && item < m->n_items ? m->popularity[item] : 0;
}

const double *mf_model_user_factors(const mf_model *m, int user)
{
    if (user < 0 || user >= m->n_users)
        return NULL;
    int r = m->user_row[user];
    return r >= 0 && r < m->n_solved ? m->X + (size_t)r * (size_t)m->d : NULL;
}

const double *mf_model_item_factors(const mf_model *m, int item)
{
    return item >= 0 && item < m->n_items ? m->Y + (size_t)item * (size_t)m->d : NULL;
}

static int is_whole_catalogue(const int *candidates, int n, int n_items)
{
    return n == n_items && vm_is_iota(candidates, n);
}

/* The scores are sim/vecmath.h dot products: the same on every CPU (unlike a
 * BLAS dgemv, whose kernel and rounding depend on it), and a pass over the whole
 * catalogue's factors as fast as the memory allows. */
int mf_model_scores(const mf_model *m, int user, const int *candidates, int n,
                    double *scores)
{
    const double *x = mf_model_user_factors(m, user);
    if (!x) {
        for (int j = 0; j < n; j++)
            scores[j] = m->popularity[candidates[j]];
        return 0;
    }
    if (is_whole_catalogue(candidates, n, m->n_items))
        vm_rows_dot(scores, m->Y, x, n, m->d);
    else
        vm_rows_dot_gather(scores, m->Y, candidates, x, n, m->d);
    return 1;
}

/* ---- selection ---- */

/* ---- the agent part ---- */

int mf_agent_create(size_t size, const agent_type *type, const mf_config *cfg,
                    const env_spec *spec, const agent_context *ctx, int depth,
                    mf_agent **out, char *err)
{
    *out = NULL;
    if (!spec || spec->n_items < 1 || spec->n_users < 1 || spec->slate < 1)
        return err_set(err, DS_EINPUT, "agent '%s' needs at least one item, one user "
                       "and a slate of at least one item", type->name);
    if (spec->slate > spec->n_items)
        return err_set(err, DS_EINPUT, "agent '%s': slate %d exceeds the %d items",
                       type->name, spec->slate, spec->n_items);
    if (!ctx || !ctx->init || !ctx->sampling)
        return err_set(err, DS_EINPUT, "agent '%s' needs the init and sampling streams",
                       type->name);
    if (depth < spec->slate)
        depth = spec->slate;
    if (depth > spec->n_items)
        depth = spec->n_items;
    mf_agent *a = calloc(1, size);
    if (!a)
        return err_set(err, DS_ENOMEM, "out of memory creating agent '%s'", type->name);
    a->base.type = type;
    a->base.spec = spec;
    a->base.learning = 1;
    a->base.update_every = cfg->retrain_every;
    a->cfg = *cfg;
    a->sampling = ctx->sampling;
    a->depth = depth;
    int rc = mf_model_create(cfg, spec->n_users, spec->n_items, ctx->init, &a->model, err);
    if (rc != DS_OK) {
        mf_agent_destroy(&a->base);
        return rc;
    }
    a->scores = malloc((size_t)spec->n_items * sizeof *a->scores);
    a->heap = malloc((size_t)depth * sizeof *a->heap);
    a->ranked = malloc((size_t)depth * sizeof *a->ranked);
    a->mark = calloc((size_t)spec->n_items, sizeof *a->mark);
    if (!a->scores || !a->heap || !a->ranked || !a->mark) {
        mf_agent_destroy(&a->base);
        return err_set(err, DS_ENOMEM, "out of memory creating agent '%s'", type->name);
    }
    *out = a;
    return DS_OK;
}

void mf_agent_destroy(agent *base)
{
    if (!base)
        return;
    mf_agent *a = (mf_agent *)base;
    mf_model_destroy(a->model);
    free(a->scores);
    free(a->heap);
    free(a->ranked);
    free(a->mark);
    free(a);
}

/* Candidate ids in range and distinct (a->mark is cleared again on the way out).
 * The whole catalogue in id order, what shop offers, passes at a glance; *whole
 * says whether that is what was offered. */
static int check_candidates(mf_agent *a, const observation *obs, int *whole)
{
    int n_items = a->base.spec->n_items, bad = -1;
    *whole = is_whole_catalogue(obs->candidates, obs->n_candidates, n_items);
    if (*whole)
        return DS_OK;
    for (int j = 0; j < obs->n_candidates && bad < 0; j++) {
        int item = obs->candidates[j];
        if (item < 0 || item >= n_items || a->mark[item])
            bad = j;
        else
            a->mark[item] = 1;
    }
    int marked = bad < 0 ? obs->n_candidates : bad;
    for (int j = 0; j < marked; j++)
        a->mark[obs->candidates[j]] = 0;
    if (bad < 0)
        return DS_OK;
    int item = obs->candidates[bad];
    if (item < 0 || item >= n_items)
        return err_set(a->base.err, DS_EINPUT, "candidate item %d out of range [0, %d)", item,
                       n_items);
    return err_set(a->base.err, DS_EINPUT, "candidate item %d offered twice", item);
}

int mf_agent_rank(mf_agent *a, const observation *obs, int depth)
{
    const env_spec *spec = a->base.spec;
    if (obs->user < 0 || obs->user >= spec->n_users)
        return err_set(a->base.err, DS_EINPUT, "agent '%s': user %d out of range [0, %d)",
                       a->base.type->name, obs->user, spec->n_users);
    if (obs->n_candidates < spec->slate || !obs->candidates)
        return err_set(a->base.err, DS_EINPUT, "agent '%s': %d candidates for a slate of %d",
                       a->base.type->name, obs->n_candidates, spec->slate);
    int whole, rc = check_candidates(a, obs, &whole);
    if (rc != DS_OK)
        return rc;
    if (depth > a->depth)
        depth = a->depth;
    /* A personal ranking of the whole catalogue: a first pass from the int8
     * sketch of the item factors, the same result as the exact pass below. */
    mf_model *m = a->model;
    const double *x = mf_model_user_factors(m, obs->user);
    if (x && whole &&
        rank_top_k_sketched(&m->sketch, m->Y, x, obs->candidates, depth, a->scores, a->heap,
                            a->ranked))
        return DS_OK;
    mf_model_scores(m, obs->user, obs->candidates, obs->n_candidates, a->scores);
    rank_top_k(obs->candidates, a->scores, obs->n_candidates, depth, a->heap, a->ranked);
    return DS_OK;
}

void mf_agent_explore(mf_agent *a, const observation *obs, int *slate)
{
    a->base.slate_logp = sample_explore(a->sampling, &a->explore_memo, obs->candidates,
                                        obs->n_candidates, slate, a->base.spec->slate,
                                        a->cfg.epsilon);
}

int mf_agent_observe(agent *base, const feedback *fb)
{
    mf_agent *a = (mf_agent *)base;
    if (!base->learning || fb->item < 0)
        return DS_OK;
    double add = 0;
    if (fb->kind == FEEDBACK_STEP && fb->click >= 0)
        add += a->cfg.alpha;
    if (fb->purchased || fb->kind == FEEDBACK_LATE_PURCHASE)
        add += a->cfg.alpha * a->cfg.purchase_weight;
    if (add <= 0)
        return DS_OK;
    int rc = mf_model_add(a->model, fb->user, fb->item, add, a->base.err);
    if (rc == DS_OK)
        a->dirty = 1;
    return rc;
}

int mf_agent_end_episode(agent *base, int user, long episode)
{
    (void)base;
    (void)user;
    (void)episode;
    return DS_OK;
}

/* Retrains on everything recorded; sweeps without new data are skipped, as they
 * would only polish the same fit. */
int mf_agent_update(agent *base, double t)
{
    mf_agent *a = (mf_agent *)base;
    (void)t;
    if (!base->learning || !a->dirty)
        return DS_OK;
    int rc = mf_model_train(a->model, a->base.err);
    if (rc != DS_OK)
        return rc;
    a->dirty = 0;
    a->retrains++;
    return DS_OK;
}

double mf_agent_memory_estimate(size_t size, const mf_config *cfg, const env_spec *spec,
                                int depth)
{
    double d = cfg->factors, users = spec->n_users, items = spec->n_items;
    double ranked = fmin(fmax(depth, spec->slate), items);
    double model = sizeof(mf_model) + items * (d + 1) * sizeof(double) /* Y, popularity */ +
                   (items + 1) * sizeof(int) + (2 * d * d + d) * sizeof(double) +
                   users * (d * sizeof(double) + sizeof(mf_row) + 3 * sizeof(int)) +
                   rank_sketch_memory(spec->n_items, cfg->factors);
    return (double)size + model + items * (sizeof(double) + 1) /* scores, mark */ +
           2 * ranked * sizeof(int);
}
