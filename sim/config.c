/* Experiment files: parsing with inih, validation against the parameter tables,
 * and grid expansion into runs.
 *
 * Loading is three passes. (1) inih reads the file through read_line(), which
 * counts lines and tracks the section headers itself, so every key and section
 * knows its line (Debian's inih has no INI_HANDLER_LINENO); --set overrides are
 * then merged in. (2) Every entry is checked: sections, keys, each element of a
 * comma list against the parameter spec of every table it feeds. (3) The grid is
 * counted, then expanded run by run; each run's env and agent configs are filled
 * and their cross-field checks (xValidate) run here, so a bad file never starts
 * a run.
 *
 * A key "reward.KEY" in [agent.NAME] is the [reward] key KEY for NAME's runs
 * only: it replaces [reward] KEY as an axis of those runs and gives their param
 * "reward.KEY", so a run's params do not tell where its reward came from. */
#include "config.h"

#include "common.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GRID_LIMIT 100000
#define SEED_LIMIT ((uint64_t)INT64_MAX) /* seeds are stored as SQLite integers */
#define VALUE_LEN ((int)sizeof(((run_param *)0)->value))
#define MAX_NAMES 256 /* candidates for a suggestion */

static const param_spec experiment_specs[] = {
    P_INT(run_settings, train_episodes, "1000", 0, 1e9, "sessions with learning on"),
    P_INT(run_settings, eval_episodes, "500", 1, 1e9, "sessions with learning frozen"),
    P_INT(run_settings, window, "100", 1, 1e9, "episodes per metrics window"),
    P_INT(run_settings, history, "10", 0, 64, "history entries the engine keeps per user"),
};
static const param_table experiment_table = PARAM_TABLE(run_settings, experiment_specs);

/* The choices are in reward_kind order (sim/slate.h). */
static const param_spec reward_specs[] = {
    {"kind", PARAM_CHOICE, offsetof(run_settings, reward), "purchases", 0, 0,
     "purchases|revenue|clicks", "what the raw reward counts"},
    P_REAL(run_settings, diversity_bonus, "0", -1e6, 1e6,
           "shaped reward = raw + diversity_bonus * ILD(slate)"),
};
static const param_table reward_table = PARAM_TABLE(run_settings, reward_specs);

static const char *const section_names[] = {"experiment", "env", "agent", "reward"};
static const char *const experiment_keys[] = {"name", "seeds", "train_episodes",
                                              "eval_episodes", "window", "history"};

/* One key = value of the file or of a --set. */
typedef struct {
    char *section;        /* "experiment", "env", "agent", "agent.NAME" or "reward" */
    char *key;
    char *value;          /* trimmed text */
    char **items;         /* [n_items] the comma-separated elements, trimmed */
    size_t n_items;
    int line;             /* line in the file; 0 for a --set */
    const char *override; /* the --set text, or NULL */
} entry;

/* The first header of a section in the file. */
typedef struct {
    char *name;
    int line;
} section_mark;

typedef struct {
    uint64_t lo, hi; /* inclusive */
} seed_range;

typedef struct {
    const char *path;
    char *err;
    FILE *file;
    char *buf;     /* getline buffer */
    size_t buf_cap;
    int line;      /* lines read so far */
    const char *current; /* the section in effect (a mark's name); NULL before any */
    int code;      /* first error met while inih runs, and its line */
    int err_line;
    entry *entries; /* [n_entries] file order, then keys added by --set */
    size_t n_entries, cap_entries;
    section_mark *marks; /* [n_marks] */
    size_t n_marks, cap_marks;
    /* Resolved by validation. */
    const env_type **envs;     /* [n_envs] */
    size_t n_envs;
    const agent_type **agents; /* [n_agents] */
    size_t n_agents;
    seed_range *ranges;        /* [n_ranges] as written */
    size_t n_ranges;
    double n_seeds_written;    /* total length of the ranges */
    uint64_t *seeds;           /* [n_seeds] */
    size_t n_seeds;
    char name[NAME_LEN];
} loader;

/* ---- utilities ---- */

