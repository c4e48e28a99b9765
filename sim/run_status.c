/* Names of run statuses and phases, as stored in the database and printed. */
#include "metrics.h"
#include "run.h"

const char *run_status_name(run_status s)
{
    switch (s) {
    case RUN_DONE: return "done";
    case RUN_FAILED: return "failed";
    case RUN_DIVERGED: return "diverged";
    case RUN_INTERRUPTED: return "interrupted";
    case RUN_RUNNING: return "running";
    }
    return "unknown";
}

const char *phase_name(phase p)
{
    switch (p) {
    case PHASE_TRAIN: return "train";
    case PHASE_EVAL: return "eval";
    }
    return "unknown";
}
