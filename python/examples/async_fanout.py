#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""asyncio: several snippets in parallel, one sandbox each, and several
calls on one shared sandbox (run one after the other by the package).

    python3 python/examples/async_fanout.py
"""
import asyncio

from mimobox import AsyncSandbox

SNIPPETS = ["print(2 ** 10)", "import math; print(math.factorial(12))", "print(sum(range(1000)))"]


async def run_one(code: str) -> str:
    async with AsyncSandbox(isolation="os", timeout=10) as sb:
        r = await sb.execute_code(code)
        return r.stdout.strip()


async def main() -> None:
    print(await asyncio.gather(*(run_one(c) for c in SNIPPETS)))
    async with AsyncSandbox(isolation="os") as sb:
        await asyncio.gather(*(sb.write_file("n%d.txt" % i, str(i)) for i in range(5)))
        print([e.name for e in await sb.files.list()])


asyncio.run(main())
