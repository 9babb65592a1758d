# SPDX-License-Identifier: Apache-2.0
"""Snapshots, restore and fork (include/mbx/snapshot.h): the files and the
config come back exactly, sandboxes made from one state do not see each
other's writes, and a snapshot that was not made under this user's key, or
was altered, is refused before anything is restored."""
import ctypes
import errno
import os
import secrets
import time

import pytest

import mbx
from conftest import must_work_skip

# The tree the tests save: content, modes, symlinks (relative, absolute,
# dangling, to a directory), empty directories, in all three storage roots.
TREE_SCRIPT = r"""
set -e
cd /workspace
mkdir -p a/b/c empty
printf 'hello\n' > a/hello.txt
printf 'x' > a/b/c/deep
head -c 300000 /dev/urandom > big.bin
printf '#!/bin/sh\necho run\n' > tool.sh
chmod 0755 tool.sh
printf 'secret' > private
chmod 0600 private
chmod 0700 a/b
chmod 1777 empty
ln -s hello.txt a/link
ln -s /workspace/a a/b/dirlink
ln -s nowhere dangling
: > zero
mkdir /tmp/t1
printf 'in tmp' > /tmp/t1/f
printf 'in shm' > /dev/shm/s
"""

# Prints every path under the roots with its kind, mode and content digest.
LISTING = r"""
import hashlib, os, stat
for root in ("/workspace", "/tmp", "/dev/shm"):
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for n in sorted(dirs + files):
            p = os.path.join(d, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                print(p, "link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                print(p, "dir", oct(st.st_mode & 0o7777))
            else:
                print(p, "file", oct(st.st_mode & 0o7777), hashlib.sha256(open(p, "rb").read()).hexdigest())
"""


def listing(sb):
    r = sb.exec(["python3", "-c", LISTING])
    assert r.exit_code == 0, r.stderr
    return r.stdout.decode()


def filled(lib, guard, config=None):
    sb = mbx.Sandbox(lib, config=config)
    guard.ids.add(sb.id)
    r = sb.exec(["sh", "-c", TREE_SCRIPT])
    assert r.exit_code == 0, r.stderr
    return sb


def adopt(guard, sb):
    guard.ids.add(sb.id)
    return sb


def test_restore_gives_the_exact_files(lib, guard, host_tmp):
    with filled(lib, guard) as sb:
        before = listing(sb)
        with mbx.Snapshot.of(sb) as snap:
            assert snap.size() > 300000
            path = os.path.join(host_tmp, "s.mbxsnap")
            snap.save(path)
            assert os.stat(path).st_mode & 0o777 == 0o600
    assert "/workspace/a/link link hello.txt" in before
    assert "/workspace/empty dir 0o1777" in before
    assert "/workspace/private file 0o600" in before
    with mbx.Snapshot.load(lib, path) as snap, adopt(guard, snap.restore()) as back:
        assert listing(back) == before
        r = back.exec(["/workspace/tool.sh"])
        assert r.stdout == b"run\n"
        assert back.read_file("/workspace/a/link") == b"hello\n"


def test_restore_keeps_the_config(lib, guard):
    cfg = mbx.Config(lib)
    err = None
    lib.lib.mbx_config_set_env(cfg.cfg, b"SNAP_VAR", b"kept value", err)
    lib.lib.mbx_config_set_hostname(cfg.cfg, b"snaphost", err)
    lib.lib.mbx_config_set_workdir(cfg.cfg, b"/tmp", err)
    lib.lib.mbx_config_set_memory_limit(cfg.cfg, 300 << 20, err)
    try:
        with filled(lib, guard, cfg) as sb, mbx.Snapshot.of(sb) as snap:
            data = snap.to_bytes()
    finally:
        cfg.close()
    with mbx.Snapshot.from_bytes(lib, data) as snap, adopt(guard, snap.restore()) as back:
        # (every config field's round trip: tests/unit/test-snapshot.c)
        r = back.exec(["sh", "-c", "echo $SNAP_VAR; hostname; pwd"])
        out = r.stdout.decode().split("\n")
        assert out[0] == "kept value"
        assert out[1] == "snaphost"
        assert out[2] == "/tmp"


def test_processes_are_not_captured(lib, guard):
    with filled(lib, guard) as sb:
        p = sb.spawn(["sleep", "60"])
        try:
            with mbx.Snapshot.of(sb) as snap, adopt(guard, snap.restore()) as back:
                assert back.list_processes() == []
        finally:
            p.kill()
            p.wait()
            p.close()


