;; SPDX-License-Identifier: Apache-2.0
;; Test module: imports a function no sandbox provides.
(module
  (import "env" "launch_missiles" (func $f))
  (func (export "_start") (call $f)))
