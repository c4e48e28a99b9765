/* Experiment files: parsing with inih, validation against the parameter tables,
 * and grid expansion into runs.
 *
 * Loading is three passes. (1) inih reads the file (or a buffer) through
 * read_line(), which counts lines, refuses bytes that are not UTF-8 text, and
 * tracks the section headers itself, so every key and section knows its line
 * (Debian's inih has no INI_HANDLER_LINENO); --set overrides are then merged in.
 * (2) Every entry is checked: sections, keys, each element of a comma list
 * against the parameter spec of every table it feeds. (3) The grid is counted
 * and its memory estimated, then expanded point by point; each point's env and
 * agent configs are filled, their cross-field checks (xValidate) run and the
 * engine's memory for the run is estimated here, so a bad file never starts a
 * run. The seeds of a point share its params and configs.
 *
 * Limits: GRID_LIMIT runs per experiment; a run's engine state (episode rows,
 * per-user and per-item state) within RUN_MEMORY_CAP, the machine's physical
 * memory and ulimit -v / -d.
 *
 * A key "reward.KEY" in [agent.NAME] is the [reward] key KEY for NAME's runs
 * only: it replaces [reward] KEY as an axis of those runs and gives their param
 * "reward.KEY", so a run's params do not tell where its reward came from.
 *
 * A variant is a named configuration of an agent: a section [agent.NAME] whose
 * NAME is not an agent and which sets `kind` to one (not to another variant).
 * Listed in [agent] kind, it runs as NAME (runs.agent, params agent.NAME.KEY)
 * with its base kind's parameters and param agent.kind = the base kind. */
#include "config.h"

#include "common.h"
#include "events.h"
#include "metrics.h"

#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define GRID_LIMIT 100000
#define SEED_LIMIT ((uint64_t)INT64_MAX) /* seeds are stored as SQLite integers */
#define VALUE_LEN ((int)sizeof(((run_param *)0)->value))
#define MAX_NAMES 256 /* candidates for a suggestion */

static const param_spec experiment_specs[] = {
    P_INT(run_settings, train_episodes, "1000", 0, 1e9, "sessions with learning on"),
    P_INT(run_settings, eval_episodes, "500", 1, 1e9, "sessions with learning frozen"),
    P_INT(run_settings, window, "100", 1, 1e9, "episodes per metrics window"),
    P_INT(run_settings, history, "10", 0, 64, "history entries the engine keeps per user"),
    P_BOOL(run_settings, log_interactions, "false",
           "record every slate shown in the interactions table"),
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
                                              "eval_episodes", "window", "history",
                                              "log_interactions"};

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
    FILE *file;    /* the file read, or NULL when reading text */
    const char *text; /* [text_len] the contents, when not read from a file */
    size_t text_len, text_pos;
    char *buf;     /* the current line */
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
    const char **agent_names;  /* [n_agents] as listed: an agent's or a variant's name */
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
static void section_where(const loader *L, const char *section, char *out, size_t n);

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

/* The entry "reward.KEY" of [agent.NAME] for the listed agent name, or NULL. */
static const entry *find_scoped(const loader *L, const char *name, const char *key)
{
    char section[2 * NAME_LEN], scoped[2 * NAME_LEN];
    snprintf(section, sizeof section, "agent.%s", name);
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
    if (is_agent_section(name))
        return DS_OK; /* an agent's, or a variant's: check_variant_sections */
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
    free(L->agent_names);
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

/* The next line of the file or text, "\n" included when present, into L->buf.
 * Returns its length in bytes, or -1 at the end or on a read error (errno set). */
static ssize_t next_line(loader *L)
{
    if (L->file)
        return getline(&L->buf, &L->buf_cap, L->file);
    if (L->text_pos >= L->text_len)
        return -1;
    const char *start = L->text + L->text_pos;
    size_t rest = L->text_len - L->text_pos;
    const char *newline = memchr(start, '\n', rest);
    size_t n = newline ? (size_t)(newline - start) + 1 : rest;
    if (n + 1 > L->buf_cap) {
        char *grown = realloc(L->buf, n + 1);
        if (!grown) {
            errno = ENOMEM;
            return -1;
        }
        L->buf = grown;
        L->buf_cap = n + 1;
    }
    memcpy(L->buf, start, n);
    L->buf[n] = '\0';
    L->text_pos += n;
    return (ssize_t)n;
}

/* The length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one:
 * overlong forms, surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : lo;
        hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : lo;
        hi = c == 0xF4 ? 0x8F : hi;
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

/* Checks that text[0..n) is UTF-8 without NUL bytes or control characters
 * (tab, CR and LF aside), which would otherwise reach messages and the database
 * as they are; why gets "what at column C". */
static int check_text(const char *text, size_t n, char *why)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == 0)
            return err_set(why, DS_EINPUT, "NUL byte at column %zu (not a text file?)", i + 1);
        if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7F)
            return err_set(why, DS_EINPUT, "control character 0x%02x at column %zu", c, i + 1);
        size_t len = utf8_sequence(s + i, n - i);
        if (len == 0)
            return err_set(why, DS_EINPUT, "invalid UTF-8 (byte 0x%02x at column %zu)", c,
                           i + 1);
        i += len;
    }
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
    ssize_t got = next_line(L);
    if (got < 0) {
        if (errno == ENOMEM)
            out_of_memory(L);
        else if (L->file && ferror(L->file))
            L->code = err_set(L->err, DS_EINPUT, "cannot read '%s': %s", L->path,
                              strerror(errno ? errno : EIO));
        return NULL;
    }
    L->line++;
    char why[ERR_LEN];
    if (check_text(L->buf, (size_t)got, why) != DS_OK) {
        fail_line(L, L->line, "%s", why);
        return NULL;
    }
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

