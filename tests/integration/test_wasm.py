# SPDX-License-Identifier: Apache-2.0
"""The wasm backend (Wasmtime, WASI preview 1) through the CLI and the
library: output, arguments, environment, exit codes, traps, the timeout, the
memory limit, the file system a module sees, the module cache and bad
inputs. The test modules are built from tests/wasm/ into
$MIMOBOX_HELPERS/wasm by meson (C with clang's wasm32-wasi target, WAT with
wat2wasm; the .wat files also run as they are)."""
import ctypes
import glob
import os
import struct
import threading
import time

import pytest

from conftest import HELPERS, must_work_skip

MODULES = os.path.join(HELPERS, "wasm")


def mod(name):
    return os.path.join(MODULES, name)


@pytest.fixture(scope="module", autouse=True)
def wasm_ready(doctor):
    """Every test here needs the backend and the built modules."""
    if not doctor["backends"]["wasm"]["available"]:
        must_work_skip("the wasm backend is not available: %s" % doctor["backends"]["wasm"]["reason"])
    missing = [m for m in ("hello.wasm", "args.wasm", "loop.wat", "noop.wasm") if not os.path.exists(mod(m))]
    if missing:
        must_work_skip("test modules not built in %s: %s (clang-14 with wasm32-wasi, wabt)" % (MODULES, missing))


@pytest.fixture
def cache_dir(host_tmp):
    """A private module cache for one test."""
    return os.path.join(host_tmp, "wasm-cache")


def debug_lines(r):
    return [l for l in r.stderr.splitlines() if l.startswith("mimobox: debug: wasm: module")]


def test_doctor_reports_wasmtime(doctor):
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["wasmtime"]["status"] == "ok", checks["wasmtime"]
    assert "Wasmtime 50." in checks["wasmtime"]["detail"], checks["wasmtime"]
    assert doctor["backends"]["wasm"]["available"] is True


def test_hello(cli):
    r, j = cli.json("--", mod("hello.wasm"))
    assert r.rc == 0, r
    assert j["isolation"] == "wasm"
    assert j["exit_code"] == 0 and j["signal"] == 0 and j["trap"] is None and not j["timed_out"]
    assert j["stdout"] == "hello from wasm\n"
    assert j["stderr"] == "a line on stderr\n"


def test_hello_streamed(cli):
    r = cli.run("--", mod("hello.wasm"))
    assert r.rc == 0, r
    assert r.stdout == b"hello from wasm\n"
    assert "a line on stderr" in r.stderr


def test_wat_text_runs(cli):
    r, j = cli.json("--", mod("noop.wat"))
    assert r.rc == 0 and j["exit_code"] == 0, r


def test_args_and_env(cli):
    r, j = cli.json("--env", "GREETING=hi there", "--", mod("args.wasm"), "one", "two words", "GREETING", "HOME",
                    "MBX_HOST_SECRET", env={"MBX_HOST_SECRET": "leak"})
    assert r.rc == 0, r
    lines = j["stdout"].splitlines()
    assert lines[:6] == ["argv[0]=args.wasm", "argv[1]=one", "argv[2]=two words", "argv[3]=GREETING",
                         "argv[4]=HOME", "argv[5]=MBX_HOST_SECRET"], lines
    assert "env GREETING=hi there" in lines
    assert "env HOME=/workspace" in lines
    # Nothing is inherited from the host.
    assert not any(l.startswith("env MBX_HOST_SECRET") for l in lines), lines


def test_stdin_is_empty(cli):
    # As in the os backend, a payload reads an empty stdin (like /dev/null)
    # whatever the CLI's own stdin holds.
    r, j = cli.json("--", mod("stdin.wasm"), stdin=b"not for the guest\n")
    assert r.rc == 0, r
    assert j["stdout"] == "" and j["stderr"] == "stdin: 0 bytes\n", j


@pytest.mark.parametrize("args,code", [(["0"], 0), (["7"], 7), (["125"], 125), (["return", "9"], 9),
                                       (["return", "0"], 0)])
def test_exit_codes(cli, args, code):
    r, j = cli.json("--", mod("exit.wasm"), *args)
    assert j["exit_code"] == code and j["trap"] is None, j
    assert r.rc == code, r
    r = cli.run("--", mod("exit.wasm"), *args)
    assert r.rc == code, r


