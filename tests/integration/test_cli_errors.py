# SPDX-License-Identifier: Apache-2.0
"""Bad inputs to `mimobox run`: the documented exit status (125 for wrong
arguments or no sandbox, 126 not executable, 127 not found), a useful
message on stderr, and nothing left behind (the guard fixture checks the
state directory, processes and cgroups after each test)."""
import json
import os

import pytest

# (id, arguments after `run`, exit status, words the message must contain)
CASES = [
    ("empty-argv", ["--"], 125, ["program"]),
    ("no-arguments", [], 125, ["program"]),
    ("empty-program", ["--", ""], 125, ["empty"]),
    ("unknown-option", ["--frobnicate", "--", "true"], 125, ["--frobnicate"]),
    ("option-without-value", ["--timeout"], 125, ["--timeout"]),
    ("missing-program", ["--", "no-such-program-xyz"], 127, ["no-such-program-xyz"]),
    ("missing-program-path", ["--", "/usr/bin/no-such-program-xyz"], 127, ["/usr/bin/no-such-program-xyz"]),
    ("directory-as-program", ["--", "/usr"], 126, ["/usr"]),
    ("not-executable", ["--", "/etc/passwd"], 126, ["/etc/passwd"]),
    ("env-ld-preload", ["--env", "LD_PRELOAD=/tmp/x.so", "--", "true"], 125, ["LD_PRELOAD"]),
    ("env-ld-library-path", ["--env", "LD_LIBRARY_PATH=/tmp", "--", "true"], 125, ["LD_LIBRARY_PATH"]),
    ("env-bash-env", ["--env", "BASH_ENV=/tmp/x", "--", "true"], 125, ["BASH_ENV"]),
    ("env-bash-func", ["--env", "BASH_FUNC_ls%%=() { :; }", "--", "true"], 125, ["BASH_FUNC_ls%%"]),
    ("env-no-equals", ["--env", "NOVALUE", "--", "true"], 125, ["NOVALUE"]),
    ("timeout-zero", ["--timeout", "0", "--", "true"], 125, ["timeout"]),
    ("timeout-negative", ["--timeout", "-1", "--", "true"], 125, ["timeout"]),
    ("timeout-not-numeric", ["--timeout", "abc", "--", "true"], 125, ["timeout", "abc"]),
    ("timeout-trailing-junk", ["--timeout", "5s", "--", "true"], 125, ["timeout"]),
    ("memory-zero", ["--memory", "0", "--", "true"], 125, ["memory"]),
    ("memory-negative", ["--memory", "-5", "--", "true"], 125, ["memory"]),
    ("max-procs-zero", ["--max-procs", "0", "--", "true"], 125, ["max-procs"]),
    ("mount-missing-source", ["--mount", "/nonexistent-mbx-src:/data", "--", "true"], 125, ["/nonexistent-mbx-src"]),
    ("mount-relative-target", ["--mount", "/usr:data", "--", "true"], 125, ["data"]),
    ("mount-bad-mode", ["--mount", "/usr:/data:rx", "--", "true"], 125, ["rx"]),
    ("mount-under-proc", ["--mount", "/usr:/proc/x", "--", "true"], 125, ["/proc"]),
    ("bad-isolation", ["--isolation", "docker", "--", "true"], 125, ["isolation", "docker"]),
    ("bad-trust", ["--trust", "paranoid", "--", "true"], 125, ["trust", "paranoid"]),
    ("bad-network", ["--network", "some", "--", "true"], 125, ["network", "some"]),
    ("command-and-program", ["--command", "echo a", "--", "echo", "b"], 125, ["--command"]),
    ("unterminated-quote", ["--command", "echo 'oops"], 125, ["quote"]),
]


