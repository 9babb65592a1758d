# SPDX-License-Identifier: Apache-2.0
"""Named sandboxes that outlive the CLI: `create`, `exec`, `shell`, `ps`,
`cat`, `write`, `ls`, `stat`, `cp` and `rm`, end to end.

Each test removes what it created (the `named` fixture removes anything
left); the guard fixture then checks that no process, state directory or
cgroup remains. Supervisors are daemons, so they are orphans adopted by
this pytest process (a child subreaper): the guard sees them too.
"""
import fcntl
import json
import os
import pty
import re
import secrets
import select
import shutil
import signal
import stat
import struct
import subprocess
import termios
import time

import pytest

from conftest import HELPERS, USER_FILES, descendants, must_work_skip, proc_table, procs_with_arg, reap_zombies, unique_sleep_arg

# Every test here runs on each backend with an agent (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


def state_entries(cli):
    """The state directory's sandbox entries (not the user's own files)."""
    return sorted(e for e in os.listdir(cli.guard.state_dir) if e not in USER_FILES)


def registry(cli):
    return os.path.join(cli.guard.state_dir, "named")


def ps(cli):
    r = cli(["ps", "--json"])
    assert r.rc == 0, r
    return {s["name"]: s for s in r.json["sandboxes"]}


def alive(pid):
    """True while `pid` runs (a zombie does not count)."""
    reap_zombies()
    entry = proc_table().get(pid)
    return entry is not None and entry[1] != "Z"


