/* Every agent, by name. Adding one: copy an agent file, rename its agent_type,
 * and add a line here. */
#include "agent.h"

#include <string.h>

extern const agent_type random_agent, popularity_agent, cf_agent, mmr_agent, oracle_agent;
extern const agent_type reinforce_agent, a2c_agent, ppo_agent;

const agent_type *const agent_registry[] = {
    &random_agent, &popularity_agent, &cf_agent, &mmr_agent, &oracle_agent,
    &reinforce_agent, &a2c_agent, &ppo_agent,
};
const int agent_registry_count = (int)(sizeof agent_registry / sizeof agent_registry[0]);

const agent_type *agent_find(const char *name)
{
    for (int i = 0; i < agent_registry_count; i++)
        if (strcmp(agent_registry[i]->name, name) == 0)
            return agent_registry[i];
    return NULL;
}
