/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The small host /etc files a sandbox gets copies of, served from one
 * sealed memfd per process instead of by name (etcfiles.c).
 */
#pragma once

#include "mountplan.h"

/*
 * Marks the plan's copies by name of host files that are in this process's
 * memfd (built or rebuilt as needed) as copies from it (in_blob, offset,
 * size, mode) and returns a new descriptor of the memfd for the agent, or
 * -1 when no file qualified or the memfd could not be made: then the plan
 * is unchanged and every copy goes by name as before. Thread-safe.
 */
int mbx__etcfiles_apply(struct mbx_mountplan *plan);
