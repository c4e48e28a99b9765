/* Every environment, by name. Adding one: define its env_type in its own file
 * and add a line here. */
#include "env.h"

#include <string.h>

extern const env_type shop_env, bandit_env, recsim_ie_env;

const env_type *const env_registry[] = {&shop_env, &bandit_env, &recsim_ie_env};
const int env_registry_count = (int)(sizeof env_registry / sizeof env_registry[0]);

const env_type *env_find(const char *name)
{
    for (int i = 0; i < env_registry_count; i++)
        if (strcmp(env_registry[i]->name, name) == 0)
            return env_registry[i];
    return NULL;
}

static int view_utilities(void *ctx, int user, const int *items, int n, double *utility,
                          double *value, double *no_click_utility)
{
    env *e = ctx;
    return e->type->xPrivileged(e, user, items, n, utility, value, no_click_utility);
}

static int view_bounds(void *ctx, int user, const int *items, int n,
                       bound_column out[N_BOUNDS])
{
    env *e = ctx;
    return e->type->xPrivilegedBounds(e, user, items, n, out);
}

privileged_view env_privileged_view(env *e)
{
    if (!e->type->xPrivileged)
        return (privileged_view){0};
    return (privileged_view){e, view_utilities,
                             e->type->xPrivilegedBounds ? view_bounds : NULL};
}