def wait_until(cond, timeout=10, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def subtree(pid):
    """Live pids below `pid` (the sandbox's agent and its processes)."""
    return list(descendants(pid))


@pytest.fixture
def named(cli):
    """Creates named sandboxes with `mimobox create` and removes the ones a
    test leaves."""
    made = []

    def create(*args, name=None):
        words = ["create"] + list(args)
        if name is None:
            name = "t-" + secrets.token_hex(4)
        if name:
            words += ["--name", name]
        r = cli(words)
        # The whole error (a guest's console tail can be long).
        assert r.rc == 0, "%r failed (%d): %s" % (words, r.rc, r.stderr)
        got = r.out.strip()
        made.append(got)
        return got

    yield create
    # Whatever a test left (made here or not) goes.
    for name in ps(cli):
        cli(["rm", name])


# ---------------------------------------------------------------------------
# create, ps, rm


def test_create_exec_ps_rm(cli, named):
    r = cli(["create", "--name", "box-1"])
    assert r.rc == 0 and r.out == "box-1\n", r
    assert len(r.ids) == 1, "create reports the library's log lines: %r" % r.log
    # create returned at once: the sandbox lives on in its supervisor.
    entries = ps(cli)
    assert list(entries) == ["box-1"], entries
    e = entries["box-1"]
    assert e["id"] == r.ids[0] and e["isolation"] == cli.backend and e["state"] == "ready", e
    assert 0 <= e["age_s"] < 60 and alive(e["pid"]), e
    text = cli(["ps"])
    assert text.rc == 0 and re.search(r"^box-1\s+%s\s+\d+s\s+-\s+ready$" % cli.backend, text.out, re.M), text

    r = cli(["exec", "box-1", "--", "sh", "-c", "echo out; echo err >&2; exit 3"])
    assert r.rc == 3 and r.stdout == b"out\n" and r.stderr == "err\n", r

    # The registry: a 0700 directory with a 0600 socket and the metadata.
    reg = registry(cli)
    assert stat.S_IMODE(os.stat(reg).st_mode) == 0o700
    assert stat.S_IMODE(os.lstat(os.path.join(reg, "box-1.sock")).st_mode) == 0o600
    with open(os.path.join(reg, "box-1.info")) as f:
        info = dict(line.split("=", 1) for line in f.read().splitlines())
    assert info["name"] == "box-1" and info["id"] == e["id"] and int(info["pid"]) == e["pid"], info

    r = cli(["rm", "box-1"])
    assert r.rc == 0 and r.stdout == b"" and r.stderr == "", r
    assert ps(cli) == {}
    assert not os.path.exists(reg), "the emptied registry directory stays"


def test_create_without_name_uses_the_id(cli, named):
    r = cli(["create", "--json"])
    assert r.rc == 0, r
    j = r.json
    assert j["ok"] is True and j["name"] == j["id"] and re.fullmatch(r"[0-9a-f]{16}", j["id"]), j
    assert j["isolation"] == cli.backend and r.ids == [j["id"]], r
    assert cli(["exec", j["id"], "--", "true"]).rc == 0
    assert cli(["rm", j["id"]]).rc == 0
    assert ps(cli) == {}


def test_create_takes_run_options(cli, named):
    name = named("--env", "GREETING=hi", "--workdir", "/tmp", "--hostname", "named-box", "--timeout", "0.5")
    r = cli(["exec", name, "--", "sh", "-c", "echo $GREETING $(pwd) $(hostname)"])
    assert r.rc == 0 and r.stdout == b"hi /tmp named-box\n", r
    # --timeout of create is each exec's default; exec --timeout overrides it.
    r = cli(["exec", name, "--", "sleep", "2"])
    assert r.rc == 124, r
    r = cli(["exec", name, "--timeout", "5", "--", "sleep", "1"])
    assert r.rc == 0, r


def test_duplicate_name_is_refused(cli, named):
    name = named()
    r = cli(["create", "--name", name])
    assert r.rc == 125 and "already exists" in r.stderr and name in r.stderr, r
    assert not r.ids, "a sandbox was made for a taken name: %s" % r.log
    assert list(ps(cli)) == [name]


BAD_NAMES = ["", "-x", ".hidden", "_x", "a/b", "../x", "a b", "a:b", "x" * 65, "caf\u00e9", "a\nb"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_create_bad_name(cli, name):
    r = cli(["create", "--name", name])
    assert r.rc == 125 and r.stderr.startswith("mimobox: error: invalid sandbox name"), r
    assert not r.ids, r
    assert not os.path.exists(os.path.join(registry(cli), name + ".sock"))


@pytest.mark.parametrize("args,words", [
    (["--timeout", "0"], ["--timeout"]),
    (["--mount", "/nonexistent-mbx-src:/data"], ["/nonexistent-mbx-src"]),
    (["--isolation", "docker"], ["--isolation"]),
    (["--", "echo", "hi"], ["unexpected argument", "exec"]),
    (["--frobnicate"], ["--frobnicate"]),
], ids=["timeout-zero", "mount-missing", "bad-isolation", "program-given", "unknown-option"])
def test_create_bad_options(cli, args, words):
    r = cli(["create"] + args)
    assert r.rc == 125 and r.stdout == b"", r
    for w in words:
        assert w in r.stderr, r
    assert not r.ids and ps(cli) == {}, r


def test_create_failure_is_reported(cli):
    # The sandbox itself cannot be made: the supervisor's error comes back.
    r = cli(["create", "--isolation", "microvm", "--network", "all", "--name", "vm"])
    assert r.rc == 125 and "mimobox: error:" in r.stderr and "network" in r.stderr.lower(), r
    assert ps(cli) == {}


VERBS_ON_NAME = [
    ["exec", "{}", "--", "true"],
    ["http", "{}", "http://example.com/"],
    ["shell", "{}"],
    ["cat", "{}", "/etc/hostname"],
    ["write", "{}", "/workspace/x"],
    ["ls", "{}", "/"],
    ["stat", "{}", "/"],
    ["cp", "{}:/etc/hostname", "/tmp/never-written"],
    ["rm", "{}"],
]


@pytest.mark.parametrize("words", VERBS_ON_NAME, ids=lambda w: w[0])
def test_unknown_sandbox(cli, words):
    r = cli([w.format("nosuch") for w in words], stdin=b"")
    assert r.rc == 125 and "no sandbox named `nosuch`" in r.stderr, r
    assert "mimobox ps" in r.stderr, r


@pytest.mark.parametrize("words", [w for w in VERBS_ON_NAME if w[0] != "cp"], ids=lambda w: w[0])
def test_bad_sandbox_name(cli, words):
    r = cli([w.format("../etc") for w in words], stdin=b"")
    assert r.rc == 125 and "invalid sandbox name `../etc`" in r.stderr, r


def test_usage_errors(cli, named):
    name = named()
    for words, what in [
        (["exec"], "no sandbox name"),
        (["exec", name], "no program"),
        (["exec", name, "--timeout", "x", "--", "true"], "--timeout"),
        (["exec", name, "--env", "NOVALUE", "--", "true"], "--env"),
        (["cat", name], "missing the path"),
        (["cat", name, "a", "b"], "unexpected argument"),
        (["ls"], "missing the sandbox name"),
        (["rm"], "no sandbox name"),
        (["cp", "a", "b"], "neither"),
        (["cp", name + ":a", name + ":b"], "both"),
        (["ps", name, "extra"], "unexpected argument"),
    ]:
        r = cli(words)
        assert r.rc == 125 and what in r.stderr, (words, r)
    r = cli(["exec", "--json", name])
    assert r.rc == 125 and r.json["ok"] is False and "no program" in r.json["error"]["message"], r


@pytest.mark.parametrize("verb", ["create", "exec", "shell", "ps", "cat", "write", "ls", "stat", "cp", "mkdir", "rm",
                                  "http"])
def test_help(cli, verb):
    r = cli([verb, "--help"])
    assert r.rc == 0 and r.out.startswith("Usage: mimobox " + verb), r
    assert verb in cli(["--help"]).out


# ---------------------------------------------------------------------------
# exec


def test_exec_exit_statuses(cli, named):
    name = named()
    for argv, status in [
        (["true"], 0),
        (["sh", "-c", "exit 42"], 42),
        (["sh", "-c", "kill -9 $$"], 137),
        (["sh", "-c", "kill -TERM $$"], 143),
        (["no-such-program-xyz"], 127),
        (["/etc/passwd"], 126),
    ]:
        r = cli(["exec", name, "--"] + argv)
        assert r.rc == status, r
    r = cli(["exec", name, "--timeout", "0.5", "--", "sleep", "10"])
    assert r.rc == 124 and r.wall < 5, r
    r = cli(["exec", name, "--", "no-such-program-xyz"])
    assert "no-such-program-xyz" in r.stderr, r


def test_exec_json_matches_run(cli, named):
    name = named()
    r = cli(["exec", name, "--json", "--", "sh", "-c", "echo out; echo err >&2; exit 3"])
    assert r.rc == 3, r
    j = r.json
    run = cli.json("--", "true")[1]
    assert set(j) == set(run), "exec --json and run --json differ in keys"
    assert j["exit_code"] == 3 and j["stdout"] == "out\n" and j["stderr"] == "err\n", j
    assert j["signal"] == 0 and j["timed_out"] is False and j["isolation"] == cli.backend, j
    assert j["peak_memory_bytes"] > 0 and j["cpu_time_ms"] > 0, j
    r = cli(["exec", name, "--json", "--timeout", "0.3", "--", "sh", "-c", "echo early; sleep 5"])
    assert r.rc == 124 and r.json["timed_out"] is True and r.json["stdout"] == "early\n", r
    r = cli(["exec", name, "--json", "--", "no-such-program-xyz"])
    assert r.rc == 127 and r.json["ok"] is False and r.json["error"]["code"] == "not_found", r


def test_exec_options(cli, named):
    name = named()
    r = cli(["exec", name, "--env", "A=1", "--env", "B=two words", "--workdir", "/tmp", "--",
             "sh", "-c", 'echo "$A|$B|$(pwd)"'])
    assert r.rc == 0 and r.stdout == b"1|two words|/tmp\n", r
    # Options may come before the name too; the program's own stay its own.
    r = cli(["exec", "--env", "A=2", name, "sh", "-c", 'echo $A "$@"', "sh", "--json", "-x"])
    assert r.rc == 0 and r.stdout == b"2 --json -x\n", r
    r = cli(["exec", name, "--env", "LD_PRELOAD=/x.so", "--", "true"])
    assert r.rc == 125 and "LD_PRELOAD" in r.stderr, r


def test_exec_state_persists_between_execs(cli, named):
    name = named()
    assert cli(["exec", name, "--", "sh", "-c", "echo kept > /workspace/f; mkdir -p /tmp/d"]).rc == 0
    r = cli(["exec", name, "--", "sh", "-c", "cat /workspace/f; ls -d /tmp/d"])
    assert r.rc == 0 and r.stdout == b"kept\n/tmp/d\n", r


def test_exec_streams(cli, named):
    name = named()
    p = subprocess.Popen([cli.path, "exec", name, "--", "sh", "-c", "echo a; sleep 1; echo b"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env())
    seen, buf = {}, b""
    try:
        while True:
            chunk = os.read(p.stdout.fileno(), 4096)
            now = time.monotonic()
            if not chunk:
                break
            buf += chunk
            for line in (b"a\n", b"b\n"):
                if line in buf and line not in seen:
                    seen[line] = now
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    assert rc == 0 and buf == b"a\nb\n", buf
    assert seen[b"b\n"] - seen[b"a\n"] >= 0.8, "\"a\" was not delivered before the program finished"


def test_exec_stdin(cli, named):
    name = named()
    data = bytes(range(256)) * 4096
    r = cli(["exec", name, "--stdin", "--", "sh", "-c", "cat; echo done >&2"], stdin=data)
    assert r.rc == 0 and r.stdout == data and r.stderr == "done\n", r.rc
    r = cli(["exec", name, "-i", "--", "wc", "-l"], stdin=b"1\n2\n3\n")
    assert r.rc == 0 and r.stdout.strip() == b"3", r
    # Without --stdin the program reads nothing, as with `run`.
    r = cli(["exec", name, "--", "cat"], stdin=b"not for it")
    assert r.rc == 0 and r.stdout == b"", r


def test_exec_leaves_nothing_running(cli, named):
    name = named()
    arg = unique_sleep_arg()
    r = cli(["exec", name, "--", "sh", "-c", "sleep %s & echo started" % arg])
    assert r.rc == 0 and r.stdout == b"started\n", r
    assert wait_until(lambda: not procs_with_arg(arg), 5), "exec left %s running" % arg


def test_exec_killed_client_kills_the_process(cli, named):
    name = named()
    arg = unique_sleep_arg()
    p = subprocess.Popen([cli.path, "exec", name, "--", "sleep", arg], env=cli.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: procs_with_arg(arg), 10), "the program did not start"
        # The supervisor counts the process once its spawn has returned,
        # a moment after the program itself appears.
        assert wait_until(lambda: ps(cli)[name]["running"] == 1, 5), ps(cli)[name]
        p.kill()
        p.wait()
        assert wait_until(lambda: not procs_with_arg(arg), 5), "the program outlived its client"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert wait_until(lambda: ps(cli)[name]["state"] == "ready", 5)
    assert cli(["exec", name, "--", "true"]).rc == 0


def test_clients_are_served_concurrently(cli, named):
    name = named()
    arg = unique_sleep_arg()
    long_run = subprocess.Popen([cli.path, "exec", name, "--", "sh", "-c", "sleep %s" % arg], env=cli.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A guest's processes are not in the host's process table: there the
    # supervisor's state tells that the exec runs, and when it ended.
    vm = cli.backend == "microvm"
    try:
        assert wait_until(lambda: ps(cli)[name]["state"] == "busy" if vm else procs_with_arg(arg), 30)
        data = os.urandom(8 << 20)
        start = time.monotonic()
        assert cli(["write", name, "big"], stdin=data).rc == 0
        r = cli(["cat", name, "big"])
        assert r.rc == 0 and r.stdout == data
        r = cli(["exec", name, "--", "echo", "meanwhile"])
        assert r.rc == 0 and r.stdout == b"meanwhile\n", r
        assert ps(cli)[name]["state"] == "busy"
        assert time.monotonic() - start < 10, "a running exec holds up other clients"
    finally:
        long_run.kill()
        long_run.wait()
    assert wait_until(lambda: ps(cli)[name]["state"] == "ready" if vm else not procs_with_arg(arg), 10)


def test_stalled_reader_does_not_hold_up_others(cli, named):
    name = named()
    data = os.urandom(16 << 20)
    assert cli(["write", name, "big"], stdin=data).rc == 0
    # A reader that takes nothing: its share waits in the supervisor.
    stalled = subprocess.Popen([cli.path, "cat", name, "big"], env=cli.env(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        p = subprocess.Popen([cli.path, "exec", name, "--", "sh", "-c", "echo a; sleep 1; echo b"],
                             stdout=subprocess.PIPE, env=cli.env())
        start = time.monotonic()
        first = p.stdout.read(2)
        t_a = time.monotonic() - start
        rest = p.stdout.read()
        assert p.wait(timeout=30) == 0 and first + rest == b"a\nb\n"
        assert t_a < 0.8, "output waited %.2f s behind a stalled reader" % t_a
        got = stalled.stdout.read()
        assert stalled.wait(timeout=30) == 0 and got == data
    finally:
        if stalled.poll() is None:
            stalled.kill()
            stalled.wait()
        stalled.stdout.close()


def test_output_limit(cli, named):
    name = named("--output-limit", "10")
    r = cli(["exec", name, "--", "sh", "-c", "printf '%0100d' 0"])
    assert r.rc == 0 and r.stdout == b"0" * 10 and "output limit" in r.stderr, r
    r = cli(["exec", name, "--json", "--", "sh", "-c", "printf '%0100d' 0"])
    assert r.rc == 0 and r.json["stdout"] == "0" * 10 and r.json["stdout_truncated"] is True, r


def test_wasm_named_sandbox(cli, named, doctor):
    """A backend that cannot spawn processes still executes (one call at a
    time) and serves files."""
    if not doctor["backends"]["wasm"]["available"]:
        must_work_skip("the wasm backend is not available: %s" % doctor["backends"]["wasm"]["reason"])
    mod = lambda m: os.path.join(HELPERS, "wasm", m)  # noqa: E731
    if not all(os.path.exists(mod(m)) for m in ("hello.wasm", "unreachable.wasm", "loop.wat")):
        must_work_skip("wasm test modules not built in %s" % mod(""))
    name = named("--isolation", "wasm")
    assert ps(cli)[name]["isolation"] == "wasm"
    r = cli(["exec", name, "--", mod("hello.wasm")])
    assert r.rc == 0 and r.stdout == b"hello from wasm\n" and r.stderr == "a line on stderr\n", r
    r = cli(["exec", name, "--json", "--", mod("unreachable.wasm")])
    assert r.rc == 134 and r.json["trap"] and "unreachable" in r.json["trap"], r
    assert r.json["isolation"] == "wasm", r
    r = cli(["exec", name, "--", mod("unreachable.wasm")])
    assert r.rc == 134 and "unreachable" in r.stderr, r
    r = cli(["exec", name, "--timeout", "0.5", "--", mod("loop.wat")])
    assert r.rc == 124, r
    assert cli(["write", name, "/workspace/w.txt"], stdin=b"kept\n").rc == 0
    assert cli(["cat", name, "w.txt"]).stdout == b"kept\n"
    assert [e["name"] for e in cli(["ls", name, "--json"]).json["entries"]] == ["w.txt"]
    r = cli(["exec", name, "--stdin", "--", mod("hello.wasm")], stdin=b"")
    assert r.rc == 125 and "wasm" in r.stderr, r


def test_wasm_named_sandbox_links_and_dirs(cli, named, doctor, host_tmp):
    """The file verbs of a wasm sandbox (host-side files, beneath the
    workspace): mkdir, cp -r with a symlink, symlink targets, rm."""
    if not doctor["backends"]["wasm"]["available"]:
        must_work_skip("the wasm backend is not available: %s" % doctor["backends"]["wasm"]["reason"])
    name = named("--isolation", "wasm")
    src = os.path.join(host_tmp, "tree")
    os.makedirs(os.path.join(src, "d"))
    with open(os.path.join(src, "d", "f"), "w") as f:
        f.write("x")
    os.symlink("/etc/passwd", os.path.join(src, "d", "out"))
    r = cli(["cp", "-r", src, name + ":/workspace/t", "--json"])
    assert r.rc == 0 and r.json["symlinks"] == 1 and r.json["files"] == 1, r
    assert cli(["stat", name, "t/d/out", "--json"]).json["target"] == "/etc/passwd"
    # The link resolves beneath the workspace, never to the host's /etc/passwd.
    r = cli(["cat", name, "t/d/out"])
    assert r.rc == 1 and b"root:" not in r.stdout, r
    assert cli(["mkdir", "-p", name, "a/b"]).rc == 0
    assert cli(["rm", "-r", name + ":t"]).rc == 0
    assert sorted(e["name"] for e in cli(["ls", name, "--json"]).json["entries"]) == ["a"]


# ---------------------------------------------------------------------------
# files


def test_write_and_cat(cli, named):
    name = named()
    data = os.urandom(3 << 20) + bytes(range(256))
    r = cli(["write", name, "/workspace/data.bin"], stdin=data)
    assert r.rc == 0 and r.stdout == b"" and r.stderr == "", r
    r = cli(["cat", name, "data.bin"])  # relative to /workspace
    assert r.rc == 0 and r.stdout == data, r.rc
    r = cli(["exec", name, "--", "sh", "-c", "wc -c < /workspace/data.bin"])
    assert int(r.stdout) == len(data)
    # Empty input makes an empty file; a new file is 0644, a replaced one keeps its mode.
    assert cli(["write", name, "empty"], stdin=b"").rc == 0
    assert cli(["cat", name, "empty"]).stdout == b""
    assert cli(["stat", name, "--json", "empty"]).json["mode"] == "0644"
    assert cli(["exec", name, "--", "chmod", "600", "/workspace/data.bin"]).rc == 0
    assert cli(["write", name, "data.bin"], stdin=b"new\n").rc == 0
    st = cli(["stat", name, "data.bin", "--json"]).json
    assert st["mode"] == "0600" and st["size"] == 4, st
    # No temporary file is left beside it.
    assert cli(["exec", name, "--", "ls", "-A", "/workspace"]).stdout.split() == [b"data.bin", b"empty"]


def test_cat_streams_to_a_closed_reader(cli, named):
    name = named()
    assert cli(["write", name, "big"], stdin=os.urandom(4 << 20)).rc == 0
    p = subprocess.run("%s cat %s big | head -c 10 | wc -c" % (cli.path, name), shell=True,
                       capture_output=True, env=cli.env(), timeout=60)
    assert p.stdout.strip() == b"10", p


def test_interrupted_write_changes_nothing(cli, named):
    name = named()
    assert cli(["write", name, "keep.txt"], stdin=b"original\n").rc == 0
    p = subprocess.Popen([cli.path, "write", name, "keep.txt"], stdin=subprocess.PIPE, env=cli.env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.stdin.write(b"partial " * 100000)
    p.stdin.flush()
    time.sleep(0.5)
    p.kill()
    p.wait()
    p.stdin.close()

    def settled():
        r = cli(["exec", name, "--", "ls", "-A", "/workspace"])
        return r.stdout.split() == [b"keep.txt"]

    assert wait_until(settled, 5), cli(["exec", name, "--", "ls", "-A", "/workspace"]).stdout
    assert cli(["cat", name, "keep.txt"]).stdout == b"original\n"


FILE_ERRORS = [
    (["cat", "{}", "/workspace/missing"], ["/workspace/missing", "No such file"]),
    (["cat", "{}", "/workspace"], ["/workspace", "directory"]),
    (["write", "{}", "/workspace/no-dir/x"], ["/workspace/no-dir/x"]),
    (["write", "{}", "/workspace"], ["/workspace", "is a directory"]),
    (["write", "{}", "/workspace/"], ["/workspace/", "directory"]),
    (["write", "{}", "/usr/bin/mimobox-x"], ["/usr/bin/mimobox-x"]),
    (["ls", "{}", "/workspace/missing"], ["/workspace/missing"]),
    (["ls", "{}", "/etc/hostname"], ["/etc/hostname", "Not a directory"]),
    (["stat", "{}", "/workspace/missing"], ["/workspace/missing", "No such file"]),
    (["stat", "{}", "/etc/hostname/x"], ["/etc/hostname/x"]),
]


@pytest.mark.parametrize("words,expect", FILE_ERRORS, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_file_errors(cli, named, words, expect):
    if cli.backend == "microvm" and "/usr/" in " ".join(words):
        pytest.skip("a microVM's root is writable (an overlay on its read-only image)")
    name = named()
    r = cli([w.format(name) for w in words], stdin=b"data")
    assert r.rc == 1 and r.stdout == b"", r
    assert r.stderr.startswith("mimobox: error: "), r
    for w in expect:
        assert w in r.stderr, (w, r)
    assert ".mimobox-" not in r.stderr, "the temporary name leaked into the message: %s" % r.stderr
    assert ps(cli)[name]["state"] == "ready", "a file error broke the sandbox"


def test_file_errors_json(cli, named):
    name = named()
    r = cli(["stat", name, "/workspace/missing", "--json"])
    assert r.rc == 1 and r.json["ok"] is False and r.json["error"]["code"] == "not_found", r
    r = cli(["ls", name, "/workspace/missing", "--json"])
    assert r.rc == 1 and r.json["error"]["code"] == "not_found", r


def test_ls_and_stat(cli, named):
    name = named()
    assert cli(["exec", name, "--", "sh", "-c",
                "cd /workspace && printf 12345 > a.txt && mkdir sub && ln -s a.txt link"]).rc == 0
    r = cli(["ls", name, "--json"])
    assert r.rc == 0, r
    entries = {e["name"]: e for e in r.json["entries"]}
    assert r.json["path"] == "/workspace" and list(entries) == ["a.txt", "link", "sub"], r.json
    assert entries["a.txt"] == {"name": "a.txt", "type": "file", "size": 5, "symlink": False, "target": None}
    assert entries["sub"]["type"] == "directory" and entries["sub"]["symlink"] is False
    assert entries["link"]["type"] == "symlink" and entries["link"]["symlink"] is True
    text = cli(["ls", name, "/workspace"])
    assert text.rc == 0 and re.search(r"^file\s+5\s+a\.txt$", text.out, re.M), text
    assert re.search(r"^directory\s+\d+\s+sub/$", text.out, re.M), text
    assert cli(["ls", name, "/"]).rc == 0

    st = cli(["stat", name, "/workspace/a.txt", "--json"]).json
    assert st["type"] == "file" and st["size"] == 5 and st["mode"] == "0644" and st["symlink"] is False, st
    assert abs(st["mtime_ns"] / 1e9 - time.time()) < 300, st
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", st["mtime"]), st
    assert isinstance(st["uid"], int) and isinstance(st["gid"], int), st
    st = cli(["stat", name, "link", "--json"]).json
    assert st["type"] == "symlink" and st["symlink"] is True, st
    assert cli(["stat", name, "sub", "--json"]).json["type"] == "directory"
    text = cli(["stat", name, "a.txt"])
    assert text.rc == 0 and "type:  file" in text.out and "mode:  0644" in text.out, text


def test_cp_both_directions(cli, named, host_tmp):
    name = named()
    src = os.path.join(host_tmp, "src.bin")
    data = os.urandom(5 << 20)
    with open(src, "wb") as f:
        f.write(data)
    os.chmod(src, 0o640)

    assert cli(["cp", src, name + ":/workspace/copy.bin"]).rc == 0
    assert cli(["exec", name, "--", "sh", "-c", "wc -c < /workspace/copy.bin"]).stdout.strip() == str(len(data)).encode()
    assert cli(["stat", name, "copy.bin", "--json"]).json["mode"] == "0640"
    # Into a directory (existing, or written with a trailing slash): under its own name.
    assert cli(["cp", src, name + ":/tmp"]).rc == 0
    assert cli(["cp", src, name + ":"]).rc == 0
    assert cli(["stat", name, "/tmp/src.bin"]).rc == 0 and cli(["stat", name, "src.bin"]).rc == 0

    back = os.path.join(host_tmp, "back.bin")
    assert cli(["cp", name + ":copy.bin", back]).rc == 0
    with open(back, "rb") as f:
        assert f.read() == data
    outdir = os.path.join(host_tmp, "out")
    os.mkdir(outdir)
    assert cli(["cp", name + ":/workspace/copy.bin", outdir]).rc == 0
    with open(os.path.join(outdir, "copy.bin"), "rb") as f:
        assert f.read() == data
    # An empty file makes an empty copy.
    assert cli(["write", name, "empty"], stdin=b"").rc == 0
    assert cli(["cp", name + ":empty", os.path.join(host_tmp, "empty")]).rc == 0
    assert os.path.getsize(os.path.join(host_tmp, "empty")) == 0
    os.unlink(os.path.join(host_tmp, "empty"))
    assert sorted(os.listdir(host_tmp)) == ["back.bin", "out", "src.bin"], "a temporary file was left"
    # A host path with a colon is written as ./PATH.
    colon = os.path.join(host_tmp, "a:b")
    p = subprocess.run([cli.path, "cp", name + ":copy.bin", "./a:b"], cwd=host_tmp, env=cli.env(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and os.path.getsize(colon) == len(data), p
    os.unlink(colon)


def test_cp_errors(cli, named, host_tmp):
    name = named()
    missing = os.path.join(host_tmp, "missing")
    r = cli(["cp", missing, name + ":x"])
    assert r.rc == 1 and missing in r.stderr, r
    r = cli(["cp", host_tmp, name + ":x"])
    assert r.rc == 1 and "directory" in r.stderr, r
    r = cli(["cp", name + ":/workspace", os.path.join(host_tmp, "w")])
    assert r.rc == 1 and "directory" in r.stderr, r
    r = cli(["cp", name + ":/workspace/missing", os.path.join(host_tmp, "m")])
    assert r.rc == 1 and "/workspace/missing" in r.stderr, r
    r = cli(["cp", name + ":", os.path.join(host_tmp, "m")])
    assert r.rc == 125 and "no path" in r.stderr, r
    r = cli(["cp", name + ":/etc/passwd", os.path.join(host_tmp, "no-dir", "x")])
    assert r.rc == 1 and "no-dir" in r.stderr, r
    assert os.listdir(host_tmp) == [], "a failed copy left a file"


# ---------------------------------------------------------------------------
# dead supervisors, rm, signals


def test_ps_cleans_up_after_a_killed_supervisor(cli, named):
    name = named()
    other = named()
    pid = ps(cli)[name]["pid"]
    agent = subtree(pid)
    assert agent, "the supervisor has no sandbox agent below it"
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 5)
    # The sandbox's processes die with their supervisor's channel.
    assert wait_until(lambda: not any(alive(p) for p in agent), 5), "the sandbox outlived its supervisor"

    r = cli(["ps"])
    assert r.rc == 0 and "removed sandbox `%s`" % name in r.stderr, r
    assert name not in r.out and other in r.out, r
    assert sorted(os.listdir(registry(cli))) == [other + ".info", other + ".sock"]
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 125 and "no sandbox named" in r.stderr, r
    # The name is free again.
    named(name=name)
    assert set(ps(cli)) == {name, other}
    # The library collects the dead sandbox's host directory when it makes
    # the next sandbox (the guard then checks the state directory).
    assert cli.run("--", "true").rc == 0


def test_exec_on_a_killed_supervisor_reports_and_cleans(cli, named):
    name = named()
    pid = ps(cli)[name]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 5)
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 125 and "supervisor died" in r.stderr, r
    assert not os.path.exists(registry(cli))
    assert cli.run("--", "true").rc == 0


def test_rm_of_a_dead_entry(cli, named):
    name = named()
    pid = ps(cli)[name]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not alive(pid), 5)
    r = cli(["rm", name])
    assert r.rc == 0 and "had died" in r.stderr, r
    assert cli(["rm", name]).rc == 125
    assert cli.run("--", "true").rc == 0


def test_rm_leaves_nothing_behind(cli, named):
    name = named()
    e = ps(cli)[name]
    below = subtree(e["pid"])
    state = os.path.join(cli.guard.state_dir, e["id"])
    # An os sandbox without host files keeps a lock file, the others a directory.
    assert below and (os.path.isfile(state + ".lock") if cli.backend == "os" else os.path.isdir(state))
    assert cli(["exec", name, "--", "sh", "-c", "echo x > /workspace/f"]).rc == 0
    r = cli(["rm", name])
    assert r.rc == 0, r
    # Right when rm returns: no supervisor, no sandbox process, no state.
    assert not alive(e["pid"]), "the supervisor still runs"
    assert not [p for p in below if alive(p)], "sandbox processes still run"
    assert state_entries(cli) == [], state_entries(cli)
    assert ps(cli) == {}


def test_rm_several_and_unknown(cli, named):
    a, b = named(), named()
    r = cli(["rm", a, "nosuch", b])
    assert r.rc == 125 and "nosuch" in r.stderr, r
    assert ps(cli) == {}


def test_supervisor_stops_on_sigterm(cli, named):
    name = named()
    e = ps(cli)[name]
    os.kill(e["pid"], signal.SIGTERM)
    assert wait_until(lambda: not alive(e["pid"]), 10)
    # It destroyed its sandbox on the way out.
    assert state_entries(cli) == []


def test_supervisor_exits_when_its_sandbox_breaks(cli, named):
    name = named()
    e = ps(cli)[name]
    for p in subtree(e["pid"]):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 125 and "mimobox: error:" in r.stderr, r
    assert wait_until(lambda: not alive(e["pid"]), 10), "the supervisor of a broken sandbox stays"
    assert ps(cli) == {}
    assert state_entries(cli) == []


def test_supervisor_notices_a_broken_idle_sandbox(cli, named):
    name = named()
    e = ps(cli)[name]
    for p in subtree(e["pid"]):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # Nobody uses it: the supervisor's periodic check finds it broken.
    assert wait_until(lambda: not alive(e["pid"]), 15), "the supervisor of a broken sandbox stays"
    assert ps(cli) == {}


def test_unresponsive_supervisor(cli, named):
    name = named()
    pid = ps(cli)[name]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        r = cli(["ps", "--json"])
        assert r.rc == 0 and r.json["sandboxes"][0]["state"] == "unresponsive", r
        assert r.json["sandboxes"][0]["pid"] == pid, r
    finally:
        os.kill(pid, signal.SIGCONT)
    assert ps(cli)[name]["state"] == "ready"


def test_long_state_dir(cli, host_tmp):
    """A socket path longer than sun_path still works (through the
    directory's descriptor)."""
    state = os.path.join(host_tmp, "s" * 60, "t" * 40)
    os.makedirs(state, 0o711)
    env = {"MIMOBOX_STATE_DIR": state}
    name = "n" * 64
    assert len(os.path.join(state, "named", name + ".sock")) > 108
    r = cli(["create", "--name", name], env=env)
    assert r.rc == 0, r
    try:
        r = cli(["exec", name, "--", "echo", "ok"], env=env)
        assert r.rc == 0 and r.stdout == b"ok\n", r
    finally:
        assert cli(["rm", name], env=env).rc == 0
    assert [e for e in os.listdir(state) if e not in USER_FILES] == []


# ---------------------------------------------------------------------------
# shell


class Terminal:
    """The CLI on a pseudo-terminal of its own, as in an interactive login."""

    def __init__(self, cli, args, rows=30, cols=100):
        self.master, slave = pty.openpty()
        self.resize(rows, cols, signal_cli=False)

        def controlling_tty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.p = subprocess.Popen([cli.path] + args, stdin=slave, stdout=slave, stderr=slave, env=cli.env(),
                                  preexec_fn=controlling_tty, close_fds=True)
        self.slave = slave  # kept, to read the terminal's modes
        self.buf = b""

    def resize(self, rows, cols, signal_cli=True):
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if signal_cli:
            # The kernel tells the foreground group; say it again to be sure.
            self.p.send_signal(signal.SIGWINCH)

    def type(self, data):
        os.write(self.master, data)

    def expect(self, pattern, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal; got %r" % (pattern, self.buf[-1000:]))
            r, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if r:
                try:
                    self.buf += os.read(self.master, 65536)
                except OSError:
                    pass

    def modes(self):
        return termios.tcgetattr(self.slave)[3]

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        os.close(self.master)
        os.close(self.slave)


def test_shell_on_a_terminal(cli, named):
    name = named()
    t = Terminal(cli, ["shell", name], rows=30, cols=100)
    try:
        # Each command's output is fenced by markers computed by the shell,
        # so the echo of what we type never matches.
        t.type(b"stty size; echo mark-$((40+2))\r")
        t.expect(rb"30 100\r\nmark-42")
        t.resize(45, 132)
        time.sleep(0.3)
        t.type(b"stty size; echo mark-$((40+3))\r")
        t.expect(rb"45 132\r\nmark-43")
        # Ctrl-C is a byte for the sandbox's terminal, which interrupts.
        start = time.monotonic()
        t.type(b"sleep 100\r")
        time.sleep(0.5)
        t.type(b"\x03")
        t.type(b"echo after-$((1+1))\r")
        t.expect(rb"after-2")
        assert time.monotonic() - start < 10, "Ctrl-C did not interrupt sleep"
        # The local terminal is raw meanwhile: no local echo, no local signals.
        assert not t.modes() & (termios.ECHO | termios.ISIG | termios.ICANON), t.modes()
        t.type(b"exit 7\r")
        assert t.p.wait(timeout=15) == 7
        # And back to how it was.
        assert t.modes() & termios.ECHO and t.modes() & termios.ICANON, t.modes()
    finally:
        t.close()
    assert wait_until(lambda: idle(ps(cli)[name]), 5), ps(cli)[name]


def idle(entry):
    """Nothing of ours runs in the sandbox: `running` of the local `ps`, `state` of a server's."""
    return entry["running"] == 0 if "running" in entry else entry["state"] == "ready"


def test_exec_tty(cli, named):
    """exec -t: a terminal of this one's size, input forwarded, but the
    sandbox's timeout still applies (unlike `shell`)."""
    name = named("--timeout", "3")
    t = Terminal(cli, ["exec", "-t", name, "--", "sh", "-c",
                       "tty; stty size; read line; echo got-$line; exit 4"], rows=33, cols=90)
    try:
        t.expect(rb"/dev/pts/\d+\r\n33 90\r\n")
        t.type(b"abc\r")
        t.expect(rb"got-abc")
        assert t.p.wait(timeout=15) == 4
    finally:
        t.close()
    t = Terminal(cli, ["exec", "-t", name, "--", "sleep", "30"])
    try:
        assert t.p.wait(timeout=20) == 124, "the timeout of exec did not apply to exec -t"
    finally:
        t.close()
    r = cli(["exec", "-t", "--json", name, "--", "true"])
    assert r.rc == 125 and "-t cannot go with --json" in r.json["error"]["message"], r


def test_shell_program_and_no_timeout(cli, named):
    name = named("--timeout", "1")
    t = Terminal(cli, ["shell", name, "--", "sh", "-c", "sleep 2; echo done-$((3*3)); exit 5"])
    try:
        # The sandbox's 1 s timeout is for exec, not for terminals.
        t.expect(rb"done-9")
        assert t.p.wait(timeout=15) == 5
    finally:
        t.close()


def test_shell_killed_terminal_kills_the_shell(cli, named):
    if cli.backend == "microvm":
        pytest.skip("watches the payload in the host's process table: a guest's processes are not there "
                    "(the same agent code is covered on the os backend)")
    name = named()
    arg = unique_sleep_arg()
    t = Terminal(cli, ["shell", name])
    try:
        t.type(b"sleep %s\r" % arg.encode())
        assert wait_until(lambda: procs_with_arg(arg), 10)
        os.kill(t.p.pid, signal.SIGHUP)  # the terminal went away
        assert t.p.wait(timeout=10) != 0
        assert wait_until(lambda: not procs_with_arg(arg), 5), "the shell outlived its terminal"
    finally:
        t.close()


def test_shell_without_a_terminal(cli, named):
    name = named()
    r = cli(["shell", name], stdin=b"echo hi-$((1+1))\nexit 4\n")
    assert r.rc == 4 and b"hi-2" in r.stdout, r


# ---------------------------------------------------------------------------
# http


def test_http_denied_by_default(cli, named):
    name = named()
    r = cli(["http", name, "http://example.com/"])
    assert r.rc == 1 and r.stdout == b"" and "denied" in r.stderr, r
    r = cli(["http", name, "--json", "https://example.com/"])
    assert r.rc == 1 and r.json["ok"] is False, r
    assert r.json["error"]["code"] == "denied" and r.json["error"]["layer"] == "network", r


def test_http_outside_the_allow_list(cli, named):
    name = named("--network", "allow:example.test")
    r = cli(["http", name, "http://other.test/"])
    assert r.rc == 1 and "other.test" in r.stderr and "allow list" in r.stderr, r


@pytest.mark.parametrize("words,what", [
    (["http", "{}"], "missing the URL"),
    (["http"], "missing the sandbox name"),
    (["http", "{}", "not a url"], "not a url"),
    (["http", "{}", "-d", "x", "--data-file", "/etc/hostname", "http://example.com/"], "cannot be combined"),
    (["http", "{}", "--data-file", "/nonexistent-mbx", "http://example.com/"], "/nonexistent-mbx"),
    (["http", "nosuch", "http://example.com/"], "no sandbox named `nosuch`"),
], ids=["no-url", "nothing", "bad-url", "two-bodies", "missing-body-file", "unknown-sandbox"])
def test_http_usage(cli, named, words, what):
    name = named()
    r = cli([w.format(name) for w in words])
    assert r.rc in (1, 125) and what in r.stderr, r
    assert r.rc == (1 if "nonexistent" in what else 125), r


# Runs in a network and mount namespace of its own: 8.8.8.8 (an address
# that counts as public) on loopback, named public.test in /etc/hosts, an
# HTTP server on it. Prints one JSON line of what the CLI did.
HTTP_WORLD = r"""
import http.server, json, os, subprocess, sys, threading

cli, hosts, backend = sys.argv[1], sys.argv[2], sys.argv[3]
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["ip", "addr", "add", "8.8.8.8/32", "dev", "lo"], check=True)
with open(hosts, "w") as f:
    f.write("8.8.8.8 public.test\n")
subprocess.run(["mount", "--bind", hosts, "/etc/hosts"], check=True)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello " + self.path.encode() if self.path != "/missing" else b"no"
        self.send_response(200 if self.path != "/missing" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seen", self.headers.get("X-Test", "-"))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("8.8.8.8", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = "http://public.test:%d" % srv.server_address[1]
out = {}
def run(key, *args, stdin=None):
    p = subprocess.run([cli] + list(args), input=stdin, capture_output=True, timeout=60)
    out[key] = [p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")]
run("create", "create", "--name", "web", "--isolation", backend, "--network", "allow:public.test")
try:
    run("get", "http", "web", url + "/index")
    run("include", "http", "web", "-i", "-H", "X-Test: yes", url + "/a")
    run("missing", "http", "web", url + "/missing")
    run("fail", "http", "web", "--fail", url + "/missing")
    run("json", "http", "web", "--json", "-d", "payload", url + "/post")
    run("stdin", "http", "web", "--data-file", "-", url + "/post", stdin=b"\x00\x01binary" * 1000)
    # From inside, through the proxy at 127.0.0.1:3128 (raw: a microVM
    # guest's Python has no http modules).
    run("inside", "exec", "web", "--", "python3", "-c",
        "import socket; s = socket.create_connection(('127.0.0.1', 3128)); "
        "s.sendall(b'GET %s/in HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n'); "
        "d = b''.join(iter(lambda: s.recv(65536), b'')); print(d.split(b'\\r\\n\\r\\n', 1)[1].decode())"
        % (url, url[len("http://"):]))
finally:
    run("rm", "rm", "web")
print(json.dumps(out))
"""


def test_http_request(cli, user, host_tmp, backend):
    if not user.is_root:
        pytest.skip("not applicable: needs a network namespace with addresses of our choosing (root)")
    if not all(shutil.which(p) for p in ("unshare", "ip", "mount")):
        pytest.skip("not applicable: unshare, ip or mount is not installed")
    p = subprocess.run(["unshare", "--net", "--mount", "python3", "-c", HTTP_WORLD, cli.path,
                        os.path.join(host_tmp, "hosts"), backend], capture_output=True, env=cli.env(), timeout=120)
    assert p.returncode == 0, p
    out = json.loads(p.stdout.decode().splitlines()[-1])
    cli.guard.ids.update(re.findall(r"sandbox ([0-9a-f]{16}) created", out["create"][2]))
    assert out["create"][0] == 0, out["create"]
    assert out["get"][:2] == [0, "hello /index"], out["get"]
    rc, text, _ = out["include"]
    assert rc == 0 and text.startswith("HTTP 200\r\n") and "X-Seen: yes\r\n" in text, text
    assert text.endswith("\r\n\r\nhello /a"), text
    assert out["missing"][:2] == [0, "no"], out["missing"]
    assert out["fail"][0] == 22, out["fail"]
    rc, text, _ = out["json"]
    j = json.loads(text)
    assert rc == 0 and j["status"] == 201 and j["body"] == "payload" and j["body_bytes"] == 7, j
    assert j["url"].endswith("/post") and any(h["name"] == "Content-Length" for h in j["headers"]), j
    assert out["stdin"][0] == 0 and out["stdin"][1] == ("\x00\x01binary" * 1000), out["stdin"][0]
    assert out["inside"][:2] == [0, "hello /in\n"], out["inside"]
    assert out["rm"][0] == 0, out["rm"]



# ---------------------------------------------------------------------------
# cp -r, cp -, mkdir, rm NAME:PATH, write -p, --json of the file verbs


def _tree(root):
    """{relative path: (kind, mode, content)} of a host tree, links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), f.read())
            else:
                out[rel] = ("other", stat.S_IMODE(st.st_mode), None)
    return out


def test_cp_recursive_both_ways(cli, named, host_tmp):
    name = named()
    src = os.path.join(host_tmp, "src")
    os.makedirs(os.path.join(src, "sub", "deep"))
    with open(os.path.join(src, "a.txt"), "wb") as f:
        f.write(b"alpha\n")
    os.chmod(os.path.join(src, "a.txt"), 0o751)
    blob = os.urandom(300 << 10)
    with open(os.path.join(src, "sub", "blob.bin"), "wb") as f:
        f.write(blob)
    os.chmod(os.path.join(src, "sub", "blob.bin"), 0o600)
    with open(os.path.join(src, "sub", "deep", "empty"), "wb"):
        pass
    os.symlink("/etc/passwd", os.path.join(src, "outside-link"))
    os.symlink("../a.txt", os.path.join(src, "sub", "rel-link"))
    os.symlink("deep", os.path.join(src, "sub", "dir-link"))
    os.mkfifo(os.path.join(src, "fifo"))

    r = cli(["cp", "-r", src, name + ":/workspace/dst", "--json"])
    assert r.rc == 0 and r.json["ok"] is True, r
    assert r.json["files"] == 3 and r.json["directories"] == 3 and r.json["symlinks"] == 3, r.json
    assert r.json["bytes"] == 6 + len(blob), r.json
    skipped = {os.path.basename(s["path"]): s["reason"] for s in r.json["skipped"]}
    assert set(skipped) == {"fifo"} and "not a regular" in skipped["fifo"], r.json
    # Links are links with their own targets: nothing was followed.
    st = cli(["stat", name, "/workspace/dst/outside-link", "--json"]).json
    assert st["type"] == "symlink" and st["target"] == "/etc/passwd" and st["size"] == len("/etc/passwd"), st
    ls = {e["name"]: e for e in cli(["ls", name, "dst/sub", "--json"]).json["entries"]}
    assert ls["rel-link"]["target"] == "../a.txt" and ls["dir-link"]["target"] == "deep", ls
    assert ls["dir-link"]["type"] == "symlink" and ls["blob.bin"]["target"] is None, ls
    assert cli(["cat", name, "dst/sub/rel-link"]).stdout == b"alpha\n"
    assert cli(["cat", name, "/workspace/dst/sub/blob.bin"]).stdout == blob
    assert cli(["stat", name, "dst/a.txt", "--json"]).json["mode"] == "0751"
    assert cli(["stat", name, "dst/sub/blob.bin", "--json"]).json["mode"] == "0600"
    assert cli(["stat", name, "dst/sub/deep/empty", "--json"]).json["size"] == 0

    # Into an existing directory: under the source's own name, as cp -r.
    assert cli(["mkdir", name, "/workspace/into"]).rc == 0
    r = cli(["cp", "-r", src, name + ":/workspace/into"])
    assert r.rc == 0 and "skipped" in r.stderr and "fifo" in r.stderr, r
    assert cli(["stat", name, "/workspace/into/src/sub/deep", "--json"]).json["type"] == "directory"

    # And back, with a link and a fifo made inside the sandbox: skipped, never followed.
    assert cli(["exec", name, "--", "sh", "-c", "cd /workspace/dst && ln -s /etc sub/etc-link && "
                "mkfifo sub/pipe && chmod 0710 sub"]).rc == 0
    back = os.path.join(host_tmp, "back")
    r = cli(["cp", "-r", name + ":/workspace/dst", back, "--json"])
    assert r.rc == 0, r
    assert [os.path.basename(s["path"]) for s in r.json["skipped"]] == ["pipe"], r.json
    got = _tree(back)
    assert got["a.txt"] == ("file", 0o751, b"alpha\n"), got
    assert got["sub/blob.bin"] == ("file", 0o600, blob)
    assert got["sub"][:2] == ("dir", 0o710) and got["sub/deep/empty"][0] == "file", got
    assert "sub/pipe" not in got, got
    # Links came back as links with the same targets; /etc was not copied.
    assert got["sub/etc-link"] == ("link", None, "/etc"), got
    assert got["outside-link"] == ("link", None, "/etc/passwd") and got["sub/rel-link"][2] == "../a.txt", got
    assert got["sub/dir-link"] == ("link", None, "deep") and not any(k.startswith("sub/etc-link/") for k in got)
    # Into an existing host directory: under the source's own name.
    outdir = os.path.join(host_tmp, "outdir")
    os.mkdir(outdir)
    assert cli(["cp", "-r", name + ":dst", outdir]).rc == 0
    assert os.listdir(outdir) == ["dst"] and _tree(os.path.join(outdir, "dst")) == got


def test_cp_recursive_refusals(cli, named, host_tmp):
    name = named()
    r = cli(["cp", host_tmp, name + ":x"])
    assert r.rc == 1 and "cp -r" in r.stderr, r
    r = cli(["cp", name + ":/workspace", os.path.join(host_tmp, "w")])
    assert r.rc == 1 and "cp -r" in r.stderr, r
    # A host file where a directory should go.
    plain = os.path.join(host_tmp, "plain")
    with open(plain, "w") as f:
        f.write("x")
    assert cli(["mkdir", name, "d"]).rc == 0
    r = cli(["cp", "-r", name + ":d", plain])
    assert r.rc == 1 and "Not a directory" in r.stderr, r
    # A host symlink in the target's place is not written through.
    os.symlink(host_tmp, os.path.join(host_tmp, "link"))
    r = cli(["cp", "-r", name + ":d", os.path.join(host_tmp, "link", "x")])
    assert r.rc == 0, r  # the link is a component the caller chose, as for cp(1)
    os.makedirs(os.path.join(host_tmp, "t"))
    os.makedirs(os.path.join(host_tmp, "elsewhere"))
    os.chmod(os.path.join(host_tmp, "elsewhere"), 0o700)
    os.symlink("../elsewhere", os.path.join(host_tmp, "t", "d"))
    assert cli(["write", name, "d/inner"], stdin=b"x").rc == 0
    r = cli(["cp", "-r", name + ":d", os.path.join(host_tmp, "t")])
    assert r.rc == 1 and "Too many levels of symbolic links" in r.stderr, r
    assert os.listdir(os.path.join(host_tmp, "elsewhere")) == [], "the copy went through a symlink"
    assert stat.S_IMODE(os.stat(os.path.join(host_tmp, "elsewhere")).st_mode) == 0o700
    # A file of the sandbox where a directory would go.
    assert cli(["write", name, "f"], stdin=b"x").rc == 0
    r = cli(["cp", "-r", host_tmp, name + ":f"])
    assert r.rc == 1 and "not a directory" in r.stderr, r


def test_cp_stdin_stdout(cli, named):
    name = named()
    data = os.urandom(200 << 10)
    r = cli(["cp", "-", name + ":/workspace/in.bin", "--json"], stdin=data)
    assert r.rc == 0 and r.json["files"] == 1 and r.json["bytes"] == len(data), r
    assert cli(["stat", name, "in.bin", "--json"]).json["mode"] == "0644"
    r = cli(["cp", name + ":in.bin", "-"])
    assert r.rc == 0 and r.stdout == data, r.stderr
    # stdin has no name to put into a directory.
    r = cli(["cp", "-", name + ":/workspace"], stdin=b"x")
    assert r.rc == 125 and "stdin has no file name" in r.stderr, r
    r = cli(["cp", "-r", name + ":/workspace", "-"])
    assert r.rc == 1 and "stdout" in r.stderr, r
    r = cli(["cp", name + ":in.bin", "-", "--json"])
    assert r.rc == 125 and r.json["ok"] is False, r


def test_mkdir_and_write_parents(cli, named):
    name = named()
    r = cli(["mkdir", name, "/workspace/a/b"])
    assert r.rc == 1 and "/workspace/a/b" in r.stderr, r
    r = cli(["mkdir", name, "/workspace/a/b", "-p", "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "path": "/workspace/a/b"}, r
    assert cli(["mkdir", name, "-p", "/workspace/a/b"]).rc == 0, "an existing directory is no error with -p"
    r = cli(["mkdir", name, "/workspace/a"])
    assert r.rc == 1 and "exists" in r.stderr, r
    assert cli(["stat", name, "a/b", "--json"]).json["type"] == "directory"
    r = cli(["write", name, "x/y/z.txt"], stdin=b"data")
    assert r.rc == 1, r
    r = cli(["write", "-p", name, "x/y/z.txt", "--json"], stdin=b"data")
    assert r.rc == 0 and r.json == {"ok": True, "path": "x/y/z.txt", "bytes": 4}, r
    assert cli(["cat", name, "/workspace/x/y/z.txt"]).stdout == b"data"


def test_rm_path(cli, named):
    name = named()
    assert cli(["exec", name, "--", "sh", "-c", "mkdir -p /workspace/t/u && echo 1 > /workspace/t/u/f && "
                "echo 2 > /workspace/g"]).rc == 0
    r = cli(["rm", name + ":/workspace/g", "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "removed": [name + ":/workspace/g"], "absent": []}, r
    r = cli(["rm", name + ":/workspace/t"])
    assert r.rc == 1 and "not empty" in r.stderr, r
    assert cli(["rm", "-r", name + ":t"]).rc == 0
    assert cli(["stat", name, "/workspace/t"]).rc == 1
    r = cli(["rm", name + ":/workspace/t"])
    assert r.rc == 1 and "No such file" in r.stderr, r
    r = cli(["rm", "-f", name + ":/workspace/t", "--json"])
    assert r.rc == 0 and r.json["absent"] == [name + ":/workspace/t"], r
    # The forms that could be taken for destroying the sandbox are refused.
    r = cli(["rm", "-r", name])
    assert r.rc == 125 and "drop -r" in r.stderr, r
    r = cli(["rm", name + ":"])
    assert r.rc == 125 and "no path" in r.stderr, r
    for root in ["/", "..", "/workspace/../", "a/../../."]:
        r = cli(["rm", "-r", name + ":" + root])
        assert r.rc == 1 and "root" in r.stderr, (root, r)
    assert ps(cli)[name]["state"] == "ready"
    assert cli(["exec", name, "--", "true"]).rc == 0


def test_rm_force_and_json(cli, named):
    r = cli(["rm", "nosuch"])
    assert r.rc == 125, r
    r = cli(["rm", "-f", "nosuch", "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "removed": [], "absent": ["nosuch"]}, r
    name = named()
    r = cli(["rm", "--json", name])
    assert r.rc == 0 and r.json == {"ok": True, "removed": [name], "absent": []}, r
    assert name not in ps(cli)
    r = cli(["rm", "--json", "nosuch"])
    assert r.rc == 125 and r.json["ok"] is False and r.json["error"]["code"] == "not_found", r


def test_cat_json_and_binary(cli, named):
    name = named()
    assert cli(["write", name, "t.txt"], stdin="héllo\n".encode()).rc == 0
    r = cli(["cat", name, "t.txt", "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "path": "t.txt", "bytes": 7, "content": "héllo\n"}, r
    raw = bytes(range(256))
    assert cli(["write", name, "b.bin"], stdin=raw).rc == 0
    j = cli(["cat", name, "b.bin", "--json"]).json
    import base64
    assert base64.b64decode(j["content_b64"]) == raw and j["bytes"] == 256, j
    r = cli(["cat", name, "missing", "--json"])
    assert r.rc == 1 and r.json["ok"] is False, r


def test_ls_and_stat_show_symlink_targets(cli, named):
    name = named()
    assert cli(["exec", name, "--", "sh", "-c", "cd /workspace && echo x > f && ln -s f rel && "
                "ln -s /nonexistent/target dangling && ln -s \"$(printf 'a\\tb')\" odd"]).rc == 0
    text = cli(["ls", name]).out
    assert re.search(r"^symlink\s+1\s+rel -> f$", text, re.M), text
    assert re.search(r"^symlink\s+\d+\s+dangling -> /nonexistent/target$", text, re.M), text
    assert re.search(r"^symlink\s+3\s+odd -> a\?b$", text, re.M), "control characters must not reach the terminal"
    entries = {e["name"]: e for e in cli(["ls", name, "--json"]).json["entries"]}
    assert entries["odd"]["target"] == "a\tb" and entries["f"]["target"] is None, entries
    st = cli(["stat", name, "dangling"])
    assert st.rc == 0 and "type:  symlink" in st.out and "target: /nonexistent/target" in st.out, st
    assert cli(["stat", name, "f", "--json"]).json["target"] is None
