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
