/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's end of a microVM's network channel (src/proto/netmux.h): one
 * thread per VM that reads the guest's frames, hands every stream the
 * guest opens to `open` as one end of a socketpair (the proxy in
 * microvm.c, anything in tests) and relays the other end. Everything from
 * the guest is checked; a broken rule cuts the channel (the thread closes
 * it and every stream, and stops).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

struct mbx_vmnet;

/* Takes `fd` (a connected stream socket) over. Returns 0, or -1 when the
 * stream is refused (the guest then gets a RESET). Called on the thread. */
typedef int (*mbx_vmnet_open_fn)(void *ud, int fd);

/* Starts the thread on `chan` (taken over, closed by the mux). `cfg` (may
 * be NULL) is where a cut channel is logged; it must outlive the mux. */
int mbx__vmnet_start(struct mbx_vmnet **out, int chan, mbx_vmnet_open_fn open, void *ud, const mbx_config *cfg,
		     mbx_error **err);

/* Stops the thread, joins it, closes the channel and every stream; NULL is
 * a no-op. */
void mbx__vmnet_stop(struct mbx_vmnet *v);

struct mbx_vmnet_stats {
	int ended;            /* the thread stopped serving (channel cut or closed) */
	int cut;              /* ... because the guest broke a rule */
	char why[160];        /* the rule, when cut */
	size_t streams;       /* live streams */
	uint64_t opened;      /* streams handed to `open` */
	size_t held;          /* bytes held now: undelivered guest data plus pending output */
	size_t held_max;      /* the most ever held */
};

void mbx__vmnet_stats(struct mbx_vmnet *v, struct mbx_vmnet_stats *s);

/* The bound on `held`: every stream's window, plus the output buffer. */
size_t mbx__vmnet_held_bound(void);