def test_fork_isolation_both_ways(lib, guard):
    with filled(lib, guard) as parent:
        before = listing(parent)
        with adopt(guard, parent.fork()) as a, adopt(guard, parent.fork()) as b:
            assert listing(a) == before and listing(b) == before
            a.write_file("/workspace/from-a", b"a")
            a.write_file("/workspace/a/hello.txt", b"changed by a")
            parent.write_file("/workspace/from-parent", b"p")
            parent.exec(["rm", "/workspace/big.bin"])
            b.exec(["sh", "-c", "echo b > /tmp/t1/f"])
            def names(sb):
                return {e[0] for e in sb.list_dir("/workspace")}

            assert "from-a" not in names(parent) and "from-a" not in names(b)
            assert "from-parent" not in names(a) and "from-parent" not in names(b)
            assert "big.bin" in names(a) and "big.bin" in names(b) and "big.bin" not in names(parent)
            assert parent.read_file("/workspace/a/hello.txt") == b"hello\n"
            assert b.read_file("/workspace/a/hello.txt") == b"hello\n"
            assert parent.read_file("/tmp/t1/f") == b"in tmp"
            assert a.read_file("/tmp/t1/f") == b"in tmp"
            assert b.read_file("/tmp/t1/f") == b"b\n"
            assert a.read_file("/workspace/a/hello.txt") == b"changed by a"


# ---- the copy-on-write fork of the os backend (src/agent/layers.c) ----

def overlaid(sb):
    """The storage directories that are overlays in the sandbox's view: a
    fork that shared its parent's layers rather than copying."""
    r = sb.exec(["cat", "/proc/self/mountinfo"])
    assert r.exit_code == 0, r.stderr
    found = set()
    for line in r.stdout.decode().splitlines():
        f = line.split()
        if " - overlay " in line and f[4] in ("/workspace", "/tmp", "/dev/shm"):
            found.add(f[4])
    return found


ROOTS = ("/workspace", "/tmp", "/dev/shm")


def layers(sb):
    """How many frozen layers lie below the sandbox's /workspace."""
    r = sb.exec(["cat", "/proc/self/mountinfo"])
    assert r.exit_code == 0, r.stderr
    for line in reversed(r.stdout.decode().splitlines()):
        if line.split()[4] == "/workspace":
            return line.count("lowerdir+=")
    return 0


def names(sb, root):
    return {e[0] for e in sb.list_dir(root)}


def test_cow_fork_isolation_in_every_root(lib, guard):
    with adopt(guard, mbx.Sandbox(lib)) as parent:
        for root in ROOTS:
            parent.write_file(root + "/before", b"before " + root.encode())
            parent.write_file(root + "/gone-in-child", b"x")
            parent.write_file(root + "/gone-in-parent", b"y")
        with adopt(guard, parent.fork()) as a, adopt(guard, parent.fork()) as b:
            assert overlaid(parent) == set(ROOTS)
            assert overlaid(a) == set(ROOTS) and overlaid(b) == set(ROOTS)
            for root in ROOTS:
                # payload writes and deletions (whiteouts) on both sides
                r = a.exec(["sh", "-c", "echo a > %s/after-a && rm %s/gone-in-child && echo a >> %s/before"
                            % (root, root, root)])
                assert r.exit_code == 0, r.stderr
                r = parent.exec(["sh", "-c", "echo p > %s/after-p && rm %s/gone-in-parent" % (root, root)])
                assert r.exit_code == 0, r.stderr
            for root in ROOTS:
                assert names(parent, root) >= {"before", "after-p", "gone-in-child"}
                assert not names(parent, root) & {"after-a", "gone-in-parent"}
                assert names(a, root) >= {"before", "after-a", "gone-in-parent"}
                assert not names(a, root) & {"after-p", "gone-in-child"}
                assert names(b, root) >= {"before", "gone-in-child", "gone-in-parent"}
                assert not names(b, root) & {"after-a", "after-p"}
                want = b"before " + root.encode()
                assert parent.read_file(root + "/before") == want
                assert b.read_file(root + "/before") == want
                assert a.read_file(root + "/before") == want + b"a\n"


