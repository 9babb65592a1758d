;; SPDX-License-Identifier: Apache-2.0
;; Test module: exits with the WASI errno of fd_prestat_get on descriptor 3,
;; 0 when the workspace is preopened there. Importing fd_prestat_get makes
;; it a module that reaches files: the wasm backend makes the sandbox's
;; workspace for it (the benchmarks' module for that path).
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (call $prestat (i32.const 3) (i32.const 16)))))
