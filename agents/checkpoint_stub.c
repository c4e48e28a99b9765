/* Stand-in for agents/checkpoint.c until the checkpoint format is built in:
 * both calls refuse with DS_EINPUT. Remove this file when checkpoint.c lands. */
#include "checkpoint.h"

#include "../sim/common.h"

int checkpoint_save(const char *path, const transformer_config *cfg, int n_items,
                    const nn_layout *layout, const double *w, char *err)
{
    (void)cfg, (void)n_items, (void)layout, (void)w;
    return err_set(err, DS_EINPUT, "cannot write checkpoint '%s': checkpoints are not "
                   "supported by this build", path);
}

int checkpoint_load(const char *path, const transformer_config *cfg, int n_items,
                    const nn_layout *layout, double *w, char *err)
{
    (void)cfg, (void)n_items, (void)layout, (void)w;
    return err_set(err, DS_EINPUT, "cannot read checkpoint '%s': checkpoints are not "
                   "supported by this build", path);
}
