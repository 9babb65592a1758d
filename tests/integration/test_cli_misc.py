# SPDX-License-Identifier: Apache-2.0
"""The rest of the CLI: streamed output, doctor, version, environment and
working directory."""
import json
import os
import re
import secrets
import subprocess
import time

import pytest



def test_stdout_streams_without_json(cli):
    p = subprocess.Popen([cli.path, "run", "--", "sh", "-c", "echo a; sleep 1; echo b"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env())
    seen = {}
    buf = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = os.read(p.stdout.fileno(), 4096)
            now = time.monotonic()
            if not chunk:
                break
            buf += chunk
            for line in (b"a\n", b"b\n"):
                if line in buf and line not in seen:
                    seen[line] = now
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        cli.guard.ids.update(re.findall(r"sandbox ([0-9a-f]{16}) created", p.stderr.read().decode()))
        p.stderr.close()
    assert rc == 0 and buf == b"a\nb\n", buf
    assert seen[b"b\n"] - seen[b"a\n"] >= 0.8, "\"a\" was not delivered before the command finished"


def test_stderr_streams_without_json(cli):
    r = cli.run("--", "sh", "-c", "echo to-out; echo to-err >&2; exit 4")
    assert r.rc == 4, r
    assert r.stdout == b"to-out\n", r
    assert r.stderr == "to-err\n", r


def test_doctor_json(cli):
    r = cli(["doctor", "--json"])
    assert r.rc == 0, r
    d = json.loads(r.out)
    names = [c["name"] for c in d["checks"]]
    for want in ("user-namespaces", "seccomp", "landlock", "cgroup-v1", "cgroup-v2", "kvm", "qemu", "vm-accelerator",
                 "vm-assets", "vmm-jail", "wasmtime"):
        assert want in names, "doctor does not report %s: %s" % (want, names)
    for c in d["checks"]:
        assert c["status"] in ("ok", "partial", "unavailable"), c
        assert c["detail"], c
    assert d["backends"]["os"]["available"] is True, d
    for b in ("wasm", "microvm"):
        assert d["backends"][b]["available"] is False or d["backends"][b]["reason"] is None
        if not d["backends"][b]["available"]:
            assert d["backends"][b]["reason"], d
    status = {c["name"]: c["status"] for c in d["checks"]}
    # This host runs sandboxes, so the layers they need must be reported as working.
    for layer in ("user-namespaces", "seccomp", "landlock"):
        assert status[layer] == "ok", d


def test_doctor_vmm_jail(cli):
    # QEMU's jail is an os sandbox: here the os backend runs, so the jail can
    # be built; the check names its layers and the limits rung the cgroup
    # checks imply, PARTIAL exactly on the rlimit rung (or an old Landlock).
    d = json.loads(cli(["doctor", "--json"]).out)
    checks = {c["name"]: c for c in d["checks"]}
    jail = checks["vmm-jail"]
    if checks["cgroup-v2"]["status"] != "unavailable":
        rung = "cgroup-v2"
    elif checks["cgroup-v1"]["status"] != "unavailable":
        rung = "cgroup-v1"
    else:
        rung = "rlimit"
    for word in ("user, pid, mount, network", "seccomp (the VMM program)", "Landlock ABI", "no_new_privs",
                 "limits rung %s:" % rung):
        assert word in jail["detail"], jail
    old_landlock = checks["landlock"]["status"] == "partial"
    assert jail["status"] == ("partial" if rung == "rlimit" or old_landlock else "ok"), jail
    assert ("unmapped uid" in jail["detail"]) == (os.geteuid() == 0), jail
    accel = checks["vm-accelerator"]["detail"][:3]
    assert ("KVM: /dev/kvm bound in" in jail["detail"]) == (accel == "KVM"), jail
    r = cli(["doctor"])
    assert re.search(r"^vmm-jail +(OK|PARTIAL) +QEMU runs in an os sandbox", r.out, re.M), r.out


def test_doctor_text(cli):
    r = cli(["doctor"])
    assert r.rc == 0, r
    assert "seccomp" in r.out and "backend os" in r.out, r


def test_version(cli):
    r = cli(["version"])
    assert r.rc == 0, r
    assert re.fullmatch(r"mimobox \d+\.\d+\.\d+\S*\n", r.out), r
    r2 = cli(["--version"])
    assert r2.out == r.out, r2


def test_environment_is_clean(cli):
    secret = secrets.token_hex(12)
    extra = {"MBX_HOST_SECRET": secret, "MBX_HOST_OTHER": "other-" + secret,
             # Caller values the sandbox's own defaults cannot coincide with.
             "LANG": "xx_YY.mbx", "TERM": "mbx-term", "HOME": "/mbx-home", "USER": "mbx-user",
             "SHELL": "/mbx/sh", "TMPDIR": "/mbx-tmp"}
    r, res = cli.json("--", "env", env=extra)
    assert res["exit_code"] == 0, res
    assert secret not in res["stdout"], res
    inside = dict(l.split("=", 1) for l in res["stdout"].splitlines() if "=" in l)
    assert "PATH" in inside, inside
    # Nothing of the caller's environment comes in: no variable has the
    # caller's value, except a PATH that happens to be the same.
    caller = cli.env(extra)
    leaked = {n for n, v in inside.items() if caller.get(n) == v and n != "PATH"}
    assert not leaked, leaked


def test_env_values_arrive(cli):
    r, res = cli.json("--env", "FOO=bar", "--env", "SPACED=a b=c", "--env", "EMPTY=", "--",
                      "sh", "-c", 'printf "%s|%s|%s|%s" "$FOO" "$SPACED" "${EMPTY-unset}" "${NOTSET-unset}"')
    assert res["stdout"] == "bar|a b=c||unset", res


def test_env_can_override_path(cli):
    r, res = cli.json("--env", "PATH=/usr/bin", "--", "sh", "-c", 'echo "$PATH"')
    assert res["stdout"] == "/usr/bin\n", res


def test_workdir(cli):
    r, res = cli.json("--workdir", "/tmp", "--", "pwd")
    assert res["stdout"] == "/tmp\n", res
    r, res = cli.json("--", "pwd")
    assert res["stdout"] == "/workspace\n", res


def test_payload_does_not_read_the_callers_stdin(cli):
    r = cli.run("--", "cat", stdin=b"caller input\n", timeout=30)
    assert r.rc == 0 and r.stdout == b"", r


def test_binary_output_gives_valid_json(cli):
    r, res = cli.json("--", "printf", "a\\377\\376b\\001\\n")
    assert res["stdout"].startswith("a") and res["stdout"].endswith("b\x01\n"), res


def test_code_from_argument_and_stdin(cli):
    r = cli.run("--code", "python3", "print(6 * 7)")
    assert r.rc == 0 and r.stdout == b"42\n", r
    r = cli.run("--code", "sh", stdin=b"echo from-stdin; exit 5")
    assert r.rc == 5 and r.stdout == b"from-stdin\n", r


def test_binary_output_also_comes_as_base64(cli):
    import base64
    r, res = cli.json("--", "printf", "a\\377\\376b\\001\\n")
    assert base64.b64decode(res["stdout_b64"]) == b"a\xff\xfeb\x01\n", res
    assert "stderr_b64" not in res, "valid UTF-8 (here: empty) has no base64 twin"
    r, res = cli.json("--", "printf", "h\\303\\251")
    assert res["stdout"] == "h\u00e9" and "stdout_b64" not in res, res


def test_start_loads_no_http_client(cli):
    """libcurl and its thirty libraries are loaded on the first HTTP
    request (src/net/curl-api.h), not when the program starts: the dynamic
    loader's own account of the files it opened for `mimobox version` and
    `mimobox --help` names libmimobox and libc, and nothing of curl."""
    for args in (["version"], ["--help"]):
        p = subprocess.run([cli.path] + args, capture_output=True, env=cli.env({"LD_DEBUG": "files"}), timeout=60)
        assert p.returncode == 0, p
        loaded = re.findall(r"file=(\S+) \[0\];", p.stderr.decode(errors="replace"))
        assert "libmimobox.so.0" in loaded and "libc.so.6" in loaded, loaded
        assert not [f for f in loaded if "curl" in f or "ssl" in f or "crypto" in f], loaded


def test_version_forms(cli):
    text = cli(["version"]).out
    assert cli(["-V"]).out == text
    r = cli(["version", "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "version": text.split()[1]}, r


def test_docker_style_options(cli, host_tmp):
    r, res = cli.json("-e", "FOO=bar", "-w", "/tmp", "-m", "256m", "--network", "none",
                      "--", "sh", "-c", "echo $FOO; pwd")
    assert res["stdout"] == "bar\n/tmp\n", res
    # --cpus is --cpu (a quota needs cgroups, so only the parsing is checked here).
    r = cli.run("--cpus", "0", "--", "true")
    assert r.rc == 125 and "--cpu" in r.stderr and "greater than zero" in r.stderr, r
    for mem in ["1g", "1.5G", "300MiB", "262144k", "300"]:
        r = cli.run("--memory", mem, "--", "true")
        assert r.rc == 0, (mem, r)
    for bad, word in [("12q", "unknown unit"), ("0m", "greater than zero"), ("m", "not a number"),
                      ("-1g", "greater than zero"), ("99999999999t", "too large")]:
        r = cli.run("-m", bad, "--", "true")
        assert r.rc == 125 and word in r.stderr and "--memory" in r.stderr, (bad, r)
    src = os.path.join(host_tmp, "mnt-src")
    os.mkdir(src)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("mounted\n")
    r, res = cli.json("-v", src + ":/data", "--", "cat", "/data/f")
    assert res["stdout"] == "mounted\n", res


def test_did_you_mean(cli):
    r = cli(["exce", "x"])
    assert r.rc == 125 and "unknown command `exce`" in r.stderr and "did you mean `mimobox exec`" in r.stderr, r
    r = cli(["frobnicate"])
    assert r.rc == 125 and "did you mean" not in r.stderr, r
    r = cli.run("--timout", "5", "--", "true")
    assert r.rc == 125 and "did you mean `--timeout`" in r.stderr, r
    r = cli.run("--memroy", "5", "--", "true")
    assert r.rc == 125 and "did you mean `--memory`" in r.stderr, r
    r = cli(["ls", "--jsno", "x"])
    assert r.rc == 125 and "did you mean `--json`" in r.stderr, r
    r = cli.run("--zzzzzz", "--", "true")
    assert r.rc == 125 and "did you mean" not in r.stderr, r


@pytest.mark.parametrize("words", [
    ["frobnicate"], ["version", "extra"], ["version", "--bad"], ["doctor", "--bad"], ["doctor", "extra"],
    ["run", "--bad"], ["create", "--bad"], ["exec"], ["ps", "--bad"], ["cat", "x"], ["write", "x"], ["ls"],
    ["stat", "x"], ["cp", "a"], ["mkdir", "x"], ["rm"], ["rm", "--bad", "x"], ["http", "x"], ["shell", "--bad"],
], ids=" ".join)
def test_every_usage_error_is_125(cli, words):
    r = cli(words)
    assert r.rc == 125 and "mimobox: error:" in r.stderr, r
    if words != ["frobnicate"]:
        assert "--help" in r.stderr, r


def test_no_arguments_is_a_usage_error(cli):
    r = cli([])
    assert r.rc == 125 and "Usage: mimobox" in r.stderr, r
