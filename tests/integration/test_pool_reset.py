# SPDX-License-Identifier: Apache-2.0
"""Reuse of os sandboxes (mbx_sandbox_reset(), mbx_pool_set_reuse(),
mbx_pool_give_back(); docs/security-model.md "Reuse of a sandbox").

A first user leaves things behind; after the reset the next user must see
none of them. Each test covers one part of the reset (src/agent/reset.c)
and fails when that part is taken out: processes (a double-forked process
in a new session, a listening socket on loopback), the storage (files in
/workspace, /tmp, /dev/shm, a changed mode), IPC (SysV shared memory,
semaphores, message queues, a POSIX message queue), the OOM count. And a
reset that cannot be complete fails closed: the sandbox is destroyed.
"""
import ctypes
import os
import textwrap
import time

import pytest

import mbx
from testsupport import descendants, proc_table, procs_with_arg, unique_sleep_arg

vp = ctypes.c_void_p
pvp = ctypes.POINTER(ctypes.c_void_p)


@pytest.fixture
def rlib(lib):
    lib.lib.mbx_sandbox_reset.restype = ctypes.c_int
    lib.lib.mbx_sandbox_reset.argtypes = [vp, pvp]
    lib.lib.mbx_sandbox_oom_kills.restype = ctypes.c_uint64
    lib.lib.mbx_sandbox_oom_kills.argtypes = [vp]
    lib.lib.mbx_pool_new.restype = ctypes.c_int
    lib.lib.mbx_pool_new.argtypes = [pvp, vp, ctypes.c_size_t, pvp]
    lib.lib.mbx_pool_take.restype = ctypes.c_int
    lib.lib.mbx_pool_take.argtypes = [vp, pvp, pvp]
    lib.lib.mbx_pool_give_back.restype = ctypes.c_int
    lib.lib.mbx_pool_give_back.argtypes = [vp, vp, ctypes.c_uint, pvp]
    lib.lib.mbx_pool_set_reuse.restype = ctypes.c_int
    lib.lib.mbx_pool_set_reuse.argtypes = [vp, ctypes.c_uint, pvp]
    lib.lib.mbx_pool_ready.restype = ctypes.c_size_t
    lib.lib.mbx_pool_ready.argtypes = [vp]
    lib.lib.mbx_pool_free.restype = None
    lib.lib.mbx_pool_free.argtypes = [vp]
    return lib


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def reset(lib, sb):
    """mbx_sandbox_reset: (rc, message)."""
    err = ctypes.c_void_p()
    rc = lib.lib.mbx_sandbox_reset(sb._sb, ctypes.byref(err))
    return (rc, lib.take_error(err)[1] if rc != mbx.MBX_OK else None)


def sh(sb, script):
    r = sb.exec(["/bin/sh", "-c", script])
    return r


def py(sb, code):
    r = sb.exec(["python3", "-c", textwrap.dedent(code)])
    assert r.exit_code == 0, r.stderr
    return r.stdout.decode()


LISTENER = """
    import socket
    try:
        socket.create_connection(("127.0.0.1", 4244), timeout=5).close()
        print("listening")
    except ConnectionRefusedError:
        print("refused")
"""


