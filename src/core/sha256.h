/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), incremental. Used for
 * the compiled-module cache. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mbx_sha256 {
	uint32_t h[8];
	uint64_t bytes;   /* total length so far */
	uint8_t block[64];
	size_t used;      /* bytes waiting in `block` */
};

void mbx__sha256_init(struct mbx_sha256 *s);
void mbx__sha256_update(struct mbx_sha256 *s, const void *data, size_t len);
void mbx__sha256_final(struct mbx_sha256 *s, uint8_t out[32]);
/* One-shot digest. */
void mbx__sha256(const void *data, size_t len, uint8_t out[32]);
/* Allows (1) or forbids (0) the CPU's SHA instructions (x86 SHA-NI) where
 * present; returns whether they are used now. For tests of both paths. */
int mbx__sha256_set_accel(int on);

/* HMAC-SHA256 with a key of any length (RFC 2104; vectors in RFC 4231). */
struct mbx_hmac_sha256 {
	struct mbx_sha256 inner, outer;
};

void mbx__hmac_sha256_init(struct mbx_hmac_sha256 *h, const void *key, size_t keylen);
void mbx__hmac_sha256_update(struct mbx_hmac_sha256 *h, const void *data, size_t len);
/* Writes the MAC and wipes the state. */
void mbx__hmac_sha256_final(struct mbx_hmac_sha256 *h, uint8_t out[32]);
void mbx__hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]);

/* 1 when the two digests are equal, in time independent of where they differ. */
int mbx__digest_equal(const uint8_t *a, const uint8_t *b, size_t len);
