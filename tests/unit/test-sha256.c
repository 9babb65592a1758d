/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 against the FIPS 180-4 example vectors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "tap.h"

static void hex(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const char *msg, size_t len, const char *want)
{
	uint8_t d[32];
	char h[65];

	mbx__sha256(msg, len, d);
	hex(d, h);
	TAP_CHECK_STR(h, want);
}

static void test_vectors(void)
{
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	      112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a_in_pieces(void)
{
	struct mbx_sha256 s;
	char *a = malloc(1000000);
	uint8_t d[32];
	char h[65];
	size_t off = 0, step = 1;

	memset(a, 'a', 1000000);
	mbx__sha256_init(&s);
	/* Uneven pieces cross every block boundary case. */
	while (off < 1000000) {
		size_t n = 1000000 - off < step ? 1000000 - off : step;

		mbx__sha256_update(&s, a + off, n);
		off += n;
		step = step * 7 % 131 + 1;
	}
	mbx__sha256_final(&s, d);
	hex(d, h);
	TAP_CHECK_STR(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

/* HMAC-SHA256 against the test cases of RFC 4231, section 4. */
static void hmac_check(const uint8_t *key, size_t keylen, const char *data, size_t len, const char *want, size_t wantlen)
{
	struct mbx_hmac_sha256 h;
	uint8_t d[32], d2[32];
	char hx[65];

	mbx__hmac_sha256(key, keylen, data, len, d);
	hex(d, hx);
	hx[wantlen] = '\0'; /* test case 5 checks the first 128 bits only */
	TAP_CHECK_STR(hx, want);
	/* The same in pieces. */
	mbx__hmac_sha256_init(&h, key, keylen);
	for (size_t i = 0; i < len; i += 7)
		mbx__hmac_sha256_update(&h, data + i, len - i < 7 ? len - i : 7);
	mbx__hmac_sha256_final(&h, d2);
	TAP_CHECK(mbx__digest_equal(d, d2, 32));
}

static void test_hmac_rfc4231(void)
{
	uint8_t k0b[20], kaa[131], k25[25], k0c[20];
	char dd[50], cd[50];

	memset(k0b, 0x0b, sizeof(k0b));
	memset(kaa, 0xaa, sizeof(kaa));
	memset(k0c, 0x0c, sizeof(k0c));
	for (int i = 0; i < 25; i++)
		k25[i] = (uint8_t)(i + 1);
	memset(dd, 0xdd, sizeof(dd));
	memset(cd, 0xcd, sizeof(cd));
	/* 1 */
	hmac_check(k0b, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 64);
	/* 2: a key shorter than the output */
	hmac_check((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 64);
	/* 3, 4: combined lengths above one block */
	hmac_check(kaa, 20, dd, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 64);
	hmac_check(k25, 25, cd, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 64);
	/* 5: truncated to 128 bits */
	hmac_check(k0c, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b", 32);
	/* 6, 7: a key longer than the block is hashed first */
	hmac_check(kaa, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 64);
	hmac_check(kaa, 131,
		   "This is a test using a larger than block-size key and a larger than block-size data. The key "
		   "needs to be hashed before being used by the HMAC algorithm.", 152,
		   "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 64);
}

static void test_digest_equal(void)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 };

	TAP_CHECK(mbx__digest_equal(a, b, 32));
	b[31] = 1;
	TAP_CHECK(!mbx__digest_equal(a, b, 32));
	b[31] = 0;
	b[0] = 0x80;
	TAP_CHECK(!mbx__digest_equal(a, b, 32));
}

/* The same vectors with the CPU's SHA instructions forbidden: the portable
 * code is checked even where the accelerated path is normally used. */
static void test_portable_path(void)
{
	mbx__sha256_set_accel(0);
	test_vectors();
	test_million_a_in_pieces();
	test_hmac_rfc4231();
	mbx__sha256_set_accel(1);
}

/* Both paths give the same digest for every length around the block
 * boundaries and for a large input fed in uneven pieces. */
static void test_paths_agree(void)
{
	size_t big = 300000;
	uint8_t *data = malloc(big), a[32], b[32];
	uint32_t x = 2463534242u;
	int same = 1;

	if (!mbx__sha256_set_accel(1)) {
		free(data);
		TAP_NOT_APPLICABLE("this CPU has no SHA instructions: only the portable path exists");
	}
	for (size_t i = 0; i < big; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		data[i] = (uint8_t)x;
	}
	for (size_t len = 0; len <= 300; len++) {
		mbx__sha256_set_accel(0);
		mbx__sha256(data, len, a);
		mbx__sha256_set_accel(1);
		mbx__sha256(data, len, b);
		same &= memcmp(a, b, 32) == 0;
	}
	TAP_CHECK(same);
	mbx__sha256_set_accel(0);
	mbx__sha256(data, big, a);
	mbx__sha256_set_accel(1);
	{
		struct mbx_sha256 s;
		size_t off = 0, step = 3;

		mbx__sha256_init(&s);
		while (off < big) {
			size_t n = big - off < step ? big - off : step;

			mbx__sha256_update(&s, data + off, n);
			off += n;
			step = step * 13 % 4099 + 1;
		}
		mbx__sha256_final(&s, b);
	}
	TAP_CHECK(memcmp(a, b, 32) == 0);
	free(data);
}

static const struct tap_case cases[] = {
	{ "sha256/vectors", test_vectors },
	{ "sha256/portable-path", test_portable_path },
	{ "sha256/accelerated-path-agrees", test_paths_agree },
	{ "sha256/million-a-in-pieces", test_million_a_in_pieces },
	{ "sha256/hmac-rfc4231", test_hmac_rfc4231 },
	{ "sha256/digest-equal", test_digest_equal },
};

TAP_MAIN(cases)
