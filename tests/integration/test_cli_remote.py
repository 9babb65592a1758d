# SPDX-License-Identifier: Apache-2.0
"""The CLI through a running `mimobox serve` (docs/cli.md, "Through a
server"): which server it picks (MIMOBOX_HOST, MIMOBOX_TOKEN, the default
socket), and a chosen set of the CLI's own tests run again with a server on
the default socket, so that the same words give the same results on both
paths.
"""
import base64
import functools
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import termios
import threading

import pytest

import test_basics
import test_cli_life
import test_cli_misc
import test_cli_run_interactive
import test_cli_sessions
import test_limits
import test_snapshot
from conftest import host_env, procs_with_arg, unique_sleep_arg
from test_cli_sessions import wait_until
from test_serve import Server, _free_port


def default_socket(guard):
    return os.path.join(guard.state_dir, "serve.sock")


@pytest.fixture
def served(guard, host_tmp):
    """A server on the default socket of the test's state directory: every
    CLI command of the test goes through it."""
    s = Server(guard, host_tmp, args=[], socket_path=default_socket(guard)).start()
    yield s
    # What a test left on the server goes with it; the guard then checks
    # that nothing remains.
    s.stop()


# ---------------------------------------------------------------------------
# The same tests on the server path

SHARED = [
    (test_basics, "test_echo_round_trip"),
    (test_basics, "test_stderr_is_kept_apart"),
    (test_basics, "test_exit_codes"),
    (test_basics, "test_killed_by_signal"),
    (test_cli_misc, "test_env_values_arrive"),
    (test_cli_misc, "test_workdir"),
    (test_cli_misc, "test_payload_does_not_read_the_callers_stdin"),
    (test_cli_misc, "test_binary_output_also_comes_as_base64"),
    (test_cli_sessions, "test_exec_exit_statuses"),
    (test_cli_sessions, "test_exec_options"),
    (test_cli_sessions, "test_exec_state_persists_between_execs"),
    (test_cli_sessions, "test_exec_streams"),
    (test_cli_sessions, "test_duplicate_name_is_refused"),
    (test_cli_sessions, "test_file_errors"),
    (test_cli_sessions, "test_file_errors_json"),
    (test_cli_sessions, "test_ls_and_stat"),
    (test_cli_sessions, "test_ls_and_stat_show_symlink_targets"),
    (test_cli_sessions, "test_mkdir_and_write_parents"),
    (test_cli_sessions, "test_rm_path"),
    (test_cli_sessions, "test_rm_force_and_json"),
    (test_cli_sessions, "test_cp_recursive_refusals"),
    (test_cli_sessions, "test_cp_recursive_both_ways"),
    (test_cli_sessions, "test_create_takes_run_options"),
    (test_cli_sessions, "test_output_limit"),
    (test_limits, "test_fork_loop_bounded_by_max_procs"),
    (test_limits, "test_shell_fork_loop_bounded_by_max_procs"),
    (test_limits, "test_output_limit_option"),
    (test_limits, "test_output_limit_applies_to_stderr"),
    (test_limits, "test_streamed_truncation_is_reported"),
    (test_cli_life, "test_background_output_never_blocks_and_is_bounded"),
    (test_cli_life, "test_logs_follow"),
    (test_cli_life, "test_kill_with_a_signal"),
    (test_cli_life, "test_kill_the_program_of_a_running_exec"),
    (test_cli_life, "test_logs_and_kill_errors"),
    (test_cli_life, "test_new_verbs_on_unknown_or_bad_sandbox"),
    (test_snapshot, "test_cli_restore_refuses_a_bad_file"),
    (test_snapshot, "test_cli_fork_count_stops_at_a_taken_name"),
    # Terminals: the CLI on a pseudo-terminal of the test's, through the server's WebSocket.
    (test_cli_sessions, "test_shell_on_a_terminal"),
    (test_cli_sessions, "test_exec_tty"),
    (test_cli_sessions, "test_shell_program_and_no_timeout"),
    (test_cli_sessions, "test_shell_killed_terminal_kills_the_shell"),
    (test_cli_sessions, "test_shell_without_a_terminal"),
    (test_cli_run_interactive, "test_run_t_on_a_terminal"),
    (test_cli_run_interactive, "test_run_t_ctrl_c_reaches_the_program"),
    (test_cli_run_interactive, "test_run_t_timeout_and_signal_restore_the_terminal"),
]


def _through_server(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return pytest.mark.usefixtures("served")(wrapper)


# The fixtures the shared tests use (`named`) are those of their modules.
named = test_cli_sessions.named
for _mod, _name in SHARED:
    globals()[_name + "_through_server"] = _through_server(getattr(_mod, _name))


# The verbs of test_cli_sessions.py on a name, those that go through a server.
REMOTE_VERBS_ON_NAME = list(test_cli_sessions.VERBS_ON_NAME)


@pytest.mark.parametrize("words", REMOTE_VERBS_ON_NAME, ids=lambda w: w[0])
def test_unknown_sandbox_through_server(cli, served, words):
    test_cli_sessions.test_unknown_sandbox(cli, words)


@pytest.mark.parametrize("words", [w for w in REMOTE_VERBS_ON_NAME if w[0] != "cp"], ids=lambda w: w[0])
def test_bad_sandbox_name_through_server(cli, served, words):
    test_cli_sessions.test_bad_sandbox_name(cli, words)


# ---------------------------------------------------------------------------
# Which server


def made_locally(r):
    """Whether the CLI made a sandbox itself: its log names each one."""
    return bool(r.ids)


def test_default_socket_is_used(cli, served):
    before = served.metric("executes_total")
    r = cli(["run", "--json", "--", "sh", "-c", "echo via; exit 4"])
    assert r.rc == 4 and r.json["stdout"] == "via\n", r
    assert not made_locally(r), "the CLI made its own sandbox beside a running server: %s" % r.log
    assert served.metric("executes_total") == before + 1


def test_local_ignores_a_running_server(cli, served):
    before = served.metric("executes_total")
    r = cli(["run", "--json", "--", "true"], env={"MIMOBOX_HOST": "local"})
    assert r.rc == 0 and made_locally(r), r
    assert served.metric("executes_total") == before


def test_stale_default_socket_is_ignored(cli, guard):
    path = default_socket(guard)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)	# bound, never listening: what a crashed server leaves
    s.close()
    try:
        r = cli(["run", "--", "echo", "local"])
        assert r.rc == 0 and r.stdout == b"local\n" and made_locally(r), r
    finally:
        os.unlink(path)


