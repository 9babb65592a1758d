/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the WebSocket frames a client of `mimobox serve` sends and
 * those a server sends the CLI (cli/ws.c: the server's reader and the
 * client's, each over the same input). The input is a byte stream cut into
 * reads at positions taken from its first byte; the reader must stay in bounds, never hand out more
 * than the message limit, give text only as UTF-8, and answer the same
 * events however the stream is cut.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "ws.h"

#define MAX_MESSAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds data in reads of `step` bytes (0: all at once); returns a digest of the events. */
static uint64_t run(const uint8_t *data, size_t size, size_t step, int client)
{
	struct ws_reader r;
	struct ws_event ev;
	uint8_t *buf = malloc(size ? size : 1);
	size_t have = 0, fed = 0, n;
	uint64_t digest = 1469598103934665603ull;

	if (!buf)
		return 0;
	if (client)
		ws_reader_init_client(&r, MAX_MESSAGE);
	else
		ws_reader_init(&r, MAX_MESSAGE);
	for (;;) {
		n = ws_reader_next(&r, buf, have, &ev);
		if (ev.kind == WS_EV_ERROR) {
			if (ev.code != WS_CLOSE_PROTOCOL && ev.code != WS_CLOSE_BAD_DATA && ev.code != WS_CLOSE_TOO_BIG)
				__builtin_trap();
			digest = (digest ^ (0x100u + ev.code)) * 1099511628211ull;
			break;
		}
		if (n > have || ev.len > MAX_MESSAGE)
			__builtin_trap();
		if (ev.kind == WS_EV_TEXT && !cli_utf8_valid(ev.data, ev.len))
			__builtin_trap();
		if (ev.kind == WS_EV_CLOSE && ev.code != WS_CLOSE_NO_STATUS && !ws_close_code_valid(ev.code))
			__builtin_trap();
		if (ev.kind != WS_EV_NONE) {
			digest = (digest ^ ev.kind) * 1099511628211ull;
			for (size_t i = 0; i < ev.len; i++)
				digest = (digest ^ ev.data[i]) * 1099511628211ull;
		}
		if (n > 0) {
			memmove(buf, buf + n, have - n);
			have -= n;
			continue;
		}
		if (fed == size)
			break;
		n = step && size - fed > step ? step : size - fed;
		memcpy(buf + have, data + fed, n);
		have += n;
		fed += n;
	}
	ws_reader_free(&r);
	free(buf);
	return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t step;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 17) + 1;
	for (int client = 0; client < 2; client++)
		if (run(data + 1, size - 1, 0, client) != run(data + 1, size - 1, step, client))
			__builtin_trap();
	return 0;
}
