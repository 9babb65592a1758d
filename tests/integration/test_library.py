# SPDX-License-Identifier: Apache-2.0
"""The library API through ctypes: a sandbox living across executes, and
destroy."""
import os
import secrets

import mbx
from conftest import cgroup_dirs, descendants, procs_with_arg, unique_sleep_arg


def agent_pids():
    """Our child processes that are sandbox agents (clone()d by the library
    into this very process)."""
    me = os.getpid()
    out = []
    for pid, argv in descendants().items():
        try:
            with open("/proc/%d/stat" % pid) as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except OSError:
            continue
        if ppid == me and argv[:1] == ["mimobox-agent"]:
            out.append(pid)
    return out


def mounts_mentioning(text):
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if text in l]


def test_files_persist_across_executes(sandbox):
    token = secrets.token_hex(16)
    r = sandbox.exec(["sh", "-c", "echo %s > /workspace/note; mkdir -p /workspace/d; echo x > /workspace/d/f" % token])
    assert r.exit_code == 0, r
    r = sandbox.exec(["cat", "/workspace/note", "/workspace/d/f"])
    assert r.exit_code == 0, r
    assert r.stdout == (token + "\nx\n").encode(), r
    # The default working directory is /workspace.
    r = sandbox.exec(["cat", "note"])
    assert r.stdout == (token + "\n").encode(), r


def test_tmp_is_per_sandbox_but_persists(sandbox, lib):
    token = secrets.token_hex(8)
    assert sandbox.exec(["sh", "-c", "echo %s > /tmp/t" % token]).exit_code == 0
    assert sandbox.exec(["cat", "/tmp/t"]).stdout == (token + "\n").encode()
    with mbx.Sandbox(lib) as other:
        r = other.exec(["cat", "/tmp/t"])
        assert r.exit_code != 0 and r.stdout == b"", r
        r = other.exec(["cat", "/workspace/note"])
        assert r.exit_code != 0, r


def test_background_process_does_not_outlive_its_execute(sandbox):
    arg = unique_sleep_arg()
    r = sandbox.exec(["sh", "-c", "sleep %s & echo started" % arg])
    assert r.exit_code == 0 and r.stdout == b"started\n", r
    assert procs_with_arg(arg) == [], "a background process of a finished execute is still running"
    r = sandbox.exec(["ps", "-eo", "args"])
    assert r.exit_code == 0, r
    assert arg.encode() not in r.stdout, r
    assert r.stdout.decode().split("\n").count("ps -eo args") == 1, r


def test_missing_program_is_not_found(sandbox):
    rc, res, msg = sandbox.exec_status(["/no/such/program-" + secrets.token_hex(4)])
    assert rc == mbx.MBX_ENOTFOUND, (rc, msg)
    assert "/no/such/program-" in msg
    # The sandbox still works afterwards.
    assert sandbox.exec(["true"]).exit_code == 0


def test_destroy_is_idempotent_and_exec_after_destroy_is_estate(sandbox):
    assert sandbox.exec(["true"]).exit_code == 0
    assert sandbox.destroy() == mbx.MBX_OK
    assert sandbox.destroy() == mbx.MBX_OK
    rc, res, msg = sandbox.exec_status(["true"])
    assert rc == mbx.MBX_ESTATE, (rc, msg)
    assert res is None
    assert sandbox.id in msg or "destroy" in msg, msg


def _check_destroy_removes_everything(sb, state_base, user, limits_mech):
    sid = sb.id
    assert len(sid) == 16 and int(sid, 16) >= 0, sid
    state = os.path.join(state_base, sid)

    # While it lives: an agent process below us, its state directory, and
    # (with cgroup limits) its cgroup directories.
    assert sb.exec(["sh", "-c", "echo data > /workspace/f"]).exit_code == 0
    assert agent_pids(), "no agent process found for a live sandbox"
    assert os.path.isdir(state), "state directory %s missing while the sandbox lives" % state
    if limits_mech == "cgroup":
        assert sb.limits_mechanism.startswith("cgroup"), sb.limits_mechanism
        assert cgroup_dirs(sid), "no cgroup directory for live sandbox %s" % sid
    else:
        assert sb.limits_mechanism == "rlimit", sb.limits_mechanism

    assert sb.destroy() == mbx.MBX_OK

    assert agent_pids() == [], "agent still running after destroy"
    assert not os.path.exists(state), "state directory %s remains after destroy: %s" % (state, os.listdir(state))
    assert cgroup_dirs(sid) == [], "cgroup directories remain after destroy"
    assert mounts_mentioning(sid) == [], "host mounts mention the sandbox"


def test_destroy_removes_process_state_dir_and_cgroups(sandbox, guard, user, limits_mech):
    _check_destroy_removes_everything(sandbox, guard.state_dir, user, limits_mech)


def test_destroy_cleans_default_state_dir(lib, guard, user, limits_mech, monkeypatch):
    # Without MIMOBOX_STATE_DIR: /run/mimobox for root; for others
    # $XDG_RUNTIME_DIR/mimobox when writable, else /tmp/mimobox-<uid>.
    monkeypatch.delenv("MIMOBOX_STATE_DIR")
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if user.is_root:
        base = "/run/mimobox"
    elif xdg.startswith("/") and os.access(xdg, os.W_OK):
        base = os.path.join(xdg, "mimobox")
    else:
        base = "/tmp/mimobox-%d" % user.euid
    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    try:
        _check_destroy_removes_everything(sb, base, user, limits_mech)
    finally:
        sb.close()


def test_free_without_destroy_cleans_up(lib, guard):
    sb = mbx.Sandbox(lib)
    guard.ids.add(sb.id)
    assert sb.exec(["true"]).exit_code == 0
    state = os.path.join(guard.state_dir, sb.id)
    assert os.path.isdir(state)
    sb.close()
    assert not os.path.exists(state)
    assert agent_pids() == []