def test_explicit_host_that_does_not_answer_is_an_error(cli, host_tmp):
    path = os.path.join(host_tmp, "nobody.sock")
    for host in ("unix:" + path, "http://127.0.0.1:%d" % _free_port()):
        r = cli(["run", "--", "true"], env={"MIMOBOX_HOST": host, "MIMOBOX_TOKEN": "x" * 32})
        assert r.rc == 125 and "cannot reach the mimobox server" in r.stderr, r
        assert host.split("://")[-1].split(":")[-1] in r.stderr and "MIMOBOX_HOST=local" in r.stderr, r
        assert not made_locally(r), "an explicit MIMOBOX_HOST fell back to local sandboxes"
    r = cli(["ps", "--json"], env={"MIMOBOX_HOST": "unix:" + path})
    assert r.rc == 125 and r.json["ok"] is False and "cannot reach" in r.json["error"]["message"], r


@pytest.mark.parametrize("host,words", [
    ("tcp://127.0.0.1:1", "not understood"),
    ("unix:relative.sock", "absolute PATH"),
    ("http://127.0.0.1", "expected http://ADDR:PORT"),
    ("http://127.0.0.1:8700", "MIMOBOX_TOKEN is not set"),
])
def test_bad_host(cli, host, words):
    env = {"MIMOBOX_HOST": host, "MIMOBOX_TOKEN": ""}
    r = cli(["run", "--", "true"], env=env)
    assert r.rc == 125 and words in r.stderr and not made_locally(r), r


def test_tcp_with_and_without_the_right_token(cli, guard, host_tmp):
    token_file = os.path.join(host_tmp, "token")
    port = _free_port()
    s = Server(guard, host_tmp, args=["--listen", "127.0.0.1:%d" % port, "--token-file", token_file]).start()
    try:
        with open(token_file) as f:
            token = f.read().strip()
        host = "http://127.0.0.1:%d" % port
        r = cli(["run", "--", "sh", "-c", "echo tcp"], env={"MIMOBOX_HOST": host, "MIMOBOX_TOKEN": token})
        assert r.rc == 0 and r.stdout == b"tcp\n" and not made_locally(r), r
        r = cli(["run", "--", "true"], env={"MIMOBOX_HOST": host, "MIMOBOX_TOKEN": "0" * 64})
        assert r.rc == 125 and "refused the token" in r.stderr and not made_locally(r), r
        r = cli(["run", "--", "true"], env={"MIMOBOX_HOST": host})
        assert r.rc == 125 and "MIMOBOX_TOKEN is not set" in r.stderr, r
        assert token not in r.stderr
    finally:
        s.stop()


def test_explicit_unix_host(cli, guard, host_tmp):
    s = Server(guard, host_tmp).start()	# --socket elsewhere than the default
    try:
        r = cli(["run", "--json", "--", "echo", "x"], env={"MIMOBOX_HOST": "unix:" + s.socket})
        assert r.rc == 0 and r.json["stdout"] == "x\n" and not made_locally(r), r
    finally:
        s.stop()


# ---------------------------------------------------------------------------
# What the API does not offer: an error naming it, never ignored


@pytest.mark.parametrize("words,named_flag", [
    (["run", "--mount", "/tmp:/mnt", "--", "true"], "--mount"),
    (["run", "--network", "all", "--", "true"], "--network all"),
    (["run", "--add-host", "a.invalid:127.0.0.1", "--", "true"], "--add-host"),
    (["run", "--command", "echo x"], "run --command"),
    (["exec", "x", "-t", "--audit", "--", "true"], "exec -t --audit"),
])
def test_unavailable_through_the_server(cli, served, words, named_flag):
    r = cli(words)
    assert r.rc == 125 and named_flag in r.stderr and "MIMOBOX_HOST=local" in r.stderr, r
    assert not made_locally(r)


def test_disk_limit_through_the_server(cli, served):
    """--disk reaches the server as disk_mb: the limit holds in the sandbox, as locally."""
    r = cli(["run", "--disk", "4", "--json", "--", "sh", "-c", "head -c 8388608 /dev/zero > /workspace/big"])
    assert r.rc != 0 and "No space left on device" in r.json["stderr"], r
    assert cli(["create", "--disk", "64", "--name", "d"]).rc == 0
    assert cli(["inspect", "d", "--json"]).json["disk_mb"] == 64
    assert cli(["rm", "d"]).rc == 0


def test_limits_and_hostname_through_the_server(cli, served, limits_mech):
    """--cpu, --max-procs, --hostname and --output-limit reach the server as
    cpus, max_procs, hostname and output_limit: the sandbox has them."""
    assert cli(["create", "--name", "lim", "--max-procs", "12", "--hostname", "lim-box",
                "--output-limit", "100"]).rc == 0
    j = cli(["inspect", "lim", "--json"]).json
    assert (j["cpus"], j["max_procs"], j["hostname"], j["output_limit"]) == (None, 12, "lim-box", 100), j
    r = cli(["create", "--name", "lim-cpu", "--cpu", "0.5"])
    if r.rc == 0:
        assert cli(["inspect", "lim-cpu", "--json"]).json["cpus"] == 0.5
        assert cli(["rm", "lim-cpu"]).rc == 0
    else:
        # Without a cgroup's CPU controller the limit cannot hold: refused
        # by the server's library, naming it, as locally (not by the CLI).
        assert limits_mech == "rlimit" and r.rc == 125 and "CPU limit" in r.stderr, r
    r = cli(["exec", "lim", "--", "hostname"])
    assert r.rc == 0 and r.stdout == b"lim-box\n", r
    assert cli(["rm", "lim"]).rc == 0
    r = cli(["run", "--hostname", "bad host", "--", "true"])
    assert r.rc == 125 and "host name" in r.stderr, r
    r = cli(["create", "stray-word"])
    assert r.rc == 125 and "unexpected argument `stray-word`" in r.stderr, r
    assert not made_locally(r)


def test_help_stays_local(cli, served):
    r = cli(["run", "--help"])
    assert r.rc == 0 and "Usage: mimobox run" in r.stdout.decode(), r


# ---------------------------------------------------------------------------
# Named sandboxes through the server


