# SPDX-License-Identifier: Apache-2.0
"""The CLI as people live with it: why a run ended said in words (timeout,
out-of-memory kill, layers skipped under --allow-degraded), background
processes of named sandboxes (`exec -d`, `logs`, `kill`, `ps NAME`),
`inspect`, idle expiry (`create --ttl`) and a `ps` that a wedged supervisor
cannot hold up.

The conftest guard checks after each test that no process, state
directory or cgroup is left; the `named` fixture removes the sandboxes a
test leaves.
"""
import os
import re
import signal
import time

import pytest

from conftest import USER_FILES, procs_with_arg, unique_sleep_arg
from test_cli_sessions import alive, named, ps, subtree, wait_until  # noqa: F401 (named is a fixture)

# Every test here runs on each backend with an agent (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")

ALLOC = "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('allocated')"
# A guest kernel refuses one allocation larger than its RAM outright (its
# overcommit heuristic: MemoryError); growing step by step reaches the
# memory limit, where the guest's payload cgroup kills the program.
ALLOC_GROW = "b = []\nwhile True: b.append(b'x' * (1 << 20))"


def alloc(cli):
    return ALLOC_GROW if cli.backend == "microvm" else ALLOC


def oom_mech(cli, limits_mech):
    """How the memory limit ends a program: "cgroup" kills it, "rlimit"
    makes its allocation fail. A guest has a cgroup of its own."""
    return "cgroup" if cli.backend == "microvm" else limits_mech


def cpu_quota_possible(doctor):
    """True when this caller gets a CPU quota (a cgroup with the cpu controller)."""
    status = {c["name"]: c.get("status") for c in doctor["checks"]}
    return status.get("cgroup-v1") == "ok" or status.get("cgroup-v2") == "ok"


def explain_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("mimobox: ") and not l.startswith("mimobox: error")]


# ---------------------------------------------------------------------------
# why a run ended, in words


def test_run_says_it_timed_out(cli):
    r = cli.run("--timeout", "0.5", "--", "sleep", "10")
    assert r.rc == 124, r
    assert "mimobox: timed out after 0.5 s (--timeout); killed the process tree\n" in r.stderr, r
    # --json carries it in the object; stderr stays quiet.
    r = cli(["run", "--json", "--timeout", "0.5", "--", "sleep", "10"])
    assert r.rc == 124 and r.json["timed_out"] is True and r.stderr == "", r


def test_run_tells_oom_from_kill_9(cli, limits_mech):
    # Both end with SIGKILL (137); only the memory limit's kill says so.
    r = cli.run("--", "sh", "-c", "kill -9 $$")
    assert r.rc == 137 and "out of memory" not in r.stderr and r.stderr == "", r
    r = cli.run("--memory", "64", "--", "python3", "-c", alloc(cli), timeout=60)
    if oom_mech(cli, limits_mech) == "cgroup":
        assert r.rc == 137, r
        assert "mimobox: killed: out of memory (limit 64 MiB, --memory)\n" in r.stderr, r
    else:
        # rlimits: the allocation fails inside the program; nobody was killed.
        assert r.rc != 137 and "MemoryError" in r.stderr, r
        assert "killed: out of memory" not in r.stderr, r


def test_run_says_which_layer_was_skipped(cli, doctor):
    args = ["--allow-degraded", "--cpu", "0.5", "--", "true"]
    r = cli.run(*args)
    assert r.rc == 0, r
    j = cli.json(*args)[1]
    if cpu_quota_possible(doctor):
        # Nothing was skipped, and nothing is said.
        assert j["skipped_layers"] == [], j
        assert "layer skipped" not in r.stderr, r
    else:
        # The quota cannot be had: the run goes on, but never silently.
        assert len(j["skipped_layers"]) == 1, j
        skipped = j["skipped_layers"][0]
        assert skipped["layer"] == "limits" and "CPU quota" in skipped["reason"], j
        assert "mimobox: warning: layer skipped (--allow-degraded): limits (CPU quota" in r.stderr, r
    # Without degradation asked for, nothing is ever skipped.
    j = cli.json("--", "true")[1]
    assert j["skipped_layers"] == [], j


