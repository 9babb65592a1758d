# SPDX-License-Identifier: Apache-2.0
"""The microvm guest assets from the CLI: `mimobox setup vm [--check]` and
what `mimobox doctor` says about them (docs/microvm.md). The assets here are
small stand-ins with a manifest of the real format in a temporary directory
named by MIMOBOX_VM_DIR: verifying reads only the manifest and the bytes, and
no test builds a kernel."""
import hashlib
import json
import os
import re

import pytest

ASSETS = ("vmlinuz", "rootfs.squashfs")


def make_assets(where):
    """A directory of good stand-in assets; returns its path."""
    d = os.path.join(str(where), "vm")
    os.mkdir(d)
    os.chmod(d, 0o755)
    lines = []
    for i, name in enumerate(ASSETS):
        data = os.urandom(4096 + 1000 * i)
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(d, name), 0o644)
        lines.append("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
    with open(os.path.join(d, "manifest"), "w") as f:
        f.write("".join(lines))
    os.chmod(os.path.join(d, "manifest"), 0o644)
    return d


def damage(d, name="rootfs.squashfs"):
    """Flips a bit of an asset; returns (expected, actual) SHA-256."""
    path = os.path.join(d, name)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    want = hashlib.sha256(data).hexdigest()
    data[100] ^= 1
    with open(path, "wb") as f:
        f.write(data)
    return want, hashlib.sha256(data).hexdigest()


@pytest.fixture
def assets(tmp_path):
    return make_assets(tmp_path)


def test_setup_vm_check_good(cli, assets):
    r = cli(["setup", "vm", "--check"], env={"MIMOBOX_VM_DIR": assets})
    assert r.rc == 0, r
    # the script's progress passes through; the last line says where
    assert "vmlinuz verified" in r.stderr and "rootfs.squashfs verified" in r.stderr, r
    assert r.out.splitlines()[-1] == "microvm guest assets verified in %s" % assets, r
    assert not r.ids, r.log


def test_setup_vm_check_damaged(cli, assets):
    want, got = damage(assets)
    r = cli(["setup", "vm", "--check"], env={"MIMOBOX_VM_DIR": assets})
    assert r.rc == 1, r
    assert r.out == "", r
    assert "rootfs.squashfs fails its SHA-256 check" in r.stderr, r
    assert want in r.stderr and got in r.stderr, r
    assert "remove %s" % assets in r.stderr, r
    assert "mimobox setup vm" in r.stderr, r


@pytest.mark.parametrize("how", ["missing-dir", "missing-asset", "bad-manifest", "unknown-entry", "group-writable",
                                 "symlink"])
def test_setup_vm_check_refuses(cli, assets, how):
    if how == "missing-dir":
        target = assets + "-absent"
        words = ["no assets at", "mimobox setup vm"]
    else:
        target = assets
        if how == "missing-asset":
            os.unlink(os.path.join(assets, "vmlinuz"))
            words = ["vmlinuz is recorded in the manifest but missing"]
        elif how == "bad-manifest":
            with open(os.path.join(assets, "manifest"), "a") as f:
                f.write("garbage\n")
            words = ["manifest is damaged", "line 3"]
        elif how == "unknown-entry":
            with open(os.path.join(assets, "manifest"), "a") as f:
                f.write("%s  ../evil\n" % ("0" * 64))
            words = ["manifest is damaged"]
        elif how == "group-writable":
            os.chmod(assets, 0o775)
            words = ["writable by other users", "chmod go-w"]
        else:
            real = os.path.join(assets, "vmlinuz.real")
            os.rename(os.path.join(assets, "vmlinuz"), real)
            os.symlink("vmlinuz.real", os.path.join(assets, "vmlinuz"))
            words = ["symbolic link"]
    r = cli(["setup", "vm", "--check"], env={"MIMOBOX_VM_DIR": target})
    assert r.rc == 1, r
    for w in words:
        assert w in r.stderr, (w, r)
    assert "mimobox: error: the microvm guest assets in %s are not usable" % target in r.stderr, r


def test_setup_vm_builds_nothing_when_present(cli, assets):
    """Without --check an asset that verifies is kept, not rebuilt (this
    runs in a second: nothing is built)."""
    before = {n: os.stat(os.path.join(assets, n)).st_ino for n in ASSETS}
    r = cli(["setup", "vm"], env={"MIMOBOX_VM_DIR": assets}, timeout=60)
    assert r.rc == 0, r
    assert "vmlinuz present and verified" in r.stderr, r
    assert r.out.splitlines()[-1] == "microvm guest assets ready and verified in %s" % assets, r
    assert {n: os.stat(os.path.join(assets, n)).st_ino for n in ASSETS} == before


def test_setup_vm_build_refuses_damaged(cli, assets):
    damage(assets, "vmlinuz")
    r = cli(["setup", "vm"], env={"MIMOBOX_VM_DIR": assets}, timeout=60)
    assert r.rc == 1, r
    assert "vmlinuz fails its SHA-256 check" in r.stderr, r
    assert "not ready" in r.stderr, r


@pytest.mark.parametrize("args,words", [
    (["setup"], ["setup vm"]),
    (["setup", "disk"], ["disk", "vm"]),
    (["setup", "vm", "extra"], ["extra"]),
    (["setup", "vm", "--bogus"], ["--bogus"]),
])
def test_setup_usage(cli, args, words):
    r = cli(args)
    assert r.rc == 125, r
    assert r.stderr.startswith("mimobox: error: "), r
    for w in words:
        assert w in r.stderr, (w, r)


def test_setup_relative_dir(cli):
    r = cli(["setup", "vm", "--check"], env={"MIMOBOX_VM_DIR": "relative/vm"})
    assert r.rc == 125, r
    assert "absolute" in r.stderr, r


def doctor_json(cli, d):
    r = cli(["doctor", "--json"], env={"MIMOBOX_VM_DIR": d})
    assert r.rc == 0, r
    doc = json.loads(r.out)
    return doc, {c["name"]: c for c in doc["checks"]}


def test_doctor_good_assets(cli, assets):
    doc, checks = doctor_json(cli, assets)
    c = checks["vm-assets"]
    assert c["status"] == "ok", c
    assert c["detail"].startswith(assets + " (MIMOBOX_VM_DIR)"), c
    accel = checks["vm-accelerator"]
    assert re.match(r"(KVM|TCG)", accel["detail"]), accel
    assert accel["status"] == ("ok" if accel["detail"].startswith("KVM") else "partial"), accel
    # the backend's prerequisites: QEMU and assets that verify
    micro = doc["backends"]["microvm"]
    assert micro["available"] == (checks["qemu"]["status"] == "ok"), doc
    if not micro["available"]:
        assert checks["qemu"]["detail"] in micro["reason"], doc
    # a second look uses the stamps and says the same
    doc2, checks2 = doctor_json(cli, assets)
    assert checks2["vm-assets"] == c


def test_doctor_damaged_assets(cli, assets):
    # verified once (stamped), then damaged: the change is seen
    doctor_json(cli, assets)
    want, got = damage(assets)
    doc, checks = doctor_json(cli, assets)
    c = checks["vm-assets"]
    assert c["status"] == "unavailable", c
    assert "damaged" in c["detail"] and want in c["detail"] and got in c["detail"], c
    assert "mimobox setup vm" in c["hint"] and "rm -rf" in c["hint"], c
    micro = doc["backends"]["microvm"]
    assert micro["available"] is False, doc
    assert "damaged" in micro["reason"], doc


def test_doctor_missing_assets(cli, tmp_path):
    d = str(tmp_path / "none")
    r = cli(["doctor"], env={"MIMOBOX_VM_DIR": d})
    assert r.rc == 0, r
    line = [l for l in r.out.splitlines() if l.startswith("vm-assets")][0]
    assert "UNAVAILABLE" in line and d in line, r.out
    assert "run `mimobox setup vm`" in r.out, r.out
    assert re.search(r"^backend microvm: unavailable: .*needs its guest assets", r.out, re.M), r.out
