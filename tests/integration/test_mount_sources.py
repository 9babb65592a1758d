# SPDX-License-Identifier: Apache-2.0
"""Mount sources and targets are never followed through symbolic links.

A sandbox with write access to a shared host directory can replace a
directory in it with a symlink (to /etc, or anywhere). A later sandbox that
mounts a path below that directory must not get the link's target, and
directories or files made for mount targets must not land where a planted
link points. Sources are resolved once, when the mount is configured, and
reopened without following links when the sandbox is created; targets are
walked the same way by the agent."""
import ctypes
import os
import threading

import pytest

import mbx

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def tree(host_tmp):
    """shared/data (marker "good") and secret (marker "SECRET-CONTENT")."""
    shared = os.path.join(host_tmp, "shared")
    data = os.path.join(shared, "data")
    secret = os.path.join(host_tmp, "secret")
    for d, text in ((data, "good"), (secret, "SECRET-CONTENT")):
        os.makedirs(d)
        with open(os.path.join(d, "marker"), "w") as f:
            f.write(text)
    return shared, data, secret


def failed_run(cli, *args):
    r = cli(["run", "--json"] + list(args))
    assert r.rc != 0 and r.json.get("ok") is False, r
    return r.json["error"]


@pytest.mark.parametrize("target", ["secret", "/etc"])
def test_planted_symlink_is_not_followed(cli, host_tmp, target):
    shared, data, secret = tree(host_tmp)
    link_to = secret if target == "secret" else target
    # The first sandbox may write the shared directory: it plants the link.
    r, res = cli.json("--mount", shared + ":/mnt/s:rw", "--", "sh", "-c",
                      "rm -rf /mnt/s/data && ln -s %s /mnt/s/data" % link_to)
    assert res["exit_code"] == 0, res
    assert os.readlink(data) == link_to
    # The next one mounts shared/data: it must not see the link's target.
    err = failed_run(cli, "--mount", data + ":/mnt/d", "--", "sh", "-c", "cat /mnt/d/marker /mnt/d/passwd")
    assert "symbolic link" in err["message"], err
    assert "SECRET-CONTENT" not in str(err) and "root:" not in str(err), err


def test_symlink_in_the_source_path_is_refused(cli, host_tmp):
    # Any link on the way is refused, with the resolved path as the way out.
    shared, data, secret = tree(host_tmp)
    os.symlink(shared, os.path.join(host_tmp, "alias"))
    err = failed_run(cli, "--mount", os.path.join(host_tmp, "alias", "data") + ":/mnt/d", "--", "true")
    assert "symbolic link" in err["message"], err
    assert data in err["suggestion"], err
    r, res = cli.json("--mount", data + ":/mnt/d", "--", "cat", "/mnt/d/marker")
    assert res["stdout"] == "good", res


def test_swap_after_configuration_fails_closed(lib, host_tmp):
    shared, data, secret = tree(host_tmp)
    with mbx.Config(lib) as cfg:
        cfg.add_mount(data, "/mnt/d")
        # Swapped for a link between configuration and creation.
        os.rename(data, data + ".real")
        os.symlink(secret, data)
        with pytest.raises(mbx.MbxError) as e:
            mbx.Sandbox(lib, config=cfg)
        assert "symbolic link" in e.value.message, e.value
        # Swapped for another directory: not what was configured either.
        os.unlink(data)
        os.mkdir(data)
        with pytest.raises(mbx.MbxError) as e:
            mbx.Sandbox(lib, config=cfg)
        assert "replaced" in e.value.message, e.value
        # The configured directory back: it works.
        os.rmdir(data)
        os.rename(data + ".real", data)
        with mbx.Sandbox(lib, config=cfg) as sb:
            assert sb.exec(["cat", "/mnt/d/marker"]).stdout == b"good"
            assert sb.destroy() == mbx.MBX_OK


