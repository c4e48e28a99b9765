/* libFuzzer harness for the experiment-file parser and validator.
 *
 * The input is an experiment file; everything after a line "--" is --set
 * overrides, one a line. experiment_load_buffer() must either load (then the
 * runs must be well formed) or refuse with an input error and a message; a
 * crash, a leak, a sanitizer report, an internal error or a broken invariant
 * is a finding. Build and run with `make fuzz` (tests/fuzz/README). */
#include "../../sim/common.h"
#include "../../sim/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_OVERRIDES 16

/* A broken invariant: report it, then abort so that libFuzzer keeps the input. */
static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s: %s\n", what, detail);
    abort();
}

/* Where the file ends and the overrides begin: after "\n--\n", or the end. */
static size_t file_length(const char *text, size_t size, size_t *overrides_at)
{
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(text + i, "\n--\n", 4) == 0) {
            *overrides_at = i + 4;
            return i + 1;
        }
    *overrides_at = size;
    return size;
}

/* The lines of text[0..n) as NUL-terminated strings (at most MAX_OVERRIDES). */
static size_t split_lines(const char *text, size_t n, char **lines)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= n && count < MAX_OVERRIDES; i++) {
        if (i < n && text[i] != '\n')
            continue;
        if (i > start) {
            lines[count] = malloc(i - start + 1);
            if (!lines[count])
                fail("out of memory", "splitting overrides");
            memcpy(lines[count], text + start, i - start);
            lines[count][i - start] = '\0';
            count++;
        }
        start = i + 1;
    }
    return count;
}

static int compare_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* What a loaded experiment must satisfy. */
static void check_experiment(const experiment *x)
{
    if (x->n_runs == 0 || x->n_runs > 100000 || !x->runs)
        fail("bad run count", x->name);
    if (x->name[0] == '\0' || strcmp(x->path, "fuzz.ini") != 0)
        fail("bad name or path", x->name);
    for (size_t i = 0; i < x->n_runs; i++) {
        const run_spec *r = &x->runs[i];
        if (!r->env || !r->agent || !r->params || !r->config_text || r->run_id <= 0 ||
            (r->env->params.size && !r->env_config) ||
            (r->agent->params.size && !r->agent_config))
            fail("incomplete run", r->config_text ? r->config_text : "(no text)");
        for (size_t k = 1; k < r->n_params; k++)
            if (strcmp(r->params[k - 1].key, r->params[k].key) >= 0)
                fail("params not sorted", r->params[k].key);
        if (!run_param_get(r, "env.kind") || strcmp(run_param_get(r, "env.kind"),
                                                     r->env->name) != 0)
            fail("env.kind does not name the env", r->env->name);
        if (strcmp(r->settings.name, x->name) != 0)
            fail("run name differs from the experiment's", r->settings.name);
        if (r->settings.train_episodes < 0 || r->settings.eval_episodes < 1 ||
            r->settings.window < 1)
            fail("settings out of range", r->config_text);
    }
    /* Two runs with one id would overwrite each other in the database. */
    int64_t *ids = malloc(x->n_runs * sizeof *ids);
    if (!ids)
        fail("out of memory", "checking run ids");
    for (size_t i = 0; i < x->n_runs; i++)
        ids[i] = x->runs[i].run_id;
    qsort(ids, x->n_runs, sizeof *ids, compare_ids);
    for (size_t i = 1; i < x->n_runs; i++)
        if (ids[i] == ids[i - 1])
            fail("two runs share an id", x->name);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t overrides_at;
    size_t file_len = file_length(text, size, &overrides_at);
    char *lines[MAX_OVERRIDES];
    size_t n_lines = split_lines(text + overrides_at, size - overrides_at, lines);

    experiment x;
    char err[ERR_LEN] = "";
    int rc = experiment_load_buffer("fuzz.ini", text, file_len, (const char *const *)lines,
                                    n_lines, &x, err);
    if (rc == DS_OK)
        check_experiment(&x);
    else if (rc != DS_EINPUT && rc != DS_ENOMEM)
        fail("not an input error", err);
    else if (err[0] == '\0' || strlen(err) >= ERR_LEN)
        fail("no message", "");
    else if (x.runs || x.n_runs)
        fail("runs left after an error", err);
    experiment_free(&x);
    for (size_t i = 0; i < n_lines; i++)
        free(lines[i]);
    return 0;
}