def test_exec_says_why_it_ended(cli, named, limits_mech):
    name = named("--timeout", "0.5", "--memory", "64")
    r = cli(["exec", name, "--", "sleep", "10"])
    assert r.rc == 124, r
    assert "mimobox: timed out after 0.5 s (create --timeout); killed the process tree\n" in r.stderr, r
    r = cli(["exec", name, "--timeout", "0.3", "--", "sleep", "10"])
    assert r.rc == 124 and "timed out after 0.3 s (--timeout)" in r.stderr, r
    r = cli(["exec", name, "--", "sh", "-c", "kill -9 $$"])
    assert r.rc == 137 and r.stderr == "", r
    r = cli(["exec", name, "--timeout", "30", "--", "python3", "-c", alloc(cli)], timeout=60)
    if oom_mech(cli, limits_mech) == "cgroup":
        assert r.rc == 137 and "mimobox: killed: out of memory (limit 64 MiB, create --memory)\n" in r.stderr, r
        r = cli(["exec", name, "--json", "--timeout", "30", "--", "python3", "-c", alloc(cli)], timeout=60)
        assert r.rc == 137 and r.json["oom_killed"] is True and r.stderr == "", r
    else:
        assert r.rc != 137 and "killed: out of memory" not in r.stderr, r


def test_exec_says_which_layer_was_skipped(cli, named, doctor):
    name = named("--allow-degraded", "--cpu", "0.5")
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 0, r
    j = cli(["exec", name, "--json", "--", "true"]).json
    if cpu_quota_possible(doctor):
        assert j["skipped_layers"] == [] and "layer skipped" not in r.stderr, (j, r)
    else:
        assert [s["layer"] for s in j["skipped_layers"]] == ["limits"], j
        assert "mimobox: warning: layer skipped (--allow-degraded): limits (CPU quota" in r.stderr, r


# ---------------------------------------------------------------------------
# background processes


def procs(cli, name):
    r = cli(["ps", name, "--json"])
    assert r.rc == 0, r
    return {p["id"]: p for p in r.json["processes"]}


def detach(cli, name, *argv):
    r = cli(["exec", "-d", name, "--"] + list(argv))
    assert r.rc == 0 and re.fullmatch(r"\d+\n", r.out) and r.stderr == "", r
    return int(r.out)


def test_detached_process_outlives_the_exec(cli, named):
    if cli.backend == "microvm":
        pytest.skip("watches the payload in the host's process table: a guest's processes are not there "
                    "(the same agent code is covered on the os backend)")
    name = named()
    arg = unique_sleep_arg()
    pid0 = ps(cli)[name]["pid"]
    r = cli(["exec", "-d", name, "--", "sh", "-c", "echo started; echo on-err >&2; exec sleep " + arg])
    assert r.rc == 0 and r.wall < 20, r
    pid = int(r.out)
    # It runs on after the exec returned, inside the sandbox.
    assert wait_until(lambda: procs_with_arg(arg), 10), "the background process does not run"
    assert all(p in subtree(pid0) for p in procs_with_arg(arg))
    listed = procs(cli, name)
    assert listed[pid]["background"] is True and listed[pid]["running"] is True, listed
    assert listed[pid]["command"].startswith("sh -c echo started"), listed
    assert ps(cli)[name]["running"] == 1
    text = cli(["ps", name])
    assert text.rc == 0 and re.search(r"^%d\s+bg\s+running\s" % pid, text.out, re.M), text
    assert wait_until(lambda: cli(["logs", name, str(pid)]).out == "started\non-err\n"), \
        cli(["logs", name, str(pid)])
    # The only background process: the id may be left out.
    assert cli(["logs", name]).out == "started\non-err\n"
    # kill ends its whole tree.
    r = cli(["kill", name, str(pid)])
    assert r.rc == 0 and r.out == "" and r.stderr == "", r
    assert wait_until(lambda: not procs_with_arg(arg), 10), "kill left the process running"
    assert wait_until(lambda: not procs(cli, name)[pid]["running"], 10)
    p = procs(cli, name)[pid]
    assert p["signal"] == signal.SIGKILL and p["exit_code"] is None and p["state"] == "killed (signal 9)", p
    # Its output stays readable after the end.
    assert cli(["logs", name, str(pid)]).out == "started\non-err\n"
    r = cli(["kill", name, str(pid)])
    assert r.rc == 1 and "ended already" in r.stderr, r


