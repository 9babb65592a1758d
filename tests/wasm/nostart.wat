;; SPDX-License-Identifier: Apache-2.0
;; Test module: a library without `_start` (not a WASI command).
(module
  (func (export "add") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1))))
