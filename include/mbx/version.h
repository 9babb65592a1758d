/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/version.h
 * @brief Version of the headers and of the loaded library.
 *
 * The API is stable within a major version and the ABI within a minor one;
 * the shared library's soname carries the major version.
 */
#ifndef MBX_VERSION_H
#define MBX_VERSION_H

#include "common.h"

MBX_BEGIN_DECL

#define MBX_VERSION_MAJOR 0
#define MBX_VERSION_MINOR 1
#define MBX_VERSION_PATCH 0
#define MBX_VERSION_STRING "0.1.0"

/** True when the headers are at least version major.minor.patch. */
#define MBX_VERSION_CHECK(major, minor, patch) \
	((MBX_VERSION_MAJOR > (major)) || \
	 (MBX_VERSION_MAJOR == (major) && MBX_VERSION_MINOR > (minor)) || \
	 (MBX_VERSION_MAJOR == (major) && MBX_VERSION_MINOR == (minor) && MBX_VERSION_PATCH >= (patch)))

/** @brief Version of the loaded library, e.g. "0.1.0". Static string. */
MBX_EXTERN(const char *) mbx_version(void);

MBX_END_DECL

#endif /* MBX_VERSION_H */