def test_rm_ends_background_processes(cli, named):
    if cli.backend == "microvm":
        pytest.skip("watches the payload in the host's process table: a guest's processes are not there "
                    "(the same agent code is covered on the os backend)")
    name = named()
    arg = unique_sleep_arg()
    detach(cli, name, "sleep", arg)
    assert wait_until(lambda: procs_with_arg(arg), 10)
    assert cli(["rm", name]).rc == 0
    assert not procs_with_arg(arg), "a background process outlived its sandbox"


def test_background_output_never_blocks_and_is_bounded(cli, named):
    # 6 MiB of output nobody reads: the supervisor keeps reading, so the
    # program runs to its end; `logs` gets the last 1 MiB only.
    name = named()
    pid = detach(cli, name, "sh", "-c", "head -c 6291456 /dev/zero | tr '\\0' x; echo; echo done")
    assert wait_until(lambda: not procs(cli, name)[pid]["running"], 60), procs(cli, name)
    p = procs(cli, name)[pid]
    assert p["exit_code"] == 0 and p["output_bytes"] == 6291456 + 6, p
    r = cli(["logs", name, str(pid)])
    assert r.rc == 0 and len(r.stdout) == 1 << 20, len(r.stdout)
    assert r.stdout.endswith(b"x\ndone\n") and set(r.stdout[:-6]) == {ord("x")}, r.stdout[-20:]


def test_logs_follow(cli, named):
    name = named()
    pid = detach(cli, name, "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done")
    # -f prints what comes until the process ends, then returns.
    r = cli(["logs", "-f", name, str(pid)], timeout=30)
    assert r.rc == 0 and r.out == "1\n2\n3\n", r
    assert procs(cli, name)[pid]["exit_code"] == 0


def test_kill_with_a_signal(cli, named):
    name = named()
    pid = detach(cli, name, "sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done")
    assert wait_until(lambda: cli(["logs", name, str(pid)]).out == "ready\n", 10)
    r = cli(["kill", name, str(pid), "--signal", "SIGTERM"])
    assert r.rc == 0, r
    assert wait_until(lambda: not procs(cli, name)[pid]["running"], 10)
    p = procs(cli, name)[pid]
    assert p["exit_code"] == 7 and p["state"] == "exited 7", p
    assert cli(["logs", name, str(pid)]).out == "ready\ngot-term\n"


def test_kill_the_program_of_a_running_exec(cli, named):
    name = named()
    arg = unique_sleep_arg()
    import threading
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", cli(["exec", name, "--", "sleep", arg], timeout=60)))
    t.start()
    try:
        assert wait_until(lambda: [p for p in procs(cli, name).values() if not p["background"]], 10)
        (p,) = [p for p in procs(cli, name).values() if not p["background"]]
        assert p["running"] is True and p["command"] == "sleep " + arg, p
        assert cli(["kill", name, str(p["id"]), "--signal", "INT"]).rc == 0
    finally:
        t.join(30)
    assert box["r"].rc == 128 + signal.SIGINT, box["r"]


