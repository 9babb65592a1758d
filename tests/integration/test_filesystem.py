# SPDX-License-Identifier: Apache-2.0
"""The sandbox's file-system view: host secrets stay out of it, read-only
paths stay read-only, writable paths work."""
import os
import secrets

import pytest

# Tries to write, create and make a directory at each path given; prints
# "PATH write=RESULT mkdir=RESULT" with ok or the errno name.
WRITE_PROBE = r"""
import errno, os, sys

def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
for p in sys.argv[1:]:
    w = attempt(lambda: open(p, "w").write("x"))
    d = attempt(lambda: os.mkdir(p + ".d"))
    print(p, "write=" + w, "mkdir=" + d)
"""


def probe_writes(cli, paths, *opts):
    r, res = cli.json(*opts, "--", "python3", "-c", WRITE_PROBE, *paths)
    assert res["exit_code"] == 0, res
    out = {}
    for line in res["stdout"].splitlines():
        p, w, d = line.split(" ")
        out[p] = (w.split("=")[1], d.split("=")[1])
    assert set(out) == set(paths), res
    return out


def test_secret_in_root_home_is_invisible(cli, user):
    if not user.is_root:
        pytest.skip("needs root to place a secret in /root; unprivileged callers are covered by "
                    "test_secret_in_host_tmp_is_invisible[in-0700-dir]")
    token = secrets.token_hex(16)
    path = "/root/mbx-secret-" + secrets.token_hex(6)
    with open(path, "w") as f:
        f.write(token)
    try:
        os.chmod(path, 0o644)
        r, res = cli.json("--", "sh", "-c", "cat %s; ls -a /root; ls -a /; grep -rs %s /workspace /tmp /etc; true"
                          % (path, token))
        assert token not in res["stdout"], res
        assert os.path.basename(path) not in res["stdout"], res
        assert "No such file" in res["stderr"], res
    finally:
        os.unlink(path)


@pytest.mark.parametrize("private", [False, True], ids=["world-readable", "in-0700-dir"])
def test_secret_in_host_tmp_is_invisible(cli, private):
    token = secrets.token_hex(16)
    if private:
        d = "/tmp/mbx-private-" + secrets.token_hex(6)
        os.mkdir(d, 0o700)
        path = os.path.join(d, "secret")
    else:
        d = None
        path = "/tmp/mbx-secret-" + secrets.token_hex(6)
    try:
        with open(path, "w") as f:
            f.write(token)
        # World-readable on the host: only the sandbox's view can hide it.
        os.chmod(path, 0o644 if not private else 0o600)
        script = "cat %s; ls -a /tmp %s; test -e %s && echo EXISTS; true" % (path, d or "", path)
        r, res = cli.json("--", "sh", "-c", script)
        assert token not in res["stdout"], res
        assert os.path.basename(path) not in res["stdout"], res
        assert "EXISTS" not in res["stdout"], res
        assert "No such file" in res["stderr"], res
    finally:
        if os.path.exists(path):
            os.unlink(path)
        if d:
            os.rmdir(d)


def test_mount_gives_the_callers_rights_on_that_tree_only(cli, host_tmp):
    # A mount hands the sandbox the caller's own access to the named tree:
    # for an unprivileged caller because sandbox root is the caller's uid,
    # for a root caller because the mount is id-mapped through the sandbox's
    # user namespace. A private file of the caller inside the tree is
    # therefore readable, and a file the sandbox creates there belongs to
    # the caller on the host; a private file beside the tree stays invisible.
    token = secrets.token_hex(16)
    tree = os.path.join(host_tmp, "tree")
    priv = os.path.join(tree, "private")
    os.makedirs(priv)
    os.chmod(priv, 0o700)
    with open(os.path.join(priv, "secret"), "w") as f:
        f.write(token)
    outside = secrets.token_hex(16)
    with open(os.path.join(host_tmp, "beside"), "w") as f:
        f.write(outside)
    r, res = cli.json("--mount", tree + ":/data:rw", "--", "sh", "-c",
                      "cat /data/private/secret; echo made > /data/made; ls /; cat /beside 2>&1; true")
    assert token in res["stdout"], res
    assert outside not in res["stdout"], res
    st = os.stat(os.path.join(tree, "made"))
    assert st.st_uid == os.geteuid(), (st.st_uid, os.geteuid())


def test_etc_shadow_absent(cli, user):
    if not os.path.exists("/etc/shadow"):
        pytest.skip("the host has no /etc/shadow to hide")
    r, res = cli.json("--", "sh", "-c", "cat /etc/shadow; cat /etc/gshadow; ls -a /etc; true")
    assert "root:" not in res["stdout"], res
    names = res["stdout"].split()
    assert "shadow" not in names and "gshadow" not in names and "sudoers" not in names, res
    assert "passwd" in names, res  # the listing itself worked
    assert res["stderr"].count("No such file") == 2, res


