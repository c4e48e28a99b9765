#include "version.h"

#ifndef DIVSIM_VERSION
#define DIVSIM_VERSION "unknown"
#endif
#ifndef DIVSIM_CFLAGS
#define DIVSIM_CFLAGS ""
#endif

const char *divsim_version(void) { return DIVSIM_VERSION; }

const char *divsim_build_info(void)
{
#ifdef __VERSION__
    return "cc " __VERSION__ " " DIVSIM_CFLAGS;
#else
    return "cc " DIVSIM_CFLAGS;
#endif
}
