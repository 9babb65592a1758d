/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 (FIPS 180-4), incremental. Used for the compiled-module cache. */
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