def test_logs_and_kill_errors(cli, named):
    name = named()
    r = cli(["logs", name])
    assert r.rc == 1 and "no background processes" in r.stderr and "exec -d" in r.stderr, r
    a = detach(cli, name, "true")
    b = detach(cli, name, "true")
    r = cli(["logs", name])
    assert r.rc == 1 and "ids %d, %d" % (a, b) in r.stderr, r
    for words, rc, what in [
        (["logs", name, "999"], 1, "no background process"),
        (["logs", name, "x"], 125, "invalid process id"),
        (["logs", name, "1", "2"], 125, "unexpected argument"),
        (["logs"], 125, "no sandbox name"),
        (["kill", name], 125, "no process id"),
        (["kill", name, "999"], 1, "no process with that id"),
        (["kill", name, str(a), "--signal", "BOGUS"], 125, "unknown signal"),
        (["kill", name, "0"], 125, "invalid process id"),
        (["exec", "-d", "--json", name, "--", "true"], 125, "--detach"),
        (["exec", "-d", "-i", name, "--", "true"], 125, "--detach"),
        (["ps", name, "extra"], 125, "unexpected argument"),
        (["inspect"], 125, "no sandbox name"),
        (["create", "--ttl", "0"], 125, "--ttl"),
        (["create", "--ttl", "5x"], 125, "unknown unit"),
        (["create", "--ttl", "1h5"], 125, "unit is missing"),
    ]:
        r = cli(words)
        assert r.rc == rc and what in r.stderr + r.out, (words, r)
    r = cli(["exec", "-d", name, "--", "no-such-program-xyz"])
    assert r.rc == 127 and "no-such-program-xyz" in r.stderr, r


@pytest.mark.parametrize("verb", ["logs", "kill", "inspect"])
def test_new_verbs_on_unknown_or_bad_sandbox(cli, verb):
    words = [verb, "nosuch"] + (["1"] if verb == "kill" else [])
    r = cli(words)
    assert r.rc == 125 and "no sandbox named `nosuch`" in r.stderr, r
    r = cli([verb, "../etc"] + words[2:])
    assert r.rc == 125 and "invalid sandbox name `../etc`" in r.stderr, r
    r = cli(["ps", "nosuch"])
    assert r.rc == 125 and "no sandbox named `nosuch`" in r.stderr, r


@pytest.mark.parametrize("verb", ["logs", "kill", "inspect"])
def test_new_verbs_help(cli, verb):
    r = cli([verb, "--help"])
    assert r.rc == 0 and r.out.startswith("Usage: mimobox " + verb), r
    assert re.search(r"^  %s\s" % verb, cli(["--help"]).out, re.M)


# ---------------------------------------------------------------------------
# inspect


def test_inspect(cli, named, host_tmp):
    if cli.backend == "microvm":
        pytest.skip("uses --mount, which the microvm backend refuses (no virtiofs yet)")
    secret = "s3cr3t-" + os.urandom(4).hex()
    name = named("--env", "API_TOKEN=" + secret, "--env", "MODE=x", "--memory", "128", "--timeout", "7",
                 "--hostname", "box", "--workdir", "/tmp", "--mount", host_tmp + ":/data:rw",
                 "--max-procs", "32", "--ttl", "1h")
    r = cli(["inspect", name, "--json"])
    assert r.rc == 0, r
    j = r.json
    assert secret not in r.out, "inspect shows an environment value"
    assert j["name"] == name and j["isolation"] == cli.backend and j["trust"] == "semi", j
    assert j["network"]["policy"] == "deny" and j["network"]["domains"] == [], j
    assert j["limits"]["timeout_ms"] == 7000 and j["limits"]["memory_bytes"] == 128 << 20, j
    assert j["limits"]["max_procs"] == 32 and j["limits"]["cpus"] is None, j
    assert j["limits"]["output_limit_bytes"] == 16 << 20 and j["limits"]["mechanism"], j
    assert j["env_keys"] == ["API_TOKEN", "MODE"], j
    assert j["mounts"] == [{"host": host_tmp, "sandbox": "/data", "mode": "rw"}], j
    assert j["workdir"] == "/tmp" and j["hostname"] == "box", j
    assert j["ttl_s"] == 3600 and 3500 < j["expires_in_s"] <= 3600, j
    assert abs(j["created"] - time.time()) < 120, j
    assert {"user-namespace", "seccomp", "landlock", "limits"} <= set(j["layers"]), j
    assert j["skipped_layers"] == [] and j["allow_degraded"] is False, j
    assert j["supervisor_pid"] == ps(cli)[name]["pid"], j
    r = cli(["inspect", name])
    assert r.rc == 0 and secret not in r.out, r
    assert re.search(r"^env:\s+API_TOKEN MODE \(values not shown\)$", r.out, re.M), r.out
    assert re.search(r"^memory:\s+128 MiB$", r.out, re.M), r.out
    assert re.search(r"^layers:.*\bseccomp\b", r.out, re.M), r.out
    assert re.search(r"^skipped:\s+none$", r.out, re.M), r.out


