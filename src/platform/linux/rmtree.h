/* SPDX-License-Identifier: Apache-2.0 */
/* Recursive removal without following symlinks; shared by the library and
 * the agent. */
#pragma once

/* Removes everything below the open directory dfd (consumed). Directories
 * that cannot be entered or emptied are given owner rwx first (a payload may
 * have made them 0500). Symlinks are removed, never followed. Returns 0, or
 * -1 when something could not be removed (errno of the last failure). */
int mbx_rm_below(int dfd);
