;; SPDX-License-Identifier: Apache-2.0
;; Test module: grows its memory one 64 KiB page at a time until
;; memory.grow fails, then exits with status 3 through proc_exit (a clean
;; failure, as a C program whose malloc returned NULL). Pages reached: the
;; exit code is 3; the page count is written to stdout as 4 bytes.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $pages i32)
    (block $done
      (loop $more
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (local.set $pages (i32.add (local.get $pages) (i32.const 1)))
        (br $more)))
    (i32.store (i32.const 16) (local.get $pages))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 4))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 3))))
