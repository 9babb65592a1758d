# SPDX-License-Identifier: Apache-2.0
"""Snapshots, restore and fork (include/mbx/snapshot.h): the files and the
config come back exactly, sandboxes made from one state do not see each
other's writes, and a snapshot that was not made under this user's key, or
was altered, is refused before anything is restored."""
import ctypes
import os
import secrets

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
