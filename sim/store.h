/* The SQLite results store. One database holds many runs; a run's rows are
 * written in one transaction together with its final status, so a crash never
 * leaves a half-written run that looks finished. Schema in the README. */
#ifndef DIVSIM_STORE_H
#define DIVSIM_STORE_H

#include "run.h"

typedef struct store store;

#define STORE_SCHEMA_VERSION 3

/* Opens or creates the database at path (WAL mode, schema created if new,
 * upgraded if older). A file that cannot be written, is not a divsim database
 * or is newer is refused untouched (DS_EINPUT), as is a damaged one as far as
 * opening sees it. A writer waits up to 10 s for another's lock. */
int store_open(const char *path, store **out, char *err);
void store_close(store *s);

/* PRAGMA quick_check of the whole file (O(size): about a second per 200 MB):
 * DS_EINPUT with the first problem if the file is damaged. */
int store_check(store *s, char *err);

/* The stored status of run id ("done", "failed", ...) into status (16 bytes),
 * or "" when the run is not in the database. */
int store_run_status(store *s, int64_t run_id, char *status, char *err);

/* Records that r starts now: replaces any earlier rows of the same id with a
 * runs row in status running plus its params rows. */
int store_run_start(store *s, const run_spec *r, char *err);

/* Records the runs a sweep is responsible for (the planned table), so that
 * `divsim status` can tell which are missing. Runs already planned are kept. */
int store_plan(store *s, const run_spec *runs, size_t n, char *err);

/* Writes every row of res and the final status of r in one transaction. */
int store_run_finish(store *s, const run_spec *r, const run_result *res, char *err);

/* The underlying handle, for the report and merge commands. */
struct sqlite3 *store_db(store *s);

/* Runs SQL on the database; on failure err names the database, `what`, and
 * SQLite's message. */
int store_exec(store *s, const char *sql, const char *what, char *err);

/* Rolls back the open transaction, if any (appending to err if that fails). */
void store_rollback(store *s, char *err);

/* Opens the database at path for reading only (status, compare, export, plot),
 * with a 10 s busy timeout. SQLite reads a WAL database through its -shm file:
 * when that cannot be created (a read-only directory) and there is no -wal
 * file, the database file holds every committed page and is read as immutable;
 * with a -wal file there, DS_EINPUT says the directory is not writable. DS_EIO
 * if SQLite cannot open the file. */
int store_open_readonly(const char *path, struct sqlite3 **db, char *err);

#endif