/* Pass 1 over L->file or L->text. */
static int parse(loader *L)
{
    int syntax = L->file || L->text_len > 0 ? ini_parse_stream(read_line, L, on_key, L) : 0;
    if (L->code == DS_ENOMEM || syntax == -2)
        return err_set(L->err, DS_ENOMEM, "out of memory reading '%s'", L->path);
    /* inih keeps going after a syntax error; report whichever error came first. */
    if (syntax > 0 && (L->code == DS_OK || syntax < L->err_line))
        return err_set(L->err, DS_EINPUT,
                       "%s:%d: syntax error (expected 'key = value' or '[section]')", L->path,
                       syntax);
    return L->code;
}

static int read_file(loader *L)
{
    int rc = check_path(L->path, L->err);
    if (rc != DS_OK)
        return rc;
    L->file = fopen(L->path, "r");
    if (!L->file)
        return err_set(L->err, DS_EINPUT, "cannot read '%s': %s", L->path, strerror(errno));
    rc = parse(L);
    fclose(L->file);
    L->file = NULL;
    return rc;
}

static int bad_override(const char *text, char *err)
{
    return err_set(err, DS_EINPUT, "--set '%s': expected section.key=value", text);
}

/* "section.key=value": replaces the file's value or adds the key. The section is
 * what comes before the first dot, or "agent.NAME" for "agent.NAME.KEY", so
 * "agent.ppo.reward.kind" is the key "reward.kind" of [agent.ppo]. */
