/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the host's end of a microVM's network channel
 * (src/backend/microvm/vmnet.c), which reads bytes a (possibly
 * compromised) guest controls. The input is the guest's side of the
 * channel; every stream the mux opens gets a peer that answers a few bytes
 * and then ends. Checked: no crash, the mux ends when the guest's end
 * closes (or cuts it earlier), no descriptor is left behind, and what it
 * held never passed its bound.
 */
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netmux.h"
#include "backend/microvm/vmnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A peer: sends a little and closes its end (the proxy refusing, say). */
static int on_open(void *ud, int fd)
{
	(void)ud;
	(void)!send(fd, "HTTP/1.1 403 no\r\n\r\n", 19, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mbx_vmnet *v = NULL;
	struct mbx_vmnet_stats st;
	uint8_t sink[65536];
	size_t off = 0;
	int sv[2], done = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	if (mbx__vmnet_start(&v, sv[1], on_open, NULL, NULL, NULL) != MBX_OK) {
		close(sv[0]);
		return 0;
	}
	if (size == 0)
		shutdown(sv[0], SHUT_WR);
	/* Write the input in uneven pieces while draining what comes back. */
	while (!done) {
		struct pollfd p = { sv[0], (short)(POLLIN | (off < size ? POLLOUT : 0)), 0 };

		if (poll(&p, 1, 5000) <= 0)
			__builtin_trap(); /* the mux stopped reading and writing: a hang */
		if (p.revents & POLLIN) {
			ssize_t n = recv(sv[0], sink, sizeof(sink), MSG_DONTWAIT);

			if (n == 0)
				done = 1; /* cut, or ended after our end of file */
		}
		if (off < size && (p.revents & POLLOUT)) {
			size_t piece = 1 + (off * 7 + size) % 4093;
			ssize_t n;

			if (piece > size - off)
				piece = size - off;
			n = send(sv[0], data + off, piece, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && (p.revents & (POLLHUP | POLLERR)))
				off = size;
			if (off == size)
				shutdown(sv[0], SHUT_WR);
		}
	}
	mbx__vmnet_stats(v, &st);
	if (st.held_max > mbx__vmnet_held_bound())
		__builtin_trap();
	mbx__vmnet_stop(v);
	close(sv[0]);
	return 0;
}
