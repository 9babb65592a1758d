# SPDX-License-Identifier: Apache-2.0
"""What other local users can get at (docs/security-model.md, "Other users
of the host"): a sandbox's workspace and state stay private to the caller
even though their paths show in /proc; --env values do not stay readable in
a supervisor's command line; --env-file; a state directory in /tmp that
someone else made first (or a symlink) is refused.

Cases that need a second identity run only as root (they switch to another
uid with setpriv); the rest run as any user.
"""
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import CLI, LIB, host_env, proc_table, reap_zombies

NOBODY = 65534


def as_uid(uid, argv, env=None, timeout=60):
    """Runs argv as uid/gid `uid` with no supplementary groups or capabilities."""
    cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups", "--inh-caps=-all"] + argv
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})


def children(pid):
    return [p for p, (ppid, state, _) in proc_table().items() if ppid == pid and state != "Z"]


@pytest.fixture
def box(cli):
    """Creates one named sandbox with `create ARGS`; removes it afterwards."""
    made = []

    def create(*args):
        name = "lu-" + secrets.token_hex(4)
        r = cli(["create", "--name", name] + list(args))
        assert r.rc == 0, r
        made.append(name)
        ps = cli(["ps", "--json"])
        assert ps.rc == 0, ps
        entry = {s["name"]: s for s in ps.json["sandboxes"]}[name]
        return name, entry
    yield create
    for name in made:
        cli(["rm", name])
    reap_zombies()


# ---------------------------------------------------------------------------
# Workspaces and state directories

# Run as another user: tries every way in to the sandbox whose agent is
# argv[1]: the agent's root and working directory through /proc, the state
# directory and the sandbox's directory in it (argv[2], argv[3]), and any
# mount source /proc/<agent>/mountinfo (world-readable) names for /workspace.
SNOOP = r"""
import json, os, sys
agent, state_dir, sandbox_dir = sys.argv[1:4]
out = {"tries": {}, "workspace_source": None}
with open("/proc/%s/mountinfo" % agent) as f:
    for line in f:
        fields = line.split()
        if fields[4] == "/workspace":
            out["workspace_source"] = fields[3]
tries = [("list workspace via /proc", os.listdir, "/proc/%s/root/workspace" % agent),
         ("read file via /proc", lambda p: open(p).read(), "/proc/%s/root/workspace/secret.txt" % agent),
         ("agent cwd", os.listdir, "/proc/%s/cwd" % agent),
         ("read sandbox lock", lambda p: open(p).read(), sandbox_dir + ".lock"),
         ("list state dir", os.listdir, state_dir)]
src = out["workspace_source"]
if src and src.startswith("/") and os.path.isabs(src) and src != "/":
    tries.append(("list workspace source", os.listdir, src))
for what, fn, path in tries:
    try:
        fn(path)
        out["tries"][what] = "ok"
    except OSError as e:
        out["tries"][what] = e.__class__.__name__
print(json.dumps(out))
"""


def test_workspace_and_state_private_from_other_users(cli, box, user):
    if not user.is_root:
        pytest.skip("needs root: the other user is uid %d, reached through setpriv" % NOBODY)
    name, entry = box()
    secret = "s3cret-" + secrets.token_hex(8)
    r = cli(["exec", name, "--", "sh", "-c", "echo %s > /workspace/secret.txt && cat /workspace/secret.txt "
             "&& ls -ld /workspace" % secret])
    assert r.rc == 0 and secret in r.out, "the sandbox cannot use its own workspace: %r" % r
    agents = children(entry["pid"])
    assert agents, "no agent below the supervisor %d" % entry["pid"]
    sandbox_dir = os.path.join(cli.guard.state_dir, entry["id"])
    r = as_uid(NOBODY, [sys.executable, "-c", SNOOP, str(agents[0]), cli.guard.state_dir, sandbox_dir])
    assert r.returncode == 0, r
    res = json.loads(r.stdout)
    # The source mountinfo names is relative to the storage tmpfs, not a
    # host path: where no such host path exists there is nothing to reach.
    if res["tries"].get("list workspace source") == "FileNotFoundError":
        del res["tries"]["list workspace source"]
    assert res["tries"] and all(v == "PermissionError" for v in res["tries"].values()), res
    # Control: the workspace is reachable for its owner (root here), so the
    # refusals above are about the other user, not about wrong paths.
    with open("/proc/%d/root/workspace/secret.txt" % agents[0]) as f:
        assert secret in f.read()
    # An os sandbox without host files keeps only a lock file (which records
    # its cgroups), private to the caller as well.
    assert not os.path.exists(sandbox_dir)
    assert stat.S_IMODE(os.stat(cli.guard.state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sandbox_dir + ".lock").st_mode) == 0o600