def test_inspect_defaults_and_degraded(cli, named, doctor):
    name = named("--allow-degraded", "--cpu", "0.5", "--network", "allow:pkg.example.invalid,*.mirror.invalid")
    j = cli(["inspect", name, "--json"]).json
    assert j["limits"]["timeout_ms"] == 30000 and j["limits"]["memory_bytes"] == 512 << 20, j
    assert j["limits"]["cpus"] == 0.5 and j["network"]["policy"] == "allow-domains", j
    assert j["network"]["domains"] == ["pkg.example.invalid", "*.mirror.invalid"], j
    assert j["workdir"] == "/workspace" and j["hostname"] == "mimobox" and j["env_keys"] == [], j
    assert j["ttl_s"] is None and j["expires_in_s"] is None and j["allow_degraded"] is True, j
    if cpu_quota_possible(doctor):
        assert j["skipped_layers"] == [], j
    else:
        assert [s["layer"] for s in j["skipped_layers"]] == ["limits"], j
        assert "limits" not in j["layers"], j


# ---------------------------------------------------------------------------
# idle expiry


def test_ttl_expires_an_idle_sandbox(cli, named):
    name = named("--ttl", "2s")
    e = ps(cli)[name]
    assert e["ttl_s"] == 2 and 0 < e["expires_in_s"] <= 2, e
    text = cli(["ps"]).out
    assert re.search((r"^%s\s+" + cli.backend + r"\s+\S+\s+in \d+s\s+ready$") % name, text, re.M), text
    # Looking (ps, inspect) is not using: it expires all the same.
    assert wait_until(lambda: cli(["inspect", name]).rc != 0 and name not in ps(cli), 20), "it never expired"
    assert wait_until(lambda: not alive(e["pid"]), 10), "the supervisor of an expired sandbox stays"
    # It destroyed its sandbox and removed its entry on the way out.
    left = [e for e in os.listdir(cli.guard.state_dir) if e not in USER_FILES]
    assert left == [], left


def test_ttl_counts_from_the_last_use(cli, named):
    name = named("--ttl", "3s")
    e = ps(cli)[name]
    # Used every second for 6 s: never idle for 3 s.
    end = time.monotonic() + 6
    while time.monotonic() < end:
        assert cli(["exec", name, "--", "true"]).rc == 0
        time.sleep(1)
    assert alive(e["pid"]) and name in ps(cli)
    # A running exec is use too, however long it lasts.
    r = cli(["exec", name, "--", "sleep", "4.5"], timeout=30)
    assert r.rc == 0 and alive(e["pid"]), r
    assert wait_until(lambda: name not in ps(cli), 20)