def test_exit_status_out_of_range(cli):
    # WASI preview 1 in Wasmtime takes proc_exit statuses 0..125 only;
    # beyond them the guest fails, reported as a trap.
    r = cli(["run", "--json", "--", mod("exit.wasm"), "200"])
    assert r.rc == 134, r
    assert "invalid exit status" in r.json["trap"], r


@pytest.mark.parametrize("name,words", [("unreachable.wat", ["unreachable"]), ("unreachable.wasm", ["unreachable"]),
                                        ("oob.wasm", ["out of bounds"])])
def test_traps_are_results(cli, name, words):
    r = cli(["run", "--json", "--", mod(name)])
    assert r.rc == 134, r
    j = r.json
    assert j["ok"] is True and j["exit_code"] is None and j["signal"] == 0 and not j["timed_out"], j
    for w in words:
        assert w in j["trap"], j
    assert "\n" not in j["trap"]


def test_endless_loop_times_out(cli):
    r = cli(["run", "--json", "--timeout", "0.3", "--", mod("loop.wat")], timeout=30)
    assert r.rc == 124, r
    j = r.json
    assert j["timed_out"] is True and j["exit_code"] is None and j["trap"] is None, j
    # The epoch ticker stops it within a tick or two of the deadline; the
    # margin here is for a loaded machine and sanitizer builds (the module
    # is compiled inside the measured time too).
    assert 300 <= j["elapsed_ms"] < 300 + 150, j
    assert r.wall < 10, r


def test_timeout_applies_to_each_execute(lib, guard):
    ws = WasmSandbox(lib, guard)
    try:
        rc, res = ws.exec([mod("loop.wat")], timeout_ms=200)
        assert rc == 0 and res["timed_out"], res
        rc, res = ws.exec([mod("hello.wasm")])
        assert rc == 0 and res["exit_code"] == 0 and res["stdout"] == b"hello from wasm\n", res
    finally:
        ws.close()


def test_memory_limit_malloc(cli):
    # 32 MiB for the sandbox: malloc fails cleanly before 32 blocks of 1 MiB.
    r, j = cli.json("--memory", "32", "--", mod("grow.wasm"), "200")
    assert j["exit_code"] == 3, j
    got = int(j["stdout"].split()[1])
    assert 8 <= got < 32, j
    assert r.rc == 3
    # With room, the same program gets what it asks for.
    r, j = cli.json("--memory", "512", "--", mod("grow.wasm"), "200")
    assert j["exit_code"] == 0 and j["stdout"].startswith("allocated 200 MiB"), j


def test_memory_limit_memory_grow(cli):
    r = cli(["run", "--memory", "16", "--", mod("growmem.wasm")])
    assert r.rc == 3, r
    pages, = struct.unpack("<I", r.stdout)
    assert pages + 1 == 16 * 16, pages  # 16 MiB of 64 KiB pages, the first one included


def test_initial_memory_over_the_limit(cli):
    r = cli(["run", "--json", "--memory", "16", "--", mod("bigmem.wat")])
    assert r.rc == 125, r
    j = r.json
    assert j["error"]["code"] == "too_large" and j["error"]["layer"] == "wasm", j
    assert "memory" in j["error"]["message"] and "--memory" in j["error"]["suggestion"], j
    r, j = cli.json("--memory", "128", "--", mod("bigmem.wat"))
    assert j["exit_code"] == 0, j


def test_filesystem_is_only_the_workspace(cli):
    r, j = cli.json("--", mod("files.wasm"), "/workspace/rel.txt")
    assert r.rc == 0, r
    out = dict(l.split(": ", 1) for l in j["stdout"].splitlines())
    for path in ("/etc/passwd", "/proc/self/status", "/workspace/../lock", "../lock",
                 "/workspace/../../../../etc/passwd"):
        assert out["open " + path].startswith("errno"), (path, out)
    assert out["write /workspace/out.txt"] == "ok"
    # Relative paths are in the workspace too.
    assert out["write rel.txt"] == "ok"
    assert out["read /workspace/rel.txt"] == "relative"


