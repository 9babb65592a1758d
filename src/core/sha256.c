/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 as specified in FIPS 180-4, section 6.2. */
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_PATH 1
#endif

#include "sha256.h"

static const uint32_t k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void compress(uint32_t h[8], const uint8_t p[64])
{
	uint32_t w[64], a, b, c, d, e, f, g, hh;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++) {
		uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);

		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (i = 0; i < 64; i++) {
		uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
		uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));

		hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

#ifdef HAVE_SHA_NI_PATH
/*
 * The same compression with the x86 SHA extensions (Intel SHA-NI, on most
 * x86-64 CPUs since 2017): about 8x the portable code, which matters for
 * the wasm module cache (src/backend/wasm/cache.c), whose entries, often
 * megabytes of compiled code, are MAC-checked on every load. The state
 * lives in two registers as (A,B,E,F) and (C,D,G,H), the layout
 * sha256rnds2 works on; each step does four rounds.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_ni(uint32_t h[8], const uint8_t p[64])
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
	__m128i dcba = _mm_loadu_si128((const __m128i *)&h[0]);
	__m128i hgfe = _mm_loadu_si128((const __m128i *)&h[4]);
	__m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
	__m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
	__m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
	__m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
	__m128i abef0 = abef, cdgh0 = cdgh, w[16], msg, t;

	for (int i = 0; i < 16; i++) {
		if (i < 4)
			w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
		else
			w[i] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(w[i - 4], w[i - 3]),
								  _mm_alignr_epi8(w[i - 1], w[i - 2], 4)),
						    w[i - 1]);
		msg = _mm_add_epi32(w[i], _mm_loadu_si128((const __m128i *)&k[4 * i]));
		cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
		msg = _mm_shuffle_epi32(msg, 0x0E);
		abef = _mm_sha256rnds2_epu32(abef, cdgh, msg);
	}
	abef = _mm_add_epi32(abef, abef0);
	cdgh = _mm_add_epi32(cdgh, cdgh0);
	t = _mm_shuffle_epi32(abef, 0x1B);           /* F E B A */
	cdgh = _mm_shuffle_epi32(cdgh, 0xB1);        /* D C H G */
	dcba = _mm_blend_epi16(t, cdgh, 0xF0);       /* D C B A */
	hgfe = _mm_alignr_epi8(cdgh, t, 8);          /* H G F E */
	_mm_storeu_si128((__m128i *)&h[0], dcba);
	_mm_storeu_si128((__m128i *)&h[4], hgfe);
}

/* 1 when the CPU has SHA-NI (with SSSE3 and SSE4.1), 0 when not; asked once. */
static int cpu_sha_ni(void)
{
	static int known = -1;
	int v = __atomic_load_n(&known, __ATOMIC_RELAXED);
	unsigned a, b, c, d;

	if (v >= 0)
		return v;
	v = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) && (c & (1u << 19)) &&
	    __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
	__atomic_store_n(&known, v, __ATOMIC_RELAXED);
	return v;
}
#endif

/* The accelerated path is used when the CPU has it, unless a test turned
 * it off (mbx__sha256_set_accel). */
static int accel_allowed = 1;

int mbx__sha256_set_accel(int on)
{
	__atomic_store_n(&accel_allowed, on, __ATOMIC_RELAXED);
#ifdef HAVE_SHA_NI_PATH
	return on && cpu_sha_ni();
#else
	return 0;
#endif
}

static void compress_blocks(uint32_t h[8], const uint8_t *p, size_t blocks)
{
#ifdef HAVE_SHA_NI_PATH
	if (__atomic_load_n(&accel_allowed, __ATOMIC_RELAXED) && cpu_sha_ni()) {
		for (; blocks > 0; blocks--, p += 64)
			compress_ni(h, p);
		return;
	}
#endif
	for (; blocks > 0; blocks--, p += 64)
		compress(h, p);
}

void mbx__sha256_init(struct mbx_sha256 *s)
{
	static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
					0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };

	memcpy(s->h, iv, sizeof(iv));
	s->bytes = 0;
	s->used = 0;
}

void mbx__sha256_update(struct mbx_sha256 *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->bytes += len;
	if (s->used) {
		size_t take = 64 - s->used < len ? 64 - s->used : len;

		memcpy(s->block + s->used, p, take);
		s->used += take;
		p += take;
		len -= take;
		if (s->used < 64)
			return;
		compress_blocks(s->h, s->block, 1);
		s->used = 0;
	}
	compress_blocks(s->h, p, len / 64);
	p += len & ~(size_t)63;
	len &= 63;
	memcpy(s->block, p, len);
	s->used = len;
}

void mbx__sha256_final(struct mbx_sha256 *s, uint8_t out[32])
{
	uint64_t bits = s->bytes * 8;
	int i;

	s->block[s->used++] = 0x80;
	if (s->used > 56) {
		memset(s->block + s->used, 0, 64 - s->used);
		compress_blocks(s->h, s->block, 1);
		s->used = 0;
	}
	memset(s->block + s->used, 0, 56 - s->used);
	for (i = 0; i < 8; i++)
		s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	compress_blocks(s->h, s->block, 1);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
}

void mbx__sha256(const void *data, size_t len, uint8_t out[32])
{
	struct mbx_sha256 s;

	mbx__sha256_init(&s);
	mbx__sha256_update(&s, data, len);
	mbx__sha256_final(&s, out);
}

/* ---- HMAC-SHA256 (RFC 2104, FIPS 198-1) ---- */

void mbx__hmac_sha256_init(struct mbx_hmac_sha256 *h, const void *key, size_t keylen)
{
	uint8_t k0[64], pad[64];

	/* A key longer than the block is hashed first; shorter ones are
	 * padded with zeros to the block size. */
	memset(k0, 0, sizeof(k0));
	if (keylen > sizeof(k0))
		mbx__sha256(key, keylen, k0);
	else if (keylen > 0)
		memcpy(k0, key, keylen);
	for (int i = 0; i < 64; i++)
		pad[i] = k0[i] ^ 0x36;
	mbx__sha256_init(&h->inner);
	mbx__sha256_update(&h->inner, pad, sizeof(pad));
	for (int i = 0; i < 64; i++)
		pad[i] = k0[i] ^ 0x5c;
	mbx__sha256_init(&h->outer);
	mbx__sha256_update(&h->outer, pad, sizeof(pad));
	memset(k0, 0, sizeof(k0));
	memset(pad, 0, sizeof(pad));
}

void mbx__hmac_sha256_update(struct mbx_hmac_sha256 *h, const void *data, size_t len)
{
	mbx__sha256_update(&h->inner, data, len);
}

void mbx__hmac_sha256_final(struct mbx_hmac_sha256 *h, uint8_t out[32])
{
	uint8_t inner[32];

	mbx__sha256_final(&h->inner, inner);
	mbx__sha256_update(&h->outer, inner, sizeof(inner));
	mbx__sha256_final(&h->outer, out);
	memset(h, 0, sizeof(*h));
}

void mbx__hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32])
{
	struct mbx_hmac_sha256 h;

	mbx__hmac_sha256_init(&h, key, keylen);
	mbx__hmac_sha256_update(&h, data, len);
	mbx__hmac_sha256_final(&h, out);
}

int mbx__digest_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	uint8_t diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}