def test_cow_fork_of_a_fork_outlives_its_parents(lib, guard):
    parent = adopt(guard, mbx.Sandbox(lib))
    try:
        r = parent.exec(["sh", "-c", "mkdir -p /workspace/d && echo 1 > /workspace/d/one && chmod 0600 /workspace/d/one"])
        assert r.exit_code == 0, r.stderr
        child = adopt(guard, parent.fork())
        try:
            child.write_file("/workspace/d/two", b"2")
            grandchild = adopt(guard, child.fork())
        finally:
            child.close()  # destroyed before its own fork
    finally:
        parent.close()  # and the first one too
    with grandchild:
        assert overlaid(grandchild) == set(ROOTS)
        r = grandchild.exec(["sh", "-c", "cat /workspace/d/one /workspace/d/two && echo 3 >> /workspace/d/one && "
                             "cat /workspace/d/one && rm /workspace/d/two && ls /workspace/d"])
        assert r.exit_code == 0, r.stderr
        assert r.stdout == b"1\n21\n3\none\n"
        # snapshots read a layered storage like any other
        before = listing(grandchild)
        with mbx.Snapshot.of(grandchild) as snap, adopt(guard, snap.restore()) as back:
            assert overlaid(back) == set()
            assert listing(back) == before


def agent_pids():
    """Children of this process: sandbox agents (and their helpers)."""
    me = os.getpid()
    out = set()
    for t in os.listdir("/proc/%d/task" % me):
        try:
            with open("/proc/%d/task/%s/children" % (me, t)) as f:
                out |= {int(x) for x in f.read().split()}
        except FileNotFoundError:
            pass
    return out


def test_cow_fork_layer_cannot_be_written_through_any_path(lib, guard):
    known = agent_pids()
    with adopt(guard, mbx.Sandbox(lib)) as parent:
        agents = agent_pids() - known
        parent.write_file("/workspace/shared", b"frozen")
        with adopt(guard, parent.fork()) as child:
            agents |= agent_pids() - known
            reached = 0
            # Every descriptor the agents hold, the frozen layers among them:
            # the file is there, and no write gets into it.
            for pid in agents:
                try:
                    fds = os.listdir("/proc/%d/fd" % pid)
                except OSError:
                    continue
                for fd in fds:
                    path = "/proc/%d/fd/%s/workspace/shared" % (pid, fd)
                    try:
                        os.stat(path)
                    except OSError:
                        continue
                    reached += 1
                    with pytest.raises(OSError) as e:
                        with open(path, "r+b") as f:
                            f.write(b"THAWED")
                    assert e.value.errno == errno.EROFS
                    with pytest.raises(OSError):
                        os.mkdir("/proc/%d/fd/%s/workspace/newdir" % (pid, fd))
            assert reached >= 2, "the frozen layer was not reachable from the host: the test checks nothing"
            # Inside: the mount calls are denied, and pid 1 of a payload's view
            # is its own mini-init, which holds no layer.
            for sb in (parent, child):
                r = sb.exec(["sh", "-c", "for f in /proc/1/fd/*; do echo x >> $f/workspace/shared && echo WROTE; done; "
                             "mount -o remount,rw /workspace 2>/dev/null && echo REMOUNTED; true"])
                assert b"WROTE" not in r.stdout and b"REMOUNTED" not in r.stdout
            child.write_file("/workspace/shared", b"child")
            assert parent.read_file("/workspace/shared") == b"frozen"
            parent.write_file("/workspace/shared", b"parent")
            assert child.read_file("/workspace/shared") == b"child"
            with adopt(guard, parent.fork()) as sibling:
                assert sibling.read_file("/workspace/shared") == b"parent"


def test_cow_fork_keeps_the_disk_limit(lib, guard):
    cfg = mbx.Config(lib)
    try:
        rc = lib.lib.mbx_config_set_disk_limit(cfg.cfg, ctypes.c_uint64(32 << 20), None)
        assert rc == 0
        with adopt(guard, mbx.Sandbox(lib, config=cfg)) as parent:
            r = parent.exec(["sh", "-c", "head -c 20971520 /dev/zero > /workspace/big"])
            assert r.exit_code == 0, r.stderr
            with adopt(guard, parent.fork()) as child:
                assert overlaid(child) == set(ROOTS)
                # 20 MiB below count: 16 more do not fit in 32, 4 do
                r = child.exec(["sh", "-c", "head -c 16777216 /dev/zero > /tmp/more"])
                assert r.exit_code != 0 and b"No space left" in r.stderr
                r = child.exec(["sh", "-c", "rm -f /tmp/more; head -c 4194304 /dev/zero > /tmp/some"])
                assert r.exit_code == 0, r.stderr
                # and in the parent the same
                r = parent.exec(["sh", "-c", "head -c 16777216 /dev/zero > /dev/shm/more"])
                assert r.exit_code != 0 and b"No space left" in r.stderr
    finally:
        cfg.close()