def test_workspace_persists_and_hosts_modules(lib, guard):
    """A module path below /workspace runs from the sandbox's workspace; the
    workspace lives as long as the sandbox; `..` cannot leave it."""
    ws = WasmSandbox(lib, guard)
    try:
        wat = '(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32))) ' \
              '(memory (export "memory") 1) (func (export "_start") (call $e (i32.const 42))))'
        rc, res = ws.exec([mod("files.wasm"), "write", "/workspace/made.wat", wat])
        assert rc == 0 and res["exit_code"] == 0, res
        rc, res = ws.exec(["/workspace/made.wat"])
        assert rc == 0 and res["exit_code"] == 42, res
        rc, res = ws.exec(["/workspace/../lock"])
        assert rc != 0 and ("outside" in res or "not found" in res), res
        rc, res = ws.exec(["/workspace/missing.wasm"])
        assert rc == -9, res  # MBX_ENOTFOUND
    finally:
        ws.close()


def test_workspace_made_on_first_use(lib, guard):
    """A wasm sandbox's host directory appears when something can use its
    workspace: a module that cannot name a path runs without it and sees no
    preopened descriptor; a module that can reach files makes it (and
    writes there), after which every module gets the preopen; the sandbox
    removes it."""
    import mbx

    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    sbdir = os.path.join(guard.state_dir, sb.id)
    try:
        r = sb.exec([mod("hello.wasm")])
        assert r.exit_code == 0 and r.stdout.startswith(b"hello"), r
        r = sb.exec([mod("fdprobe.wat")])
        assert r.exit_code == 8, r  # WASI EBADF: nothing preopened
        assert not os.path.exists(sbdir), os.listdir(guard.state_dir)
        r = sb.exec([mod("files.wasm"), "write", "/workspace/a.txt", "from the guest"])
        assert r.exit_code == 0, r
        with open(os.path.join(sbdir, "workspace", "a.txt"), "rb") as f:
            assert f.read() == b"from the guest"
        r = sb.exec([mod("fdprobe.wat")])
        assert r.exit_code == 0, r  # the workspace is preopened now
    finally:
        sb.close()
    assert not os.path.exists(sbdir)
    # A module that only asks for its preopens reaches files too.
    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    sbdir = os.path.join(guard.state_dir, sb.id)
    try:
        r = sb.exec([mod("prestat.wat")])
        assert r.exit_code == 0, r
        assert os.path.isdir(os.path.join(sbdir, "workspace"))
    finally:
        sb.close()
    assert not os.path.exists(sbdir)


def test_changed_module_file_runs_anew(lib, guard, host_tmp):
    """An unchanged module file is neither read nor hashed again while its
    module is ready in the process (known by device, inode, size, mtime and
    ctime, once its ctime is a second old). Any change to the file runs the
    new content, even one that keeps its size and puts its mtime back: the
    ctime, which nobody can set, tells it apart."""
    import mbx

    def text(code):
        return ('(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32))) '
                '(memory (export "memory") 1) (func (export "_start") (call $e (i32.const %d))))' % code)

    path = os.path.join(host_tmp, "m.wat")

    def rewrite(code):
        with open(path, "r+") as f:  # in place: same inode, same size
            f.write(text(code))

    with open(path, "w") as f:
        f.write(text(3))
    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    try:
        time.sleep(1.2)  # let the ctime settle, so the file gets known
        assert sb.exec([path]).exit_code == 3
        assert sb.exec([path]).exit_code == 3
        rewrite(4)
        assert sb.exec([path]).exit_code == 4
        time.sleep(1.2)
        assert sb.exec([path]).exit_code == 4  # known again, as it is now
        st = os.stat(path)
        rewrite(5)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime back: only the ctime differs
        assert os.stat(path).st_size == st.st_size
        assert sb.exec([path]).exit_code == 5
    finally:
        sb.close()


def test_output_limit(cli):
    r, j = cli.json("--output-limit", "5", "--", mod("hello.wasm"))
    assert j["stdout"] == "hello" and j["stdout_truncated"] is True, j
    assert j["stderr"] == "a lin" and j["stderr_truncated"] is True, j
    assert j["exit_code"] == 0


