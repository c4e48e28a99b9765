/* Saved transformer weights: what `divsim pretrain` writes and an agent's
 * `init = FILE` reads.
 *
 * Format (version 1): a text header of lines, then the payload.
 *   divsim-checkpoint 1
 *   context H / layers L / heads NH / width C / mlp_ratio R   (one per line)
 *   n_items N
 *   tensors K
 *   tensor NAME ROWS COLS                                     (K lines, in payload order)
 *   payload DOUBLES
 *   checksum fnv1a64 HHHHHHHHHHHHHHHH                         (of the payload bytes)
 *   end
 * and after the newline of "end", DOUBLES little-endian IEEE-754 binary64
 * values: each tensor's [rows][cols] in table order. The environment's topics
 * are not recorded: no tf_ tensor depends on them. */
#ifndef DIVSIM_CHECKPOINT_H
#define DIVSIM_CHECKPOINT_H

#include "nn.h"
#include "transformer.h"

#define CHECKPOINT_MAGIC "divsim-checkpoint"
#define CHECKPOINT_VERSION 1

/* Writes every tensor of layout whose name begins with "tf_", with its values
 * in w, to path: to a temporary file beside it, synced, then renamed over path,
 * so a crash leaves either the old file or the whole new one. DS_EINPUT if the
 * layout holds no tf_ tensor; DS_EIO naming the file if a write fails. */
int checkpoint_save(const char *path, const transformer_config *cfg, int n_items,
                    const nn_layout *layout, const double *w, char *err);

/* Reads path into w: checks the magic, the version, that cfg and n_items equal
 * the file's, that every tf_ tensor of layout is in the file with the same
 * shape and every tensor of the file is in layout, the payload's length and its
 * checksum; then copies each tensor into the same-named tensor of w. DS_EINPUT
 * naming the file and what differs or is damaged (w untouched); DS_EIO if the
 * file cannot be read; DS_ENOMEM. */
int checkpoint_load(const char *path, const transformer_config *cfg, int n_items,
                    const nn_layout *layout, double *w, char *err);

/* The checks of checkpoint_load that need no model: the file can be read, its
 * header, config (and n_items, unless n_items < 0) and checksum are right. What
 * an experiment file's `init` is checked with before any run starts. */
int checkpoint_check(const char *path, const transformer_config *cfg, int n_items, char *err);

#endif
