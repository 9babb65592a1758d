;; SPDX-License-Identifier: Apache-2.0
;; Test module: asks for 64 MiB of memory up front (1024 pages).
(module
  (memory (export "memory") 1024)
  (func (export "_start")))
