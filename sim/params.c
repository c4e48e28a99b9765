#include "params.h"

#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const param_spec *param_find(const param_table *t, const char *key)
{
    for (size_t i = 0; i < t->count; i++)
        if (strcmp(t->specs[i].key, key) == 0)
            return &t->specs[i];
    return NULL;
}

static int parse_real(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *text, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(text, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* Index of text among "a|b|c", or -1. */
static int choice_index(const char *choices, const char *text)
{
    size_t len = strlen(text);
    int index = 0;
    for (const char *p = choices; *p; index++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, text, n) == 0)
            return index;
        if (!bar)
            break;
        p = bar + 1;
    }
    return -1;
}

void param_choice_name(const char *choices, int index, char *out, size_t n)
{
    const char *p = choices;
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p)
            p++;
    }
    if (!p || n == 0) {
        if (n)
            out[0] = '\0';
        return;
    }
    size_t len = strcspn(p, "|");
    if (len >= n)
        len = n - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

static int check_range(const param_spec *s, double v, char *err)
{
    if (v < s->min || v > s->max)
        return err_set(err, DS_EINPUT, "value %g out of range [%g, %g]", v,
                       s->min, s->max);
    return DS_OK;
}

int param_parse(const param_spec *s, const char *text, void *config, char *err)
{
    char *field = config ? (char *)config + s->offset : NULL;
    double v;
    int iv;
    switch (s->type) {
    case PARAM_INT:
        if (parse_real(text, &v) != 0 || v != floor(v))
            return err_set(err, DS_EINPUT, "expected an integer, got '%s'", text);
        if (check_range(s, v, err) != DS_OK)
            return DS_EINPUT;
        if (field)
            *(int *)field = (int)v;
        return DS_OK;
    case PARAM_REAL:
        if (parse_real(text, &v) != 0)
            return err_set(err, DS_EINPUT, "expected a finite number, got '%s'", text);
        if (check_range(s, v, err) != DS_OK)
            return DS_EINPUT;
        if (field)
            *(double *)field = v;
        return DS_OK;
    case PARAM_BOOL:
        if (parse_bool(text, &iv) != 0)
            return err_set(err, DS_EINPUT, "expected true or false, got '%s'", text);
        if (field)
            *(int *)field = iv;
        return DS_OK;
    case PARAM_CHOICE:
        iv = choice_index(s->choices, text);
        if (iv < 0)
            return err_set(err, DS_EINPUT, "expected one of %s, got '%s'",
                           s->choices, text);
        if (field)
            *(int *)field = iv;
        return DS_OK;
    case PARAM_STRING:
        if (strlen(text) >= PARAM_STRING_LEN)
            return err_set(err, DS_EINPUT, "value longer than %d characters",
                           PARAM_STRING_LEN - 1);
        if (field)
            memcpy(field, text, strlen(text) + 1);
        return DS_OK;
    }
    return err_set(err, DS_EINTERNAL, "unknown parameter type");
}

int param_defaults(const param_table *t, void *config, char *err)
{
    for (size_t i = 0; i < t->count; i++) {
        char why[ERR_LEN];
        if (param_parse(&t->specs[i], t->specs[i].fallback, config, why) != DS_OK)
            return err_set(err, DS_EINTERNAL, "bad default for '%s': %s",
                           t->specs[i].key, why);
    }
    return DS_OK;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *param_suggest(const char *key, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(key, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    size_t limit = strlen(key) / 3 + 1; /* a typo or two, not a different word */
    return best_d <= limit ? best : NULL;
}

const char *param_suggest_key(const param_table *t, const char *key)
{
    const char *names[256];
    size_t n = t->count < 256 ? t->count : 256;
    for (size_t i = 0; i < n; i++)
        names[i] = t->specs[i].key;
    return param_suggest(key, names, n);
}