def test_named_sandbox_through_the_server(cli, served):
    r = cli(["create", "--name", "srv-box", "--env", "A=1", "--memory", "256M"])
    assert r.rc == 0 and r.out == "srv-box\n" and not made_locally(r), r
    ps = cli(["ps", "--json"])
    assert ps.rc == 0 and [s["name"] for s in ps.json["sandboxes"]] == ["srv-box"], ps
    e = ps.json["sandboxes"][0]
    assert e["isolation"] == "os" and e["state"] == "ready" and 0 <= e["age_s"] < 60 and e["ttl_s"] is None, e
    text = cli(["ps"])	# the columns of the local ps
    assert text.rc == 0 and re.search(r"^srv-box\s+os\s+\d+s\s+-\s+ready$", text.out, re.M), text
    assert not os.path.exists(os.path.join(served.guard.state_dir, "named")), "a local supervisor was started"
    r = cli(["inspect", "srv-box", "--json"])
    assert r.rc == 0 and r.json["ok"] is True and r.json["name"] == "srv-box" and r.json["memory_mb"] == 256, r
    data = bytes(range(256)) * 64
    r = cli(["write", "srv-box", "/workspace/blob"], stdin=data)
    assert r.rc == 0 and r.stdout == b"", r
    r = cli(["cat", "srv-box", "/workspace/blob"])
    assert r.rc == 0 and r.stdout == data, r.rc
    r = cli(["exec", "srv-box", "--", "sh", "-c", "echo $A; wc -c < /workspace/blob"])
    assert r.rc == 0 and r.stdout == b"1\n16384\n", r
    r = cli(["ls", "srv-box", "/workspace", "--json"])
    assert r.rc == 0 and [(e["name"], e["type"], e["size"]) for e in r.json["entries"]] == [("blob", "file", 16384)], r
    r = cli(["rm", "srv-box:/workspace/blob"])
    assert r.rc == 0, r
    assert cli(["ls", "srv-box", "--json"]).json["entries"] == []
    r = cli(["cat", "srv-box", "/workspace/blob"])
    assert r.rc == 1 and "blob" in r.stderr, r	# a refused file operation: 1, as locally
    r = cli(["rm", "srv-box"])
    assert r.rc == 0 and r.stderr == "", r
    r = cli(["rm", "srv-box"])
    assert r.rc == 125 and "srv-box" in r.stderr, r
    r = cli(["rm", "-f", "--json", "srv-box"])
    assert r.rc == 0 and r.json["absent"] == ["srv-box"], r
    assert cli(["ps", "--json"]).json["sandboxes"] == []


def test_run_stdin_through_the_server(cli, served):
    data = bytes(range(256)) * 1024
    r = cli(["run", "-i", "--", "cat"], stdin=data)
    assert r.rc == 0 and r.stdout == data, r.rc
    r = cli(["run", "-i", "--", "cat"], stdin=b"x" * (700 << 10))
    assert r.rc == 125 and "640 KiB" in r.stderr and "MIMOBOX_HOST=local" in r.stderr, r


def test_run_timeout_and_missing_program_through_the_server(cli, served):
    r = cli(["run", "--timeout", "0.3", "--", "sleep", "5"])
    assert r.rc == 124 and "timed out" in r.stderr, r
    r = cli(["run", "--", "no-such-program-xyz"])
    assert r.rc == 127 and "no-such-program-xyz" in r.stderr, r
    r = cli(["run", "--", "/etc/passwd"])
    assert r.rc == 126, r


def test_cp_files_through_the_server(cli, served, host_tmp):
    assert cli(["create", "--name", "cp-box"]).rc == 0
    src = os.path.join(host_tmp, "src.bin")
    data = os.urandom(200000)
    with open(src, "wb") as f:
        f.write(data)
    r = cli(["cp", src, "cp-box:/workspace"])	# into a directory: under its own name
    assert r.rc == 0, r
    back = os.path.join(host_tmp, "back.bin")
    r = cli(["cp", "cp-box:/workspace/src.bin", back])
    assert r.rc == 0, r
    with open(back, "rb") as f:
        assert f.read() == data
    r = cli(["cp", "-", "cp-box:/workspace/in.txt"], stdin=b"from stdin\n")
    assert r.rc == 0, r
    r = cli(["cp", "cp-box:in.txt", "-"])
    assert r.rc == 0 and r.stdout == b"from stdin\n", r
    assert cli(["rm", "cp-box"]).rc == 0


def test_cp_both_directions_through_the_server(cli, served, named, host_tmp):
    # The local test's (a file's mode kept), in a directory of its own (the server's log is in host_tmp).
    mine = os.path.join(host_tmp, "cp-both")
    os.mkdir(mine)
    test_cli_sessions.test_cp_both_directions(cli, named, mine)


def test_cp_errors_through_the_server(cli, served, named, host_tmp):
    # The local test's, in a directory of its own (the server's log is in host_tmp).
    mine = os.path.join(host_tmp, "cp-errors")
    os.mkdir(mine)
    test_cli_sessions.test_cp_errors(cli, named, mine)


def test_cp_recursive_links_replace_through_the_server(cli, served, host_tmp):
    """cp -r into a sandbox through the server (the shared tests check the
    tree, modes and links): a host symlink replaces a file or symlink of its
    name, never a directory, and is never followed."""
    assert cli(["create", "--name", "tree-box"]).rc == 0
    src = os.path.join(host_tmp, "src")
    os.makedirs(src)
    os.symlink("/etc/passwd", os.path.join(src, "was-file"))
    os.symlink("a/b", os.path.join(src, "was-link"))
    with open(os.path.join(src, "x"), "wb") as f:
        f.write(b"x")
    assert cli(["exec", "tree-box", "--", "sh", "-c", "mkdir -p /workspace/dst/src && cd /workspace/dst/src && "
                "echo old > was-file && ln -s old-target was-link"]).rc == 0
    r = cli(["cp", "-r", src, "tree-box:/workspace/dst", "--json"])
    assert r.rc == 0 and (r.json["files"], r.json["symlinks"]) == (1, 2), r
    ls = {e["name"]: e for e in cli(["ls", "tree-box", "dst/src", "--json"]).json["entries"]}
    assert ls["was-file"]["type"] == "symlink" and ls["was-file"]["target"] == "/etc/passwd", ls
    assert ls["was-link"]["target"] == "a/b", ls
    # A directory of the link's name is not replaced.
    os.makedirs(os.path.join(host_tmp, "src2"))
    os.symlink("elsewhere", os.path.join(host_tmp, "src2", "d"))
    assert cli(["exec", "tree-box", "--", "mkdir", "-p", "/workspace/dst2/src2/d/keep"]).rc == 0
    r = cli(["cp", "-r", os.path.join(host_tmp, "src2"), "tree-box:/workspace/dst2"])
    assert r.rc == 1 and "cannot replace the directory" in r.stderr, r
    assert cli(["stat", "tree-box", "dst2/src2/d/keep", "--json"]).json["type"] == "directory"
    assert cli(["rm", "tree-box"]).rc == 0


