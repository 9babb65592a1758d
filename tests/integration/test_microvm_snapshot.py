# SPDX-License-Identifier: Apache-2.0
"""microVM snapshots (docs/snapshots.md, "microvm"): a snapshot is the
guest's memory and device state, so restored clones carry on with the
processes, open files and memory contents the guest had; clones map the
snapshot's memory copy-on-write and share its pages; each clone gets a new
identity (entropy, host name, machine id, clock); bad snapshots are refused.
These run on TCG here (docs/microvm.md)."""
import hashlib
import os
import shutil
import time

import pytest

import mbx
from conftest import ISOLATION, descendants

pytestmark = pytest.mark.usefixtures("microvm")

NETWORK_ALLOW_DOMAINS = 1


@pytest.fixture
def microvm(doctor):
    info = doctor["backends"]["microvm"]
    if not info.get("available"):
        from conftest import must_work_skip
        must_work_skip("the microvm backend is unavailable here: %s" % info.get("reason"))


def adopt(guard, sb):
    guard.ids.add(sb.id)
    return sb


@pytest.fixture
def vm(lib, guard):
    sb = adopt(guard, mbx.Sandbox(lib, isolation=ISOLATION["microvm"]))
    yield sb
    sb.close()


def sh(sb, script):
    r = sb.exec(["sh", "-c", script])
    assert r.exit_code == 0, (script, r)
    return r.stdout.decode()


def wait_for(sb, script, want, timeout=30.0):
    """Runs script until its output is `want` (a process of the guest is
    expected to make it so)."""
    end = time.monotonic() + timeout
    out = None
    while time.monotonic() < end:
        out = sb.exec(["sh", "-c", script]).stdout.decode()
        if out == want:
            return
        time.sleep(0.2)
    raise AssertionError("%r gave %r, not %r" % (script, out, want))


# A server started before the snapshot, and a value that lives only in a
# process's memory: the file it came from is removed, the process writes
# it again and again.
SERVER = ["busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/workspace/www"]
KEEPER = ["sh", "-c", "V=$(cat /workspace/v); rm /workspace/v; while :; do echo \"$V\" > /tmp/mem; sleep 0.1; done"]
FETCH = "busybox wget -q -O - http://127.0.0.1:8080/index.html"


def test_restore_keeps_processes_memory_and_files(lib, guard, vm):
    sh(vm, "mkdir -p /workspace/www && echo served > /workspace/www/index.html && echo kept-in-memory > /workspace/v")
    server = vm.spawn(SERVER)
    keeper = vm.spawn(KEEPER)
    wait_for(vm, FETCH, "served\n")
    wait_for(vm, "cat /tmp/mem 2>/dev/null", "kept-in-memory\n")
    with mbx.Snapshot.of(vm) as snap:
        size, fd = snap.memory_size()
        assert size == 512 << 20 and fd >= 0, (size, fd)
        clones = [adopt(guard, snap.restore()) for _ in range(2)]
    try:
        for c in clones:
            # The server answers in every clone; the value that only a
            # process's memory holds comes back after its file is gone.
            wait_for(c, FETCH, "served\n")
            sh(c, "rm -f /tmp/mem")
            wait_for(c, "cat /tmp/mem 2>/dev/null", "kept-in-memory\n")
            assert sh(c, "test -e /workspace/v || echo gone") == "gone\n"
            assert sh(c, "cat /workspace/www/index.html") == "served\n"
        # The parent runs on, its processes and their handles too.
        wait_for(vm, FETCH, "served\n")
        assert server.running() and keeper.running()
    finally:
        server.kill()
        keeper.kill()
        for c in clones:
            c.close()


def test_fork_isolation_both_ways(lib, guard, vm):
    sh(vm, "echo base > /workspace/f; echo base > /tmp/t")
    a = adopt(guard, vm.fork())
    b = adopt(guard, vm.fork())
    try:
        sh(a, "echo a > /workspace/f; echo only-a > /workspace/only-a; rm /tmp/t")
        sh(vm, "echo parent > /workspace/f; echo only-parent > /workspace/only-parent")
        assert sh(a, "cat /workspace/f; ls /workspace; test -e /tmp/t || echo no-t") == \
            "a\nf\nonly-a\nno-t\n"
        assert sh(b, "cat /workspace/f; ls /workspace; cat /tmp/t") == "base\nf\nbase\n"
        assert sh(vm, "cat /workspace/f; ls /workspace; cat /tmp/t") == "parent\nf\nonly-parent\nbase\n"
        # A fork of a fork (its memory travels in QEMU's stream).
        c = adopt(guard, a.fork())
        try:
            assert sh(c, "cat /workspace/f /workspace/only-a") == "a\nonly-a\n"
            sh(c, "echo c > /workspace/f")
            assert sh(a, "cat /workspace/f") == "a\n"
        finally:
            c.close()
    finally:
        a.close()
        b.close()