def test_fork_with_running_processes_copies(lib, guard):
    with adopt(guard, mbx.Sandbox(lib)) as parent:
        parent.write_file("/workspace/f", b"1")
        p = parent.spawn(["sh", "-c", "sleep 0.5; echo late > /workspace/late; sleep 60"])
        try:
            with adopt(guard, parent.fork()) as child:
                # the running process keeps its writable storage: no layers
                assert overlaid(parent) == set() and overlaid(child) == set()
                assert child.read_file("/workspace/f") == b"1"
                for _ in range(100):
                    if "late" in names(parent, "/workspace"):
                        break
                    time.sleep(0.05)
                assert parent.read_file("/workspace/late") == b"late\n"
                assert "late" not in names(child, "/workspace")
        finally:
            p.kill()
            p.wait()
            p.close()


def test_cow_fork_layers_are_bounded(lib, guard):
    with adopt(guard, mbx.Sandbox(lib)) as parent:
        # forks with nothing written in between share one layer
        parent.write_file("/workspace/first", b"1")
        with adopt(guard, parent.fork()) as a, adopt(guard, parent.fork()) as b:
            assert layers(parent) == 1 and layers(a) == 1 and layers(b) == 1
            a.write_file("/workspace/in-a", b"a")
            with adopt(guard, a.fork()) as c:
                assert layers(a) == 2 and layers(c) == 2 and layers(parent) == 1
                assert c.read_file("/workspace/first") == b"1" and c.read_file("/workspace/in-a") == b"a"
        for i in range(1, 34):
            parent.write_file("/workspace/n%d" % i, b"%d" % i)
            with adopt(guard, parent.fork()) as child:
                assert child.read_file("/workspace/n%d" % i) == b"%d" % i
                assert child.read_file("/workspace/first") == b"1"
                # 32 layers share (src/proto/proto.h MBX_LAYERS_MAX), then copies
                assert overlaid(child) == (set(ROOTS) if i < 32 else set()), i
                assert layers(child) == (i + 1 if i < 32 else 0), i
                assert len(names(child, "/workspace")) == i + 1
        assert layers(parent) == 32


def test_mounts_are_neither_kept_nor_captured(lib, guard, host_tmp):
    src = os.path.join(host_tmp, "data")
    os.mkdir(src)
    with open(os.path.join(src, "host-file"), "w") as f:
        f.write("host")
    cfg = mbx.Config(lib)
    try:
        cfg.add_mount(src, "/workspace/data")
        with filled(lib, guard, cfg) as sb:
            with mbx.Snapshot.of(sb) as snap, adopt(guard, snap.restore()) as back:
                assert "data" not in {e[0] for e in back.list_dir("/workspace")}
            # A fork keeps the parent's config whole: the same host directory.
            with adopt(guard, sb.fork()) as child:
                assert child.read_file("/workspace/data/host-file") == b"host"
    finally:
        cfg.close()


def test_restore_with_a_config_of_the_caller(lib, guard, host_tmp):
    src = os.path.join(host_tmp, "data")
    os.mkdir(src)
    os.chmod(src, 0o755)
    with open(os.path.join(src, "host-file"), "w") as f:
        f.write("from the host")
    os.chmod(os.path.join(src, "host-file"), 0o644)
    with filled(lib, guard) as sb, mbx.Snapshot.of(sb) as snap:
        cfg = mbx.Config(lib)
        try:
            # The caller's config replaces the snapshot's: mounts come back this way.
            cfg.add_mount(src, "/data")
            lib.lib.mbx_config_set_hostname(cfg.cfg, b"override", None)
            with adopt(guard, snap.restore(cfg)) as back:
                assert back.read_file("/data/host-file") == b"from the host"
                assert back.read_file("/workspace/a/hello.txt") == b"hello\n"
                assert back.exec(["hostname"]).stdout == b"override\n"
            # A config that selects another backend is refused.
            lib.lib.mbx_config_set_isolation(cfg.cfg, 2, None)
            with pytest.raises(mbx.MbxError) as e:
                snap.restore(cfg)
            assert e.value.code == mbx.MBX_EINVAL and "the snapshot is of the os backend" in e.value.message
        finally:
            cfg.close()


