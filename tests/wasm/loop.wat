;; SPDX-License-Identifier: Apache-2.0
;; Test module: an endless loop (stopped by the timeout).
(module
  (func (export "_start")
    (loop $forever (br $forever))))
