;; SPDX-License-Identifier: Apache-2.0
;; Test module: traps on an `unreachable` instruction.
(module
  (func (export "_start") unreachable))