class _FakeServer:
    """A server on a unix socket that answers a listing of its choice: what
    an untrusted server (or a sandbox it failed to check) could send."""

    def __init__(self, path, entries):
        import http.server
        import socketserver
        import threading

        entries_json = json.dumps({"path": "/workspace/d", "entries": entries}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                from urllib.parse import urlsplit, parse_qs
                u = urlsplit(self.path)
                p = parse_qs(u.query).get("path", [""])[0]
                if u.path.endswith("/stat"):
                    kind = "directory" if p == "/workspace/d" or p.endswith("/..") or p.endswith("/sub") else "file"
                    body = json.dumps({"path": p, "type": kind, "size": 1, "mode": "0755", "mtime_ns": 0,
                                       "mtime": "", "uid": 0, "gid": 0, "symlink": False, "target": None}).encode()
                    ctype = "application/json"
                elif u.path.endswith("/dir"):
                    body, ctype = entries_json, "application/json"
                else:
                    body, ctype = b"escaped\n", "application/octet-stream"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Srv(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.srv = Srv(path, Handler)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.mark.parametrize("entries", [
    [{"name": "../escaped", "type": "file", "size": 1}],
    [{"name": "..", "type": "directory", "size": 0}],
    [{"name": "sub/../../escaped", "type": "file", "size": 1}],
    [{"name": "/tmp", "type": "directory", "size": 0}],
    [{"name": "", "type": "file", "size": 1}],
], ids=["dotdot-file", "dotdot-dir", "slashes", "absolute", "empty"])
def test_cp_from_a_server_never_writes_outside_the_target(cli, host_tmp, entries):
    """A listing's entry must be one name within its directory: anything
    else is refused before a byte is written, never a path outside the
    target."""
    sock = os.path.join(host_tmp, "fake.sock")
    fake = _FakeServer(sock, entries)
    try:
        top = os.path.join(host_tmp, "top")
        os.mkdir(top)
        dest = os.path.join(top, "dest")
        r = cli(["cp", "-r", "evil:/workspace/d", dest], env={"MIMOBOX_HOST": "unix:" + sock})
        assert r.rc == 125 and "not a name within the directory" in r.stderr, r
        assert os.listdir(top) == ["dest"] and os.listdir(dest) == [], "the copy wrote outside its target"
        assert not os.path.exists(os.path.join(host_tmp, "escaped"))
    finally:
        fake.close()


def test_remote_run_loads_no_more_libraries(cli, served):
    """A run through a server loads nothing beyond what any start loads (no
    json-c, libmicrohttpd, libcurl or TLS): the dynamic loader's own account
    of the files it opened."""
    def loaded_by(args):
        p = subprocess.run([cli.path] + args, capture_output=True, env=cli.env({"LD_DEBUG": "files"}), timeout=60)
        assert p.returncode == 0, p
        return {os.path.basename(f) for f in re.findall(r"file=(\S+) \[0\];", p.stderr.decode(errors="replace"))}

    # What any start loads (libmimobox and libc; in a sanitizer build also
    # its runtimes), then what the run through the server adds to it.
    base = loaded_by(["version"])
    assert base <= {"libmimobox.so.0", "libc.so.6"} or any(n.startswith(("libasan", "libubsan")) for n in base), base
    names = loaded_by(["run", "--", "true"])
    assert names <= base, names


def test_exec_json_through_the_server(cli, served):
    assert cli(["create", "--name", "json-box"]).rc == 0
    r = cli(["exec", "json-box", "--json", "--", "sh", "-c", "printf 'o\\377'; echo e >&2; exit 3"])
    assert r.rc == 3 and r.json["exit_code"] == 3 and r.json["stderr"] == "e\n", r
    assert r.json["stdout_b64"] == "b/8=", r
    r = cli(["exec", "json-box", "--json", "--", "no-such-program-xyz"])
    assert r.rc == 127 and r.json["ok"] is False and r.json["error"]["code"] == "not_found", r
    # An unknown sandbox is 125 (as locally), not a missing program's 127.
    for words in (["exec", "no-such-box", "--", "true"], ["exec", "no-such-box", "--json", "--", "true"]):
        r = cli(words)
        assert r.rc == 125 and "no-such-box" in r.out + r.stderr, r
    r = cli(["exec", "no such box", "--", "true"])
    assert r.rc == 125 and "invalid sandbox name" in r.stderr, r
    assert cli(["rm", "json-box"]).rc == 0


def test_create_ttl_through_the_server(cli, served):
    r = cli(["create", "--name", "ttl-box", "--ttl", "1h", "--json"])
    assert r.rc == 0 and r.json["name"] == "ttl-box" and re.fullmatch(r"[0-9a-f]{16}", r.json["id"]), r
    e = cli(["ps", "--json"]).json["sandboxes"][0]
    assert e["ttl_s"] == 3600 and 3590 <= e["expires_in_s"] <= 3600, e
    # The id stands for the name too.
    assert cli(["exec", r.json["id"], "--", "true"]).rc == 0
    assert cli(["rm", "ttl-box"]).rc == 0


# ---------------------------------------------------------------------------
# Background processes, stat and mkdir through the server


def test_background_process_through_the_server(cli, served):
    assert cli(["create", "--name", "bg-box", "--env", "A=from-box"]).rc == 0
    arg = unique_sleep_arg()
    r = cli(["exec", "-d", "bg-box", "-e", "B=2", "-w", "/tmp", "--", "sh", "-c",
             "echo started $A $B $PWD; echo on-err >&2; sleep %s & exec sleep %s" % (arg, arg)])
    assert r.rc == 0 and re.fullmatch(r"\d+\n", r.out) and r.stderr == "", r
    assert not made_locally(r)
    pid = int(r.out)
    # The server's process, seen by the server's API and by `ps NAME`.
    assert served.request("GET", "/v1/sandboxes/bg-box/processes/%d" % pid).json["running"] is True
    assert wait_until(lambda: procs_with_arg(arg), 10), "the background process does not run"
    listed = test_cli_life.procs(cli, "bg-box")
    assert listed[pid]["background"] is True and listed[pid]["state"] == "running", listed
    assert listed[pid]["command"].startswith("sh -c echo started"), listed
    text = cli(["ps", "bg-box"])
    assert text.rc == 0 and re.search(r"^%d\s+bg\s+running\s+\d+s\s+.*\ssh -c echo started" % pid, text.out, re.M), text
    assert text.out.startswith("ID      KIND  STATE"), text
    want = "started from-box 2 /tmp\non-err\n"
    assert wait_until(lambda: cli(["logs", "bg-box", str(pid)]).out == want, 10), cli(["logs", "bg-box", str(pid)])
    assert cli(["logs", "bg-box"]).out == want	# the only one: the id may be left out
    # kill without --signal ends the whole tree, and the process stays listed.
    r = cli(["kill", "bg-box", str(pid)])
    assert r.rc == 0 and r.out == "" and r.stderr == "", r
    assert wait_until(lambda: not procs_with_arg(arg), 10), "kill left a process of the tree running"
    assert wait_until(lambda: not test_cli_life.procs(cli, "bg-box")[pid]["running"], 10)
    p = test_cli_life.procs(cli, "bg-box")[pid]
    assert p["signal"] == signal.SIGKILL and p["exit_code"] is None and p["state"] == "killed (signal 9)", p
    assert cli(["logs", "bg-box", str(pid)]).out == want
    r = cli(["kill", "bg-box", str(pid)])
    assert r.rc == 1 and "ended already" in r.stderr, r
    # A timeout of exec -d is the process's.
    r = cli(["exec", "-d", "bg-box", "--timeout", "0.3", "--", "sleep", "30"])
    assert r.rc == 0, r
    t = int(r.out)
    assert wait_until(lambda: not test_cli_life.procs(cli, "bg-box")[t]["running"], 10)
    assert test_cli_life.procs(cli, "bg-box")[t]["state"] == "timed out"
    r = cli(["exec", "-d", "no-such-box", "--", "true"])
    assert r.rc == 125 and "no sandbox named `no-such-box`" in r.stderr, r
    assert cli(["rm", "bg-box"]).rc == 0


def test_logs_follow_binary_and_a_closed_reader_through_the_server(cli, served):
    assert cli(["create", "--name", "fol-box"]).rc == 0
    pid = test_cli_life.detach(cli, "fol-box", "sh", "-c", "printf 'a\\377\\n'; sleep 0.3; printf 'b\\n' >&2")
    r = cli(["logs", "-f", "fol-box", str(pid)], timeout=30)
    assert r.rc == 0 and r.stdout == b"a\xff\nb\n", r
    r = cli(["logs", "fol-box", str(pid)])
    assert r.rc == 0 and r.stdout == b"a\xff\nb\n", r
    # `logs -f | head -1`: done when nobody reads any more; the process stays.
    pid = test_cli_life.detach(cli, "fol-box", "sh", "-c", "while :; do echo line; sleep 0.05; done")
    p = subprocess.run("%s logs -f fol-box %d | head -1" % (cli.path, pid), shell=True, capture_output=True,
                       env=cli.env({}), timeout=60)
    assert p.stdout == b"line\n", p
    assert test_cli_life.procs(cli, "fol-box")[pid]["running"] is True
    assert cli(["rm", "fol-box"]).rc == 0


def test_stat_and_mkdir_through_the_server(cli, served):
    assert cli(["create", "--name", "st-box"]).rc == 0
    r = cli(["mkdir", "st-box", "/workspace/d", "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "path": "/workspace/d"} and not made_locally(r), r
    assert served.request("GET", "/v1/sandboxes/st-box/stat?path=/workspace/d").json["type"] == "directory"
    r = cli(["mkdir", "st-box", "/workspace/d"])
    assert r.rc == 1 and "exists" in r.stderr, r
    r = cli(["stat", "st-box", "d/none", "--json"])
    assert r.rc == 1 and r.json["ok"] is False and r.json["error"]["code"] == "not_found", r
    assert cli(["exec", "st-box", "--", "sh", "-c", "printf abc > /workspace/d/f; chmod 600 /workspace/d/f; "
                "touch -d @1700000000 /workspace/d/f"]).rc == 0
    local_keys = ["ok", "path", "type", "size", "mode", "mtime_ns", "mtime", "uid", "gid", "symlink", "target"]
    r = cli(["stat", "st-box", "d/f", "--json"])
    assert r.rc == 0 and list(r.json) == local_keys, r
    assert (r.json["path"], r.json["size"], r.json["mode"], r.json["mtime"]) == \
        ("d/f", 3, "0600", "2023-11-14T22:13:20.000000000Z"), r
    r = cli(["stat", "st-box", "d/f"])
    assert r.rc == 0 and r.out.startswith("path:  d/f\ntype:  file\nsize:  3\nmode:  0600\n"
                                          "mtime: 2023-11-14T22:13:20.000000000Z\nuid:   "), r
    assert cli(["rm", "st-box"]).rc == 0


def test_snapshot_restore_fork_through_the_server(cli, served, host_tmp):
    assert cli(["create", "--name", "src", "--env", "KEEP=yes", "--timeout", "7"]).rc == 0
    assert cli(["exec", "src", "--", "sh", "-c", "mkdir /workspace/d && printf 'a\\377' > /workspace/d/f"]).rc == 0
    path = os.path.join(host_tmp, "src.snap")
    r = cli(["snapshot", "src", path, "--json"])
    assert r.rc == 0 and r.json == {"ok": True, "name": "src", "file": path} and not made_locally(r), r
    assert os.stat(path).st_mode & 0o777 == 0o600
    # The file is the only copy: the server's is forgotten.
    assert served.request("GET", "/v1/snapshots").json["snapshots"] == []
    rel = subprocess.run([cli.path, "snapshot", "src", "rel.snap"], cwd=host_tmp, env=cli.env({}), capture_output=True,
                         timeout=60)
    assert rel.returncode == 0 and rel.stdout == b"" and os.path.exists(os.path.join(host_tmp, "rel.snap")), rel
    r = cli(["restore", path, "--name", "back"])
    assert r.rc == 0 and r.out == "back\n", r
    r = cli(["exec", "back", "--", "sh", "-c", "cat /workspace/d/f; echo $KEEP"])
    assert r.stdout == b"a\xffyes\n", r
    assert cli(["inspect", "back", "--json"]).json["timeout_ms"] == 7000
    r = cli(["restore", path, "--json", "--ttl", "1h"])
    assert r.rc == 0 and r.json["ok"] is True and r.json["name"] == r.json["id"], r
    assert served.request("GET", "/v1/sandboxes/" + r.json["id"]).json["ttl_ms"] == 3600000
    r = cli(["restore", path, "--name", "back"])
    assert r.rc == 125 and "`back` already exists" in r.stderr, r
    assert served.request("GET", "/v1/snapshots").json["snapshots"] == []
    # fork: the local verb's names; more than the API's 16 per call.
    r = cli(["fork", "src", "--name", "kid", "--count", "18"])
    assert r.rc == 0 and r.out == "".join("kid-%d\n" % i for i in range(1, 19)), r
    assert cli(["exec", "kid-18", "--", "cat", "/workspace/d/f"]).stdout == b"a\xff"
    assert cli(["exec", "kid-1", "--", "sh", "-c", "echo mine > /workspace/d/f"]).rc == 0
    assert cli(["exec", "src", "--", "cat", "/workspace/d/f"]).stdout == b"a\xff"
    r = cli(["fork", "src", "--json"])
    assert r.rc == 0 and r.json["ok"] is True and r.json["name"] == r.json["id"], r
    # Without --ttl a child has none, as locally (not its parent's).
    assert cli(["create", "--name", "ttl-src", "--ttl", "1h"]).rc == 0
    assert cli(["fork", "ttl-src", "--name", "ttl-kid"]).rc == 0
    assert served.request("GET", "/v1/sandboxes/ttl-kid").json["ttl_ms"] == 0
    r = cli(["fork", "nosuch"])
    assert r.rc == 125 and "no sandbox named `nosuch`" in r.stderr, r


# ---------------------------------------------------------------------------
# The same words with and without a server: --audit, http


@pytest.fixture(params=["local", "server"])
def via(request):
    """The CLI's environment for one path: MIMOBOX_HOST=local, or a server
    on the default socket."""
    if request.param == "server":
        request.getfixturevalue("served")
        return {}
    return {"MIMOBOX_HOST": "local"}


def test_json_outcome_fields_on_both_paths(cli, via):
    # The same members, with what the execute used and how it was bounded,
    # whether the CLI ran it or a server did (run takes a pooled sandbox
    # there; exec is streamed).
    big = "import time; b = bytearray(48 << 20); t = time.process_time()\nwhile time.process_time() - t < 0.1: pass"
    runs = [cli(["run", "--json", "--", "python3", "-c", big], env=via)]
    assert cli(["create", "--name", "fields"], env=via).rc == 0
    try:
        runs.append(cli(["exec", "fields", "--json", "--", "python3", "-c", big], env=via))
    finally:
        assert cli(["rm", "fields"], env=via).rc == 0
    for r in runs:
        j = r.json
        assert r.rc == 0 and j["ok"] is True, r
        assert j["isolation"] == "os" and j["limits"] in ("cgroup-v2", "cgroup-v1", "rlimit"), j
        assert "limits_partial" in j and j["skipped_layers"] == [], j
        assert j["peak_memory_bytes"] >= 48 << 20 and j["cpu_time_ms"] >= 50, j
        assert 100 <= j["elapsed_ms"] < 60000, j


def _listener():
    """A loopback listener the sandbox's requests name: the proxy must
    refuse them, so nothing may reach it."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    lst.setblocking(False)
    return lst


AUDIT_NET = ["--network", "allow:allowed.invalid"]
CURL = "curl -sS -o /dev/null -w '%%{http_code}' --max-time 10 http://%s:%d/%s"


def test_run_audit(cli, via):
    lst = _listener()
    port = lst.getsockname()[1]
    try:
        script = CURL % ("denied.invalid", port, "a") + "; echo; " + CURL % ("other.invalid", port, "b")
        r = cli(["run", "--json", "--audit"] + AUDIT_NET + ["--", "sh", "-c", script], env=via)
        assert r.rc == 0 and r.json["stdout"] == "403\n403", r
        log = r.json["network_log"]
        assert [(e["host"], e["port"], e["verdict"], e["source"], e["method"], e["status"]) for e in log] == [
            ("denied.invalid", port, "denied", "proxy", "GET", 403),
            ("other.invalid", port, "denied", "proxy", "GET", 403)], log
        assert "not in the allow list" in log[0]["reason"] and log[0]["time_us"] > 1.5e15, log
        assert set(log[0]) == {"source", "time_us", "method", "host", "port", "address", "verdict", "status",
                               "reason", "bytes_up", "bytes_down"}, log[0]
        assert r.json["network_log_dropped"] == 0
        # Text mode: one line per record on stderr, the program's output as it is.
        r = cli(["run", "--audit"] + AUDIT_NET + ["--", "sh", "-c", CURL % ("denied.invalid", port, "c")], env=via)
        assert r.rc == 0 and r.stdout == b"403", r
        lines = [l for l in r.stderr.splitlines() if l.startswith("mimobox: net:")]
        assert len(lines) == 1 and "proxy denied GET denied.invalid:%d status 403: " % port in lines[0], r.stderr
        # The program's status and a missing program as without --audit.
        assert cli(["run", "--audit", "--", "sh", "-c", "exit 7"], env=via).rc == 7
        r = cli(["run", "--audit", "--json", "--", "sh", "-c", "exit 3"], env=via)
        assert r.rc == 3 and r.json["network_log"] == [] and r.json["exit_code"] == 3, r
        assert cli(["run", "--audit", "--", "no-such-program-xyz"], env=via).rc == 127
        with pytest.raises(BlockingIOError):
            lst.accept()
    finally:
        lst.close()
    if not via:
        assert cli(["ps", "--json"]).json["sandboxes"] == [], "run --audit left its sandbox on the server"


def test_exec_audit(cli, via):
    """exec --audit: the network log from this exec's start on, earlier
    execs' requests not repeated."""
    lst = _listener()
    port = lst.getsockname()[1]
    name = "aud-" + os.urandom(3).hex()
    try:
        assert cli(["create", "--name", name] + AUDIT_NET, env=via).rc == 0
        r = cli(["exec", "--json", "--audit", name, "--", "sh", "-c", CURL % ("denied.invalid", port, "one")],
                env=via)
        assert r.rc == 0 and r.json["stdout"] == "403", r
        log = r.json["network_log"]
        assert [(e["host"], e["verdict"], e["status"]) for e in log] == [("denied.invalid", "denied", 403)], log
        assert r.json["network_log_dropped"] == 0
        r = cli(["exec", "--json", "--audit", name, "--", "sh", "-c", CURL % ("other.invalid", port, "two")], env=via)
        assert [(e["host"], e["verdict"]) for e in r.json["network_log"]] == [("other.invalid", "denied")], r.json
        r = cli(["exec", "--audit", name, "--", "sh", "-c", CURL % ("third.invalid", port, "three")], env=via)
        assert r.rc == 0 and r.stdout == b"403", r
        lines = [l for l in r.stderr.splitlines() if l.startswith("mimobox: net:")]
        assert len(lines) == 1 and "proxy denied GET third.invalid:%d status 403" % port in lines[0], r.stderr
        r = cli(["exec", "--json", name, "--", "true"], env=via)
        assert "network_log" not in r.json, "the log is there only on request"
        r = cli(["exec", "--audit", name, "--", "sh", "-c", "exit 5"], env=via)
        assert r.rc == 5 and "mimobox: net:" not in r.stderr, r
        r = cli(["exec", "-d", "--audit", name, "--", "true"], env=via)
        assert r.rc == 125 and "--audit" in r.stderr, r
        with pytest.raises(BlockingIOError):
            lst.accept()
    finally:
        lst.close()
        cli(["rm", "-f", name], env=via)


HTTP_NET = ["--network", "allow:api.example.invalid", "--add-host", "api.example.invalid:127.0.0.1",
            "--add-host", "denied.invalid:127.0.0.1", "--allow-private"]


@pytest.fixture
def web():
    from netservers import WebServer
    s = WebServer(label="plain")
    yield s
    s.close()


@pytest.fixture
def http_box(cli, via, host_tmp):
    """A sandbox whose policy reaches the test's loopback server by the
    name api.example.invalid. The API has no --add-host or --allow-private:
    through the server it is made locally, saved, and restored on the server
    (a snapshot keeps its network policy)."""
    name = "web-" + os.urandom(3).hex()
    local = {"MIMOBOX_HOST": "local"}
    assert cli(["create", "--name", name] + HTTP_NET, env=local).rc == 0
    if via:
        yield name
        cli(["rm", "-f", name], env=local)
        return
    snap = os.path.join(host_tmp, name + ".snap")
    assert cli(["snapshot", name, snap], env=local).rc == 0
    assert cli(["rm", name], env=local).rc == 0
    assert cli(["restore", snap, "--name", name]).rc == 0
    os.unlink(snap)
    yield name
    cli(["rm", "-f", name])


def test_http(cli, via, http_box, web, host_tmp):
    """`mimobox http` gives the same output and statuses locally and
    through the server (POST .../http)."""
    import base64
    name, base = http_box, "http://api.example.invalid:%d" % web.port
    r = cli(["http", name, base + "/hello"], env=via)
    assert r.rc == 0 and r.stdout == b"plain api.example.invalid:%d /hello\n" % web.port, r
    r = cli(["http", name, "-i", base + "/hi"], env=via)
    head, _, rest = r.stdout.partition(b"\r\n\r\n")
    assert r.rc == 0 and head.startswith(b"HTTP 200\r\n") and b"X-Server: plain" in head, r
    assert rest == b"plain api.example.invalid:%d /hi\n" % web.port, r
    body = os.path.join(host_tmp, "body.bin")
    with open(body, "wb") as f:
        f.write(b"from a file\x00\xff")
    r = cli(["http", name, "-d", "@" + body, base + "/echo"], env=via)
    assert r.rc == 0 and r.stdout == b"from a file\x00\xff", r
    r = cli(["http", name, "-d", "@-", "-X", "PUT", base + "/echo"], stdin=b"piped", env=via)
    assert r.rc == 0 and r.stdout == b"piped" and web.hits[-1][0] == "PUT", (r, web.hits)
    r = cli(["http", name, "--json", "-H", "X-Test: yes", "-d", "@" + body, base + "/echo"], env=via)
    assert r.rc == 0 and r.json["ok"] is True and r.json["status"] == 200 and r.json["body_bytes"] == 13, r
    assert base64.b64decode(r.json["body_b64"]) == b"from a file\x00\xff", r
    assert {"name": "X-Length", "value": "13"} in r.json["headers"], r.json
    assert web.hits[-1][0] == "POST", web.hits
    # Redirects are followed, each hop checked: the answer names the last URL.
    r = cli(["http", name, "--json", base + "/redirect?to=" + base + "/elsewhere"], env=via)
    assert r.rc == 0 and r.json["url"] == base + "/elsewhere" and r.json["body"].endswith("/elsewhere\n"), r
    hits = len(web.hits)
    r = cli(["http", name, base + "/redirect?to=http://denied.invalid:%d/x" % web.port], env=via)
    assert r.rc == 1 and "not in the allow list" in r.stderr, r
    # Refusals: the policy (1, nothing sent), a wrong argument or sandbox (125).
    r = cli(["http", name, "--json", "http://denied.invalid:%d/" % web.port], env=via)
    assert r.rc == 1 and r.json["ok"] is False and r.json["error"]["code"] == "denied", r
    assert len(web.hits) == hits + 1, "a denied host was reached"
    r = cli(["http", name, "-H", "Host: denied.invalid", base + "/"], env=via)
    assert r.rc == 1 and "does not name the URL's host" in r.stderr, r
    r = cli(["http", name, "ftp://api.example.invalid/"], env=via)
    assert r.rc == 125, r
    r = cli(["http", "no-such-box", base + "/"], env=via)
    assert r.rc == 125 and "no-such-box" in r.stderr, r
    # exec --audit reports from its own start: the requests above are not repeated.
    r = cli(["exec", "--json", "--audit", name, "--", "true"], env=via)
    assert r.rc == 0 and r.json["network_log"] == [], r


def test_http_body_limit_through_the_server(cli, served, http_box, web):
    r = cli(["http", http_box, "-d", "@-", "http://api.example.invalid:%d/echo" % web.port], stdin=b"x" * (700 << 10))
    assert r.rc == 1 and "640 KiB" in r.stderr and "MIMOBOX_HOST=local" in r.stderr, r


# Terminals through the server: the CLI as a WebSocket client of /pty


def test_terminal_goes_through_the_server(cli, served):
    assert cli(["create", "--name", "tty-box"]).rc == 0
    before = served.metric("executes_total")
    # Without a terminal (pipes) stdin goes to the program's terminal as it
    # is and its end is Ctrl-D there, as the local verbs do.
    r = cli(["exec", "-t", "tty-box", "--", "sh", "-c", "read x; echo got-$x; tty; exit 3"], stdin=b"abc\n")
    assert r.rc == 3 and b"got-abc" in r.stdout and b"/dev/pts/" in r.stdout, r
    assert not made_locally(r), r
    r = cli(["shell", "tty-box", "-e", "A=from-env", "-w", "/tmp", "--", "sh", "-c", "echo $A-$(pwd)-$TERM"],
            stdin=b"", env={"TERM": "vt100"})
    assert r.rc == 0 and b"from-env-/tmp-vt100" in r.stdout, r
    r = cli(["exec", "-t", "tty-box", "--", "no-such-program-xyz"], stdin=b"")
    assert r.rc == 127 and "no-such-program-xyz" in r.stderr, r
    assert served.metric("executes_total") == before + 2	# the missing program never started
    # run -t: a sandbox of its own on the server, gone after the program.
    t = test_cli_sessions.Terminal(cli, ["run", "-t", "--env", "B=b1", "--", "sh", "-c", "echo run-$B; exit 6"])
    try:
        t.expect(rb"run-b1")
        assert t.p.wait(timeout=20) == 6
    finally:
        t.close()
    assert served.metric("executes_total") == before + 3
    assert [s["name"] for s in cli(["ps", "--json"]).json["sandboxes"]] == ["tty-box"]
    assert cli(["rm", "tty-box"]).rc == 0


def test_terminal_ended_by_the_server(cli, served):
    """The sandbox destroyed under a shell: the server closes with 1001, the
    CLI says so, exits 125 and leaves its terminal as it found it."""
    assert cli(["create", "--name", "gone-box"]).rc == 0
    t = test_cli_sessions.Terminal(cli, ["shell", "gone-box"])
    try:
        t.type(b"echo up-$((2+2))\r")
        t.expect(rb"up-4")
        assert cli(["rm", "gone-box"]).rc == 0
        assert t.p.wait(timeout=20) == 125
        t.expect(rb"ended the terminal before its program \(close code 1001")
        assert t.modes() & termios.ECHO and t.modes() & termios.ICANON, t.modes()
    finally:
        t.close()


def test_terminal_with_no_server(cli, host_tmp):
    path = os.path.join(host_tmp, "nobody.sock")
    for words in (["shell", "x"], ["exec", "-t", "x", "--", "true"], ["run", "-t", "--", "true"]):
        r = cli(words, stdin=b"", env={"MIMOBOX_HOST": "unix:" + path})
        assert r.rc == 125 and "cannot reach the mimobox server" in r.stderr, r
        assert "MIMOBOX_HOST=local" in r.stderr and not made_locally(r), r


class FakeServer:
    """A unix socket that answers the CLI's first request with `answer(request)` and then closes."""

    def __init__(self, path, answer):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(0.1)
        self.stopped = False
        self.requests = []
        self.answer = answer
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.decode(errors="replace"))
                try:
                    conn.sendall(self.answer(self.requests[-1]))
                    conn.shutdown(socket.SHUT_WR)
                    conn.settimeout(5)
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass

    def close(self):
        self.stopped = True
        self.thread.join(10)
        self.sock.close()


def _accept_of(request):
    key = re.search(r"(?im)^Sec-WebSocket-Key: (\S+)\r$", request).group(1)
    return base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def _upgrade(accept):
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: %s\r\n\r\n" % accept).encode()


EXIT_4 = b'{"type":"exit","exit_code":4,"signal":0,"timed_out":false,"elapsed_ms":1}'


@pytest.mark.parametrize("answer,rc,words", [
    # A well-behaved server: output, the exit message and a close frame.
    (lambda q: _upgrade(_accept_of(q)) + b"\x82\x05hello" + b"\x81" + bytes([len(EXIT_4)]) + EXIT_4 +
     b"\x88\x02\x03\xe8", 4, None),
    # An answer whose Sec-WebSocket-Accept is not that of our key.
    (lambda q: _upgrade(base64.b64encode(b"x" * 20).decode()) + b"\x82\x05hello", 125,
     "Sec-WebSocket-Accept that does not match"),
    # A 101 without the upgrade's headers.
    (lambda q: b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + _accept_of(q).encode() +
     b"\r\n\r\n", 125, "no `Upgrade: websocket`"),
    # Server frames must not be masked.
    (lambda q: _upgrade(_accept_of(q)) + b"\x82\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 125,
     "a server frame with a mask"),
    # A frame announcing 1 TiB is refused from its header, never allocated.
    (lambda q: _upgrade(_accept_of(q)) + b"\x82\x7f" + (1 << 40).to_bytes(8, "big"), 125,
     "a message over the size limit"),
    # A refusal in the server's words.
    (lambda q: b'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 90\r\n\r\n' +
     b'{"error": {"code": "not_found", "message": "no such thing here", "suggestion": null}}'.ljust(90), 127,
     "no such thing here"),
    # The connection closed before the exit message.
    (lambda q: _upgrade(_accept_of(q)) + b"\x82\x02hi", 125, "ended before the program"),
], ids=["exit", "bad-accept", "no-upgrade", "masked", "huge-frame", "refused", "cut"])
def test_terminal_client_checks_the_server(cli, host_tmp, answer, rc, words):
    path = os.path.join(host_tmp, "fake.sock")
    fake = FakeServer(path, answer)
    try:
        r = cli(["exec", "-t", "--timeout", "5", "box", "--", "sh"], stdin=b"", env={"MIMOBOX_HOST": "unix:" + path})
    finally:
        fake.close()
    assert r.rc == rc, r
    if words:
        assert words in r.stderr, r
    else:
        assert r.stdout == b"hello" and r.stderr == "", r
    q = fake.requests[0]
    assert q.startswith("GET /v1/sandboxes/box/pty?rows=") and "&cmd=sh&" in q and "&timeout_ms=5000" in q, q
    key = re.search(r"(?im)^Sec-WebSocket-Key: (\S+)\r$", q).group(1)
    assert len(base64.b64decode(key)) == 16 and re.search(r"(?im)^Sec-WebSocket-Version: 13\r$", q), q


def test_terminal_over_tcp_with_a_token(cli, guard, host_tmp):
    token_file = os.path.join(host_tmp, "token")
    port = _free_port()
    s = Server(guard, host_tmp, args=["--listen", "127.0.0.1:%d" % port, "--token-file", token_file]).start()
    try:
        with open(token_file) as f:
            token = f.read().strip()
        env = {"MIMOBOX_HOST": "http://127.0.0.1:%d" % port, "MIMOBOX_TOKEN": token}
        assert cli(["create", "--name", "tcp-tty"], env=env).rc == 0
        r = cli(["shell", "tcp-tty"], stdin=b"echo over-$((6*7))\nexit 5\n", env=env)
        assert r.rc == 5 and b"over-42" in r.stdout and not made_locally(r), r
        r = cli(["shell", "tcp-tty"], stdin=b"exit 0\n", env=dict(env, MIMOBOX_TOKEN="0" * 64))
        assert r.rc == 125 and "refused the token" in r.stderr, r
        assert cli(["rm", "tcp-tty"], env=env).rc == 0
    finally:
        s.stop()
