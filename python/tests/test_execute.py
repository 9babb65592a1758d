# SPDX-License-Identifier: Apache-2.0
"""Executes through the package on every backend: output, exit status,
signals, timeouts, stdin, environment, code in several languages, and the
errors that bad input gives (the scenarios of tests/integration's basics,
processes and library tests, seen from Python)."""
import signal

import pytest

import wasm_modules


def run_hello(mimobox, backend):
    """Runs a program printing a known line on each stream and exiting 7,
    on the given backend; returns (sandbox-independent) result."""
    with mimobox.Sandbox(isolation=backend, timeout=20) as sb:
        assert sb.isolation == backend
        if backend == "wasm":
            sb.write_file("hello.wat", wasm_modules.HELLO)
            return sb.execute("/workspace/hello.wat")
        return sb.execute(["sh", "-c", "echo hello from $0; echo to stderr >&2; exit 7", backend])


def test_output_and_exit_code_on_each_backend(mimobox, backend):
    r = run_hello(mimobox, backend)
    assert r.stdout == "hello from %s\n" % backend
    assert r.stderr == "to stderr\n"
    assert r.stdout_bytes == r.stdout.encode()
    assert r.exit_code == 7 and r.signal is None and not r.timed_out and not r.ok
    assert r.isolation == backend
    assert r.elapsed_ms > 0


def test_files_persist_across_executes(sb):
    sb.execute(["sh", "-c", "echo kept > /workspace/state"])
    assert sb.execute("cat /workspace/state").stdout == "kept\n"
    assert sb.execute("cat state").stdout == "kept\n"  # the working directory is /workspace


def test_string_command_is_split_but_has_no_shell(sb):
    r = sb.execute("""printf '%s|' 'a b' "c d" e\\ f""")
    assert r.ok and r.stdout == "a b|c d|e f|"
    r = sb.execute("echo x | cat > out")
    assert r.stdout == "x | cat > out\n"
    with pytest.raises(ValueError):
        sb.execute("echo 'unterminated")


def test_list_command_is_argv(sb):
    r = sb.execute(["printf", "%s\\n", "$HOME", "*"])
    assert r.stdout == "$HOME\n*\n"


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_codes(sb, code):
    r = sb.execute(["sh", "-c", "exit %d" % code])
    assert r.exit_code == code and r.signal is None and r.ok == (code == 0)


def test_killed_by_signal(sb):
    r = sb.execute(["sh", "-c", "kill -SEGV $$"])
    assert r.exit_code is None and r.signal == signal.SIGSEGV and not r.ok


def test_timeout_kills_the_tree_and_keeps_output(sb):
    r = sb.execute(["sh", "-c", "echo started; (sleep 100 &); sleep 100"], timeout=0.5)
    assert r.timed_out and not r.ok and r.exit_code is None
    assert r.stdout == "started\n"
    # Nothing of that execute survives into the next one.
    assert "sleep" not in sb.execute(["ps", "-eo", "comm"]).stdout


