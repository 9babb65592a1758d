/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The network channel of a microvm sandbox (docs/microvm.md, "Network"):
 * a second virtio-serial port, org.mimobox.net, carrying TCP streams the
 * guest's programs open to 127.0.0.1:3128 in the guest to the host's proxy.
 * Shared by the guest agent (src/agent/netmux.c) and the host
 * (src/backend/microvm/vmnet.c); header only.
 *
 * A frame is an 8-byte header and 0..MBX_NETMUX_MAX_DATA bytes:
 *
 *   u8  type        MBX_NETMUX_*
 *   u8  zero        must be 0
 *   u16 length      of what follows, big-endian
 *   u32 stream id   big-endian, never 0
 *
 *   OPEN   guest -> host, length 0: a new stream. Ids are the guest's,
 *          strictly increasing over the channel's life (never reused), so
 *          an id at or below the last opened one that is not live is a
 *          stream that ended: frames for it are ignored; an id above it is
 *          unknown (only OPEN may name one).
 *   DATA   either way, 1..MBX_NETMUX_MAX_DATA bytes of the stream. The
 *          sender may have at most its credit in flight: each side starts
 *          with MBX_NETMUX_WINDOW bytes of credit per stream and direction.
 *   CREDIT either way, 4 bytes (u32, big-endian, > 0): the receiver
 *          consumed that many bytes; the sender's credit grows by it, never
 *          above MBX_NETMUX_WINDOW.
 *   CLOSE  either way, length 0: the sender sends nothing more on the
 *          stream (its end of file). A stream ends when both sides sent
 *          CLOSE and everything was delivered.
 *   RESET  either way, length 0: the stream ends at once, both ways.
 *
 * The host trusts nothing from the guest: a frame that breaks these rules
 * (unknown type, nonzero reserved byte, a length over the bound or wrong
 * for the type, id 0, DATA beyond the credit or after CLOSE, a CLOSE
 * twice, credit above the window, a frame naming an unknown id) cuts the
 * whole channel. Host memory stays bounded: per stream at most the window
 * of undelivered guest bytes, at most MBX_NETMUX_MAX_STREAMS streams, and
 * the host reads no more from the guest while its own output waits.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define MBX_NETMUX_OPEN 1
#define MBX_NETMUX_DATA 2
#define MBX_NETMUX_CREDIT 3
#define MBX_NETMUX_CLOSE 4
#define MBX_NETMUX_RESET 5

#define MBX_NETMUX_HEADER 8u
#define MBX_NETMUX_MAX_DATA 16384u
#define MBX_NETMUX_MAX_FRAME (MBX_NETMUX_HEADER + MBX_NETMUX_MAX_DATA)
/* Credit per stream and direction. */
#define MBX_NETMUX_WINDOW (64u * 1024u)
/* Streams open at once; the host resets an OPEN beyond its own limit. */
#define MBX_NETMUX_MAX_STREAMS 64u

struct mbx_netmux_frame {
	uint8_t type;
	uint16_t len;
	uint32_t id;
	const uint8_t *data; /* into the buffer parsed */
};

/*
 * Reads one frame from buf[0, len). Returns the frame's size with *f
 * filled, 0 when more bytes are needed, -1 when the header breaks the
 * rules that need no stream state (*why says which).
 */
static inline long mbx_netmux_parse(const uint8_t *buf, size_t len, struct mbx_netmux_frame *f, const char **why)
{
	size_t flen;

	if (len < MBX_NETMUX_HEADER)
		return 0;
	f->type = buf[0];
	f->len = (uint16_t)((unsigned)buf[2] << 8 | buf[3]);
	f->id = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 | (uint32_t)buf[6] << 8 | buf[7];
	f->data = buf + MBX_NETMUX_HEADER;
	if (buf[1] != 0) {
		*why = "a frame's reserved byte is not zero";
		return -1;
	}
	if (f->id == 0) {
		*why = "a frame names stream 0";
		return -1;
	}
	switch (f->type) {
	case MBX_NETMUX_OPEN:
	case MBX_NETMUX_CLOSE:
	case MBX_NETMUX_RESET:
		if (f->len != 0) {
			*why = "an OPEN, CLOSE or RESET frame carries data";
			return -1;
		}
		break;
	case MBX_NETMUX_DATA:
		if (f->len == 0 || f->len > MBX_NETMUX_MAX_DATA) {
			*why = "a DATA frame is empty or over the frame size";
			return -1;
		}
		break;
	case MBX_NETMUX_CREDIT:
		if (f->len != 4) {
			*why = "a CREDIT frame is not 4 bytes";
			return -1;
		}
		break;
	default:
		*why = "a frame of unknown type";
		return -1;
	}
	flen = MBX_NETMUX_HEADER + f->len;
	return len < flen ? 0 : (long)flen;
}

/* Writes a header into out[0, 8). */
static inline void mbx_netmux_header(uint8_t *out, uint8_t type, uint32_t id, uint16_t len)
{
	out[0] = type;
	out[1] = 0;
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	out[4] = (uint8_t)(id >> 24);
	out[5] = (uint8_t)(id >> 16);
	out[6] = (uint8_t)(id >> 8);
	out[7] = (uint8_t)id;
}

static inline uint32_t mbx_netmux_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
