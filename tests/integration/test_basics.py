# SPDX-License-Identifier: Apache-2.0
"""Round trips through `mimobox run`: output, quoting, exit codes, signals
and the JSON result."""
import secrets

import pytest

# Every test here runs on each backend with an agent (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


def test_echo_round_trip(cli):
    token = "hello-" + secrets.token_hex(8)
    r = cli.run("--", "echo", token, "two words", "ünïcødé")
    assert r.rc == 0, r
    assert r.stdout == ("%s two words ünïcødé\n" % token).encode(), r
    assert r.stderr == "", r

    r, res = cli.json("--", "echo", token)
    assert r.rc == 0, r
    assert res["stdout"] == token + "\n"
    assert res["exit_code"] == 0 and res["signal"] == 0 and res["timed_out"] is False
    assert res["isolation"] == cli.backend


def test_stderr_is_kept_apart(cli):
    r, res = cli.json("--", "sh", "-c", "echo out; echo err >&2")
    assert res["stdout"] == "out\n" and res["stderr"] == "err\n", res


def test_command_quoting(cli):
    r = cli.run("--command", "printf '%s|' 'a b' c")
    assert r.rc == 0, r
    assert r.stdout == b"a b|c|", r


def test_command_has_no_shell(cli):
    # --command splits words; `|` and `>` are plain arguments, not a shell.
    r = cli.run("--command", 'echo "x  y" | tr > nowhere')
    assert r.rc == 0, r
    assert r.stdout == b"x  y | tr > nowhere\n", r


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_codes(cli, code):
    r = cli.run("--", "sh", "-c", "exit %d" % code)
    assert r.rc == code, r
    r, res = cli.json("--", "sh", "-c", "exit %d" % code)
    assert r.rc == code, r
    assert res["exit_code"] == code and res["signal"] == 0 and res["timed_out"] is False, res


@pytest.mark.parametrize("name,num", [("TERM", 15), ("KILL", 9)])
def test_killed_by_signal(cli, name, num):
    r = cli.run("--", "sh", "-c", "kill -%s $$; sleep 5" % name)
    assert r.rc == 128 + num, r
    r, res = cli.json("--", "sh", "-c", "kill -%s $$; sleep 5" % name)
    assert r.rc == 128 + num, r
    assert res["signal"] == num, res
    assert res["exit_code"] is None, res
    assert res["timed_out"] is False and res["oom_killed"] is False, res


def test_json_result_keys(cli):
    r, res = cli.json("--", "sh", "-c", "echo o; echo e >&2; exit 7")
    types = {
        "exit_code": int, "signal": int, "timed_out": bool, "stdout": str, "stderr": str,
        "stdout_truncated": bool, "stderr_truncated": bool, "elapsed_ms": (int, float),
        "peak_memory_bytes": int, "cpu_time_ms": (int, float), "isolation": str,
    }
    for key, t in types.items():
        assert key in res, "key %s missing from %s" % (key, res)
        assert isinstance(res[key], t), "%s=%r is not %s" % (key, res[key], t)
    assert res["exit_code"] == 7 and res["stdout"] == "o\n" and res["stderr"] == "e\n"
    assert res["stdout_truncated"] is False and res["stderr_truncated"] is False
    assert res["elapsed_ms"] > 0 and res["peak_memory_bytes"] > 0 and res["cpu_time_ms"] >= 0
    assert res["isolation"] == cli.backend
