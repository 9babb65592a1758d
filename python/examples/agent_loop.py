#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An agent tool loop: a model writes code, the sandbox runs it, the output
goes back to the model, until the model answers.

Framework-neutral and offline: `ScriptedModel` stands in for the model
call. To use a real model, replace `ScriptedModel.complete()` with a call to
your provider that returns either {"tool": "run_python", "code": ...} or
{"answer": ...} (most providers' tool-calling APIs map onto this directly).

    python3 python/examples/agent_loop.py
"""
import json
import sys
from typing import Any, Dict, List

from mimobox import Sandbox, SandboxError

TOOLS = [{
    "name": "run_python",
    "description": "Run Python 3 code in an isolated sandbox. The working directory /workspace persists "
                   "between calls. Returns stdout, stderr and the exit code.",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]},
}]

MAX_OUTPUT = 4000  # characters of each stream handed back to the model


class ScriptedModel:
    """Plays the model's part with canned turns, reacting to the tool
    results it is given (so the loop really depends on what ran)."""

    def __init__(self) -> None:
        self.turn = 0

    def complete(self, messages: List[Dict[str, Any]], tools: List[Dict[str, Any]]) -> Dict[str, Any]:
        self.turn += 1
        last = messages[-1]
        if self.turn == 1:
            # First attempt has a bug: the model will see the traceback.
            return {"tool": "run_python", "code": "import csv\nrows = list(csv.reader(open('sales.csv')))\n"
                                                  "print(sum(int(r[1]) for r in rows))\n"}
        if self.turn == 2:
            assert last["role"] == "tool" and "ValueError" in last["content"], last
            # Fix: skip the header row, and keep the result in a file.
            return {"tool": "run_python", "code": "import csv\nrows = list(csv.reader(open('sales.csv')))[1:]\n"
                                                  "total = sum(int(r[1]) for r in rows)\n"
                                                  "open('total.txt', 'w').write(str(total))\nprint(total)\n"}
        result = json.loads(last["content"])
        return {"answer": "The total of the sales is %s." % result["stdout"].strip()}


def run_tool(sb: Sandbox, call: Dict[str, Any]) -> str:
    """Runs one tool call in the sandbox; returns the JSON the model sees."""
    if call["tool"] != "run_python":
        return json.dumps({"error": "unknown tool %r" % call["tool"]})
    try:
        r = sb.execute_code(call["code"], language="python3", timeout=10)
    except SandboxError as e:  # the sandbox could not run it at all
        return json.dumps({"error": e.code, "message": e.message})
    return json.dumps({
        "exit_code": r.exit_code,
        "timed_out": r.timed_out,
        "stdout": r.stdout[:MAX_OUTPUT],
        "stderr": r.stderr[-MAX_OUTPUT:],
    })


def agent(question: str, model: ScriptedModel, max_steps: int = 8) -> str:
    messages: List[Dict[str, Any]] = [{"role": "user", "content": question}]
    # One sandbox per conversation: files persist between tool calls; no
    # network, 256 MiB, 10 s per call.
    with Sandbox(isolation="auto", network="deny", memory_mb=256, timeout=10) as sb:
        sb.write_file("sales.csv", "region,amount\nnorth,120\nsouth,80\neast,42\n")
        for _ in range(max_steps):
            reply = model.complete(messages, TOOLS)
            if "answer" in reply:
                return reply["answer"]
            print("model runs:\n  " + reply["code"].rstrip().replace("\n", "\n  "))
            out = run_tool(sb, reply)
            print("sandbox says: " + out)
            messages.append({"role": "assistant", "tool_call": reply})
            messages.append({"role": "tool", "content": out})
        return "gave up after %d steps" % max_steps


if __name__ == "__main__":
    answer = agent("What is the total of the sales in sales.csv?", ScriptedModel())
    print("answer: " + answer)
    sys.exit(0 if "242" in answer else 1)
