;; SPDX-License-Identifier: Apache-2.0
;; Test module: does nothing (the benchmarks' module).
(module
  (memory (export "memory") 1)
  (func (export "_start")))
