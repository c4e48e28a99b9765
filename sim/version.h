#ifndef DIVSIM_VERSION_H
#define DIVSIM_VERSION_H
/* The version (git describe at build time) and how the binary was built. */
const char *divsim_version(void);
const char *divsim_build_info(void);
#endif
