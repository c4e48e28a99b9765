/* The collaborative-filtering agents, for tests that drive them directly
 * (the engine finds them by name through the registry). */
#ifndef DIVSIM_CF_H
#define DIVSIM_CF_H

#include "agent.h"

extern const agent_type cf_agent, mmr_agent;

#endif