def test_timeout_on_wasm(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    with mimobox.Sandbox(isolation="wasm") as sb:
        sb.write_file("loop.wat", wasm_modules.LOOP)
        r = sb.execute(["/workspace/loop.wat"], timeout=0.3)
        assert r.timed_out and r.exit_code is None
        sb.write_file("trap.wat", wasm_modules.TRAP)
        r = sb.execute(["/workspace/trap.wat"])
        assert r.trap and "unreachable" in r.trap and r.exit_code is None and not r.timed_out


def test_sandbox_timeout_is_the_default(mimobox):
    with mimobox.Sandbox(isolation="os", timeout=0.4) as sb:
        assert sb.execute("sleep 5").timed_out
        assert not sb.execute("sleep 0.1", timeout=5).timed_out


def test_stdin_env_and_cwd(sb):
    r = sb.execute(["sh", "-c", "tr a-z A-Z; echo \"$GREETING\"; pwd"], stdin=b"hello\n",
                   env={"GREETING": "hi there"}, cwd="/tmp")
    assert r.stdout == "HELLO\nhi there\n/tmp\n"


def test_sandbox_env_and_workdir(mimobox):
    with mimobox.Sandbox(isolation="os", env={"A": "1"}, workdir="/tmp") as sb:
        assert sb.execute(["sh", "-c", "echo $A $B; pwd"], env={"B": "2"}).stdout == "1 2\n/tmp\n"


def test_binary_output_is_exact(sb):
    r = sb.execute(["sh", "-c", "printf '\\377\\000\\376'"])
    assert r.stdout_bytes == b"\xff\x00\xfe"
    assert r.stdout == "\ufffd\x00\ufffd"  # decoded with errors="replace"


@pytest.mark.parametrize("language,code,expected", [
    ("python3", "import sys\nprint(6 * 7)\nprint('err', file=sys.stderr)", ("42\n", "err\n")),
    ("python", "print('py')", ("py\n", "")),
    ("sh", "echo $((6 * 7)); echo err >&2", ("42\n", "err\n")),
    ("bash", "a=(x y); echo ${#a[@]}", ("2\n", "")),
])
def test_execute_code(sb, language, code, expected):
    r = sb.execute_code(code, language=language)
    assert (r.stdout, r.stderr) == expected and r.ok


def test_execute_code_defaults_to_python(sb):
    r = sb.execute_code("raise SystemExit(3)")
    assert r.exit_code == 3


def test_execute_code_unknown_language(sb, mimobox):
    with pytest.raises(mimobox.InvalidArgumentError) as e:
        sb.execute_code("x", language="cobol")
    assert e.value.code == "invalid_argument" and isinstance(e.value, ValueError)


def test_missing_program_is_not_found(sb, mimobox):
    with pytest.raises(FileNotFoundError) as e:
        sb.execute("no-such-program --flag")
    err = e.value
    assert isinstance(err, mimobox.SandboxNotFoundError) and isinstance(err, mimobox.SandboxError)
    assert err.code == "not_found" and "no-such-program" in err.message


def test_not_executable(sb, mimobox):
    sb.write_file("script", "#!/bin/sh\necho hi\n", mode=0o644)
    with pytest.raises(mimobox.NotExecutableError) as e:
        sb.execute("/workspace/script")
    assert e.value.code == "not_executable" and isinstance(e.value, PermissionError)


def test_output_limit_truncates(mimobox):
    with mimobox.Sandbox(isolation="os", output_limit=1000) as sb:
        r = sb.execute(["sh", "-c", "head -c 5000 /dev/zero; head -c 10 /dev/zero >&2"])
        assert r.stdout_truncated and len(r.stdout_bytes) == 1000
        assert not r.stderr_truncated and len(r.stderr_bytes) == 10


@pytest.mark.parametrize("kwargs,words", [
    ({"isolation": "vm"}, "isolation"),
    ({"trust": "maybe"}, "trust"),
    ({"network": "example.com"}, "network"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": 0}, "timeout"),
    ({"memory_mb": "lots"}, "memory_mb"),
    ({"env": {"LD_PRELOAD": "/x.so"}}, "LD_PRELOAD"),
    ({"cpus": -1}, "cpus"),
    ({"max_processes": 0}, ""),
    ({"mounts": ["nocolon"]}, "mount"),
])
def test_bad_configuration_is_a_value_error(mimobox, kwargs, words):
    with pytest.raises(ValueError) as e:
        mimobox.Sandbox(**kwargs)
    assert isinstance(e.value, mimobox.InvalidArgumentError)
    assert words in str(e.value)


def test_missing_mount_source_is_not_found(mimobox, host_tmp):
    with pytest.raises(FileNotFoundError):
        mimobox.Sandbox(mounts=[(host_tmp + "/absent", "/data")])


def test_mounts(mimobox, host_tmp):
    with open(host_tmp + "/in.txt", "w") as f:
        f.write("from host")
    with mimobox.Sandbox(isolation="os", mounts=[mimobox.Mount(host_tmp, "/data")]) as sb:
        assert sb.execute("cat /data/in.txt").stdout == "from host"
        assert sb.execute(["sh", "-c", "echo x > /data/new"]).exit_code != 0  # read-only by default


def test_closed_sandbox_is_a_state_error(mimobox):
    sb = mimobox.Sandbox(isolation="os")
    assert sb.is_ready()
    sb.wait_ready()
    sb.close()
    sb.close()  # idempotent
    assert not sb.is_ready()
    with pytest.raises(mimobox.SandboxStateError) as e:
        sb.execute("true")
    assert e.value.code == "bad_state"
    with pytest.raises(mimobox.SandboxStateError):
        sb.wait_ready()
    with pytest.raises(mimobox.SandboxStateError):
        sb.read_file("x")


def test_sandbox_reports_layers_and_id(sb):
    assert len(sb.id) == 16 and int(sb.id, 16) >= 0
    assert "seccomp" in sb.layers and "user-namespace" in sb.layers
    assert sb.skipped == {}
    assert sb.limits_mechanism in ("cgroup-v2", "cgroup-v1", "rlimit")
    r = sb.execute("true")
    assert set(r.layers) == set(sb.layers) and r.skipped == ()
    assert r.limits_mechanism == sb.limits_mechanism
    d = r.to_dict()
    assert d["ok"] is True and d["exit_code"] == 0 and d["isolation"] == "os"


def test_close_removes_the_state_directory(mimobox, guard):
    import os
    sb = mimobox.Sandbox(isolation="os")
    assert os.listdir(guard) != []
    sb.close()
    assert [e for e in os.listdir(guard) if e != "wasm-cache.key"] == []


def test_dropped_sandbox_is_freed(mimobox, guard):
    """A sandbox that is never closed is destroyed when garbage collected."""
    import gc
    import os
    sb = mimobox.Sandbox(isolation="os")
    sb.execute("true")
    del sb
    gc.collect()
    assert [e for e in os.listdir(guard) if e != "wasm-cache.key"] == []


def test_memory_limit_oom(mimobox):
    with mimobox.Sandbox(isolation="os", memory_mb=64) as sb:
        r = sb.execute_code("b = bytearray(512 << 20)\nprint('allocated')")
        assert not r.ok and "allocated" not in r.stdout
        assert r.oom_killed or "MemoryError" in r.stderr, r


def test_unavailable_layer_fails_closed_naming_it(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    with pytest.raises(mimobox.BackendUnavailableError) as e:
        mimobox.Sandbox(isolation="wasm", network="all")
    assert e.value.code == "unsupported" and e.value.layer == "network" and e.value.suggestion


def test_microvm_fails_closed_or_runs(mimobox):
    ok, why = mimobox.backend_available("microvm")
    if ok:
        # The probe answers with the backend's prerequisites (QEMU, verified
        # guest assets): whether the backend itself runs, only trying tells.
        try:
            with mimobox.Sandbox(isolation="microvm"):
                pass
            pytest.skip("the microVM backend runs here")
        except mimobox.BackendUnavailableError:
            pass
    with pytest.raises(mimobox.BackendUnavailableError) as e:
        mimobox.Sandbox(isolation="auto", trust="untrusted")
    assert e.value.code == "unsupported" and e.value.layer
