/* Checkpoints of the transformer encoder's tensors. */
#ifndef DIVSIM_CHECKPOINT_H
#define DIVSIM_CHECKPOINT_H

#include "nn.h"
#include "transformer.h"

int checkpoint_save(const char *path, const transformer_config *cfg, int n_items, const nn_layout *layout, const double *w, char *err);  /* writes every layout tensor whose name begins with "tf_" */
int checkpoint_load(const char *path, const transformer_config *cfg, int n_items, const nn_layout *layout, double *w, char *err);  /* checks, then copies each file tensor into the same-named same-shape layout tensor; DS_EINPUT on mismatch */

#endif