def test_reset_kills_processes_in_new_sessions_and_double_forked(rlib, osbox):
    # A spawned process that started processes in a new session which
    # double-forked, and a listener on loopback, all still running. An
    # execute sees only its own processes (its own pid namespace), so they
    # are looked for from the host, and the listener from the next user.
    a, b = unique_sleep_arg(), unique_sleep_arg()
    p = osbox.spawn(["/bin/sh", "-c", "setsid sh -c 'sleep %s </dev/null & sleep %s </dev/null &'; "
                     "setsid python3 -c 'import socket,time; s=socket.socket(); "
                     "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"127.0.0.1\", 4244)); "
                     "s.listen(); time.sleep(4242)' </dev/null & exec sleep 4444" % (a, b)])
    deadline = time.monotonic() + 20
    while not (procs_with_arg(a) and procs_with_arg(b)) and time.monotonic() < deadline:
        time.sleep(0.05)
    while py(osbox, LISTENER).strip() != "listening" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs_with_arg(a) and procs_with_arg(b)
    assert reset(rlib, osbox) == (mbx.MBX_OK, None)
    # Killed and reaped when the reset answers: none of them is left, not
    # even as a zombie.
    assert not procs_with_arg(a) and not procs_with_arg(b) and not procs_with_arg("4444")
    assert py(osbox, LISTENER).strip() == "refused"
    # The handle of the spawned process outlived its process.
    with pytest.raises(mbx.MbxError) as e:
        p.wait(5000)
    assert e.value.code == mbx.MBX_ESTATE
    p.close()
    # Below this test process: the sandbox's agent (its PID 1) and, made
    # once it is idle, its spare mini-init for the next execute; once the
    # last execute's mini-init is reaped (it reports before it exits).
    me = os.getpid()

    def others():
        table = proc_table()
        return {pid: argv for pid, argv in descendants().items()
                if table.get(pid, (0,))[0] != me and comm(pid) != "mimobox-spare"}

    deadline = time.monotonic() + 10
    while others() and time.monotonic() < deadline:
        time.sleep(0.01)
    left = others()
    assert not left, {pid: (argv, proc_table().get(pid)) for pid, argv in left.items()}
    assert len(descendants()) <= 2, descendants()


def test_reset_empties_workspace_tmp_and_dev_shm(rlib, osbox):
    r = sh(osbox, "echo a > /workspace/a && mkdir -p /workspace/d/e && echo b > /workspace/d/e/b && "
                  "chmod 000 /workspace/d && echo c > /tmp/c && mkdir /tmp/.hidden && echo s > /dev/shm/s && "
                  "mkfifo /tmp/fifo && ln -s /etc/passwd /tmp/link && chmod 0700 /tmp && "
                  "exec 3>/dev/shm/deleted && rm /dev/shm/deleted && echo done")
    assert r.exit_code == 0 and b"done" in r.stdout, r.stderr
    assert reset(rlib, osbox) == (mbx.MBX_OK, None)
    out = py(osbox, """
        import os, stat
        for d in ("/workspace", "/tmp", "/dev/shm"):
            st = os.lstat(d)
            print(d, sorted(os.listdir(d)), oct(stat.S_IMODE(st.st_mode)), st.st_uid)
        sv = os.statvfs("/workspace")
        print("inodes", sv.f_files - sv.f_ffree)
    """).splitlines()
    assert out == ["/workspace [] 0o755 0", "/tmp [] 0o1777 0", "/dev/shm [] 0o1777 0", "inodes 4"], out


def test_reset_gives_a_fresh_ipc_namespace(rlib, osbox):
    r = sh(osbox, "ipcmk -M 4096 && ipcmk -S 2 && ipcmk -Q")
    assert r.exit_code == 0, r.stderr
    made = py(osbox, """
        import ctypes, os
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        rt.mq_open.restype = ctypes.c_int
        q = rt.mq_open(b"/mbx-reset", os.O_CREAT | os.O_RDWR, 0o600, None)
        print("mq" if q >= 0 else "no-mq %d" % ctypes.get_errno())
    """).strip()
    count = """
        import ctypes, os
        n = [len(open("/proc/sysvipc/" + k).read().splitlines()) - 1 for k in ("shm", "sem", "msg")]
        rt = ctypes.CDLL("librt.so.1", use_errno=True)
        rt.mq_open.restype = ctypes.c_int
        q = rt.mq_open(b"/mbx-reset", os.O_RDWR, 0, None)
        print(n, "mq" if q >= 0 else "no-mq")
    """
    assert py(osbox, count).strip() == "[1, 1, 1] %s" % ("mq" if made == "mq" else "no-mq")
    assert reset(rlib, osbox) == (mbx.MBX_OK, None)
    # (Where payloads may not open POSIX message queues, as under the
    # default seccomp program, "no-mq" holds before and after.)
    assert py(osbox, count).strip() == "[0, 0, 0] no-mq"


