# SPDX-License-Identifier: Apache-2.0
"""Small WASI preview 1 modules in text form, written into a wasm sandbox's
/workspace by the tests (the backend runs .wat text as it is)."""

# Prints "hello from wasm\n" on stdout and "to stderr\n" on stderr, exits 7.
HELLO = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hello from wasm\n")
  (data (i32.const 96) "to stderr\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 16) (i32.const 96))
    (i32.store (i32.const 20) (i32.const 10))
    (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))
    (call $exit (i32.const 7))))
"""

# Never ends: for timeouts.
LOOP = r"""
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
"""

# Traps on `unreachable`.
TRAP = r"""
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
"""

# Copies stdin to stdout, then exits 0.
CAT = r"""
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 4096))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $done (i32.eqz (i32.load (i32.const 8))))
        (i32.store (i32.const 4) (i32.load (i32.const 8)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
        (br $more)))))
"""