static int apply_override(loader *L, const char *text, size_t number)
{
    char why[ERR_LEN];
    if (check_text(text, strlen(text), why) != DS_OK)
        return err_set(L->err, DS_EINPUT, "--set number %zu: %s", number, why);
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
 * as %d, reals by shortest_real(), booleans as true/false, choices by name, text
 * as written. Equal values written differently (50, 5e1, 50.0) get one text, and
 * so one config text and one run id. Returns param_parse's code and message for a bad value. */
static int canonical_value(const param_spec *spec, const char *text, char *out, char *why)
{
    param_spec local = *spec;
    local.offset = 0; /* parse into a local variable rather than a config struct */
    int iv = 0;
    double dv = 0;
    void *into = spec->type == PARAM_REAL ? (void *)&dv : (void *)&iv;
    int rc = param_parse(&local, text, spec->type == PARAM_STRING ? NULL : into, why);
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
    case PARAM_STRING:
        snprintf(out, VALUE_LEN, "%s", text);
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

/* ---- variants ---- */

/* The entry key of section [agent.NAME], or NULL. */
static entry *agent_entry(const loader *L, const char *name, const char *key)
{
    for (size_t i = 0; i < L->n_entries; i++) {
        entry *e = &L->entries[i];
        if (is_agent_section(e->section) && strcmp(e->section + 6, name) == 0 &&
            strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* Whether NAME is a variant: not an agent, and [agent.NAME] sets kind. */
static int is_variant(const loader *L, const char *name)
{
    return !agent_find(name) && agent_entry(L, name, "kind");
}

/* The closest agent or variant name to name, or NULL. */
static const char *suggest_agent_or_variant(const loader *L, const char *name)
{
    const char *names[MAX_NAMES];
    size_t n = 0;
    for (int i = 0; i < agent_registry_count && n < MAX_NAMES; i++)
        names[n++] = agent_registry[i]->name;
    for (size_t i = 0; i < L->n_entries && n < MAX_NAMES; i++)
        if (strcmp(L->entries[i].key, "kind") == 0 && is_agent_section(L->entries[i].section) &&
            is_variant(L, L->entries[i].section + 6))
            names[n++] = L->entries[i].section + 6;
    return param_suggest(name, names, n);
}

/* Every [agent.NAME] (written or --set) names an agent, or defines a variant:
 * NAME of letters, digits, '_' and '-', with a kind. Checked first, as a
 * section's header is where a misspelt agent shows. */
static int check_variant_sections(const loader *L)
{
    char where[ERR_LEN], buf[2 * NAME_LEN];
    for (size_t i = 0; i < L->n_marks + L->n_entries; i++) {
        const char *section =
            i < L->n_marks ? L->marks[i].name : L->entries[i - L->n_marks].section;
        const char *name = section + 6;
        if (!is_agent_section(section) || agent_find(name))
            continue;
        section_where(L, section, where, sizeof where);
        if (!agent_entry(L, name, "kind")) {
            const char *guess = suggest_agent(name);
            return err_set(L->err, DS_EINPUT, "%s: unknown agent '%s' in section '%s'%s", where,
                           name, section,
                           guess ? hint(guess, buf, sizeof buf)
                                 : " (a variant of an agent needs 'kind = AGENT')");
        }
        size_t n = strlen(name);
        if (n == 0 || n >= NAME_LEN || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != n)
            return err_set(L->err, DS_EINPUT, "%s: variant name '%s' must be 1 to %d letters, "
                           "digits, '_' or '-'", where, name, NAME_LEN - 1);
    }
    return DS_OK;
}

/* The base kind of the variant NAME, checked: one agent, not a variant. */
static int variant_base(const loader *L, const char *name, const agent_type **out)
{
    const entry *kind = agent_entry(L, name, "kind");
    char buf[2 * NAME_LEN];
    if (kind->n_items != 1)
        return fail_entry(L, kind, "'kind': a variant has one base kind, not a list");
    const char *base = kind->items[0];
    *out = agent_find(base);
    if (*out)
        return DS_OK;
    if (is_variant(L, base))
        return fail_entry(L, kind, "'kind': '%s' is a variant; a variant's kind must be an "
                          "agent", base);
    return fail_entry(L, kind, "unknown agent '%s'%s", base,
                      hint(suggest_agent(base), buf, sizeof buf));
}

static int resolve_agent_kinds(loader *L, const entry *e)
{
    char buf[2 * NAME_LEN];
    L->agents = calloc(e->n_items, sizeof *L->agents);
    L->agent_names = calloc(e->n_items, sizeof *L->agent_names);
    if (!L->agents || !L->agent_names)
        return err_set(L->err, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->n_items; i++) {
        L->agent_names[i] = e->items[i];
        L->agents[i] = agent_find(e->items[i]);
        if (L->agents[i])
            continue;
        if (!is_variant(L, e->items[i]))
            return fail_entry(L, e, "unknown agent '%s'%s", e->items[i],
                              hint(suggest_agent_or_variant(L, e->items[i]), buf, sizeof buf));
        int rc = variant_base(L, e->items[i], &L->agents[i]);
        if (rc != DS_OK)
            return rc;
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
                              "[agent.%s]?)", e->key, L->agent_names[i]);
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

/* A key of [agent.NAME]: the agent's (or the variant's base kind's)
 * hyperparameter, a scoped reward key, or a variant's kind. */
static int check_agent_section_key(const loader *L, const entry *e)
{
    const char *name = e->section + 6;
    const agent_type *atype = agent_find(name);
    if (!atype) {
        int rc = variant_base(L, name, &atype);
        if (rc != DS_OK || strcmp(e->key, "kind") == 0)
            return rc;
    } else if (strcmp(e->key, "kind") == 0) {
        return fail_entry(L, e, "unknown key 'kind' in [%s] ('%s' is an agent; a variant of "
                          "it needs a name of its own, e.g. [agent.my_%s])", e->section, name,
                          name);
    }
    const param_table *t = &atype->params;
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
            const entry *scoped = find_scoped(L, L->agent_names[j], "kind");
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
    int rc = check_variant_sections(L);
    if (rc == DS_OK)
        rc = require_kind(L, "env", &env_kind);
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

/* Whether entry x is an axis of the runs of (env, agent NAME as listed). A
 * [reward] key is not one where the agent's section scopes it, nor is a
 * variant's kind. */
static int applies(const loader *L, const entry *x, const env_type *etype, const char *name)
{
    if (strcmp(x->section, "experiment") == 0)
        return strcmp(x->key, "name") != 0 && strcmp(x->key, "seeds") != 0;
    if (strcmp(x->section, "env") == 0)
        return strcmp(x->key, "kind") != 0 && param_find(&etype->params, x->key) != NULL;
    if (strcmp(x->section, "reward") == 0)
        return find_scoped(L, name, x->key) == NULL;
    if (is_agent_section(x->section))
        return strcmp(x->section + 6, name) == 0 && strcmp(x->key, "kind") != 0;
    return 0;
}

/* Runs of one (env, agent) pair, as a double so that no product overflows. */
static double count_pair_runs(const loader *L, const env_type *etype, const char *name)
{
    double runs = L->n_seeds_written;
    for (size_t k = 0; k < L->n_entries; k++)
        if (applies(L, &L->entries[k], etype, name))
            runs *= (double)L->entries[k].n_items;
    return runs;
}

static double count_runs(const loader *L)
{
    double total = 0;
    for (size_t i = 0; i < L->n_envs; i++)
        for (size_t j = 0; j < L->n_agents; j++)
            total += count_pair_runs(L, L->envs[i], L->agent_names[j]);
    return total;
}

/* The params of every run of (env, agent): the fixed three plus every key of
 * the four tables. */
static size_t count_params(const env_type *etype, const agent_type *atype)
{
    return 3 + experiment_table.count + etype->params.count + atype->params.count +
           reward_table.count;
}

/* ---- memory ---- */

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


/* The most one run may take, whatever the machine: a guard against a typo such
 * as train_episodes = 1e9 (about 240 GiB of episode rows). */
#define RUN_MEMORY_CAP (16.0 * 1024 * 1024 * 1024)
#define GIB (1024.0 * 1024 * 1024)

typedef struct {
    double bytes;
    const char *what;
} memory_limit;

/* The memory a run may use: the least of the cap, the machine's physical
 * memory, and the process's address-space and data limits (ulimit -v, -d). */
static memory_limit memory_limit_now(void)
{
    memory_limit m = {RUN_MEMORY_CAP, "the cap for one run"};
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (double)pages * (double)page < m.bytes)
        m = (memory_limit){(double)pages * (double)page, "physical memory"};
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (double)rl.rlim_cur < m.bytes)
        m = (memory_limit){(double)rl.rlim_cur, "the address-space limit, ulimit -v"};
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (double)rl.rlim_cur < m.bytes)
        m = (memory_limit){(double)rl.rlim_cur, "the data limit, ulimit -d"};
    return m;
}

/* A non-negative integer param of r, or 0 if it has none. */
static double int_param(const run_spec *r, const char *key)
{
    const char *v = run_param_get(r, key);
    return v ? fmax(0.0, strtod(v, NULL)) : 0.0;
}

/* What sim/run.c allocates for a run besides the env and the agent: the result
 * rows of every episode and window, per-user state (history ring, a pending
 * visit in the event queue) and per-item counts (clicks; exposure of windows
 * and phases). The env and the agent are estimated by check_run_models. */
typedef struct {
    double episodes, users, items;
    double bytes;
} run_memory;

static run_memory engine_memory(const run_spec *r)
{
    const run_settings *s = &r->settings;
    run_memory m = {.episodes = (double)s->train_episodes + (double)s->eval_episodes,
                    .users = int_param(r, "env.users"), .items = int_param(r, "env.items")};
    double windows = m.episodes / s->window + 4;
    double per_user = sizeof(double) + 3 * sizeof(int) +
                      (double)s->history * sizeof(history_entry) + sizeof(event) +
                      2 * sizeof(size_t);
    double per_item = sizeof(long) + 4 * 3 * sizeof(long); /* clicks; 4 exposures */
    m.bytes = (m.episodes + 1) * (sizeof(episode_row) + sizeof(long)) +
              windows * sizeof(window_row) + m.users * per_user + m.items * per_item;
    return m;
}

/* "FILE:LINE" of section.key if it was written, else of the section. */
static void key_where(const loader *L, const char *section, const char *key, char *out,
                      size_t n)
{
    const entry *e = find_entry(L, section, key);
    if (e)
        entry_where(L, e, out, n);
    else
        section_where(L, section, out, n);
}

/* Refuses a run whose engine state would not fit, naming the key that weighs
 * most: the episode counts, users or items. */
static int check_run_memory(const loader *L, const run_spec *r, const memory_limit *limit,
                            char *err)
{
    run_memory m = engine_memory(r);
    if (m.bytes <= limit->bytes)
        return DS_OK;
    char where[ERR_LEN];
    const run_settings *s = &r->settings;
    double per_episode = sizeof(episode_row) + sizeof(long);
    double episodes = m.episodes * per_episode, users = m.bytes - episodes;
    if (episodes >= users)
        key_where(L, "experiment",
                  s->train_episodes >= s->eval_episodes ? "train_episodes" : "eval_episodes",
                  where, sizeof where);
    else
        key_where(L, "env", m.users * sizeof(history_entry) >= m.items ? "users" : "items",
                  where, sizeof where);
    return err_set(err, DS_EINPUT,
                   "%s: a run would need about %.1f GiB for its episodes and state (%.0f "
                   "episodes, %.0f users, %.0f items, history %d) before its env and agent; "
                   "the limit is %.1f GiB (%s)",
                   where, m.bytes / GIB, m.episodes, m.users, m.items, s->history,
                   limit->bytes / GIB, limit->what);
}

/* The env's and the agent's estimates (each type's xMemoryEstimate, the agent's
 * for the sizes the env would give); 0 for a type without one. */
static void model_memory(const run_spec *r, double *env_bytes, double *agent_bytes,
                         env_spec *shape)
{
    *shape = (env_spec){0};
    *env_bytes = *agent_bytes = 0.0;
    if (!r->env->xMemoryEstimate)
        return;
    *env_bytes = r->env->xMemoryEstimate(r->env_config, shape);
    if (r->agent->xMemoryEstimate)
        *agent_bytes = r->agent->xMemoryEstimate(r->agent_config, shape);
}

double run_memory_estimate(const run_spec *r)
{
    double env_bytes, agent_bytes;
    env_spec shape;
    model_memory(r, &env_bytes, &agent_bytes, &shape);
    return engine_memory(r).bytes + env_bytes + agent_bytes;
}

/* Refuses a run whose agent and env, with the engine's state, would not fit,
 * pointing at the section of the heavier of the two. */
static int check_run_models(const loader *L, const run_spec *r, const memory_limit *limit,
                            char *err)
{
    double env_bytes, agent_bytes, engine_bytes = engine_memory(r).bytes;
    env_spec shape;
    model_memory(r, &env_bytes, &agent_bytes, &shape);
    double total = env_bytes + agent_bytes + engine_bytes;
    if (total <= limit->bytes)
        return DS_OK;
    char where[ERR_LEN], section[64];
    snprintf(section, sizeof section, "agent.%s", r->agent->name);
    if (env_bytes > agent_bytes)
        section_where(L, "env", where, sizeof where);
    else
        section_where(L, section_present(L, section) ? section : "agent", where,
                      sizeof where);
    return err_set(err, DS_EINPUT,
                   "%s: a run would need about %.1f GiB: %.1f GiB for agent '%s', %.1f GiB "
                   "for env '%s' (%d items, %d users) and %.1f GiB for its episodes and "
                   "state; the limit is %.1f GiB (%s)",
                   where, total / GIB, agent_bytes / GIB, r->agent->name, env_bytes / GIB,
                   r->env->name, shape.n_items, shape.n_users, engine_bytes / GIB,
                   limit->bytes / GIB, limit->what);
}

/* What the expanded runs take: each configuration's params, text and config
 * structs (shared by its seeds), and a run_spec per run. */
static double expansion_bytes(const loader *L)
{
    double total = 0;
    for (size_t i = 0; i < L->n_envs; i++)
        for (size_t j = 0; j < L->n_agents; j++) {
            const env_type *etype = L->envs[i];
            const agent_type *atype = L->agents[j];
            double runs = count_pair_runs(L, etype, L->agent_names[j]);
            double points = runs / L->n_seeds_written;
            double per_point = (double)count_params(etype, atype) *
                               (sizeof(run_param) + 2 * NAME_LEN) +
                               (double)etype->params.size + (double)atype->params.size;
            total += points * per_point + runs * sizeof(run_spec);
        }
    return total + L->n_seeds_written * 2 * sizeof(uint64_t);
}

/* ---- expansion ---- */

enum { TARGET_SETTINGS, TARGET_ENV, TARGET_AGENT };

/* One axis of the runs of an (env, agent) pair: the entry, the spec its
 * elements are checked with, the struct they fill, the param they set, and the
 * canonical text of each element. */
typedef struct {
    const entry *x;
    const param_spec *spec;
    int target;
    size_t param;             /* index in the sorted params of a run */
    char (*canon)[VALUE_LEN]; /* [x->n_items] */
} axis;

/* The runs of one (env, agent) pair: what every configuration starts from (the
 * defaults), the axes, and the current point of the grid. */
typedef struct {
    const env_type *etype;
    const agent_type *atype;
    const char *name;        /* the agent as listed: atype's name or a variant's */
    run_settings settings;   /* the defaults of [experiment] and [reward] */
    void *env_config;        /* the env's defaults */
    void *agent_config;      /* the agent's defaults */
    run_param *params;       /* [n_params] the defaults, sorted by key */
    size_t n_params;
    axis *axes;              /* [n_axes] in entry order */
    size_t *index;           /* [n_axes] current element of each axis */
    size_t n_axes;
} pair_grid;

static void pair_free(pair_grid *P)
{
    free(P->env_config);
    free(P->agent_config);
    free(P->params);
    for (size_t i = 0; i < P->n_axes; i++)
        free(P->axes[i].canon);
    free(P->axes);
    free(P->index);
}

/* Fills config with the canonical text of every default of t, so the struct
 * holds exactly what the run's params say. A bad default is a bug. */
static int fill_defaults(const param_table *t, void *config, char *err)
{
    for (size_t i = 0; i < t->count; i++) {
        char value[VALUE_LEN], why[ERR_LEN];
        if (canonical_value(&t->specs[i], t->specs[i].fallback, value, why) != DS_OK ||
            param_parse(&t->specs[i], value, config, why) != DS_OK)
            return err_set(err, DS_EINTERNAL, "bad default for '%s': %s", t->specs[i].key,
                           why);
    }
    return DS_OK;
}

static int set_param(run_param *p, const char *key, const char *value)
{
    if ((size_t)snprintf(p->key, sizeof p->key, "%s", key) >= sizeof p->key ||
        (size_t)snprintf(p->value, sizeof p->value, "%s", value) >= sizeof p->value)
        return DS_EINTERNAL;
    return DS_OK;
}

/* Appends "prefix.key = default" for every key of t, in canonical text. */
static int add_default_params(run_param *params, size_t *n, const param_table *t,
                              const char *prefix, char *err)
{
    for (size_t i = 0; i < t->count; i++) {
        char key[sizeof params->key], value[VALUE_LEN], why[ERR_LEN];
        if (canonical_value(&t->specs[i], t->specs[i].fallback, value, why) != DS_OK)
            return err_set(err, DS_EINTERNAL, "bad default for '%s': %s", t->specs[i].key,
                           why);
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

static void *new_defaults(const param_table *t, char *err, int *rc)
{
    void *config = calloc(1, t->size ? t->size : 1);
    *rc = config ? fill_defaults(t, config, err) : err_set(err, DS_ENOMEM, "out of memory");
    return config;
}

/* The defaults of a pair: settings, configs and the sorted params. */
static int pair_defaults(const loader *L, pair_grid *P, char *err)
{
    char agent_prefix[2 * NAME_LEN];
    snprintf(agent_prefix, sizeof agent_prefix, "agent.%s", P->name);
    int rc = fill_defaults(&experiment_table, &P->settings, err);
    if (rc == DS_OK)
        rc = fill_defaults(&reward_table, &P->settings, err);
    memcpy(P->settings.name, L->name, sizeof P->settings.name);
    if (rc == DS_OK)
        P->env_config = new_defaults(&P->etype->params, err, &rc);
    if (rc == DS_OK)
        P->agent_config = new_defaults(&P->atype->params, err, &rc);
    if (rc != DS_OK)
        return rc;
    size_t n = 0;
    P->params = calloc(count_params(P->etype, P->atype), sizeof *P->params);
    if (!P->params)
        return err_set(err, DS_ENOMEM, "out of memory");
    if (set_param(&P->params[n++], "experiment.name", L->name) != DS_OK ||
        set_param(&P->params[n++], "env.kind", P->etype->name) != DS_OK ||
        set_param(&P->params[n++], "agent.kind", P->atype->name) != DS_OK)
        return err_set(err, DS_EINTERNAL, "a parameter name or value is too long");
    rc = add_default_params(P->params, &n, &experiment_table, "experiment", err);
    if (rc == DS_OK)
        rc = add_default_params(P->params, &n, &P->etype->params, "env", err);
    if (rc == DS_OK)
        rc = add_default_params(P->params, &n, &P->atype->params, agent_prefix, err);
    if (rc == DS_OK)
        rc = add_default_params(P->params, &n, &reward_table, "reward", err);
    P->n_params = n;
    qsort(P->params, n, sizeof *P->params, compare_params);
    return rc;
}

/* Where axis x's values go: its spec, struct and param key. A scoped
 * "reward.KEY" of [agent.NAME] is the axis of [reward] KEY (applies() keeps the
 * two from being axes of one run). */
static int axis_init(const pair_grid *P, const entry *x, axis *a, char *err)
{
    run_param probe; /* bsearch compares run_params: the key goes in one */
    const char *scoped = scoped_reward_key(x);
    a->x = x;
    if (strcmp(x->section, "experiment") == 0) {
        a->spec = param_find(&experiment_table, x->key);
        a->target = TARGET_SETTINGS;
    } else if (strcmp(x->section, "env") == 0) {
        a->spec = param_find(&P->etype->params, x->key);
        a->target = TARGET_ENV;
    } else if (strcmp(x->section, "reward") == 0 || scoped) {
        a->spec = param_find(&reward_table, scoped ? scoped : x->key);
        a->target = TARGET_SETTINGS;
    } else {
        a->spec = param_find(&P->atype->params, x->key);
        a->target = TARGET_AGENT;
    }
    snprintf(probe.key, sizeof probe.key, "%s.%s", scoped ? "reward" : x->section,
             scoped ? scoped : x->key);
    const run_param *p = bsearch(&probe, P->params, P->n_params, sizeof *P->params,
                                 compare_params);
    if (!a->spec || !p)
        return err_set(err, DS_EINTERNAL, "no parameter '%s'", probe.key);
    a->param = (size_t)(p - P->params);
    a->canon = malloc(x->n_items * sizeof *a->canon);
    if (!a->canon)
        return err_set(err, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < x->n_items; i++) {
        char why[ERR_LEN]; /* every value was checked in pass 2 */
        if (canonical_value(a->spec, x->items[i], a->canon[i], why) != DS_OK)
            return err_set(err, DS_EINTERNAL, "bad value for '%s': %s", probe.key, why);
    }
    return DS_OK;
}

static int pair_init(const loader *L, pair_grid *P, const env_type *etype,
                     const agent_type *atype, const char *name, char *err)
{
    *P = (pair_grid){.etype = etype, .atype = atype, .name = name};
    int rc = pair_defaults(L, P, err);
    if (rc != DS_OK)
        return rc;
    P->axes = calloc(L->n_entries + 1, sizeof *P->axes);
    P->index = calloc(L->n_entries + 1, sizeof *P->index);
    if (!P->axes || !P->index)
        return err_set(err, DS_ENOMEM, "out of memory");
    for (size_t i = 0; i < L->n_entries && rc == DS_OK; i++)
        if (applies(L, &L->entries[i], etype, name))
            rc = axis_init(P, &L->entries[i], &P->axes[P->n_axes++], err);
    return rc;
}

/* Advances the odometer, last axis fastest; 0 once every point was visited. */
static int point_next(pair_grid *P)
{
    for (size_t i = P->n_axes; i-- > 0;) {
        if (++P->index[i] < P->axes[i].x->n_items)
            return 1;
        P->index[i] = 0;
    }
    return 0;
}

static void *copy_of(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q)
        memcpy(q, p, n);
    return q;
}

/* Logging does not change what a run computes, so a run without it keeps the
 * params, text and id it had before the key existed; a run with it is another
 * run (so a database of unlogged runs, run again with logging, gets its logs). */
static void drop_logging_off(run_spec *r)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].key, "experiment.log_interactions") == 0 &&
            strcmp(r->params[i].value, "false") == 0) {
            memmove(&r->params[i], &r->params[i + 1],
                    (r->n_params - i - 1) * sizeof *r->params);
            r->n_params--;
            return;
        }
}

/* config_text, "key = value\n" for every param, and its hash. */
static int build_text(run_spec *r, char *err)
{
    size_t len = 0;
    for (size_t i = 0; i < r->n_params; i++)
        len += strlen(r->params[i].key) + strlen(r->params[i].value) + 4;
    r->config_text = malloc(len + 1);
    if (!r->config_text)
        return err_set(err, DS_ENOMEM, "out of memory");
    char *p = r->config_text;
    for (size_t i = 0; i < r->n_params; i++) {
        size_t k = strlen(r->params[i].key), v = strlen(r->params[i].value);
        memcpy(p, r->params[i].key, k);
        memcpy(p + k, " = ", 3);
        memcpy(p + k + 3, r->params[i].value, v);
        p[k + 3 + v] = '\n';
        p += k + v + 4;
    }
    *p = '\0';
    r->config_hash = hash_bytes(r->config_text, len, HASH_INIT);
    return DS_OK;
}

/* A learning agent with encoder = transformer reads the newest tf_context
 * history entries: the run must keep that many. Reported where tf_context, or
 * else history, or else the encoder was set. */
static int check_context(const loader *L, const run_spec *r, const char *section, char *err)
{
    char key[3 * NAME_LEN], where[ERR_LEN];
    snprintf(key, sizeof key, "%s.encoder", section);
    const char *encoder = run_param_get(r, key);
    if (!encoder || strcmp(encoder, "transformer") != 0)
        return DS_OK;
    snprintf(key, sizeof key, "%s.tf_context", section);
    double context = int_param(r, key);
    if (context <= r->settings.history)
        return DS_OK;
    if (find_entry(L, section, "tf_context"))
        key_where(L, section, "tf_context", where, sizeof where);
    else if (find_entry(L, "experiment", "history"))
        key_where(L, "experiment", "history", where, sizeof where);
    else
        key_where(L, section, "encoder", where, sizeof where);
    return err_set(err, DS_EINPUT, "%s: [%s] 'tf_context' %.0f is longer than the history "
                   "of %d entries the run keeps (set [experiment] history = %.0f, or a "
                   "smaller 'tf_context')", where, section, context, r->settings.history,
                   context);
}

/* Cross-field checks of the filled configs, reported at the section. */
static int cross_check(const loader *L, const run_spec *r, char *err)
{
    char why[ERR_LEN], where[ERR_LEN], section[2 * NAME_LEN];
    if (r->env->xValidate && r->env->xValidate(r->env_config, why) != DS_OK) {
        section_where(L, "env", where, sizeof where);
        return err_set(err, DS_EINPUT, "%s: [env] %s", where, why);
    }
    snprintf(section, sizeof section, "agent.%s", r->agent_name);
    if (r->agent->xValidate && r->agent->xValidate(r->agent_config, why) != DS_OK) {
        char key[NAME_LEN] = "";
        sscanf(why, "'%63[^']'", key); /* a message that starts with a key names it */
        if (section_present(L, section))
            key_where(L, section, key, where, sizeof where);
        else
            section_where(L, "agent", where, sizeof where);
        return err_set(err, DS_EINPUT, "%s: [%s] %s", where, section, why);
    }
    return check_context(L, r, section, err);
}

/* The run of the current point of P (with no seed yet): the defaults with each
 * axis's element put in, checked, with its config text. */
static int build_point(const loader *L, const pair_grid *P, const memory_limit *limit,
                       run_spec *r, char *err)
{
    r->env = P->etype;
    r->agent = P->atype;
    snprintf(r->agent_name, sizeof r->agent_name, "%s", P->name);
    r->settings = P->settings;
    r->env_config = copy_of(P->env_config, P->etype->params.size);
    r->agent_config = copy_of(P->agent_config, P->atype->params.size);
    r->params = copy_of(P->params, P->n_params * sizeof *P->params);
    r->n_params = P->n_params;
    if (!r->env_config || !r->agent_config || !r->params)
        return err_set(err, DS_ENOMEM, "out of memory");
    void *targets[] = {[TARGET_SETTINGS] = &r->settings, [TARGET_ENV] = r->env_config,
                       [TARGET_AGENT] = r->agent_config};
    for (size_t i = 0; i < P->n_axes; i++) {
        const axis *a = &P->axes[i];
        const char *value = a->canon[P->index[i]];
        memcpy(r->params[a->param].value, value, strlen(value) + 1);
        char why[ERR_LEN];
        if (param_parse(a->spec, value, targets[a->target], why) != DS_OK)
            return err_set(err, DS_EINTERNAL, "bad value for '%s': %s", a->spec->key, why);
    }
    int rc = cross_check(L, r, err);
    if (rc == DS_OK)
        rc = check_run_memory(L, r, limit, err);
    if (rc == DS_OK)
        rc = check_run_models(L, r, limit, err);
    if (rc == DS_OK) {
        drop_logging_off(r);
        rc = build_text(r, err);
    }
    return rc;
}

/* The run id: a hash of the config text and the seed, as a positive 63-bit id. */
static int64_t run_id_of(const run_spec *r)
{
    char line[64];
    int n = snprintf(line, sizeof line, "seed = %" PRIu64 "\n", r->seed);
    uint64_t id = hash_bytes(line, (size_t)n, r->config_hash) & (uint64_t)INT64_MAX;
    return id ? (int64_t)id : 1;
}

/* Every run of one (env, listed agent) pair into runs[*k...]: each point of the
 * grid once, then a copy per seed that shares its params and configs. */
static int expand_pair(const loader *L, const env_type *etype, size_t listed,
                       const memory_limit *limit, run_spec *runs, size_t *k, char *err)
{
    pair_grid P;
    int rc = pair_init(L, &P, etype, L->agents[listed], L->agent_names[listed], err);
    if (rc == DS_OK)
        do {
            run_spec *first = &runs[*k];
            rc = build_point(L, &P, limit, first, err);
            for (size_t s = 0; s < L->n_seeds && rc == DS_OK; s++) {
                run_spec *r = &runs[(*k)++];
                if (s > 0)
                    *r = *first;
                r->seed = L->seeds[s];
                r->run_id = run_id_of(r);
            }
        } while (rc == DS_OK && point_next(&P));
    pair_free(&P);
    return rc;
}

static int expand(loader *L, experiment *x)
{
    double total = count_runs(L);
    if (total > GRID_LIMIT)
        return err_set(L->err, DS_EINPUT, "%s: the grid has %.0f runs, more than the limit "
                       "of %d", L->path, total, GRID_LIMIT);
    memory_limit limit = memory_limit_now();
    double bytes = expansion_bytes(L);
    if (bytes > limit.bytes)
        return err_set(L->err, DS_EINPUT, "%s: the grid of %.0f runs would need about %.1f GiB "
                       "to expand; the limit is %.1f GiB (%s)", L->path, total, bytes / GIB,
                       limit.bytes / GIB, limit.what);
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
            rc = expand_pair(L, L->envs[i], j, &limit, x->runs, &k, L->err);
    if (rc == DS_OK && k != x->n_runs)
        rc = err_set(L->err, DS_EINTERNAL, "expanded %zu runs, counted %zu", k, x->n_runs);
    return rc;
}

/* ---- public ---- */

/* Passes 1 (after the file was read), 2 and 3. */
static int load(loader *L, int rc, const char *const *overrides, size_t n_overrides,
                experiment *out)
{
    for (size_t i = 0; i < n_overrides && rc == DS_OK; i++)
        rc = apply_override(L, overrides[i], i + 1);
    if (rc == DS_OK)
        rc = validate(L);
    if (rc == DS_OK)
        rc = expand(L, out);
    if (rc == DS_OK) {
        memcpy(out->name, L->name, sizeof out->name);
        memcpy(out->path, L->path, strlen(L->path) + 1);
    }
    loader_free(L);
    if (rc != DS_OK)
        experiment_free(out);
    return rc;
}

int experiment_load(const char *path, const char *const *overrides, size_t n_overrides,
                    experiment *out, char *err)
{
    memset(out, 0, sizeof *out);
    if (strlen(path) >= sizeof out->path)
        return err_set(err, DS_EINPUT, "path '%.64s...' is too long", path);
    loader L = {.path = path, .err = err};
    return load(&L, read_file(&L), overrides, n_overrides, out);
}

int experiment_load_buffer(const char *name, const char *text, size_t len,
                           const char *const *overrides, size_t n_overrides, experiment *out,
                           char *err)
{
    memset(out, 0, sizeof *out);
    if (strlen(name) >= sizeof out->path)
        return err_set(err, DS_EINPUT, "name '%.64s...' is too long", name);
    loader L = {.path = name, .err = err, .text = text, .text_len = text ? len : 0};
    return load(&L, parse(&L), overrides, n_overrides, out);
}

void experiment_free(experiment *x)
{
    if (!x)
        return;
    for (size_t i = 0; i < x->n_runs; i++) {
        const run_spec *r = &x->runs[i], *prev = i ? &x->runs[i - 1] : NULL;
        /* The seeds of a configuration share its allocations: free them once. */
        if (!prev || r->params != prev->params) {
            free(r->env_config);
            free(r->agent_config);
            free(r->params);
            free(r->config_text);
        }
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

const char *run_agent_name(const run_spec *r)
{
    return r->agent_name[0] ? r->agent_name : r->agent->name;
}