def test_reset_keeps_the_host_name_and_the_sysv_limits(rlib, osbox):
    before = sh(osbox, "hostname; cat /proc/sys/kernel/shmmax /proc/sys/kernel/sem; hostname evil.invalid; echo $?")
    assert reset(rlib, osbox) == (mbx.MBX_OK, None)
    after = sh(osbox, "hostname; cat /proc/sys/kernel/shmmax /proc/sys/kernel/sem; hostname evil.invalid; echo $?")
    assert before.stdout == after.stdout
    # A payload cannot change the host name (no CAP_SYS_ADMIN): the reset
    # sets it again all the same.
    assert after.stdout.splitlines()[0] == b"mimobox" and after.stdout.splitlines()[-1] != b"0"
    # /proc/sys stays read-only for payloads after the copy into the new namespace.
    r = sh(osbox, "echo 1 > /proc/sys/kernel/shmmni && echo wrote")
    assert b"wrote" not in r.stdout


def test_reset_counts_oom_kills_from_zero(rlib, lib, guard, limits_mech):
    if limits_mech != "cgroup":
        pytest.skip("no cgroup here: out-of-memory kills are not counted")
    cfg = mbx.Config(lib)
    try:
        assert lib.lib.mbx_config_set_memory_limit(cfg.cfg, 64 << 20, None) == mbx.MBX_OK
        sb = mbx.Sandbox(lib, config=cfg)
    finally:
        cfg.close()
    guard.ids.add(sb.id)
    with sb:
        r = sb.exec(["python3", "-c", "b = bytearray(512 << 20); print(len(b))"])
        assert r.signal == 9, (r.exit_code, r.stderr)
        assert rlib.lib.mbx_sandbox_oom_kills(sb._sb) >= 1
        assert reset(rlib, sb) == (mbx.MBX_OK, None)
        assert rlib.lib.mbx_sandbox_oom_kills(sb._sb) == 0
        r = sb.exec(["/bin/true"])
        assert r.exit_code == 0 and not r.oom_killed
        assert rlib.lib.mbx_sandbox_oom_kills(sb._sb) == 0


def test_a_failed_reset_destroys_the_sandbox(rlib, lib, guard, host_tmp):
    # A sandbox with a mount of a host directory is never reset.
    cfg = mbx.Config(lib)
    try:
        cfg.add_mount(host_tmp, "/data", mbx.Config.MOUNT_RW)
        sb = mbx.Sandbox(lib, config=cfg)
    finally:
        cfg.close()
    guard.ids.add(sb.id)
    with sb:
        rc, msg = reset(rlib, sb)
        assert rc == mbx.MBX_ENOTSUP and "mounts of host paths" in msg, msg
        rc, _, msg = sb.exec_status(["/bin/true"])
        assert rc == mbx.MBX_ESTATE, msg


def test_a_fork_is_not_reset(rlib, lib, guard, osbox):
    sh(osbox, "echo x > /workspace/x")
    child = osbox.fork()
    guard.ids.add(child.id)
    with child:
        rc, msg = reset(rlib, child)
        assert rc != mbx.MBX_OK and "reset" in msg, msg
        assert child.exec_status(["/bin/true"])[0] == mbx.MBX_ESTATE
    rc, msg = reset(rlib, osbox)
    # The parent's storage is an overlay now (when the fork shared layers),
    # or the plain tmpfs (when it copied): refused, or complete.
    if rc == mbx.MBX_OK:
        assert sh(osbox, "ls -A /workspace").stdout == b""
    else:
        assert "not the sandbox's plain storage" in msg, msg
        assert osbox.exec_status(["/bin/true"])[0] == mbx.MBX_ESTATE


def _pool(lib, size=1):
    pool = ctypes.c_void_p()
    err = ctypes.c_void_p()
    rc = lib.lib.mbx_pool_new(ctypes.byref(pool), None, size, ctypes.byref(err))
    assert rc == mbx.MBX_OK, lib.take_error(err)
    return pool