@pytest.mark.parametrize("args,status,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(cli, args, status, words):
    r = cli.run(*args, timeout=30)
    assert r.rc == status, r
    assert r.stdout == b"", r
    msg = r.stderr
    assert msg.startswith("mimobox: error: "), r
    assert len(msg.strip()) > len("mimobox: error: ") + 10, r
    for w in words:
        assert w.lower() in msg.lower(), "message does not mention %r: %s" % (w, msg)
    if status == 125 and "quote" not in words:
        # Refused before any sandbox was made (--command's quoting is only
        # checked once the sandbox exists, which is fine as long as it goes).
        assert not r.ids, "a sandbox was created for a bad input: %s" % r.log


@pytest.mark.parametrize("backend", ["wasm", "microvm"])
def test_unavailable_backend(cli, doctor, microvm_runs, backend):
    if backend == "wasm" and doctor["backends"][backend]["available"]:
        pytest.skip("the %s backend is available in this build" % backend)
    if backend == "microvm" and microvm_runs:
        pytest.skip("the %s backend runs here" % backend)
    r = cli.run("--isolation", backend, "--", "true", timeout=30)
    assert r.stdout == b"", r
    assert not r.ids, r.log
    if backend == "microvm" and "guest assets" in r.stderr:
        # Without its guest assets the backend says where it looked and
        # how to build them (MBX_ENOTFOUND, docs/microvm.md).
        assert r.rc == 127 and "mimobox setup vm" in r.stderr, r
        return
    assert r.rc == 125, r
    assert backend in r.stderr and "unavailable" in r.stderr, r


@pytest.mark.parametrize("args,code", [
    (["--timeout", "0", "--", "true"], "invalid_argument"),
    (["--mount", "/nonexistent-mbx-src:/data", "--", "true"], "not_found"),
    (["--", "no-such-program-xyz"], "not_found"),
], ids=["usage", "mount", "not-found"])
def test_bad_input_json(cli, args, code):
    r = cli(["run", "--json"] + args, timeout=30)
    assert r.rc in (125, 127), r
    res = json.loads(r.out)
    assert res["ok"] is False, res
    assert res["error"]["code"] == code, res
    assert res["error"]["message"], res


def test_untrusted_with_auto_isolation_fails_closed(cli, host_tmp, microvm_runs):
    if microvm_runs:
        pytest.skip("this build has a microVM backend: untrusted has somewhere to go")
    os.chmod(host_tmp, 0o777)  # writable for the sandbox of a root caller too
    marker = os.path.join(host_tmp, "ran")
    cmd = ["--mount", host_tmp + ":/out:rw", "--", "sh", "-c", "touch /out/ran"]
    r = cli.run("--trust", "untrusted", *cmd, timeout=30)
    # Refused, naming the backend untrusted code needs (unavailable here,
    # or unable to share the mount with a guest).
    assert r.rc == 125, r
    assert "microvm" in r.stderr.lower() or ("untrusted" in r.stderr and "unavailable" in r.stderr), r
    assert not os.path.exists(marker), "the command ran although untrusted had no microVM"
    assert not r.ids, "a sandbox was created: %s" % r.log
    # Control: with the os backend chosen explicitly the same command runs
    # and the marker appears, so its absence above means something.
    r = cli.run("--trust", "untrusted", "--isolation", "os", *cmd, timeout=30)
    assert r.rc == 0, r
    assert os.path.exists(marker)


def test_missing_workdir_is_a_clear_error(cli):
    r = cli.run("--workdir", "/no/such/dir", "--", "pwd", timeout=30)
    assert r.stdout == b"", r
    assert "/no/such/dir" in r.stderr and "working directory" in r.stderr, r
    # 127 means "program not found"; the program (pwd) exists. A bad
    # argument is 125 by the CLI's own usage text.
    assert r.rc == 125, "missing --workdir exits %d: %s" % (r.rc, r.stderr.strip())


def test_missing_relative_workdir_names_the_resolved_path(cli):
    # A relative --workdir is taken below /workspace.
    r = cli.run("--workdir", "relative/dir", "--", "pwd", timeout=30)
    assert r.rc != 0 and r.stdout == b"", r
    assert "/workspace/relative/dir" in r.stderr, r


def test_unknown_verb(cli):
    r = cli(["frobnicate"], timeout=30)
    assert r.rc == 125, r
    assert "frobnicate" in r.stderr, r


# `..` is refused wherever it appears; the message names the path as given.
# (The message used to be formatted from freed memory: the ASan stage runs
# these with the ASan CLI.)
@pytest.mark.parametrize("workdir", ["a/..", "..", "./..", "a/../b", "/workspace/..", "/tmp/../etc", "a/b/../../.."])
def test_workdir_dotdot(cli, workdir):
    r = cli.run("--workdir", workdir, "--", "pwd", timeout=30)
    assert r.rc == 125 and r.stdout == b"", r
    assert "`%s` contains `..`" % workdir in r.stderr and "--workdir" in r.stderr, r
    assert not r.ids, r.log


@pytest.mark.parametrize("workdir,want", [
    ("./", "/workspace"),
    (".", "/workspace"),
    ("//workspace//./", "/workspace"),
    ("/tmp/./", "/tmp"),
    ("/./tmp//", "/tmp"),
])
def test_workdir_normalised(cli, workdir, want):
    r = cli.run("--workdir", workdir, "--", "pwd", timeout=30)
    assert r.rc == 0 and r.out == want + "\n", r