IDENTITY = "hostname; cat /etc/machine-id; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s"


def test_clones_get_a_fresh_identity(lib, guard, vm):
    parent = sh(vm, IDENTITY).split("\n")
    with mbx.Snapshot.of(vm) as snap:
        # The clones come up later than the snapshot: their clocks must be
        # the host's, not the saved guest's.
        time.sleep(6)
        started = time.time()
        clones = [adopt(guard, snap.restore()) for _ in range(2)]
    try:
        seen = [sh(c, IDENTITY).split("\n") for c in clones]
        hosts = [s[0] for s in seen]
        assert len({parent[0]} | set(hosts)) == 3, (parent[0], hosts)
        assert all(h == "mimobox-" + c.id[:8] for h, c in zip(hosts, clones)), hosts
        assert sh(clones[0], "cat /etc/hostname") == hosts[0] + "\n"
        # Without the reseed both clones' kernels would draw the same bytes.
        rand = [s[2] for s in seen]
        assert len(rand[0]) == 64 and rand[0] != rand[1], rand
        ids = [s[1] for s in seen]
        assert len(set(ids)) == 2 and parent[1] not in ids, (parent[1], ids)
        for s in seen:
            assert int(s[3]) >= int(started) - 2, (s[3], started)
    finally:
        for c in clones:
            c.close()


def ram_mapping(pid):
    """(Rss, Pss) in KiB of QEMU's guest RAM mapping: the snapshot's memory."""
    cur, found = None, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if not line[0].isupper() or line.startswith("VmFlags"):
                cur = line.split()
                continue
            if cur and len(cur) > 5 and cur[5].startswith("/memfd:mimobox-snapshot-memory"):
                k, v = line.split(":", 1)
                if k in ("Rss", "Pss"):
                    found = found or {}
                    found[k] = int(v.split()[0])
    assert found, "QEMU %d maps no snapshot memory" % pid
    return found["Rss"], found["Pss"]


def test_clones_share_the_snapshot_pages(lib, guard, vm):
    # Guest memory a clone only reads stays the snapshot's: 64 MiB the
    # parent filled are in each clone's resident memory but shared by all
    # four, so each QEMU's proportional share of its RAM mapping is a
    # fraction of what it has resident (a private copy would be all of it).
    sh(vm, "head -c 67108864 /dev/urandom > /dev/shm/fill && md5sum /dev/shm/fill > /workspace/sum")
    with mbx.Snapshot.of(vm) as snap:
        before = {pid for pid, argv in descendants().items() if argv and "qemu-system" in argv[0]}
        clones = [adopt(guard, snap.restore()) for _ in range(4)]
    try:
        for c in clones:
            assert sh(c, "md5sum /dev/shm/fill") == sh(c, "cat /workspace/sum")
        pids = [pid for pid, argv in descendants().items() if argv and "qemu-system" in argv[0] and pid not in before]
        assert len(pids) == 4, pids
        for pid in pids:
            rss, pss = ram_mapping(pid)
            assert rss > 64 * 1024, (pid, rss)
            assert pss < rss / 2, (pid, rss, pss)
    finally:
        for c in clones:
            c.close()


def test_bytes_round_trip_and_bad_memory_is_refused(lib, guard, vm):
    sh(vm, "echo round > /workspace/r")
    with mbx.Snapshot.of(vm) as snap:
        data = snap.to_bytes()
    with mbx.Snapshot.from_bytes(lib, data) as again:
        assert again.memory_size()[0] == 512 << 20
        c = adopt(guard, again.restore())
        try:
            assert sh(c, "cat /workspace/r") == "round\n"
        finally:
            c.close()
    # Flipped bytes in the middle (the memory section) and a cut end.
    for bad in (data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:],
                data[:-4096]):
        with pytest.raises(mbx.MbxError) as e:
            mbx.Snapshot.from_bytes(lib, bad)
        assert e.value.code in (mbx.MBX_EPERM, mbx.MBX_EINVAL), e.value