def test_planted_symlink_in_a_mount_target(cli, host_tmp):
    # A later mount's target runs through a link planted in an earlier,
    # shared mount: "/oldroot/..." is where the agent sees the host tree.
    shared, data, secret = tree(host_tmp)
    victim = os.path.join(host_tmp, "victim")
    os.mkdir(victim)
    os.chmod(victim, 0o777)
    os.symlink("/oldroot" + victim, os.path.join(shared, "sub"))
    err = failed_run(cli, "--mount", shared + ":/mnt/s:rw", "--mount", secret + ":/mnt/s/sub/inner", "--",
                     "cat", "/mnt/s/sub/inner/marker")
    assert "symbolic link" in err["message"], err
    err = failed_run(cli, "--mount", shared + ":/mnt/s:rw",
                     "--mount", os.path.join(secret, "marker") + ":/mnt/s/sub/file", "--", "true")
    assert "symbolic link" in err["message"], err
    # Nothing was made on the host through the link.
    assert os.listdir(victim) == [], os.listdir(victim)


def renameat2_exchange():
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def exchange(a, b):
        if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e), a)
    return exchange


def test_symlink_flip_race_while_mounting(lib, host_tmp):
    # The source and a target path flip between a directory and a link as
    # fast as the kernel allows while sandboxes are created: each creation
    # either fails, naming the link, or mounts the real directory.
    shared, data, secret = tree(host_tmp)
    os.mkdir(os.path.join(shared, "sub"))
    other = os.path.join(host_tmp, "other")
    os.mkdir(other)
    with open(os.path.join(other, "marker"), "w") as f:
        f.write("other")
    victim = os.path.join(host_tmp, "victim")
    os.mkdir(victim)
    os.chmod(victim, 0o777)
    swap_src = os.path.join(shared, "swap-src")
    swap_dst = os.path.join(shared, "swap-dst")
    os.symlink(secret, swap_src)
    os.symlink("/oldroot" + victim, swap_dst)
    exchange = renameat2_exchange()
    try:
        exchange(swap_src, data)
        exchange(swap_src, data)
    except OSError as e:
        pytest.skip("renameat2(RENAME_EXCHANGE) unavailable here: %s" % e)

    stop = threading.Event()
    flips = [0]

    def flipper():
        while not stop.is_set():
            exchange(swap_src, data)
            exchange(swap_dst, os.path.join(shared, "sub"))
            flips[0] += 1

    outcomes = {"ok": 0, "refused": 0}
    with mbx.Config(lib) as cfg:
        cfg.add_mount(data, "/mnt/d")
        cfg.add_mount(shared, "/mnt/s", mbx.Config.MOUNT_RW)
        cfg.add_mount(other, "/mnt/s/sub/inner")
        t = threading.Thread(target=flipper)
        t.start()
        try:
            for _ in range(12):
                try:
                    sb = mbx.Sandbox(lib, config=cfg)
                except mbx.MbxError as e:
                    assert "symbolic link" in e.message or "replaced" in e.message, e
                    assert "SECRET-CONTENT" not in e.message, e
                    outcomes["refused"] += 1
                    continue
                with sb:
                    # The flipper keeps moving the mounted directory between
                    # "sub" and "swap-dst": look under both names.
                    res = sb.exec(["sh", "-c", "cat /mnt/d/marker; echo; "
                                   "cat /mnt/s/sub/inner/marker /mnt/s/swap-dst/inner/marker 2>/dev/null"])
                    first, rest = res.stdout.split(b"\n", 1)
                    assert first == b"good", res.stdout
                    assert rest.replace(b"other", b"") == b"", res.stdout
                    outcomes["ok"] += 1
                    assert sb.destroy() == mbx.MBX_OK
        finally:
            stop.set()
            t.join()
    assert flips[0] > 0
    assert os.listdir(victim) == [], os.listdir(victim)
    print("race outcomes: %s after %d flips" % (outcomes, flips[0]))