def _take(lib, pool, guard):
    sb = ctypes.c_void_p()
    err = ctypes.c_void_p()
    rc = lib.lib.mbx_pool_take(pool, ctypes.byref(sb), ctypes.byref(err))
    assert rc == mbx.MBX_OK, lib.take_error(err)
    s = mbx.Sandbox.wrap(lib, sb)
    guard.ids.add(s.id)
    return s


def test_pool_hands_a_given_back_sandbox_out_again_reset(rlib, guard):
    lib = rlib
    pool = _pool(lib)
    try:
        assert lib.lib.mbx_pool_set_reuse(pool, 3, None) == mbx.MBX_OK
        ids = []
        for i in range(4):
            sb = _take(lib, pool, guard)
            ids.append(sb.id)
            assert sb.exec(["/bin/sh", "-c", "ls -A /workspace; echo %d > /workspace/f" % i]).stdout == b""
            handle, sb._sb = sb._sb, ctypes.c_void_p()
            assert lib.lib.mbx_pool_give_back(pool, handle, 0, None) == mbx.MBX_OK
        # One sandbox served three users, then a new one came.
        assert ids[0] == ids[1] == ids[2] and ids[3] != ids[0], ids
        # Discarded: never handed out again.
        sb = _take(lib, pool, guard)
        first = sb.id
        handle, sb._sb = sb._sb, ctypes.c_void_p()
        assert lib.lib.mbx_pool_give_back(pool, handle, 1, None) == mbx.MBX_OK
        sb = _take(lib, pool, guard)
        assert sb.id != first
        handle, sb._sb = sb._sb, ctypes.c_void_p()
        assert lib.lib.mbx_pool_give_back(pool, handle, 0, None) == mbx.MBX_OK
    finally:
        lib.lib.mbx_pool_free(pool)


def test_pool_without_reuse_destroys_what_is_given_back(rlib, guard):
    lib = rlib
    pool = _pool(lib)
    try:
        sb = _take(lib, pool, guard)
        first = sb.id
        handle, sb._sb = sb._sb, ctypes.c_void_p()
        assert lib.lib.mbx_pool_give_back(pool, handle, 0, None) == mbx.MBX_OK
        sb = _take(lib, pool, guard)
        assert sb.id != first
        sb.close()
        err = ctypes.c_void_p()
        assert lib.lib.mbx_pool_set_reuse(pool, 100001, ctypes.byref(err)) == mbx.MBX_EINVAL
        assert "0 (no reuse)" in lib.take_error(err)[1]
    finally:
        lib.lib.mbx_pool_free(pool)


def test_pool_never_reuses_a_sandbox_with_an_oom_kill(rlib, guard, limits_mech):
    if limits_mech != "cgroup":
        pytest.skip("no cgroup here: out-of-memory kills are not counted")
    lib = rlib
    cfg = mbx.Config(lib)
    pool = ctypes.c_void_p()
    try:
        assert lib.lib.mbx_config_set_memory_limit(cfg.cfg, 64 << 20, None) == mbx.MBX_OK
        err = ctypes.c_void_p()
        rc = lib.lib.mbx_pool_new(ctypes.byref(pool), cfg.cfg, 1, ctypes.byref(err))
        assert rc == mbx.MBX_OK, lib.take_error(err)
    finally:
        cfg.close()
    try:
        assert lib.lib.mbx_pool_set_reuse(pool, 10, None) == mbx.MBX_OK
        sb = _take(lib, pool, guard)
        first = sb.id
        r = sb.exec(["python3", "-c", "b = bytearray(512 << 20)"])
        assert r.signal == 9 and r.oom_killed, (r.exit_code, r.stderr)
        handle, sb._sb = sb._sb, ctypes.c_void_p()
        assert lib.lib.mbx_pool_give_back(pool, handle, 0, None) == mbx.MBX_OK
        sb = _take(lib, pool, guard)
        assert sb.id != first
        handle, sb._sb = sb._sb, ctypes.c_void_p()
        assert lib.lib.mbx_pool_give_back(pool, handle, 0, None) == mbx.MBX_OK
    finally:
        lib.lib.mbx_pool_free(pool)
