#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Python quick start of the README, runnable:

    python3 python/examples/quickstart.py
"""
from mimobox import Sandbox

with Sandbox(isolation="auto", timeout=10) as sb:
    r = sb.execute_code("print(sum(range(10)))")
    print(r.stdout, end="")                       # 45
    sb.write_file("hello.txt", "hi from the host\n")
    print(sb.execute("cat hello.txt").stdout, end="")
    print([e.name for e in sb.files.list("/workspace")])
    for ev in sb.stream_execute(["sh", "-c", "echo one; sleep 0.2; echo two"]):
        print(ev.kind, ev.data)