def test_ttl_with_a_background_process(cli, named):
    if cli.backend == "microvm":
        pytest.skip("watches the payload in the host's process table: a guest's processes are not there "
                    "(the same agent code is covered on the os backend)")
    # A server left running does not keep an unused sandbox: it goes with it.
    name = named("--ttl", "2s")
    arg = unique_sleep_arg()
    detach(cli, name, "sleep", arg)
    assert wait_until(lambda: procs_with_arg(arg), 10)
    assert wait_until(lambda: name not in ps(cli), 20)
    assert wait_until(lambda: not procs_with_arg(arg), 10)


# ---------------------------------------------------------------------------
# ps and wedged supervisors


def test_ps_is_not_held_up_by_wedged_supervisors(cli, named):
    names = [named() for _ in range(4)]
    pids = {n: ps(cli)[n]["pid"] for n in names}
    stopped = names[:3]
    for n in stopped:
        os.kill(pids[n], signal.SIGSTOP)
    try:
        r = cli(["ps", "--json"])
        assert r.rc == 0, r
        states = {s["name"]: s["state"] for s in r.json["sandboxes"]}
        assert states == {n: "unresponsive" if n in stopped else "ready" for n in names}, states
        # How long that takes is measured by bench/bench_ps.py, not here.
        text = cli(["ps"])
        assert text.rc == 0 and len(re.findall(r"unresponsive$", text.out, re.M)) == 3, text
    finally:
        for n in stopped:
            os.kill(pids[n], signal.SIGCONT)
    assert all(e["state"] == "ready" for e in ps(cli).values())


def test_commands_give_up_on_a_stopped_supervisor(cli, named):
    # Its socket still accepts (the kernel queues the connection), but the
    # supervisor never says INFO: the command reports it instead of hanging.
    name = named()
    pid = ps(cli)[name]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        r = cli(["exec", name, "--", "true"], timeout=60)
        assert r.rc == 125 and "does not answer" in r.stderr, r
    finally:
        os.kill(pid, signal.SIGCONT)
    r = cli(["exec", name, "--", "true"])
    assert r.rc == 0, r


def test_ps_survives_a_supervisor_that_accepts_nobody(cli, named):
    # A stopped supervisor whose listen backlog is full: a blocking connect()
    # would wait for it forever. ps connects without blocking and goes on.
    import socket
    name, other = named(), named()
    pid = ps(cli)[name]["pid"]
    path = os.path.join(cli.guard.state_dir, "named", name + ".sock")
    os.kill(pid, signal.SIGSTOP)
    socks = []
    try:
        while len(socks) < 1000:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            try:
                s.connect(path)
            except BlockingIOError:
                break
        else:
            pytest.fail("the backlog never filled")
        r = cli(["ps", "--json"], timeout=30)
        assert r.rc == 0, r
        states = {e["name"]: e["state"] for e in r.json["sandboxes"]}
        assert states == {name: "unresponsive", other: "ready"}, states
        # Other verbs give up too, with the reason, instead of waiting forever.
        r = cli(["cat", name, "x"], timeout=60)
        assert r.rc == 125 and "does not answer" in r.stderr, r
    finally:
        for s in socks:
            s.close()
        os.kill(pid, signal.SIGCONT)
    assert wait_until(lambda: ps(cli)[name]["state"] == "ready", 10)


def test_background_processes_are_bounded(cli, named):
    # 32 are kept: an ended one makes room for a new one, running ones never.
    name = named("--max-procs", "256")
    first = [detach(cli, name, "true") for _ in range(32)]
    assert wait_until(lambda: not any(p["running"] for p in procs(cli, name).values()), 30)
    newer = detach(cli, name, "sleep", unique_sleep_arg())
    listed = procs(cli, name)
    assert first[0] not in listed and first[1] in listed and newer in listed and len(listed) == 32, sorted(listed)
    for _ in range(31):
        detach(cli, name, "sleep", unique_sleep_arg())
    assert all(p["running"] for p in procs(cli, name).values())
    r = cli(["exec", "-d", name, "--", "true"])
    assert r.rc == 125 and "32 background processes" in r.stderr and "mimobox kill" in r.stderr, r
