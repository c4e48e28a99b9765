/* Typed, documented parameter tables.
 *
 * Every environment and agent describes its hyperparameters as a const array of
 * param_spec, each pointing (offsetof) into the module's own config struct. The
 * experiment loader validates file values against these tables, `divsim list`
 * prints them, and param_fill() turns resolved key/value text into the struct. */
#ifndef DIVSIM_PARAMS_H
#define DIVSIM_PARAMS_H

#include <stddef.h>

typedef enum {
    PARAM_INT,    /* int field; bounds [min, max] */
    PARAM_REAL,   /* double field; finite, bounds [min, max] */
    PARAM_BOOL,   /* int field, 0 or 1; accepts true/false/yes/no/on/off/1/0 */
    PARAM_CHOICE, /* int field holding the index into choices "a|b|c" */
    PARAM_STRING  /* char field[PARAM_STRING_LEN]: the text as written (e.g. a path) */
} param_type;

/* Room of a PARAM_STRING field, its NUL included. */
#define PARAM_STRING_LEN 256

typedef struct {
    const char *key;
    param_type type;
    size_t offset;        /* offsetof(config struct, field) */
    const char *fallback; /* the default, written as in an experiment file */
    double min, max;      /* inclusive bounds for PARAM_INT and PARAM_REAL */
    const char *choices;  /* "a|b|c" for PARAM_CHOICE, else NULL */
    const char *help;     /* one line: meaning and unit */
} param_spec;

typedef struct {
    const param_spec *specs;
    size_t count;
    size_t size; /* sizeof the config struct */
} param_table;

#define PARAM_TABLE(cfg_type, array) \
    { (array), sizeof(array) / sizeof((array)[0]), sizeof(cfg_type) }

#define P_INT(T, f, def, lo, hi, help) \
    { #f, PARAM_INT, offsetof(T, f), def, lo, hi, NULL, help }
#define P_REAL(T, f, def, lo, hi, help) \
    { #f, PARAM_REAL, offsetof(T, f), def, lo, hi, NULL, help }
#define P_BOOL(T, f, def, help) \
    { #f, PARAM_BOOL, offsetof(T, f), def, 0, 1, NULL, help }
#define P_CHOICE(T, f, def, choices, help) \
    { #f, PARAM_CHOICE, offsetof(T, f), def, 0, 0, choices, help }
#define P_STRING(T, f, def, help) \
    { #f, PARAM_STRING, offsetof(T, f), def, 0, 0, NULL, help }

const param_spec *param_find(const param_table *t, const char *key);

/* Parses one value and checks its type and range; on success stores it in config
 * (which may be NULL to validate only). err gets e.g. "expected a number, got 'x'". */
int param_parse(const param_spec *s, const char *text, void *config, char *err);

/* Fills config with every default of the table. */
int param_defaults(const param_table *t, void *config, char *err);

/* The closest of n candidate names to key by edit distance, or NULL if none is
 * close enough to suggest. */
const char *param_suggest(const char *key, const char *const *candidates, size_t n);

/* Same, over the keys of a table. */
const char *param_suggest_key(const param_table *t, const char *key);

/* The text of choice number index in "a|b|c" into out (size n). */
void param_choice_name(const char *choices, int index, char *out, size_t n);

#endif