static char *dup_range(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* A copy of s[0..n) without surrounding whitespace. */
static char *dup_trimmed(const char *s, size_t n)
{
    while (n > 0 && is_space(*s))
        s++, n--;
    while (n > 0 && is_space(s[n - 1]))
        n--;
    return dup_range(s, n);
}

/* " (did you mean 'x'?)" or "" into buf. */
static const char *hint(const char *suggestion, char *buf, size_t n)
{
    if (!suggestion)
        return "";
    snprintf(buf, n, " (did you mean '%s'?)", suggestion);
    return buf;
}

static const char *suggest_env(const char *name)
{
    const char *names[MAX_NAMES];
    size_t n = 0;
    for (int i = 0; i < env_registry_count && n < MAX_NAMES; i++)
        names[n++] = env_registry[i]->name;
    return param_suggest(name, names, n);
}

static const char *suggest_agent(const char *name)
{
    const char *names[MAX_NAMES];
    size_t n = 0;
    for (int i = 0; i < agent_registry_count && n < MAX_NAMES; i++)
        names[n++] = agent_registry[i]->name;
    return param_suggest(name, names, n);
}

/* "FILE:LINE" or "--set 'TEXT'": where an entry was written. */
static void entry_where(const loader *L, const entry *e, char *out, size_t n)
{
    if (e->override)
        snprintf(out, n, "--set '%s'", e->override);
    else
        snprintf(out, n, "%s:%d", L->path, e->line);
}

static int fail_entry(const loader *L, const entry *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "WHERE: message" for entry e. */
static int fail_entry(const loader *L, const entry *e, const char *fmt, ...)
{
    char where[ERR_LEN], msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    entry_where(L, e, where, sizeof where);
    return err_set(L->err, DS_EINPUT, "%s: %s", where, msg);
}

static int fail_line(loader *L, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error met while inih runs: "FILE:LINE: message". */
static int fail_line(loader *L, int line, const char *fmt, ...)
{
    char msg[ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    L->code = err_set(L->err, DS_EINPUT, "%s:%d: %s", L->path, line, msg);
    L->err_line = line;
    return L->code;
}

static int out_of_memory(loader *L)
{
    L->code = err_set(L->err, DS_ENOMEM, "out of memory reading '%s'", L->path);
    L->err_line = L->line;
    return L->code;
}

static entry *find_entry(const loader *L, const char *section, const char *key)
{
    for (size_t i = 0; i < L->n_entries; i++)
        if (strcmp(L->entries[i].section, section) == 0 && strcmp(L->entries[i].key, key) == 0)
            return &L->entries[i];
    return NULL;
}

static const section_mark *find_mark(const loader *L, const char *name)
{
    for (size_t i = 0; i < L->n_marks; i++)
        if (strcmp(L->marks[i].name, name) == 0)
            return &L->marks[i];
    return NULL;
}

static int section_present(const loader *L, const char *name)
{
    if (find_mark(L, name))
        return 1;
    for (size_t i = 0; i < L->n_entries; i++)
        if (strcmp(L->entries[i].section, name) == 0)
            return 1;
    return 0;
}

static int is_agent_section(const char *section)
{
    return strncmp(section, "agent.", 6) == 0;
}

/* The [reward] key that an entry of [agent.NAME] written "reward.KEY" sets for
 * NAME's runs, or NULL for any other entry. */
static const char *scoped_reward_key(const entry *e)
{
    if (is_agent_section(e->section) && strncmp(e->key, "reward.", 7) == 0)
        return e->key + 7;
    return NULL;
}

/* The entry "reward.KEY" of [agent.NAME] for agent atype, or NULL. */
static const entry *find_scoped(const loader *L, const agent_type *atype, const char *key)
{
    char section[2 * NAME_LEN], scoped[2 * NAME_LEN];
    snprintf(section, sizeof section, "agent.%s", atype->name);
    snprintf(scoped, sizeof scoped, "reward.%s", key);
    return find_entry(L, section, scoped);
}

/* Checks a section name; why gets the message. */
static int check_section(const char *name, char *why)
{
    char buf[2 * NAME_LEN];
    for (size_t i = 0; i < sizeof section_names / sizeof *section_names; i++)
        if (strcmp(name, section_names[i]) == 0)
            return DS_OK;
    if (is_agent_section(name)) {
        const char *agent_name = name + 6;
        if (agent_find(agent_name))
            return DS_OK;
        return err_set(why, DS_EINPUT, "unknown agent '%s' in section '%s'%s", agent_name,
                       name, hint(suggest_agent(agent_name), buf, sizeof buf));
    }
    const char *s = param_suggest(name, section_names,
                                  sizeof section_names / sizeof *section_names);
    if (s)
        return err_set(why, DS_EINPUT, "unknown section '%s'%s", name,
                       hint(s, buf, sizeof buf));
    return err_set(why, DS_EINPUT,
                   "unknown section '%s' (expected experiment, env, agent, agent.NAME or reward)",
                   name);
}

static int add_entry(loader *L, const char *section, const char *key, const char *value,
                     int line, const char *override)
{
    if (L->n_entries == L->cap_entries) {
        size_t cap = L->cap_entries ? 2 * L->cap_entries : 16;
        entry *grown = realloc(L->entries, cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        L->entries = grown;
        L->cap_entries = cap;
    }
    entry *e = &L->entries[L->n_entries];
    *e = (entry){.line = line, .override = override};
    e->section = dup_range(section, strlen(section));
    e->key = dup_range(key, strlen(key));
    e->value = dup_trimmed(value, strlen(value));
    L->n_entries++; /* counted even when a copy failed, so loader_free frees the rest */
    return e->section && e->key && e->value ? DS_OK : DS_ENOMEM;
}

static void entry_clear_items(entry *e)
{
    for (size_t i = 0; i < e->n_items; i++)
        free(e->items[i]);
    free(e->items);
    e->items = NULL;
    e->n_items = 0;
}

static void loader_free(loader *L)
{
    for (size_t i = 0; i < L->n_entries; i++) {
        free(L->entries[i].section);
        free(L->entries[i].key);
        free(L->entries[i].value);
        entry_clear_items(&L->entries[i]);
    }
    free(L->entries);
    for (size_t i = 0; i < L->n_marks; i++)
        free(L->marks[i].name);
    free(L->marks);
    free(L->buf);
    free(L->envs);
    free(L->agents);
    free(L->ranges);
    free(L->seeds);
}

/* ---- pass 1: the file and the overrides ---- */

/* A section header "[name]" (possibly with a comment after it): checks the name,
 * remembers its first line, makes it current. A header without ']' is left to
 * inih, which reports a syntax error. */
static int mark_section(loader *L, const char *header)
{
    const char *close = strchr(header + 1, ']');
    if (!close)
        return DS_OK;
    char *name = dup_trimmed(header + 1, (size_t)(close - header - 1));
    if (!name)
        return out_of_memory(L);
    char why[ERR_LEN];
    if (check_section(name, why) != DS_OK) {
        free(name);
        return fail_line(L, L->line, "%s", why);
    }
    const section_mark *seen = find_mark(L, name);
    if (seen) { /* repeated headers are merged */
        free(name);
        L->current = seen->name;
        return DS_OK;
    }
    if (L->n_marks == L->cap_marks) {
        size_t cap = L->cap_marks ? 2 * L->cap_marks : 8;
        section_mark *grown = realloc(L->marks, cap * sizeof *grown);
        if (!grown) {
            free(name);
            return out_of_memory(L);
        }
        L->marks = grown;
        L->cap_marks = cap;
    }
    L->marks[L->n_marks++] = (section_mark){name, L->line};
    L->current = name;
    return DS_OK;
}

/* inih's reader: one line per call, so L->line is the line inih is handling.
 * A line may hold num - 2 characters as written (leading whitespace counted, the
 * "\n" or "\r\n" and a first line's byte order mark not): the text handed on
 * plus "\n" and the terminating NUL then fit inih's num-byte buffer, whether or
 * not the file ends in a newline. A longer line is refused, not cut. Leading
 * whitespace is dropped, so an indented line is an ordinary key rather than
 * inih's continuation of the previous value. Returns NULL to stop. */
static char *read_line(char *str, int num, void *stream)
{
    loader *L = stream;
    if (L->code != DS_OK)
        return NULL;
    errno = 0;
    ssize_t got = getline(&L->buf, &L->buf_cap, L->file);
    if (got < 0) {
        if (errno == ENOMEM)
            out_of_memory(L);
        else if (ferror(L->file))
            L->code = err_set(L->err, DS_EINPUT, "cannot read '%s': %s", L->path,
                              strerror(errno ? errno : EIO));
        return NULL;
    }
    L->line++;
    char *s = L->buf;
    if (L->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* UTF-8 byte order mark */
    size_t len = strlen(s);
    if (len > 0 && s[len - 1] == '\n')
        len--;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (num < 2 || len > (size_t)num - 2) {
        fail_line(L, L->line, "line longer than %d characters", num - 2);
        return NULL;
    }
    s[len] = '\0';
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '[' && mark_section(L, s) != DS_OK)
        return NULL;
    len = strlen(s);
    memcpy(str, s, len);
    memcpy(str + len, "\n", 2);
    return str;
}

/* inih's handler, called while inih handles line L->line. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    loader *L = user;
    (void)section; /* read_line tracks the section, with its line */
    if (L->code != DS_OK)
        return 0;
    if (!*name || !value) {
        fail_line(L, L->line, "syntax error (expected 'key = value' or '[section]')");
        return 0;
    }
    if (!L->current) {
        fail_line(L, L->line, "key '%s' is outside any section (put it under [experiment], "
                  "[env], [agent], [agent.NAME] or [reward])", name);
        return 0;
    }
    const entry *dup = find_entry(L, L->current, name);
    if (dup) {
        fail_line(L, L->line, "duplicate key '%s' in [%s] (first set on line %d)", name,
                  L->current, dup->line);
        return 0;
    }
    if (add_entry(L, L->current, name, value, L->line, NULL) != DS_OK) {
        out_of_memory(L);
        return 0;
    }
    return 1;
}

static int check_path(const char *path, char *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set(err, DS_EINPUT, "cannot read '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return err_set(err, DS_EINPUT, "'%s' is a directory, not an experiment file", path);
    return DS_OK;
}

static int read_file(loader *L)
{
    int rc = check_path(L->path, L->err);
    if (rc != DS_OK)
        return rc;
    L->file = fopen(L->path, "r");
    if (!L->file)
        return err_set(L->err, DS_EINPUT, "cannot read '%s': %s", L->path, strerror(errno));
    int syntax = ini_parse_stream(read_line, L, on_key, L);
    fclose(L->file);
    L->file = NULL;
    if (L->code == DS_ENOMEM || syntax == -2)
        return err_set(L->err, DS_ENOMEM, "out of memory reading '%s'", L->path);
    /* inih keeps going after a syntax error; report whichever error came first. */
    if (syntax > 0 && (L->code == DS_OK || syntax < L->err_line))
        return err_set(L->err, DS_EINPUT,
                       "%s:%d: syntax error (expected 'key = value' or '[section]')", L->path,
                       syntax);
    return L->code;
}

static int bad_override(const char *text, char *err)
{
    return err_set(err, DS_EINPUT, "--set '%s': expected section.key=value", text);
}

/* "section.key=value": replaces the file's value or adds the key. The section is
 * what comes before the first dot, or "agent.NAME" for "agent.NAME.KEY", so
 * "agent.ppo.reward.kind" is the key "reward.kind" of [agent.ppo]. */
static int apply_override(loader *L, const char *text)
{
    const char *eq = strchr(text, '=');
    if (!eq)
        return bad_override(text, L->err);
    char *lhs = dup_trimmed(text, (size_t)(eq - text));
    char *value = dup_trimmed(eq + 1, strlen(eq + 1));
    if (!lhs || !value) {
        free(lhs);
        free(value);
        return err_set(L->err, DS_ENOMEM, "out of memory");
    }
    int rc = DS_OK;
    char *dot = strchr(lhs, '.');
    if (dot && strncmp(lhs, "agent.", 6) == 0 && strchr(lhs + 6, '.'))
        dot = strchr(lhs + 6, '.');
    if (!dot || dot == lhs || dot[1] == '\0' || strpbrk(lhs, " \t") || strchr(value, '\n')) {
        rc = bad_override(text, L->err);
        goto done;
    }
    *dot = '\0';
    const char *section = lhs, *key = dot + 1;
    char why[ERR_LEN];
    if (check_section(section, why) != DS_OK) {
        rc = err_set(L->err, DS_EINPUT, "--set '%s': %s", text, why);
        goto done;
    }
    entry *e = find_entry(L, section, key);
    if (e) {
        free(e->value);
        e->value = value;
        value = NULL;
        e->line = 0;
        e->override = text;
    } else if (add_entry(L, section, key, value, 0, text) != DS_OK) {
        rc = err_set(L->err, DS_ENOMEM, "out of memory");
    }
done:
    free(lhs);
    free(value);
    return rc;
}

/* ---- pass 2: validation ---- */

/* Splits e->value on commas into e->items; an empty list, an empty element or a
 * repeated element is an error. */
static int split_items(const loader *L, entry *e)
{
    entry_clear_items(e);
    if (e->value[0] == '\0')
        return fail_entry(L, e, "'%s': empty sweep (no value given)", e->key);
    size_t n = 1;
    for (const char *p = e->value; *p; p++)
        n += *p == ',';
    e->items = calloc(n, sizeof *e->items);
    if (!e->items)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    const char *p = e->value;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, ",");
        e->items[i] = dup_trimmed(p, len);
        e->n_items = i + 1;
        if (!e->items[i])
            return err_set(L->err, DS_ENOMEM, "out of memory");
        p += len + (p[len] == ',');
    }
    for (size_t i = 0; i < n; i++) {
        if (e->items[i][0] == '\0')
            return fail_entry(L, e, "'%s': empty element in the list '%s'", e->key, e->value);
        if (strlen(e->items[i]) >= (size_t)VALUE_LEN)
            return fail_entry(L, e, "'%s': value longer than %d characters", e->key,
                              VALUE_LEN - 1);
        for (size_t j = 0; j < i; j++)
            if (strcmp(e->items[i], e->items[j]) == 0)
                return fail_entry(L, e, "'%s': '%s' appears twice in the list", e->key,
                                  e->items[i]);
    }
    return DS_OK;
}

static int check_name(const char *name, char *why)
{
    size_t n = strlen(name);
    if (n == 0 || n >= NAME_LEN)
        return err_set(why, DS_EINPUT, "'%s' must be 1 to %d characters", name, NAME_LEN - 1);
    for (const char *p = name; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return err_set(why, DS_EINPUT,
                           "'%s' may contain only letters, digits, '_', '.' and '-'", name);
    }
    return DS_OK;
}

/* The file's base name without its extension, e.g. "experiments/ab.ini" -> "ab". */
static int default_name(loader *L)
{
    const char *base = strrchr(L->path, '/');
    base = base ? base + 1 : L->path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    char why[ERR_LEN];
    char *name = dup_range(base, n);
    if (!name)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    int rc = check_name(name, why);
    if (rc == DS_OK)
        memcpy(L->name, name, n + 1);
    else
        err_set(L->err, DS_EINPUT, "%s: the experiment name comes from the file name and %s: "
                "set [experiment] name", L->path, why);
    free(name);
    return rc;
}

/* A seed: digits only, at most SEED_LIMIT. */
static int parse_seed(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (SEED_LIMIT - d) / 10)
            return -1;
        v = 10 * v + d;
    }
    *out = v;
    return 0;
}

/* seeds: each element is "N" or "A-B" with A <= B. */
static int parse_seed_ranges(loader *L, const entry *e)
{
    free(L->ranges);
    L->ranges = calloc(e->n_items, sizeof *L->ranges);
    if (!L->ranges)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    L->n_ranges = e->n_items;
    L->n_seeds_written = 0;
    for (size_t i = 0; i < e->n_items; i++) {
        const char *item = e->items[i];
        const char *dash = strchr(item, '-');
        seed_range *r = &L->ranges[i];
        int bad;
        if (!dash) {
            bad = parse_seed(item, strlen(item), &r->lo);
            r->hi = r->lo;
        } else {
            const char *hi = dash + 1;
            size_t lo_len = (size_t)(dash - item);
            while (lo_len > 0 && is_space(item[lo_len - 1]))
                lo_len--;
            while (is_space(*hi))
                hi++;
            bad = parse_seed(item, lo_len, &r->lo) || parse_seed(hi, strlen(hi), &r->hi);
        }
        if (bad)
            return fail_entry(L, e, "'seeds': expected a seed (0 to %" PRIu64 ") or a range "
                              "a-b, got '%s'", SEED_LIMIT, item);
        if (r->lo > r->hi)
            return fail_entry(L, e, "'seeds': range '%s' goes down (a-b needs a <= b)", item);
        L->n_seeds_written += (double)(r->hi - r->lo) + 1.0;
    }
    return DS_OK;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Lists the seeds in written order; a seed written twice is an error. Called
 * only when their number is within the grid limit. */
static int expand_seeds(loader *L, const entry *e)
{
    size_t n = (size_t)L->n_seeds_written, k = 0;
    L->seeds = malloc(n * sizeof *L->seeds);
    uint64_t *sorted = malloc(n * sizeof *sorted);
    if (!L->seeds || !sorted) {
        free(sorted);
        return err_set(L->err, DS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < L->n_ranges; i++)
        for (uint64_t s = L->ranges[i].lo;; s++) {
            L->seeds[k++] = s;
            if (s == L->ranges[i].hi)
                break;
        }
    L->n_seeds = k;
    memcpy(sorted, L->seeds, k * sizeof *sorted);
    qsort(sorted, k, sizeof *sorted, compare_u64);
    int rc = DS_OK;
    for (size_t i = 1; i < k && rc == DS_OK; i++)
        if (sorted[i] == sorted[i - 1])
            rc = e ? fail_entry(L, e, "'seeds': seed %" PRIu64 " appears twice", sorted[i])
                   : err_set(L->err, DS_EINTERNAL, "duplicate default seed");
    free(sorted);
    return rc;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as v, so 1.0 gives "1", 5e1
 * "50" and 0.1 "0.1" (%.17g always reads back). -0 is written as 0. */
static void shortest_real(double v, char *out, size_t n)
{
    if (v == 0)
        v = 0;
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(out, n, "%.*g", digits, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

/* The canonical text of a value that spec accepts, into out[VALUE_LEN]: integers
 * as %d, reals by shortest_real(), booleans as true/false, choices by name. Equal
 * values written differently (50, 5e1, 50.0) get one text, and so one config text
 * and one run id. Returns param_parse's code and message for a bad value. */
static int canonical_value(const param_spec *spec, const char *text, char *out, char *why)
{
    param_spec local = *spec;
    local.offset = 0; /* parse into a local variable rather than a config struct */
    int iv = 0;
    double dv = 0;
    int rc = param_parse(&local, text, spec->type == PARAM_REAL ? (void *)&dv : (void *)&iv,
                         why);
    if (rc != DS_OK)
        return rc;
    switch (spec->type) {
    case PARAM_INT:
        snprintf(out, VALUE_LEN, "%d", iv);
        break;
    case PARAM_REAL:
        shortest_real(dv, out, VALUE_LEN);
        break;
    case PARAM_BOOL:
        snprintf(out, VALUE_LEN, "%s", iv ? "true" : "false");
        break;
    case PARAM_CHOICE:
        param_choice_name(spec->choices, iv, out, VALUE_LEN);
        break;
    }
    return DS_OK;
}

/* Checks every element against spec; owner names the table when several are
 * checked. Two elements with the same value (1 and 1.0) are an error like two
 * with the same text. A key shared by several env tables is checked against
 * each, as its type, and so its canonical text, may differ between them. */
static int check_items(const loader *L, const entry *e, const param_spec *spec,
                       const char *owner)
{
    char why[ERR_LEN], name[2 * NAME_LEN + 4];
    if (owner)
        snprintf(name, sizeof name, "'%s' (%s)", e->key, owner);
    else
        snprintf(name, sizeof name, "'%s'", e->key);
    char(*canon)[VALUE_LEN] = malloc(e->n_items * sizeof *canon); /* [n_items] */
    if (!canon)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    int rc = DS_OK;
    for (size_t i = 0; i < e->n_items && rc == DS_OK; i++) {
        if (canonical_value(spec, e->items[i], canon[i], why) != DS_OK) {
            rc = fail_entry(L, e, "%s: %s", name, why);
            break;
        }
        for (size_t j = 0; j < i && rc == DS_OK; j++)
            if (strcmp(canon[i], canon[j]) == 0)
                rc = fail_entry(L, e, "%s: '%s' and '%s' are the same value in the list", name,
                                e->items[j], e->items[i]);
    }
    free(canon);
    return rc;
}

static int check_experiment_key(loader *L, entry *e)
{
    char why[ERR_LEN], buf[2 * NAME_LEN];
    if (strcmp(e->key, "name") == 0) {
        if (e->n_items > 1)
            return fail_entry(L, e, "'name': the experiment name cannot be a list");
        if (check_name(e->items[0], why) != DS_OK)
            return fail_entry(L, e, "'name': %s", why);
        memcpy(L->name, e->items[0], strlen(e->items[0]) + 1);
        return DS_OK;
    }
    if (strcmp(e->key, "seeds") == 0)
        return parse_seed_ranges(L, e);
    const param_spec *spec = param_find(&experiment_table, e->key);
    if (!spec)
        return fail_entry(L, e, "unknown key '%s' in [experiment]%s", e->key,
                          hint(param_suggest(e->key, experiment_keys,
                                             sizeof experiment_keys / sizeof *experiment_keys),
                               buf, sizeof buf));
    return check_items(L, e, spec, NULL);
}

static int resolve_env_kinds(loader *L, const entry *e)
{
    char buf[2 * NAME_LEN];
    L->envs = calloc(e->n_items, sizeof *L->envs);
    if (!L->envs)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->n_items; i++) {
        L->envs[i] = env_find(e->items[i]);
        if (!L->envs[i])
            return fail_entry(L, e, "unknown env '%s'%s", e->items[i],
                              hint(suggest_env(e->items[i]), buf, sizeof buf));
    }
    L->n_envs = e->n_items;
    return DS_OK;
}

static int resolve_agent_kinds(loader *L, const entry *e)
{
    char buf[2 * NAME_LEN];
    L->agents = calloc(e->n_items, sizeof *L->agents);
    if (!L->agents)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->n_items; i++) {
        L->agents[i] = agent_find(e->items[i]);
        if (!L->agents[i])
            return fail_entry(L, e, "unknown agent '%s'%s", e->items[i],
                              hint(suggest_agent(e->items[i]), buf, sizeof buf));
    }
    L->n_agents = e->n_items;
    return DS_OK;
}

/* An [env] key must belong to at least one listed env; each element is checked
 * against every listed env that has the key. */
static int check_env_key(const loader *L, const entry *e)
{
    int known = 0;
    for (size_t i = 0; i < L->n_envs; i++) {
        const param_spec *spec = param_find(&L->envs[i]->params, e->key);
        if (!spec)
            continue;
        known = 1;
        int rc = check_items(L, e, spec, L->n_envs > 1 ? L->envs[i]->name : NULL);
        if (rc != DS_OK)
            return rc;
    }
    if (known)
        return DS_OK;
    const char *names[MAX_NAMES];
    size_t n = 0;
    for (size_t i = 0; i < L->n_envs; i++)
        for (size_t j = 0; j < L->envs[i]->params.count && n < MAX_NAMES; j++)
            names[n++] = L->envs[i]->params.specs[j].key;
    char buf[2 * NAME_LEN];
    return fail_entry(L, e, "unknown key '%s' in [env]%s", e->key,
                      hint(param_suggest(e->key, names, n), buf, sizeof buf));
}

/* [agent] holds only kind; hyperparameters live in [agent.NAME]. */
static int check_agent_key(const loader *L, const entry *e)
{
    if (strncmp(e->key, "reward.", 7) == 0)
        return fail_entry(L, e, "unknown key '%s' in [agent] (a reward key goes in [reward] "
                          "for every agent, or in [agent.NAME] for one)", e->key);
    for (size_t i = 0; i < L->n_agents; i++)
        if (param_find(&L->agents[i]->params, e->key))
            return fail_entry(L, e, "unknown key '%s' in [agent] (did you mean to put it in "
                              "[agent.%s]?)", e->key, L->agents[i]->name);
    return fail_entry(L, e, "unknown key '%s' in [agent] ([agent] takes only 'kind'; "
                      "hyperparameters go in [agent.NAME])", e->key);
}

static int check_table_key(const loader *L, const entry *e, const param_table *t)
{
    const param_spec *spec = param_find(t, e->key);
    if (spec)
        return check_items(L, e, spec, NULL);
    if (t->count == 0)
        return fail_entry(L, e, "unknown key '%s' in [%s] (it has no parameters)", e->key,
                          e->section);
    char buf[2 * NAME_LEN];
    return fail_entry(L, e, "unknown key '%s' in [%s]%s", e->key, e->section,
                      hint(param_suggest_key(t, e->key), buf, sizeof buf));
}

/* "reward.kind, reward.diversity_bonus": the keys [agent.NAME] may scope. */
static const char *scopable_keys(char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < reward_table.count && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%sreward.%s", i ? ", " : "",
                                 reward_table.specs[i].key);
    return out;
}

/* The corrected key for a near miss of "reward.KEY" (a typo in "reward" or in
 * KEY, not both missing), into out; NULL if there is none. */
static const char *suggest_scoped(const char *key, char *out, size_t n)
{
    static const char *const reward_name[] = {"reward"};
    const char *dot = strchr(key, '.');
    char prefix[2 * NAME_LEN];
    snprintf(prefix, sizeof prefix, "%.*s", (int)(dot - key), key);
    if (strcmp(prefix, "reward") != 0 && !param_suggest(prefix, reward_name, 1))
        return NULL;
    const char *rest = dot + 1;
    const char *k = param_find(&reward_table, rest) ? rest
                                                    : param_suggest_key(&reward_table, rest);
    if (!k)
        return NULL;
    snprintf(out, n, "reward.%s", k);
    return out;
}

/* A dotted key in [agent.NAME]: only "reward.KEY", KEY a key of [reward], which
 * is checked as that key is in [reward]. */
static int check_scoped_key(const loader *L, const entry *e)
{
    char guess[2 * NAME_LEN], buf[4 * NAME_LEN], keys[4 * NAME_LEN];
    const char *key = scoped_reward_key(e);
    const param_spec *spec = key ? param_find(&reward_table, key) : NULL;
    if (spec)
        return check_items(L, e, spec, NULL);
    if (suggest_scoped(e->key, guess, sizeof guess))
        return fail_entry(L, e, "unknown key '%s' in [%s]%s", e->key, e->section,
                          hint(guess, buf, sizeof buf));
    if (key)
        return fail_entry(L, e, "unknown key '%s' in [%s] (expected one of %s)", e->key,
                          e->section, scopable_keys(keys, sizeof keys));
    return fail_entry(L, e, "unknown key '%s' in [%s] (only [reward] keys can be set per "
                      "agent: %s)", e->key, e->section, scopable_keys(keys, sizeof keys));
}

/* A key of [agent.NAME]: the agent's hyperparameter, or a scoped reward key. */
static int check_agent_section_key(const loader *L, const entry *e)
{
    const param_table *t = &agent_find(e->section + 6)->params;
    if (strchr(e->key, '.'))
        return check_scoped_key(L, e);
    if (!param_find(t, e->key) && param_find(&reward_table, e->key))
        return fail_entry(L, e, "unknown key '%s' in [%s] (did you mean 'reward.%s'?)", e->key,
                          e->section, e->key);
    return check_table_key(L, e, t);
}

/* [env] and [agent] must exist and name their kind. */
static int require_kind(loader *L, const char *section, entry **kind)
{
    *kind = find_entry(L, section, "kind");
    if (*kind)
        return DS_OK;
    const section_mark *m = find_mark(L, section);
    if (m)
        return err_set(L->err, DS_EINPUT, "%s:%d: [%s] needs 'kind'", L->path, m->line,
                       section);
    if (section_present(L, section))
        return err_set(L->err, DS_EINPUT, "%s: [%s] needs 'kind'", L->path, section);
    return err_set(L->err, DS_EINPUT, "%s: missing section [%s]", L->path, section);
}

/* Whether every element of a reward kind entry is clicks; a missing one defaults
 * to purchases. */
static int all_clicks(const entry *kind)
{
    if (!kind)
        return 0;
    for (size_t i = 0; i < kind->n_items; i++)
        if (strcmp(kind->items[i], "clicks") != 0)
            return 0;
    return 1;
}

/* An env without purchases needs the clicks reward in each of its runs: for every
 * listed agent, every value of its reward kind, scoped or from [reward]. */
static int check_clicks_only(const loader *L, const entry *env_kind)
{
    const entry *reward = find_entry(L, "reward", "kind");
    for (size_t i = 0; i < L->n_envs; i++) {
        if (!L->envs[i]->clicks_only)
            continue;
        for (size_t j = 0; j < L->n_agents; j++) {
            const entry *scoped = find_scoped(L, L->agents[j], "kind");
            if (scoped && !all_clicks(scoped))
                return fail_entry(L, scoped, "env '%s' has no purchases: set reward.kind = "
                                  "clicks in [%s]", L->envs[i]->name, scoped->section);
            if (!scoped && !all_clicks(reward))
                return fail_entry(L, reward ? reward : env_kind,
                                  "env '%s' has no purchases: set [reward] kind = clicks",
                                  L->envs[i]->name);
        }
    }
    return DS_OK;
}

static int check_entry(loader *L, entry *e)
{
    if (strcmp(e->section, "experiment") == 0)
        return check_experiment_key(L, e);
    if (strcmp(e->key, "kind") == 0 &&
        (strcmp(e->section, "env") == 0 || strcmp(e->section, "agent") == 0))
        return DS_OK; /* resolved before */
    if (strcmp(e->section, "env") == 0)
        return check_env_key(L, e);
    if (strcmp(e->section, "agent") == 0)
        return check_agent_key(L, e);
    if (strcmp(e->section, "reward") == 0)
        return check_table_key(L, e, &reward_table);
    /* [agent.NAME]: checked even when NAME is not listed in [agent] kind, so a typo
     * in a section kept for later still shows; such a section is otherwise unused. */
    return check_agent_section_key(L, e);
}

static int validate(loader *L)
{
    entry *env_kind, *agent_kind;
    int rc = require_kind(L, "env", &env_kind);
    if (rc == DS_OK)
        rc = require_kind(L, "agent", &agent_kind);
    for (size_t i = 0; i < L->n_entries && rc == DS_OK; i++)
        rc = split_items(L, &L->entries[i]);
    if (rc == DS_OK)
        rc = resolve_env_kinds(L, env_kind);
    if (rc == DS_OK)
        rc = resolve_agent_kinds(L, agent_kind);
    if (rc == DS_OK && !find_entry(L, "experiment", "name"))
        rc = default_name(L);
    if (rc == DS_OK && !find_entry(L, "experiment", "seeds")) {
        L->ranges = malloc(sizeof *L->ranges);
        if (!L->ranges)
            return err_set(L->err, DS_ENOMEM, "out of memory");
        L->ranges[0] = (seed_range){1, 1};
        L->n_ranges = 1;
        L->n_seeds_written = 1;
    }
    for (size_t i = 0; i < L->n_entries && rc == DS_OK; i++)
        rc = check_entry(L, &L->entries[i]);
    if (rc == DS_OK)
        rc = check_clicks_only(L, env_kind);
    return rc;
}

/* ---- pass 3: the grid ---- */

/* Whether entry x is an axis of the runs of (env, agent). A [reward] key is not
 * one where the agent's section scopes it. */
static int applies(const loader *L, const entry *x, const env_type *etype,
                   const agent_type *atype)
{
    if (strcmp(x->section, "experiment") == 0)
        return strcmp(x->key, "name") != 0 && strcmp(x->key, "seeds") != 0;
    if (strcmp(x->section, "env") == 0)
        return strcmp(x->key, "kind") != 0 && param_find(&etype->params, x->key) != NULL;
    if (strcmp(x->section, "reward") == 0)
        return find_scoped(L, atype, x->key) == NULL;
    if (is_agent_section(x->section))
        return strcmp(x->section + 6, atype->name) == 0;
    return 0;
}

/* Runs in the grid, as a double so that no product overflows. */
static double count_runs(const loader *L)
{
    double total = 0;
    for (size_t i = 0; i < L->n_envs; i++)
        for (size_t j = 0; j < L->n_agents; j++) {
            double runs = L->n_seeds_written;
            for (size_t k = 0; k < L->n_entries; k++)
                if (applies(L, &L->entries[k], L->envs[i], L->agents[j]))
                    runs *= (double)L->entries[k].n_items;
            total += runs;
        }
    return total;
}

/* The axes of one (env, agent) pair and the current element of each. */
typedef struct {
    const entry **axes; /* [n_axes] in entry order */
    size_t *index;      /* [n_axes] current element of each axis */
    size_t n_axes;
} grid_point;

/* The element chosen for section.key at this point, or NULL for the default. A
 * scoped "reward.KEY" of [agent.NAME] is the axis of [reward] KEY (applies() keeps
 * the two from being axes of one run). */
static const char *point_value(const grid_point *g, const char *section, const char *key)
{
    for (size_t i = 0; i < g->n_axes; i++) {
        const entry *x = g->axes[i];
        const char *scoped = scoped_reward_key(x);
        if (strcmp(scoped ? "reward" : x->section, section) == 0 &&
            strcmp(scoped ? scoped : x->key, key) == 0)
            return x->items[g->index[i]];
    }
    return NULL;
}

/* Advances the odometer, last axis fastest; 0 once every point was visited. */
static int point_next(grid_point *g)
{
    for (size_t i = g->n_axes; i-- > 0;) {
        if (++g->index[i] < g->axes[i]->n_items)
            return 1;
        g->index[i] = 0;
    }
    return 0;
}

/* The canonical text of key spec of section at this point, the point's element or
 * else the default, into out[VALUE_LEN]. Every value was checked in pass 2, so a
 * failure is internal. */
static int resolved_value(const param_spec *spec, const grid_point *g, const char *section,
                          char *out, char *err)
{
    const char *v = point_value(g, section, spec->key);
    char why[ERR_LEN];
    if (canonical_value(spec, v ? v : spec->fallback, out, why) != DS_OK)
        return err_set(err, DS_EINTERNAL, "bad %s for '%s': %s", v ? "value" : "default",
                       spec->key, why);
    return DS_OK;
}

/* Fills config from the canonical text of every key of the table, so the struct
 * holds exactly what the run's params say. */
static void *fill_config(const param_table *t, const grid_point *g, const char *section,
                         void *config, char *err)
{
    int rc = DS_OK;
    for (size_t i = 0; i < t->count && rc == DS_OK; i++) {
        char value[VALUE_LEN];
        rc = resolved_value(&t->specs[i], g, section, value, err);
        if (rc == DS_OK)
            rc = param_parse(&t->specs[i], value, config, err);
    }
    return rc == DS_OK ? config : NULL;
}

static void *new_config(const param_table *t, const grid_point *g, const char *section,
                        char *err, int *rc)
{
    void *config = calloc(1, t->size ? t->size : 1);
    if (!config) {
        *rc = err_set(err, DS_ENOMEM, "out of memory");
        return NULL;
    }
    if (!fill_config(t, g, section, config, err)) {
        free(config);
        *rc = DS_EINTERNAL; /* every value was checked in pass 2 */
        return NULL;
    }
    *rc = DS_OK;
    return config;
}

static int set_param(run_param *p, const char *key, const char *value)
{
    if ((size_t)snprintf(p->key, sizeof p->key, "%s", key) >= sizeof p->key ||
        (size_t)snprintf(p->value, sizeof p->value, "%s", value) >= sizeof p->value)
        return DS_EINTERNAL;
    return DS_OK;
}

/* Appends "prefix.key = value" for every key of t, in canonical text: the point's
 * value or the default. */
static int add_table_params(run_param *params, size_t *n, const param_table *t,
                            const grid_point *g, const char *section, const char *prefix,
                            char *err)
{
    for (size_t i = 0; i < t->count; i++) {
        char key[sizeof params->key], value[VALUE_LEN];
        int rc = resolved_value(&t->specs[i], g, section, value, err);
        if (rc != DS_OK)
            return rc;
        if ((size_t)snprintf(key, sizeof key, "%s.%s", prefix, t->specs[i].key) >= sizeof key ||
            set_param(&params[(*n)++], key, value) != DS_OK)
            return err_set(err, DS_EINTERNAL, "a parameter name or value is too long");
    }
    return DS_OK;
}

static int compare_params(const void *a, const void *b)
{
    return strcmp(((const run_param *)a)->key, ((const run_param *)b)->key);
}

/* Every resolved key of the run, sorted, and the text and hash made of them. */
static int build_params(const loader *L, const grid_point *g, run_spec *r, char *err)
{
    const env_type *etype = r->env;
    const agent_type *atype = r->agent;
    size_t cap = 1 + experiment_table.count + 1 + etype->params.count + 1 +
                 atype->params.count + reward_table.count;
    r->params = calloc(cap, sizeof *r->params);
    if (!r->params)
        return err_set(err, DS_ENOMEM, "out of memory");
    char agent_prefix[2 * NAME_LEN];
    snprintf(agent_prefix, sizeof agent_prefix, "agent.%s", atype->name);
    size_t n = 0;
    int rc = DS_OK;
    if (set_param(&r->params[n++], "experiment.name", L->name) != DS_OK ||
        set_param(&r->params[n++], "env.kind", etype->name) != DS_OK ||
        set_param(&r->params[n++], "agent.kind", atype->name) != DS_OK)
        return err_set(err, DS_EINTERNAL, "a parameter name or value is too long");
    rc = add_table_params(r->params, &n, &experiment_table, g, "experiment", "experiment", err);
    if (rc == DS_OK)
        rc = add_table_params(r->params, &n, &etype->params, g, "env", "env", err);
    if (rc == DS_OK)
        rc = add_table_params(r->params, &n, &atype->params, g, agent_prefix, agent_prefix,
                              err);
    if (rc == DS_OK)
        rc = add_table_params(r->params, &n, &reward_table, g, "reward", "reward", err);
    if (rc != DS_OK)
        return rc;
    r->n_params = n;
    qsort(r->params, n, sizeof *r->params, compare_params);

    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(r->params[i].key) + strlen(r->params[i].value) + 4;
    r->config_text = malloc(len + 1);
    if (!r->config_text)
        return err_set(err, DS_ENOMEM, "out of memory");
    char *p = r->config_text;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s = %s\n", r->params[i].key, r->params[i].value);
    r->config_hash = hash_bytes(r->config_text, len, HASH_INIT);
    return DS_OK;
}

/* "FILE:LINE" of a section's first header, or where its first key came from. */
static void section_where(const loader *L, const char *section, char *out, size_t n)
{
    const section_mark *m = find_mark(L, section);
    if (m) {
        snprintf(out, n, "%s:%d", L->path, m->line);
        return;
    }
    for (size_t i = 0; i < L->n_entries; i++)
        if (strcmp(L->entries[i].section, section) == 0) {
            entry_where(L, &L->entries[i], out, n);
            return;
        }
    snprintf(out, n, "%s", L->path);
}

/* Cross-field checks of the filled configs, reported at the section. */
static int cross_check(const loader *L, const run_spec *r, char *err)
{
    char why[ERR_LEN], where[ERR_LEN], section[2 * NAME_LEN];
    if (r->env->xValidate && r->env->xValidate(r->env_config, why) != DS_OK) {
        section_where(L, "env", where, sizeof where);
        return err_set(err, DS_EINPUT, "%s: [env] %s", where, why);
    }
    if (r->agent->xValidate && r->agent->xValidate(r->agent_config, why) != DS_OK) {
        snprintf(section, sizeof section, "agent.%s", r->agent->name);
        if (section_present(L, section))
            section_where(L, section, where, sizeof where);
        else
            section_where(L, "agent", where, sizeof where);
        return err_set(err, DS_EINPUT, "%s: [%s] %s", where, section, why);
    }
    return DS_OK;
}

static int build_run(const loader *L, const grid_point *g, const env_type *etype,
                     const agent_type *atype, uint64_t seed, run_spec *r, char *err)
{
    int rc;
    char agent_section[2 * NAME_LEN];
    snprintf(agent_section, sizeof agent_section, "agent.%s", atype->name);
    r->env = etype;
    r->agent = atype;
    r->seed = seed;
    memset(&r->settings, 0, sizeof r->settings);
    if (!fill_config(&experiment_table, g, "experiment", &r->settings, err) ||
        !fill_config(&reward_table, g, "reward", &r->settings, err))
        return DS_EINTERNAL;
    memcpy(r->settings.name, L->name, sizeof r->settings.name);
    r->env_config = new_config(&etype->params, g, "env", err, &rc);
    if (rc != DS_OK)
        return rc;
    r->agent_config = new_config(&atype->params, g, agent_section, err, &rc);
    if (rc != DS_OK)
        return rc;
    rc = cross_check(L, r, err);
    if (rc == DS_OK)
        rc = build_params(L, g, r, err);
    if (rc != DS_OK)
        return rc;
    char line[64];
    int n = snprintf(line, sizeof line, "seed = %" PRIu64 "\n", seed);
    uint64_t id = hash_bytes(line, (size_t)n, r->config_hash) & (uint64_t)INT64_MAX;
    r->run_id = id ? (int64_t)id : 1;
    return DS_OK;
}

/* Every run of one (env, agent) pair into runs[*k...]. */
static int expand_pair(const loader *L, const env_type *etype, const agent_type *atype,
                       run_spec *runs, size_t *k, char *err)
{
    grid_point g = {0};
    g.axes = malloc((L->n_entries + 1) * sizeof *g.axes);
    g.index = calloc(L->n_entries + 1, sizeof *g.index);
    int rc = g.axes && g.index ? DS_OK : err_set(err, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < L->n_entries && rc == DS_OK; i++)
        if (applies(L, &L->entries[i], etype, atype))
            g.axes[g.n_axes++] = &L->entries[i];
    if (rc == DS_OK)
        do
            for (size_t s = 0; s < L->n_seeds && rc == DS_OK; s++)
                rc = build_run(L, &g, etype, atype, L->seeds[s], &runs[(*k)++], err);
        while (rc == DS_OK && point_next(&g));
    free(g.axes);
    free(g.index);
    return rc;
}

static int expand(loader *L, experiment *x)
{
    double total = count_runs(L);
    if (total > GRID_LIMIT)
        return err_set(L->err, DS_EINPUT, "%s: the grid has %.0f runs, more than the limit "
                       "of %d", L->path, total, GRID_LIMIT);
    int rc = expand_seeds(L, find_entry(L, "experiment", "seeds"));
    if (rc != DS_OK)
        return rc;
    x->runs = calloc((size_t)total, sizeof *x->runs);
    if (!x->runs)
        return err_set(L->err, DS_ENOMEM, "out of memory for %.0f runs", total);
    x->n_runs = (size_t)total; /* all freed by experiment_free, even if filled part way */
    size_t k = 0;
    for (size_t i = 0; i < L->n_envs && rc == DS_OK; i++)
        for (size_t j = 0; j < L->n_agents && rc == DS_OK; j++)
            rc = expand_pair(L, L->envs[i], L->agents[j], x->runs, &k, L->err);
    if (rc == DS_OK && k != x->n_runs)
        rc = err_set(L->err, DS_EINTERNAL, "expanded %zu runs, counted %zu", k, x->n_runs);
    return rc;
}

/* ---- public ---- */

int experiment_load(const char *path, const char *const *overrides, size_t n_overrides,
                    experiment *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (strlen(path) >= sizeof out->path)
        return err_set(err, DS_EINPUT, "path '%.64s...' is too long", path);
    loader L = {.path = path, .err = err};
    int rc = read_file(&L);
    for (size_t i = 0; i < n_overrides && rc == DS_OK; i++)
        rc = apply_override(&L, overrides[i]);
    if (rc == DS_OK)
        rc = validate(&L);
    if (rc == DS_OK)
        rc = expand(&L, out);
    if (rc == DS_OK) {
        memcpy(out->name, L.name, sizeof out->name);
        memcpy(out->path, path, strlen(path) + 1);
    }
    loader_free(&L);
    if (rc != DS_OK)
        experiment_free(out);
    return rc;
}

void experiment_free(experiment *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_runs; i++) {
        free(x->runs[i].env_config);
        free(x->runs[i].agent_config);
        free(x->runs[i].params);
        free(x->runs[i].config_text);
    }
    free(x->runs);
    memset(x, 0, sizeof *x);
}

const char *run_param_get(const run_spec *r, const char *key)
{
    size_t lo = 0, hi = r->n_params;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->params[mid].key, key);
        if (c == 0)
            return r->params[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