def test_snapshot_of_another_key_is_refused(lib, guard, base_tmp, monkeypatch):
    with filled(lib, guard) as sb, mbx.Snapshot.of(sb) as snap:
        data = snap.to_bytes()
    # Another user's key: a state directory of its own, so another snapshot.key.
    other = os.path.join(base_tmp, "other-" + secrets.token_hex(4))
    os.mkdir(other, 0o700)
    monkeypatch.setenv("MIMOBOX_STATE_DIR", other)
    with pytest.raises(mbx.MbxError) as e:
        mbx.Snapshot.from_bytes(lib, data)
    assert e.value.code == mbx.MBX_EPERM
    assert "another user" in e.value.message
    monkeypatch.setenv("MIMOBOX_STATE_DIR", guard.state_dir)
    with mbx.Snapshot.from_bytes(lib, data) as snap:
        assert snap.size() > 0


@pytest.mark.parametrize("where", ["magic", "version", "backend", "config", "payload", "mac"])
def test_altered_or_truncated_snapshot_is_refused(lib, guard, host_tmp, where):
    with filled(lib, guard) as sb, mbx.Snapshot.of(sb) as snap:
        orig = snap.to_bytes()
    data = bytearray(orig)
    clen = int.from_bytes(data[24:32], "little")
    at = {"magic": 0, "version": 8, "backend": 12, "config": 48 + clen // 2, "payload": len(data) - 34,  # a byte of the last file saved
          "mac": len(data) - 1}[where]
    data[at] ^= 0x01
    with pytest.raises(mbx.MbxError) as e:
        mbx.Snapshot.from_bytes(lib, bytes(data))
    assert e.value.code in (mbx.MBX_EINVAL, mbx.MBX_EPERM)
    path = os.path.join(host_tmp, "cut")
    with open(path, "wb") as f:
        f.write(orig[: len(orig) // 2])
    with pytest.raises(mbx.MbxError) as e:
        mbx.Snapshot.load(lib, path)
    assert e.value.code == mbx.MBX_EINVAL and "truncated" in e.value.message


def file_tree(sb, root="/workspace"):
    """Every path under root through the file API: (kind, mode, content or target)."""
    out = {}
    for name, kind, size, is_link in sb.list_dir(root):
        path = root + "/" + name
        if is_link:
            out[path] = ("link", mbx_readlink(sb, path))
        elif kind == mbx.MBX_FILE_DIRECTORY:
            out[path] = ("dir", sb.stat(path)["mode"] & 0o7777)
            out.update(file_tree(sb, path))
        else:
            out[path] = ("file", sb.stat(path)["mode"] & 0o7777, sb.read_file(path))
    return out


def mbx_readlink(sb, path):
    st = ctypes.c_void_p()
    lib = sb._l.lib
    lib.mbx_stat_symlink_target.restype = ctypes.c_char_p
    lib.mbx_stat_symlink_target.argtypes = [ctypes.c_void_p]
    err = ctypes.c_void_p()
    assert lib.mbx_sandbox_stat(sb._sb, os.fsencode(path), ctypes.byref(st), ctypes.byref(err)) == 0
    try:
        return lib.mbx_stat_symlink_target(st).decode()
    finally:
        lib.mbx_stat_free(st)


def test_wasm_workspace_snapshot_restore_fork(lib, guard, doctor):
    if not doctor["backends"]["wasm"]["available"]:
        must_work_skip("the wasm backend is not available: %s" % doctor["backends"]["wasm"]["reason"])
    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    with sb:
        sb.mkdir("/workspace/d", mode=0o750)
        sb.mkdir("/workspace/empty", mode=0o777)
        sb.write_file("/workspace/d/f", b"wasm file\n", mode=0o640)
        sb.write_file("/workspace/x.bin", bytes(range(256)) * 100, mode=0o755)
        sb.symlink("d/f", "/workspace/link")
        before = file_tree(sb)
        assert before["/workspace/empty"] == ("dir", 0o777) and before["/workspace/link"] == ("link", "d/f")
        with mbx.Snapshot.of(sb) as snap:
            data = snap.to_bytes()
        with mbx.Snapshot.from_bytes(lib, data) as snap, adopt(guard, snap.restore()) as back:
            assert file_tree(back) == before
        with adopt(guard, sb.fork()) as child:
            assert file_tree(child) == before
            child.write_file("/workspace/only-child", b"c")
            sb.write_file("/workspace/only-parent", b"p")
            assert "/workspace/only-child" not in file_tree(sb)
            assert "/workspace/only-parent" not in file_tree(child)


# ---------------------------------------------------------------------------
# The CLI: snapshot, restore and fork of named sandboxes.

def cli_ps(cli):
    r = cli(["ps", "--json"])
    assert r.rc == 0, r
    return {s["name"] for s in r.json["sandboxes"]}


@pytest.fixture
def named(cli):
    """Removes every named sandbox a test leaves."""
    yield
    for name in cli_ps(cli):
        cli(["rm", name])


def test_cli_snapshot_restore_fork(cli, named, host_tmp):
    assert cli(["create", "--name", "src", "--env", "KEEP=yes", "--hostname", "snapbox", "--timeout", "7",
                "--max-procs", "33"]).rc == 0
    r = cli(["exec", "src", "--", "sh", "-c", TREE_SCRIPT])
    assert r.rc == 0, r
    before = cli(["exec", "src", "--", "python3", "-c", LISTING])
    assert before.rc == 0, before
    path = os.path.join(host_tmp, "src.snap")
    r = cli(["snapshot", "src", path, "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "name": "src", "file": path}, r
    r = cli(["restore", path, "--name", "back"])
    assert r.rc == 0 and r.out == "back\n", r
    after = cli(["exec", "back", "--", "python3", "-c", LISTING])
    assert after.stdout == before.stdout
    r = cli(["exec", "back", "--", "sh", "-c", "echo $KEEP $(hostname)"])
    assert r.stdout == b"yes snapbox\n", r

    r = cli(["fork", "src", "--name", "kid", "--count", "2"])
    assert r.rc == 0 and r.out == "kid-1\nkid-2\n", r
    assert cli_ps(cli) == {"src", "back", "kid-1", "kid-2"}
    assert cli(["exec", "kid-1", "--", "sh", "-c", "echo one > /workspace/only-kid-1"]).rc == 0
    assert cli(["exec", "src", "--", "sh", "-c", "echo p > /workspace/only-src"]).rc == 0
    for name, present, absent in (("kid-1", "only-kid-1", "only-src"), ("kid-2", None, "only-kid-1"),
                                  ("src", "only-src", "only-kid-1")):
        ls = cli(["exec", name, "--", "ls", "/workspace"]).out.split()
        assert (present is None or present in ls) and absent not in ls, (name, ls)
    # inspect describes the copies as the original was made
    def settings(name):
        j = cli(["inspect", name, "--json"]).json
        return {k: v for k, v in j.items() if k not in ("name", "id", "created", "supervisor_pid")}

    assert settings("kid-2") == settings("src") == settings("back")
    assert settings("back")["limits"]["timeout_ms"] == 7000 and settings("back")["hostname"] == "snapbox"
    assert settings("back")["env_keys"] == ["KEEP"]
    # the temporary snapshot of fork is gone
    reg = os.path.join(cli.guard.state_dir, "named")
    assert not [e for e in os.listdir(reg) if e.startswith(".fork-")]


def test_cli_restore_refuses_a_bad_file(cli, named, host_tmp):
    path = os.path.join(host_tmp, "bad.snap")
    with open(path, "wb") as f:
        f.write(b"MBXSNAP\0" + b"\0" * 100)
    r = cli(["restore", path])
    assert r.rc == 125 and "snapshot" in r.stderr and "format version 0" in r.stderr, r
    r = cli(["restore", os.path.join(host_tmp, "missing.snap"), "--json"])
    assert r.rc == 125 and r.json["ok"] is False and r.json["error"]["code"] == "not_found", r
    assert cli_ps(cli) == set()
    r = cli(["snapshot", "no-such-box", path])
    assert r.rc == 125 and "no-such-box" in r.stderr, r
    r = cli(["fork", "x", "--count", "0"])
    assert r.rc == 125 and "--count" in r.stderr, r


def test_cli_fork_count_stops_at_a_taken_name(cli, named):
    # The copies' supervisors start together; a taken name stops the ones
    # after it, the ones before it are made and named, the exit says so.
    assert cli(["create", "--name", "orig"]).rc == 0
    assert cli(["create", "--name", "cp-2"]).rc == 0
    r = cli(["fork", "orig", "--name", "cp", "--count", "3"])
    assert r.rc == 125 and r.out == "cp-1\n" and "`cp-2` already exists" in r.stderr, r
    assert cli_ps(cli) == {"orig", "cp-1", "cp-2"}
