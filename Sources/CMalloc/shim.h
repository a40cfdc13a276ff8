#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
/* glibc's malloc_trim(3), which Swift's Glibc module does not export. */
#ifdef __linux__
#include <malloc.h>
#endif
#endif