def test_what_a_restore_cannot_take_is_refused(lib, guard, vm):
    with mbx.Snapshot.of(vm) as snap:
        cfg = mbx.Config(lib)
        try:
            lib.lib.mbx_config_set_isolation(cfg.cfg, ISOLATION["microvm"], None)
            assert lib.lib.mbx_config_set_memory_limit(cfg.cfg, 256 << 20, None) == 0
            with pytest.raises(mbx.MbxError) as e:
                snap.restore(cfg)
            assert e.value.code == mbx.MBX_EINVAL and "memory" in e.value.message, e.value
        finally:
            cfg.close()


def test_a_restore_keeps_the_network_kind(lib, guard, vm):
    # The saved guest has no network channel (deny-all): a restore that
    # allows domains would need a device the guest does not have.
    with mbx.Snapshot.of(vm) as snap:
        cfg = mbx.Config(lib)
        try:
            lib.lib.mbx_config_set_isolation(cfg.cfg, ISOLATION["microvm"], None)
            assert lib.lib.mbx_config_set_network(cfg.cfg, NETWORK_ALLOW_DOMAINS, None) == 0
            assert lib.lib.mbx_config_add_allowed_domain(cfg.cfg, b"example.invalid", None) == 0
            with pytest.raises(mbx.MbxError) as e:
                snap.restore(cfg)
            assert e.value.code == mbx.MBX_EINVAL and "network" in e.value.message, e.value
        finally:
            cfg.close()


# ---------------------------------------------------------------------------
# The CLI: named microVMs saved to a file, restored and forked; a clone's
# memory is the snapshot's, kept by its supervisor (which closes every
# other descriptor it inherited).

def test_cli_snapshot_restore_fork_of_a_microvm(cli, host_tmp):
    names = ["vsrc", "vback", "vkid-1", "vkid-2"]
    try:
        assert cli(["create", "--isolation", "microvm", "--name", "vsrc"]).rc == 0
        assert cli(["exec", "vsrc", "--", "sh", "-c", "echo saved > /workspace/f; echo t > /tmp/t"]).rc == 0
        path = os.path.join(host_tmp, "vm.snap")
        r = cli(["snapshot", "vsrc", path])
        assert r.rc == 0, r
        r = cli(["restore", path, "--name", "vback"])
        assert r.rc == 0 and r.out == "vback\n", r
        r = cli(["fork", "vsrc", "--name", "vkid", "--count", "2"])
        assert r.rc == 0 and r.out == "vkid-1\nvkid-2\n", r
        assert cli(["exec", "vkid-1", "--", "sh", "-c", "echo one > /workspace/f"]).rc == 0
        for name, want in (("vback", "saved"), ("vkid-1", "one"), ("vkid-2", "saved"), ("vsrc", "saved")):
            r = cli(["exec", name, "--", "sh", "-c", "cat /workspace/f /tmp/t; hostname"])
            assert r.rc == 0, r
            lines = r.out.split("\n")
            assert lines[:2] == [want, "t"], (name, r.out)
            # Each copy its own host name.
            assert lines[2] == ("mimobox" if name == "vsrc" else "mimobox-" + lines[2][8:]), (name, r.out)
        hostnames = {cli(["exec", n, "--", "hostname"]).out for n in names}
        assert len(hostnames) == 4, hostnames
    finally:
        for n in names:
            cli(["rm", n])


def test_a_restore_needs_the_assets_the_guest_was_booted_from(lib, guard, vm, doctor, tmp_path, monkeypatch):
    # A copy of the guest assets with another root image (valid: its
    # manifest says so): a saved guest must not get a different disk under
    # its running kernel.
    detail = [c for c in doctor["checks"] if c["name"] == "vm-assets"][0]["detail"]
    src = detail.split(" ")[0]
    other = tmp_path / "other-assets"
    other.mkdir(mode=0o755)
    for name in ("vmlinuz", "rootfs.squashfs"):
        shutil.copyfile(os.path.join(src, name), other / name)
    with open(other / "rootfs.squashfs", "ab") as f:
        f.write(b"\0" * 4096)
    with open(other / "manifest", "w") as f:
        for name in ("vmlinuz", "rootfs.squashfs"):
            with open(other / name, "rb") as g:
                f.write("%s  %s\n" % (hashlib.sha256(g.read()).hexdigest(), name))
    with mbx.Snapshot.of(vm) as snap:
        with monkeypatch.context() as m:
            m.setenv("MIMOBOX_VM_DIR", str(other))
            with pytest.raises(mbx.MbxError) as e:
                snap.restore()
        assert e.value.code == mbx.MBX_EINVAL and "other guest assets" in e.value.message, e.value
        # With the assets it was made with (the test run's), it restores.
        c = adopt(guard, snap.restore())
        c.close()