@pytest.mark.parametrize("isolation", ["os", "wasm"])
def test_state_dirs_are_0700(cli, doctor, isolation):
    if not doctor["backends"][isolation]["available"]:
        pytest.skip("no %s backend in this build" % isolation)
    # A sandbox that lists its state while it lives: os through the
    # supervisor's lifetime, wasm through `create` as well.
    r = cli(["create", "--isolation", isolation])
    assert r.rc == 0, r
    sid = r.out.strip()
    try:
        base = cli.guard.state_dir
        sandbox_dir = os.path.join(base, r.ids[0])
        # The os backend keeps the workspace in the sandbox's storage tmpfs
        # and, without a network that needs host files, only a lock file on
        # the host; the wasm backend keeps a host directory of the sandbox's
        # own.
        dirs = [base, os.path.join(base, "named")]
        if isolation == "os":
            assert not os.path.exists(sandbox_dir)
            assert stat.S_IMODE(os.stat(sandbox_dir + ".lock").st_mode) == 0o600
        else:
            dirs.append(sandbox_dir)
        if isolation == "wasm":
            # Its host directory is made on first use: the file API makes it.
            assert cli(["ls", sid]).rc == 0
            dirs.append(os.path.join(sandbox_dir, "workspace"))
        for d in dirs:
            mode = stat.S_IMODE(os.stat(d).st_mode)
            assert mode == 0o700, "%s is %o" % (d, mode)
    finally:
        assert cli(["rm", sid]).rc == 0


# ---------------------------------------------------------------------------
# Secrets in --env