def test_etc_passwd_is_not_the_hosts(cli):
    with open("/etc/passwd") as f:
        host = f.read()
    r, res = cli.json("--", "cat", "/etc/passwd")
    assert res["exit_code"] == 0, res
    assert res["stdout"].startswith("root:"), res
    assert res["stdout"] != host
    host_users = {l.split(":")[0] for l in host.splitlines() if l}
    inside_users = {l.split(":")[0] for l in res["stdout"].splitlines() if l}
    assert inside_users < host_users | {"nobody", "root"}
    assert len(inside_users) < len(host_users), (inside_users, host_users)


def test_copied_etc_files_match_the_hosts(cli):
    """The host /etc files the sandbox gets as copies hold the same bytes and
    permission bits as the host's: files larger than one copy chunk (64 KiB),
    small ones and empty ones alike."""
    import hashlib
    import stat
    names = ["ld.so.cache", "mime.types", "protocols", "services", "environment", "profile", "host.conf"]
    host = {}
    for n in names:
        p = "/etc/" + n
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        with open(p, "rb") as f:
            data = f.read()
        host[p] = (hashlib.sha256(data).hexdigest(), len(data),
                   "%o" % (stat.S_IMODE(os.stat(p).st_mode) & 0o755))
    if not host:
        pytest.skip("none of the copied /etc files is a regular file here")
    r, res = cli.json("--", "sh", "-c", 'for p; do d=$(sha256sum "$p" | cut -d" " -f1); echo "$p $d $(stat -c "%s %a" "$p")"; done',
                      "sh", *sorted(host))
    assert res["exit_code"] == 0, res
    inside = {}
    for line in res["stdout"].splitlines():
        p, digest, size, mode = line.split(" ")
        inside[p] = (digest, int(size), mode)
    assert inside == host, res


@pytest.mark.parametrize("where", ["/usr", "/etc", "/", "/bin", "/usr/lib"])
def test_system_paths_are_read_only(cli, where):
    name = "mbx-probe-" + secrets.token_hex(6)
    path = os.path.join(where, name)
    result = probe_writes(cli, [path])
    assert result[path] != ("ok", "ok") and "ok" not in result[path], result
    assert not os.path.exists(path) and not os.path.exists(path + ".d"), "the write reached the host"


def test_existing_host_file_cannot_be_changed(cli):
    with open("/etc/hostname", "rb") as f:
        before = f.read()
    r, res = cli.json("--", "sh", "-c", "echo pwned > /etc/hostname; echo pwned >> /usr/bin/env; rm -f /usr/bin/env; true")
    assert res["stderr"].count("Read-only file system") >= 2, res
    with open("/etc/hostname", "rb") as f:
        assert f.read() == before
    assert os.path.exists("/usr/bin/env")


@pytest.mark.parametrize("mode", ["", ":ro"], ids=["default", "explicit-ro"])
def test_read_only_mount(cli, host_tmp, mode):
    # World-writable on the host, so only the read-only mount can refuse.
    os.chmod(host_tmp, 0o777)
    existing = os.path.join(host_tmp, "existing")
    with open(existing, "w") as f:
        f.write("original\n")
    os.chmod(existing, 0o666)
    r, res = cli.json("--mount", host_tmp + ":/data" + mode, "--", "python3", "-c", WRITE_PROBE,
                      "/data/new", "/data/existing")
    assert res["exit_code"] == 0, res
    assert "ok" not in res["stdout"], res
    assert "EROFS" in res["stdout"], res
    assert sorted(os.listdir(host_tmp)) == ["existing"]
    with open(existing) as f:
        assert f.read() == "original\n"
    # ...while the mount is readable.
    r, res = cli.json("--mount", host_tmp + ":/data" + mode, "--", "cat", "/data/existing")
    assert res["stdout"] == "original\n", res


def test_rw_mount_lands_on_host(cli, host_tmp):
    # An ordinary directory of the caller (0755, owned by the caller), as a
    # user would pass it. The sandbox must be able to write through :rw.
    token = secrets.token_hex(8)
    r, res = cli.json("--mount", host_tmp + ":/data:rw", "--", "sh", "-c",
                      "echo %s > /data/out && mkdir /data/sub && echo y > /data/sub/f" % token)
    assert res["exit_code"] == 0, "a --mount ...:rw of a caller-owned 0755 directory is not writable: %s" % res
    with open(os.path.join(host_tmp, "out")) as f:
        assert f.read() == token + "\n"
    with open(os.path.join(host_tmp, "sub", "f")) as f:
        assert f.read() == "y\n"


def test_rw_mount_of_world_writable_dir_lands_on_host(cli, host_tmp):
    os.chmod(host_tmp, 0o777)
    token = secrets.token_hex(8)
    r, res = cli.json("--mount", host_tmp + ":/data:rw", "--", "sh", "-c", "echo %s > /data/out" % token)
    assert res["exit_code"] == 0, res
    with open(os.path.join(host_tmp, "out")) as f:
        assert f.read() == token + "\n"


def test_workspace_and_tmp_are_writable(cli):
    paths = ["/workspace/f", "/tmp/f", "/dev/shm/f"]
    result = probe_writes(cli, paths)
    for p in paths:
        assert result[p] == ("ok", "ok"), result
    r, res = cli.json("--", "sh", "-c", "pwd; echo hi > rel && cat /workspace/rel")
    assert res["stdout"] == "/workspace\nhi\n", res
