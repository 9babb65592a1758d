;; SPDX-License-Identifier: Apache-2.0
;; Test module: exits with the WASI errno of fd_fdstat_get on descriptor 3,
;; the first preopened directory when there is one: 0 when it is there, 8
;; (EBADF) when not. It imports no call that can name a path, so the wasm
;; backend runs it without a workspace while the sandbox has none on disk.
(module
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $fdstat (i32.const 3) (i32.const 16)))))
