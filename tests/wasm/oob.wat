;; SPDX-License-Identifier: Apache-2.0
;; Test module: traps on a load past the end of its one-page memory.
(module
  (memory 1)
  (func (export "_start")
    (drop (i32.load (i32.const 70000)))))
