# SPDX-License-Identifier: Apache-2.0
"""The library API through ctypes: a sandbox living across executes, and
destroy."""
import ctypes
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
    # An os sandbox without host files keeps a lock file, not a directory.
    state = os.path.join(state_base, sid + ".lock")

    # While it lives: an agent process below us, its lock file, and (with
    # cgroup limits) its cgroup directories.
    assert sb.exec(["sh", "-c", "echo data > /workspace/f"]).exit_code == 0
    assert agent_pids(), "no agent process found for a live sandbox"
    assert os.path.isfile(state), "lock file %s missing while the sandbox lives" % state
    assert not os.path.exists(os.path.join(state_base, sid))
    if limits_mech == "cgroup":
        assert sb.limits_mechanism.startswith("cgroup"), sb.limits_mechanism
        assert cgroup_dirs(sid), "no cgroup directory for live sandbox %s" % sid
    else:
        assert sb.limits_mechanism == "rlimit", sb.limits_mechanism

    assert sb.destroy() == mbx.MBX_OK

    assert agent_pids() == [], "agent still running after destroy"
    assert not os.path.exists(state), "lock file %s remains after destroy" % state
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
    state = os.path.join(guard.state_dir, sb.id + ".lock")
    assert os.path.isfile(state)
    sb.close()
    assert not os.path.exists(state)
    assert agent_pids() == []


MBX_LAYER_SECCOMP = 1 << 7
MBX_LAYER_LIMITS = 1 << 11


def _declare_layer_api(l):
    vp, pvp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    for name, restype, argtypes in [
        ("mbx_config_set_cpu_limit", ctypes.c_int, [vp, ctypes.c_uint32, pvp]),
        ("mbx_config_set_memory_limit", ctypes.c_int, [vp, ctypes.c_uint64, pvp]),
        ("mbx_config_set_allow_degraded", None, [vp, ctypes.c_int]),
        ("mbx_result_layers", ctypes.c_uint32, [vp]),
        ("mbx_result_skipped", ctypes.c_uint32, [vp]),
        ("mbx_result_skip_reason", ctypes.c_char_p, [vp, ctypes.c_uint32]),
        ("mbx_sandbox_layers", ctypes.c_uint32, [vp]),
        ("mbx_sandbox_skipped", ctypes.c_uint32, [vp]),
        ("mbx_sandbox_skip_reason", ctypes.c_char_p, [vp, ctypes.c_uint32]),
        ("mbx_sandbox_oom_kills", ctypes.c_uint64, [vp]),
    ]:
        fn = getattr(l, name)
        fn.restype, fn.argtypes = restype, argtypes


def _exec_raw(l, sb, argv):
    args = (ctypes.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    res = ctypes.c_void_p()
    assert l.mbx_sandbox_exec(sb, args, None, ctypes.byref(res), None) == mbx.MBX_OK
    return res


def test_skipped_layers_are_reported_with_their_reason(lib, guard, doctor):
    # A CPU quota under allow-degraded: where no cgroup has the cpu
    # controller the quota is skipped, and the sandbox and every result say
    # so and why; where it can be had, nothing is skipped.
    l = lib.lib
    _declare_layer_api(l)
    status = {c["name"]: c.get("status") for c in doctor["checks"]}
    quota = status.get("cgroup-v1") == "ok" or status.get("cgroup-v2") == "ok"
    cfg, sb = ctypes.c_void_p(), ctypes.c_void_p()
    assert l.mbx_config_new(ctypes.byref(cfg), None) == mbx.MBX_OK
    assert l.mbx_config_set_cpu_limit(cfg, 500, None) == mbx.MBX_OK
    l.mbx_config_set_allow_degraded(cfg, 1)
    rc = l.mbx_sandbox_new(ctypes.byref(sb), cfg, None)
    l.mbx_config_free(cfg)
    assert rc == mbx.MBX_OK
    try:
        guard.ids.add(l.mbx_sandbox_id(sb).decode())
        res = _exec_raw(l, sb, ["true"])
        try:
            assert l.mbx_result_layers(res) == l.mbx_sandbox_layers(sb) != 0
            assert l.mbx_result_skipped(res) == l.mbx_sandbox_skipped(sb)
            # Only single skipped bits have a reason.
            assert l.mbx_result_skip_reason(res, MBX_LAYER_SECCOMP) is None
            assert l.mbx_result_skip_reason(res, MBX_LAYER_LIMITS | MBX_LAYER_SECCOMP) is None
            assert l.mbx_result_skip_reason(res, 0) is None
            if quota:
                assert l.mbx_result_skipped(res) == 0
                assert l.mbx_result_layers(res) & MBX_LAYER_LIMITS
                assert l.mbx_result_skip_reason(res, MBX_LAYER_LIMITS) is None
            else:
                assert l.mbx_result_skipped(res) == MBX_LAYER_LIMITS
                assert not l.mbx_result_layers(res) & MBX_LAYER_LIMITS
                reason = l.mbx_result_skip_reason(res, MBX_LAYER_LIMITS).decode()
                assert "CPU quota" in reason, reason
                assert l.mbx_sandbox_skip_reason(sb, MBX_LAYER_LIMITS).decode() == reason
        finally:
            l.mbx_result_free(res)
    finally:
        l.mbx_sandbox_free(sb)
    # NULL is safe everywhere.
    assert l.mbx_result_skipped(None) == 0 and l.mbx_result_skip_reason(None, MBX_LAYER_LIMITS) is None
    assert l.mbx_sandbox_skip_reason(None, MBX_LAYER_LIMITS) is None and l.mbx_sandbox_oom_kills(None) == 0


def test_oom_kills_are_counted(lib, guard, limits_mech):
    l = lib.lib
    _declare_layer_api(l)
    cfg, sb = ctypes.c_void_p(), ctypes.c_void_p()
    assert l.mbx_config_new(ctypes.byref(cfg), None) == mbx.MBX_OK
    assert l.mbx_config_set_memory_limit(cfg, 64 << 20, None) == mbx.MBX_OK
    rc = l.mbx_sandbox_new(ctypes.byref(sb), cfg, None)
    l.mbx_config_free(cfg)
    assert rc == mbx.MBX_OK
    try:
        guard.ids.add(l.mbx_sandbox_id(sb).decode())
        assert l.mbx_sandbox_oom_kills(sb) == 0
        l.mbx_result_free(_exec_raw(l, sb, ["sh", "-c", "kill -9 $$"]))
        assert l.mbx_sandbox_oom_kills(sb) == 0, "a plain SIGKILL counted as an OOM kill"
        alloc = "b = bytearray(256 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1"
        res = _exec_raw(l, sb, ["python3", "-c", alloc])
        l.mbx_result_free(res)
        if limits_mech == "cgroup":
            assert l.mbx_sandbox_oom_kills(sb) >= 1
        else:
            assert l.mbx_sandbox_oom_kills(sb) == 0
    finally:
        l.mbx_sandbox_free(sb)
