/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The on-disk cache of compiled Wasm modules (see docs/wasm.md).
 *
 * An entry is one file named after its key, the hex SHA-256 of the module
 * bytes and the engine's configuration fingerprint. It holds a header (magic,
 * format version, key, payload length), the payload (Wasmtime's serialized
 * module) and an HMAC-SHA256 over both. Deserializing bytes Wasmtime did not
 * produce loads native code into this process, so an entry is only handed
 * out after its MAC, key and length check out, read from a file that is
 * regular, owned by us and not writable by others, in a 0700 directory owned
 * by us; anything else is removed and reported as invalid (the caller
 * compiles again).
 *
 * The MAC key is 32 random bytes of the user's, in a file of the private
 * state directory (mbx__wasm_cache_key_load), never in the cache directory:
 * whoever can write the cache (a sandbox given $HOME read-write, another
 * program of the user) still cannot make an entry we accept, since a plain
 * digest is no longer enough. Entries are written to a temporary file and
 * renamed into place, so concurrent readers and writers only ever see whole
 * entries (the last writer wins; every writer writes the same bytes).
 *
 * Pure file logic: no Wasmtime in here, so it is unit-tested alone.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define MBX_WASM_KEY_LEN 32
/* Largest payload accepted from the cache. */
#define MBX_WASM_CACHE_MAX (1ull << 30)

/* Length of the MAC key and of an entry's MAC. */
#define MBX_WASM_MAC_KEY_LEN 32

struct mbx_wasm_cache {
	char *dir; /* owned */
	uint8_t mac_key[MBX_WASM_MAC_KEY_LEN];
};

/* Outcome of a lookup besides errors. */
enum {
	MBX_WASM_CACHE_HIT = 0,
	MBX_WASM_CACHE_MISS = 1,    /* no entry */
	MBX_WASM_CACHE_INVALID = 2, /* an entry failed verification and was removed */
};

/* The key of a module: SHA-256 over the fingerprint, a NUL, the bytes. */
void mbx__wasm_cache_key(const uint8_t *module, size_t len, const char *fingerprint, uint8_t key[MBX_WASM_KEY_LEN]);

/*
 * Reads the MAC key from `path`, or makes it: 32 bytes from getrandom(),
 * written 0600 to a temporary file and linked into place, so a concurrent
 * maker's key wins whole or ours does. The file must be regular, ours, not
 * a symlink, without group/other access bits and exactly 32 bytes long;
 * anything else is an MBX_EPERM error naming it (it is not replaced: the
 * user removes it).
 */
int mbx__wasm_cache_key_load(const char *path, uint8_t key[MBX_WASM_MAC_KEY_LEN], mbx_error **err);

/* Opens (creating it 0700) the cache directory `dir`, checks it is a
 * directory owned by us that nobody else can write or list, and loads the
 * MAC key from `key_path`, which may not be inside `dir`. */
int mbx__wasm_cache_open(struct mbx_wasm_cache *c, const char *dir, const char *key_path, mbx_error **err);
void mbx__wasm_cache_close(struct mbx_wasm_cache *c);

/*
 * Looks `key` up. On MBX_WASM_CACHE_HIT, *buf (malloc'd, the caller frees
 * it) holds the entry and the verified payload is (*buf + *off, *len). On a
 * miss or an invalid entry *buf is NULL; `why` (may be NULL) receives a
 * static reason for an invalid one. Never fails: an unreadable cache is a
 * miss.
 */
int mbx__wasm_cache_load(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN], uint8_t **buf, size_t *off,
			 size_t *len, const char **why);

/* Writes the entry of `key` atomically. */
int mbx__wasm_cache_store(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN], const uint8_t *payload,
			  size_t len, mbx_error **err);

/* Removes the entry of `key` (after Wasmtime refused its payload). */
void mbx__wasm_cache_remove(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN]);

/* Path of the entry file of `key` into `out` (for tests and messages). */
void mbx__wasm_cache_path(const struct mbx_wasm_cache *c, const uint8_t key[MBX_WASM_KEY_LEN], char *out, size_t size);