def test_cache_miss_hit_and_corruption(cli, cache_dir):
    env = {"MIMOBOX_WASM_CACHE_DIR": cache_dir, "MIMOBOX_LOG": "debug"}
    r = cli.run("--", mod("args.wasm"), "x", env=env)
    assert r.rc == 0, r
    assert "(compiled)" in debug_lines(r)[0], r
    entries = glob.glob(os.path.join(cache_dir, "*.cwasm"))
    assert len(entries) == 1, entries
    assert os.stat(cache_dir).st_mode & 0o777 == 0o700
    assert os.stat(entries[0]).st_mode & 0o777 == 0o600

    r = cli.run("--", mod("args.wasm"), "x", env=env)
    assert r.rc == 0 and "(disk)" in debug_lines(r)[0], r

    # A flipped bit in the compiled code: refused before Wasmtime sees it,
    # recompiled, and the entry written anew.
    with open(entries[0], "r+b") as f:
        f.seek(os.path.getsize(entries[0]) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x01]))
    r = cli.run("--", mod("args.wasm"), "x", env=env)
    assert r.rc == 0 and r.stdout.startswith(b"argv[0]=args.wasm"), r
    assert "failed verification (MAC mismatch" in r.stderr, r
    assert "(compiled)" in debug_lines(r)[0], r
    r = cli.run("--", mod("args.wasm"), "x", env=env)
    assert "(disk)" in debug_lines(r)[0], r

    # Garbage under the entry's name, and a truncated entry.
    with open(entries[0], "wb") as f:
        f.write(b"\x7fELF not a cache entry")
    r = cli.run("--", mod("args.wasm"), "x", env=env)
    assert r.rc == 0 and "failed verification" in r.stderr and "(compiled)" in debug_lines(r)[0], r
    os.truncate(entries[0], 100)
    r = cli.run("--", mod("args.wasm"), "x", env=env)
    assert r.rc == 0 and "failed verification" in r.stderr and "(compiled)" in debug_lines(r)[0], r


def test_cache_keyed_by_content(cli, cache_dir, host_tmp):
    env = {"MIMOBOX_WASM_CACHE_DIR": cache_dir, "MIMOBOX_LOG": "debug"}
    # The same bytes under another name hit; other bytes miss.
    copy = os.path.join(host_tmp, "renamed.wasm")
    with open(mod("noop.wasm"), "rb") as f, open(copy, "wb") as g:
        g.write(f.read())
    assert "(compiled)" in debug_lines(cli.run("--", mod("noop.wasm"), env=env))[0]
    assert "(disk)" in debug_lines(cli.run("--", copy, env=env))[0]
    assert "(compiled)" in debug_lines(cli.run("--", mod("hello.wasm"), env=env))[0]
    assert len(glob.glob(os.path.join(cache_dir, "*.cwasm"))) == 2


def test_parallel_cli_runs(cli, cache_dir):
    env = {"MIMOBOX_WASM_CACHE_DIR": cache_dir}
    results = [None] * 12

    def one(i):
        results[i] = cli(["run", "--json", "--", mod("args.wasm"), "run%d" % i], env=env)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in enumerate(results):
        assert r.rc == 0, r
        assert r.json["stdout"].splitlines()[1] == "argv[1]=run%d" % i, r


