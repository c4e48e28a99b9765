/* Merging results databases (the shards of a sweep) into one. */
#ifndef DIVSIM_MERGE_H
#define DIVSIM_MERGE_H

#include "store.h"

#include <stddef.h>

typedef struct {
    size_t added;     /* runs new to the output */
    size_t replaced;  /* runs the output held unfinished, now done */
    size_t kept;      /* runs the output already held (done, or as good) */
} merge_counts;

/* Copies into out every run of the database at in_path that out lacks, or that
 * out holds unfinished while in_path holds it done, with all its rows, in one
 * transaction; and in_path's planned runs. Merging the same input twice changes
 * nothing. Refuses (DS_EINPUT, nothing written) when a run id appears in both
 * with different configurations, or when in_path is not a divsim database of
 * this schema or older. in_path is only read. */
int merge_database(store *out, const char *in_path, merge_counts *counts, char *err);

#endif