def cmdlines_with(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_env_secret_not_in_supervisor_cmdline(cli, box):
    secret = "tok-" + secrets.token_hex(12)
    name, entry = box("--env", "API_TOKEN=" + secret)
    # While the sandbox lives, no command line shows the value: not the
    # supervisor's (create's, inherited), not the agent's.
    leaking = cmdlines_with(secret)
    assert not leaking, "the secret is in the command line of %s" % {p: proc_table().get(p) for p in leaking}
    argv = proc_table()[entry["pid"]][2]
    assert argv and "supervisor" in " ".join(argv) and name in " ".join(argv), argv
    # It still reaches the payload.
    r = cli(["exec", name, "--", "sh", "-c", 'printf %s "$API_TOKEN"'])
    assert r.rc == 0 and r.out == secret, r


def test_env_file(cli, box, host_tmp):
    path = os.path.join(host_tmp, "vars.env")
    with open(path, "w") as f:
        f.write("# settings\n\nA=1\n  # indented comment\nB= two  words $HOME \"q\"\r\nC=\nD=x=y\n")
    os.chmod(path, 0o600)
    want = '[1][ two  words $HOME "q"][][x=y]'
    script = 'printf "[%s][%s][%s][%s]" "$A" "$B" "$C" "$D"'
    r = cli.run("--env-file", path, "--", "sh", "-c", script)
    assert r.rc == 0 and r.out == want, r
    # Files and --env add up in order; the later one wins.
    r = cli.run("--env-file", path, "--env", "A=2", "--", "sh", "-c", 'printf %s "$A"')
    assert r.rc == 0 and r.out == "2", r
    # create and exec.
    name, entry = box("--env-file", path)
    r = cli(["exec", name, "--", "sh", "-c", script])
    assert r.rc == 0 and r.out == want, r
    with open(path + "2", "w") as f:
        f.write("A=from-exec\n")
    r = cli(["exec", name, "--env-file", path + "2", "--", "sh", "-c", 'printf %s "$A"'])
    assert r.rc == 0 and r.out == "from-exec", r
    assert not cmdlines_with('"q"'), "a value of the file shows in a command line"


BAD_FILES = [
    ("no-equals", "A=1\nSECRETVALUE\n", ["line 2", "KEY=VALUE"]),
    ("export", "# x\nexport A=1\n", ["line 2", "export"]),
    ("bad-name", "A-B=1\n", ["line 1", "A-B"]),
    ("nul", "A=1\nB=x\0y\n", ["line 2", "NUL"]),
]


@pytest.mark.parametrize("text,words", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
@pytest.mark.parametrize("verb", ["run", "create", "exec"])
def test_env_file_bad(cli, box, host_tmp, verb, text, words):
    path = os.path.join(host_tmp, "bad.env")
    with open(path, "w") as f:
        f.write(text)
    if verb == "run":
        r = cli.run("--env-file", path, "--", "true")
    elif verb == "create":
        r = cli(["create", "--env-file", path])
    else:
        name, _ = box()
        r = cli(["exec", name, "--env-file", path, "--", "true"])
    assert r.rc == 125, r
    assert r.stdout == b"" and path in r.stderr and "--env-file" in r.stderr, r
    for w in words:
        assert w in r.stderr, r
    assert "SECRETVALUE" not in r.stderr and "x\0y" not in r.stderr
    if verb != "exec":
        assert not r.ids, "a sandbox was made for a bad --env-file: %s" % r.log


@pytest.mark.parametrize("verb", ["run", "exec"])
def test_env_file_missing(cli, box, verb):
    if verb == "run":
        r = cli.run("--env-file", "/nonexistent/mbx.env", "--", "true")
    else:
        name, _ = box()
        r = cli(["exec", name, "--env-file", "/nonexistent/mbx.env", "--", "true"])
    assert r.rc == 125 and "/nonexistent/mbx.env" in r.stderr and "No such file" in r.stderr, r


# ---------------------------------------------------------------------------
# /tmp/mimobox-<uid>


def squat_env():
    """The environment under which the state directory is /tmp/mimobox-<uid>."""
    env = host_env()
    for k in ("MIMOBOX_STATE_DIR", "XDG_RUNTIME_DIR"):
        env.pop(k, None)
    env["HOME"] = "/tmp"
    return env


@pytest.fixture(scope="module")
def cli_for_anyone(tmp_path_factory):
    """The CLI and its libraries copied where any uid can run them (the
    checkout may sit below a directory only its owner can enter, as
    /root does): (path of the CLI, its library directory)."""
    d = tmp_path_factory.mktemp("cli-for-anyone")
    lib_dir = os.path.dirname(os.path.realpath(LIB))
    shutil.copy2(CLI, d / "mimobox")
    # The front hands most command lines to the whole CLI beside it.
    full = os.path.join(os.path.dirname(os.path.realpath(CLI)), "mimobox-full")
    if os.path.exists(full):
        shutil.copy2(full, d / "mimobox-full")
    for name in os.listdir(lib_dir):
        if (name.startswith("libmimobox.so") or name == "libwasmtime.so") and \
                os.path.isfile(os.path.join(lib_dir, name)):
            shutil.copy2(os.path.join(lib_dir, name), d / name, follow_symlinks=True)
    for p in [d] + list(d.parents):
        if str(p) in ("/", "/tmp"):
            break
        os.chmod(p, os.stat(p).st_mode | 0o755)
    return str(d / "mimobox"), str(d)


@pytest.fixture
def victim(user, cli_for_anyone):
    """(uid, how to run the CLI as it, its /tmp state path). As root the
    victim is a fresh uid; otherwise it is us."""
    if user.is_root:
        uid = 0x3e000000 + secrets.randbelow(1 << 20)
        cli_path, lib_dir = cli_for_anyone

        def run(*args):
            env = squat_env()
            env["LD_LIBRARY_PATH"] = lib_dir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
            return as_uid(uid, [cli_path] + list(args), env=env)
    else:
        uid = user.euid

        def run(*args):
            return subprocess.run([CLI] + list(args), capture_output=True, text=True, timeout=60, env=squat_env())
    path = "/tmp/mimobox-%d" % uid
    if os.path.lexists(path):
        pytest.skip("%s exists already: not ours to play with" % path)
    yield uid, run, path
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)


def refused(r, path, *words):
    assert r.returncode == 125, r
    assert path in r.stderr, r
    for w in words:
        assert w in r.stderr, r


def test_tmp_state_dir_of_another_user(victim, user, tmp_path):
    uid, run, path = victim
    if not user.is_root:
        pytest.skip("needs root to make a directory owned by another uid")
    os.mkdir(path, 0o777)
    os.chmod(path, 0o777)
    os.chown(path, NOBODY, NOBODY)
    for args in (["run", "--", "true"], ["ps"], ["create"]):
        refused(run(*args), path, "belongs to uid %d" % NOBODY)
    assert os.listdir(path) == [], "something was put in another user's directory"
    # The same as a symlink to a directory of that user.
    os.rename(path, path + ".target")
    try:
        os.symlink(path + ".target", path)
        for args in (["run", "--", "true"], ["ps"]):
            refused(run(*args), path, "symbolic link")
        assert os.listdir(path + ".target") == []
    finally:
        os.rmdir(path + ".target")


def test_tmp_state_dir_symlink_and_mode(victim, user):
    uid, run, path = victim
    # A symlink, even to a directory of our own.
    own = path + ".own"
    os.mkdir(own, 0o700)
    if user.is_root:
        os.chown(own, uid, uid)
    try:
        os.symlink(own, path)
        refused(run("ps"), path, "symbolic link")
        refused(run("run", "--", "true"), path, "symbolic link")
        assert os.listdir(own) == []
        os.unlink(path)
        # Ours, but writable by others: something may be planted in it.
        os.mkdir(path, 0o777)
        os.chmod(path, 0o777)
        if user.is_root:
            os.chown(path, uid, uid)
        refused(run("ps"), path, "writable by everyone")
        os.chmod(path, 0o775)
        refused(run("ps"), path, "writable by its group")
        # Ours and only readable by others: taken, and made private.
        os.chmod(path, 0o755)
        r = run("ps")
        assert r.returncode == 0, r
        assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700
        os.rmdir(path)
        # Missing: made 0700.
        r = run("ps")
        assert r.returncode == 0, r
        st = os.lstat(path)
        assert stat.S_ISDIR(st.st_mode) and st.st_uid == uid and stat.S_IMODE(st.st_mode) == 0o700
    finally:
        shutil.rmtree(own, ignore_errors=True)


# ---------------------------------------------------------------------------
# `..` in a working directory given to a (possibly root) supervisor


@pytest.mark.parametrize("workdir", ["a/..", "./x/../..", "/workspace/.."])
def test_exec_workdir_dotdot(cli, box, workdir):
    name, _ = box()
    r = cli(["exec", name, "--workdir", workdir, "--", "pwd"])
    assert r.rc == 125 and r.stdout == b"", r
    assert "`%s` contains `..`" % workdir in r.stderr, r
    # The supervisor is fine afterwards.
    r = cli(["exec", name, "--workdir", "./", "--", "pwd"])
    assert r.rc == 0 and r.out == "/workspace\n", r
