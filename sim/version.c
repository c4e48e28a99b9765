#include "version.h"

#include <pthread.h>
#include <stdio.h>

#ifndef DIVSIM_VERSION
#define DIVSIM_VERSION "unknown"
#endif
#ifndef DIVSIM_CFLAGS
#define DIVSIM_CFLAGS ""
#endif
#ifdef __VERSION__
#define DIVSIM_COMPILER "cc " __VERSION__
#else
#define DIVSIM_COMPILER "cc"
#endif

/* OpenBLAS chooses its kernels by CPU at run time, and the agents' floating
 * point results can differ in the last bits between kernels: record which. */
char *openblas_get_corename(void);

static char build_info[256];

static void describe_build(void)
{
    snprintf(build_info, sizeof build_info, "%s %s; openblas %s", DIVSIM_COMPILER,
             DIVSIM_CFLAGS, openblas_get_corename());
}

const char *divsim_version(void) { return DIVSIM_VERSION; }

const char *divsim_build_info(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, describe_build);
    return build_info;
}
