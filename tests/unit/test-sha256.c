/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 against the FIPS 180-4 example vectors. */
#include <stdio.h>
#include <stdlib.h>

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

static const struct tap_case cases[] = {
	{ "sha256/vectors", test_vectors },
	{ "sha256/million-a-in-pieces", test_million_a_in_pieces },
};

TAP_MAIN(cases)