def test_parallel_threads_in_one_process(lib, guard):
    """Several threads, each with its own wasm sandbox, on one engine."""
    errors = []

    def worker(n):
        try:
            ws = WasmSandbox(lib, guard)
            try:
                for k in range(8):
                    rc, res = ws.exec([mod("args.wasm"), "t%d-%d" % (n, k)])
                    if rc != 0 or res["stdout"].splitlines()[1] != b"argv[1]=t%d-%d" % (n, k):
                        errors.append((n, k, rc, res))
                rc, res = ws.exec([mod("unreachable.wat")])
                if rc != 0 or res["trap"] is None:
                    errors.append((n, "trap", rc, res))
            finally:
                ws.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((n, repr(e)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_auto_routes_untrusted_to_microvm(cli, doctor):
    # Untrusted code goes to a microVM whatever it is, never to a weaker
    # backend: there the module's host path is not in the guest; without
    # the microvm backend the run fails closed, naming it.
    r = cli(["run", "--json", "--trust", "untrusted", "--", mod("hello.wasm")])
    if doctor["backends"]["microvm"]["available"]:
        assert r.rc == 127 and "not found in the sandbox" in r.out, r
    elif "guest assets" in r.out:
        # Not built here: the error says where they belong and how to make them.
        assert r.rc == 127 and "microvm" in r.out and "mimobox setup vm" in r.out, r
    else:
        assert r.rc == 125 and "microvm" in r.out, r


def test_explicit_isolation(cli):
    r, j = cli.json("--isolation", "wasm", "--", mod("hello.wasm"))
    assert j["isolation"] == "wasm" and j["exit_code"] == 0


@pytest.mark.parametrize("name,content,status,words", [
    ("missing.wasm", None, 127, ["not found"]),
    ("garbage.wasm", b"this is not a module\n", 126, ["not a WebAssembly module"]),
    ("truncated.wasm", b"\0asm\x01\0\0\0\x01\x05", 126, ["compile"]),
    ("component.wasm", b"\0asm\x0d\0\x01\0", 126, ["component"]),
    ("broken.wat", b"(module (func (export \"_start\") (i32.add)))", 126, ["module"]),
    ("nostart.wat", "copy", 126, ["_start"]),
    ("badimport.wat", "copy", 126, ["launch_missiles", "not provide"]),
    ("adir.wasm", "dir", 126, ["not a regular file"]),
])
def test_bad_inputs(cli, host_tmp, name, content, status, words):
    path = os.path.join(host_tmp, name)
    if content == "copy":
        path = mod(name)
    elif content == "dir":
        os.mkdir(path)
    elif content is not None:
        with open(path, "wb") as f:
            f.write(content)
    r = cli(["run", "--json", "--", path])
    assert r.rc == status, r
    j = r.json
    assert j["ok"] is False, j
    assert j["error"]["layer"] == "wasm", j
    for w in words:
        assert w in j["error"]["message"], j


# ---------------------------------------------------------------------------
# A wasm sandbox through the library (ctypes), for what the one-shot CLI
# cannot show: several executes in one sandbox, several threads.


class WasmSandbox:
    def __init__(self, lib, guard):
        self.l = lib.lib
        declare(self.l)
        cfg = ctypes.c_void_p()
        assert self.l.mbx_config_new(ctypes.byref(cfg), None) == 0
        assert self.l.mbx_config_set_isolation(cfg, 2, None) == 0  # MBX_ISOLATION_WASM
        self.sb = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = self.l.mbx_sandbox_new(ctypes.byref(self.sb), cfg, ctypes.byref(err))
        self.l.mbx_config_free(cfg)
        assert rc == 0, lib.take_error(err)
        guard.ids.add(self.l.mbx_sandbox_id(self.sb).decode())
        self.lib = lib

    def exec(self, argv, timeout_ms=None):
        """(status, dict of the result) or (status, error message)."""
        args = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        opts = ctypes.c_void_p()
        if timeout_ms:
            assert self.l.mbx_exec_options_new(ctypes.byref(opts), None) == 0
            assert self.l.mbx_exec_options_set_timeout_ms(opts, timeout_ms, None) == 0
        res = ctypes.c_void_p()
        err = ctypes.c_void_p()
        rc = self.l.mbx_sandbox_exec(self.sb, args, opts, ctypes.byref(res), ctypes.byref(err))
        self.l.mbx_exec_options_free(opts)
        if rc != 0:
            return rc, self.lib.take_error(err)[1]
        n = ctypes.c_size_t(0)
        p = self.l.mbx_result_stdout(res, ctypes.byref(n))
        out = ctypes.string_at(p, n.value) if n.value else b""
        trap = self.l.mbx_result_trap(res)
        d = {"exit_code": self.l.mbx_result_exit_code(res), "timed_out": bool(self.l.mbx_result_timed_out(res)),
             "trap": trap.decode() if trap else None, "stdout": out}
        self.l.mbx_result_free(res)
        return rc, d

    def close(self):
        self.l.mbx_sandbox_free(self.sb)


def declare(l):
    vp, pvp = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)
    for name, restype, argtypes in (
            ("mbx_config_new", ctypes.c_int, [pvp, pvp]),
            ("mbx_config_free", None, [vp]),
            ("mbx_config_set_isolation", ctypes.c_int, [vp, ctypes.c_uint8, pvp]),
            ("mbx_exec_options_new", ctypes.c_int, [pvp, pvp]),
            ("mbx_exec_options_free", None, [vp]),
            ("mbx_exec_options_set_timeout_ms", ctypes.c_int, [vp, ctypes.c_uint64, pvp]),
            ("mbx_result_trap", ctypes.c_char_p, [vp])):
        fn = getattr(l, name)
        fn.restype = restype
        fn.argtypes = argtypes


def test_stdin_data_reaches_the_guest(lib, guard):
    # Execute options carry stdin bytes to the guest, as to an os payload.
    import mbx

    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    try:
        data = b"to the guest\n" * 1000
        r = sb.exec([mod("stdin.wasm")], stdin=data)
        assert r.exit_code == 0 and r.stdout == data, r
        assert r.stderr == b"stdin: %d bytes\n" % len(data), r
    finally:
        sb.close()


def test_file_api_on_the_workspace(lib, guard):
    # The file API of a wasm sandbox works on its /workspace, the guest's
    # only directory, and nothing outside it can be named.
    import mbx

    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    try:
        sb.mkdir("in", parents=True)
        sb.write_file("/workspace/in/data.txt", b"from the host")
        r = sb.exec([mod("files.wasm"), "write", "/workspace/out.txt", "from the guest"])
        assert r.exit_code == 0, r
        assert sb.read_file("out.txt") == b"from the guest"
        names = [e[0] for e in sb.list_dir("/workspace")]
        assert "in" in names and "out.txt" in names, names
        st = sb.stat("in/data.txt")
        assert st["type"] == mbx.MBX_FILE_REGULAR and st["size"] == 13, st
        for bad in ("/etc/passwd", "../../etc/passwd", "in/../../../lock", "/proc/self/status"):
            with pytest.raises(mbx.MbxError) as e:
                sb.read_file(bad)
            assert e.value.code == mbx.MBX_ENOTFOUND, (bad, e.value)
        sb.rename("out.txt", "in/moved.txt")
        sb.remove("in", recursive=True)
        assert sb.list_dir(".") == []
    finally:
        sb.close()


def test_disk_limit_is_refused_not_ignored(cli):
    # The Wasm workspace is a host directory without a quota: an explicit
    # --disk is an error naming the layer, unless degradation is allowed,
    # and the result says the disk is not bounded.
    r = cli(["run", "--disk", "16", "--", mod("noop.wat")])
    assert r.rc == 125 and "disk limit" in r.stderr and "Wasm" in r.stderr, r
    r, j = cli.json("--disk", "16", "--allow-degraded", "--", mod("noop.wat"))
    assert j["exit_code"] == 0 and j["limits"] == "wasm", j
    assert "without a disk quota" in j["limits_partial"], j
    assert "partly enforced" in r.stderr, r
    # Without --disk: no error, no warning.
    r, j = cli.json("--", mod("noop.wat"))
    assert j["exit_code"] == 0 and "partly enforced" not in r.stderr, r


def test_file_api_never_blocks_on_a_fifo(lib, guard):
    # The host serves a wasm sandbox's files itself: a FIFO in the workspace
    # (made here from the host: the workspace is a host directory) is
    # refused at once instead of holding the calling thread.
    import mbx

    sb = mbx.Sandbox(lib, isolation=2)
    guard.ids.add(sb.id)
    try:
        # The workspace is made on first use: the file API makes it here.
        assert sb.list_dir("/workspace") == []
        workspace = os.path.join(guard.state_dir, sb.id, "workspace")
        os.mkfifo(os.path.join(workspace, "pipe"))
        start = time.monotonic()
        with pytest.raises(mbx.MbxError) as e:
            sb.read_file("pipe")
        assert e.value.code == mbx.MBX_EINVAL and "not a regular file" in e.value.message, e.value
        with pytest.raises(mbx.MbxError) as e:
            sb.write_file("pipe", b"x", flags=1)  # MBX_WRITE_APPEND
        assert e.value.code == mbx.MBX_EINVAL and "not a regular file" in e.value.message, e.value
        assert time.monotonic() - start < 5
        sb.write_file("ok.txt", b"fine")
        assert sb.read_file("ok.txt") == b"fine"
    finally:
        sb.close()
