# SPDX-License-Identifier: Apache-2.0
"""`mimobox serve`, the sandbox server, end to end (docs/server.md).

Each test starts its own server on a unix socket in its tmp directory (or
on 127.0.0.1 with a token) and drives it with Python's http.client and, for
a few calls, with `curl --unix-socket`. Every JSON response and every event
of a stream is checked against docs/server-openapi.json (python3-jsonschema).
The server runs with MIMOBOX_LOG=info, so its log names every sandbox it
made: the guard then checks that none left a cgroup, a state directory or a
process behind, also after the server was killed with SIGKILL.
"""
import base64
import http.client
import json
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import CLI, host_env, procs_with_arg, reap_zombies, unique_sleep_arg

try:
    import jsonschema
except ImportError:
    if os.environ.get("MBX_TEST_MUST_WORK") == "1":
        raise
    pytest.skip("python3-jsonschema is missing (scripts/deps.sh installs it)", allow_module_level=True)

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "docs" / "server-openapi.json").read_text())
_LOG_ID = re.compile(r"^mimobox: info: sandbox ([0-9a-f]+) created", re.M)


# ---------------------------------------------------------------------------
# The OpenAPI document as the contract

def _schema_validator(schema):
    # The document's components ride along in the root schema, so that its
    # "#/components/schemas/..." references resolve in it (any jsonschema 4.x).
    return jsonschema.Draft202012Validator({"allOf": [schema], "components": OPENAPI["components"]})


def _operation(method, path):
    path = path.split("?", 1)[0]
    for template, item in OPENAPI["paths"].items():
        pattern = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            op = item.get(method.lower())
            assert op is not None, "%s %s is not in the OpenAPI document" % (method, template)
            return op
    raise AssertionError("%s is not a path of the OpenAPI document" % path)


def check_response(method, path, status, ctype, data):
    """Fails unless the response is one the OpenAPI document describes."""
    op = _operation(method, path)
    resp = op["responses"].get(str(status))
    assert resp is not None, "%s %s answered %d, which the OpenAPI document does not list" % (method, path, status)
    content = resp.get("content")
    if not content:
        assert not data, "%s %s %d has a body the document does not describe: %r" % (method, path, status, data[:200])
        return
    media = (ctype or "").split(";")[0].strip()
    assert media in content, "%s %s %d: content type %r, the document says %s" % (method, path, status, ctype,
                                                                                 list(content))
    if media == "application/json":
        _schema_validator(content[media]["schema"]).validate(json.loads(data))


def check_event(name, data):
    schema = {"start": "StreamStart", "stdout": "StreamOutput", "stderr": "StreamOutput", "exit": "StreamExit",
              "error": "Error", "dropped": "StreamDropped"}[name]
    _schema_validator({"$ref": "#/components/schemas/" + schema}).validate(data)


def test_openapi_document_is_valid_and_complete():
    """The document is well-formed JSON Schema and names every endpoint the server has."""
    for name, schema in OPENAPI["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    want = {("/v1/health", "get"), ("/v1/metrics", "get"), ("/v1/sandboxes", "get"), ("/v1/sandboxes", "post"),
            ("/v1/sandboxes/{id}", "get"), ("/v1/sandboxes/{id}", "delete"), ("/v1/sandboxes/{id}/exec", "post"),
            ("/v1/sandboxes/{id}/files", "get"), ("/v1/sandboxes/{id}/files", "put"),
            ("/v1/sandboxes/{id}/files", "delete"), ("/v1/sandboxes/{id}/dir", "get"), ("/v1/run", "post"),
            ("/v1/sandboxes/{id}/dir", "post"), ("/v1/sandboxes/{id}/stat", "get"),
            ("/v1/sandboxes/{id}/symlink", "post"),
            ("/v1/sandboxes/{id}/processes", "get"), ("/v1/sandboxes/{id}/processes", "post"),
            ("/v1/sandboxes/{id}/processes/{pid}", "get"), ("/v1/sandboxes/{id}/processes/{pid}", "delete"),
            ("/v1/sandboxes/{id}/processes/{pid}/signal", "post"), ("/v1/sandboxes/{id}/processes/{pid}/stdin", "post"),
            ("/v1/sandboxes/{id}/processes/{pid}/output", "get"),
            ("/v1/sandboxes/{id}/snapshots", "post"), ("/v1/sandboxes/{id}/fork", "post"),
            ("/v1/sandboxes/{id}/network/audit", "get"), ("/v1/sandboxes/{id}/http", "post"),
            ("/v1/snapshots", "get"), ("/v1/snapshots", "post"),
            ("/v1/snapshots/{sid}", "get"), ("/v1/snapshots/{sid}", "delete"), ("/v1/snapshots/{sid}/data", "get"),
            ("/v1/snapshots/{sid}/restore", "post"),
            ("/v1/sandboxes/{id}/pty", "get")}
    have = {(p, m) for p, item in OPENAPI["paths"].items() for m in item if m != "parameters"}
    assert have == want


# ---------------------------------------------------------------------------
# Clients

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket."""

    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Resp:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data

    @property
    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "Resp(%d, %r)" % (self.status, self.data[:500])


class Server:
    """One `mimobox serve` process of a test."""

    def __init__(self, guard, tmp, args=None, socket_path=None, cmd=None):
        self.guard = guard
        self.tmp = tmp
        self.cmd = cmd or [CLI, "serve"]
        self.owns_socket = True
        self.socket = socket_path if socket_path is not None else os.path.join(tmp, "serve.sock")
        self.args = args if args is not None else ["--socket", self.socket]
        self.log_path = os.path.join(tmp, "serve-%s.log" % secrets.token_hex(3))
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd + self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, start_new_session=True,
                                     env=host_env({"MIMOBOX_LOG": "info", "MIMOBOX_STATE_DIR": self.guard.state_dir}))
        if wait:
            self.wait_ready()
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_ready(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited: %s" % self.log_text()
            if "listening on" in self.log_text():
                return
            time.sleep(0.02)
        raise AssertionError("the server did not start: %s" % self.log_text())

    def conn(self):
        return UnixHTTPConnection(self.socket)

    def request(self, method, path, body=None, headers=None, conn=None, check=True):
        own = conn is None
        conn = conn or self.conn()
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            resp = Resp(r.status, r.headers, data)
        finally:
            if own:
                conn.close()
        if check:
            check_response(method, path, resp.status, resp.headers.get("Content-Type"), data)
        return resp

    def create(self, **cfg):
        r = self.request("POST", "/v1/sandboxes", cfg)
        assert r.status == 201, r
        return r.json["id"]

    def exec(self, sid, argv, **kw):
        r = self.request("POST", "/v1/sandboxes/%s/exec" % sid, dict(kw, argv=argv))
        assert r.status == 200, r
        return r.json

    def metric(self, name):
        text = self.request("GET", "/v1/metrics").data.decode()
        m = re.search(r"^mimobox_%s (\d+)$" % name, text, re.M)
        assert m, text
        return int(m.group(1))

    def note_ids(self):
        self.guard.ids.update(_LOG_ID.findall(self.log_text()))

    def stop(self, sig=signal.SIGTERM):
        """Stops the server; after SIGTERM it must exit 0 and remove its socket."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(90)
        finally:
            self.log.close()
            self.note_ids()
        self.proc = None
        if sig == signal.SIGTERM:
            assert rc == 0, self.log_text()
            if self.owns_socket and (self.args[:1] == ["--socket"] or "--listen" not in self.args):
                assert not os.path.exists(self.socket), "the socket outlived a graceful stop"
        return rc


@pytest.fixture
def server(guard, host_tmp):
    s = Server(guard, host_tmp).start()
    yield s
    s.stop()


def curl(server, *args):
    r = subprocess.run(["curl", "-sS", "--unix-socket", server.socket, "-w", "\n%{http_code} %{content_type}"] +
                       list(args), capture_output=True, timeout=120, env=host_env())
    assert r.returncode == 0, r
    body, _, tail = r.stdout.rpartition(b"\n")
    code, _, ctype = tail.decode().partition(" ")
    return int(code), ctype, body


# ---------------------------------------------------------------------------
# Sandboxes

def test_health_metrics_and_curl(server):
    code, ctype, body = curl(server, "http://localhost/v1/health")
    assert code == 200
    check_response("GET", "/v1/health", code, ctype, body)
    assert json.loads(body)["ok"] is True
    code, ctype, body = curl(server, "-X", "POST", "-H", "Content-Type: application/json", "-d",
                             '{"memory_mb": 256, "env": {"GREETING": "hi"}}', "http://localhost/v1/sandboxes")
    assert code == 201, body
    check_response("POST", "/v1/sandboxes", code, ctype, body)
    sid = json.loads(body)["id"]
    code, ctype, body = curl(server, "-X", "POST", "-d", '{"argv": ["sh", "-c", "echo $GREETING"]}',
                             "http://localhost/v1/sandboxes/%s/exec" % sid)
    assert code == 200 and json.loads(body)["stdout"] == "hi\n"
    code, _, body = curl(server, "-X", "DELETE", "http://localhost/v1/sandboxes/%s" % sid)
    assert code == 204 and body == b""
    text = server.request("GET", "/v1/metrics").data.decode()
    for name in ("sandboxes_live", "sandboxes_created_total", "sandboxes_destroyed_total", "executes_total",
                 "errors_total", "request_duration_seconds_count"):
        assert re.search(r"^mimobox_%s \d+$" % name, text, re.M), name
    assert server.metric("sandboxes_created_total") == 1
    assert server.metric("sandboxes_destroyed_total") == 1
    assert server.metric("sandboxes_live") == 0
    assert 'mimobox_request_duration_seconds_bucket{le="+Inf"}' in text


def test_drain_on_sigusr1(server):
    """SIGUSR1: no new sandboxes (503), health 503 with draining, the sandboxes there keep working."""
    sid = server.create(memory_mb=128)
    assert server.metric("draining") == 0
    server.proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "draining (SIGUSR1)" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.02)
    r = server.request("GET", "/v1/health")
    assert r.status == 503 and r.json == {"ok": False, "version": r.json["version"], "draining": True}, r
    for path, body in (("/v1/sandboxes", {}), ("/v1/run", {"argv": ["/bin/true"]}),
                       ("/v1/sandboxes/%s/fork" % sid, {"count": 1})):
        r = server.request("POST", path, body)
        assert r.status == 503 and r.json["error"]["code"] == "unavailable", (path, r)
        assert "draining" in r.json["error"]["message"]
    assert server.exec(sid, ["sh", "-c", "echo still"])["stdout"] == "still\n"
    assert server.metric("draining") == 1
    assert server.metric("sandboxes_live") == 1
    r = server.request("DELETE", "/v1/sandboxes/%s" % sid)
    assert r.status == 204


def test_create_list_inspect_exec_delete(server):
    sid = server.create(memory_mb=128, timeout_ms=20000, env={"A": "1", "SECRET": "s3cr3t"}, workdir="/tmp")
    r = server.request("GET", "/v1/sandboxes/%s" % sid)
    assert r.status == 200
    info = r.json
    assert info["id"] == sid and info["isolation"] == "os" and info["memory_mb"] == 128
    assert info["timeout_ms"] == 20000 and info["workdir"] == "/tmp" and info["network"] == "deny"
    assert sorted(info["env"]) == ["A", "SECRET"] and b"s3cr3t" not in r.data
    assert "seccomp" in info["layers"]
    lst = server.request("GET", "/v1/sandboxes").json["sandboxes"]
    assert [s["id"] for s in lst] == [sid]

    res = server.exec(sid, ["sh", "-c", "pwd; echo $A $B; echo oops >&2; exit 3"], env={"B": "2"})
    assert res["exit_code"] == 3 and res["stdout"] == "/tmp\n1 2\n" and res["stderr"] == "oops\n"
    assert res["timed_out"] is False and res["signal"] == 0
    # Files persist between executes; stdin as text and as base64.
    assert server.exec(sid, ["sh", "-c", "cat > /workspace/in; wc -c < /workspace/in"], stdin="hello")["stdout"] == "5\n"
    raw = bytes(range(256))
    res = server.exec(sid, ["cat"], stdin_b64=base64.b64encode(raw).decode())
    assert "stdout_b64" in res and base64.b64decode(res["stdout_b64"]) == raw
    res = server.exec(sid, ["sleep", "5"], timeout_ms=300)
    assert res["timed_out"] is True

    r = server.request("DELETE", "/v1/sandboxes/%s" % sid)
    assert r.status == 204
    assert server.request("GET", "/v1/sandboxes/%s" % sid).status == 404
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 404
    assert server.request("GET", "/v1/sandboxes").json["sandboxes"] == []


def read_events(resp, until=None):
    """Reads server-sent events from resp; yields (name, data)."""
    name, data = None, []
    while True:
        line = resp.readline()
        if not line:
            return
        line = line.decode().rstrip("\n")
        if line.startswith(":"):
            continue
        if line == "":
            if name:
                ev = json.loads("\n".join(data))
                check_event(name, ev)
                yield name, ev
            name, data = None, []
            continue
        key, _, value = line.partition(": ")
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)


def wait_running(marker):
    """Waits until a process with `marker` in its argv runs (it has just been spawned)."""
    deadline = time.monotonic() + 20
    while not procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert procs_with_arg(marker), "the spawned process never ran"


def test_exec_stream(server):
    sid = server.create()
    for how in ({"query": "?stream=1"}, {"accept": True}):
        conn = server.conn()
        headers = {"Content-Type": "application/json"}
        if how.get("accept"):
            headers["Accept"] = "text/event-stream"
        conn.request("POST", "/v1/sandboxes/%s/exec%s" % (sid, how.get("query", "")),
                     body=json.dumps({"argv": ["sh", "-c", "echo one; echo two >&2; sleep 0.2; printf three; exit 7"]}),
                     headers=headers)
        r = conn.getresponse()
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        events = list(read_events(r))
        conn.close()
        names = [n for n, _ in events]
        assert names[0] == "start" and names[-1] == "exit", events
        out = "".join(e["data"] for n, e in events if n == "stdout")
        err = "".join(e["data"] for n, e in events if n == "stderr")
        assert out == "onethree" or out == "one\nthree", events
        assert out.replace("\n", "") == "onethree" and err == "two\n"
        assert events[-1][1]["exit_code"] == 7
    # A program that does not exist is an error before any stream.
    r = server.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid, {"argv": ["/no/such/program"]})
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_process_limits_hostname_and_output_limit(server):
    """max_procs, hostname and output_limit configure a sandbox as the CLI's
    --max-procs, --hostname and --output-limit do; a field left out keeps
    its default whatever the others say."""
    d = server.request("POST", "/v1/sandboxes", {"memory_mb": 256}).json
    assert (d["memory_mb"], d["disk_mb"], d["max_procs"], d["hostname"], d["output_limit"]) == \
        (256, 2048, 64, "mimobox", 16 << 20), d
    server.request("DELETE", "/v1/sandboxes/%s" % d["id"])
    d = server.request("POST", "/v1/sandboxes", {"max_procs": 6, "hostname": "h-1.example"}).json
    assert (d["disk_mb"], d["max_procs"], d["hostname"], d["output_limit"]) == (2048, 6, "h-1.example", 16 << 20), d
    assert server.exec(d["id"], ["hostname"])["stdout"] == "h-1.example\n"
    r = server.exec(d["id"], ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait"])
    assert r["exit_code"] != 0 and "fork" in r["stderr"].lower(), r
    server.request("DELETE", "/v1/sandboxes/%s" % d["id"])
    d = server.request("POST", "/v1/sandboxes", {"output_limit": 5}).json
    assert d["output_limit"] == 5, d
    sid = d["id"]
    r = server.exec(sid, ["hostname"])
    assert r["stdout"] == "mimob" and r["stdout_truncated"] is True and r["stderr_truncated"] is False, r
    # A stream delivers no more than the limit either, and says so at its exit.
    conn = server.conn()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid,
                 body=json.dumps({"argv": ["sh", "-c", "printf 0123456789; printf abcdefgh >&2"]}),
                 headers={"Content-Type": "application/json"})
    events = list(read_events(conn.getresponse()))
    conn.close()
    assert "".join(e["data"] for n, e in events if n == "stdout") == "01234", events
    assert "".join(e["data"] for n, e in events if n == "stderr") == "abcde", events
    assert events[-1][0] == "exit" and events[-1][1]["stdout_truncated"] is True, events
    assert events[-1][1]["stderr_truncated"] is True, events
    server.request("DELETE", "/v1/sandboxes/%s" % sid)
    # A run takes them too; bad values are refused before anything is made.
    r = server.request("POST", "/v1/run", {"argv": ["hostname"], "hostname": "one-shot"}).json
    assert r["stdout"] == "one-shot\n", r
    for bad in ({"max_procs": 0}, {"max_procs": "8"}, {"output_limit": -1}, {"hostname": 7}):
        _error(server.request("POST", "/v1/sandboxes", bad), 400, "invalid_argument", next(iter(bad)))
    r = server.request("POST", "/v1/sandboxes", {"hostname": "bad host"})
    assert r.status == 400 and "host name" in r.json["error"]["message"], r


def test_stream_client_disconnect_kills_the_process(server):
    sid = server.create()
    marker = "mbx-serve-%s" % secrets.token_hex(4)
    conn = server.conn()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid,
                 body=json.dumps({"argv": ["sh", "-c", "while :; do echo tick; sleep 0.05; done", marker],
                                  "timeout_ms": 120000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    ticks = 0
    for name, ev in read_events(r):
        if name == "stdout":
            ticks += 1
            if ticks == 3:
                break
    assert ticks == 3
    assert procs_with_arg(marker), "the streamed process is not running"
    conn.sock.shutdown(socket.SHUT_RDWR)
    r.close()
    conn.close()
    deadline = time.monotonic() + 20
    while procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_with_arg(marker), "the process outlived its client"
    deadline = time.monotonic() + 10
    while server.metric("stream_disconnects_total") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metric("stream_disconnects_total") == 1
    # The sandbox is unharmed and free for the next call.
    assert server.exec(sid, ["echo", "after"])["stdout"] == "after\n"
    # A silent process: its gone client is found as it goes (the stream waits on its socket too).
    marker = unique_sleep_arg()
    conn = server.conn()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid,
                 body=json.dumps({"argv": ["sleep", marker], "timeout_ms": 120000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert next(read_events(r))[0] == "start"
    wait_running(marker)
    conn.sock.shutdown(socket.SHUT_RDWR)
    r.close()
    conn.close()
    deadline = time.monotonic() + 30
    while procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not procs_with_arg(marker), "the silent process outlived its client"
    assert server.metric("stream_disconnects_total") == 2
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204


def test_streamed_execute_is_listed_and_signalled(server):
    """The program of a running streamed execute is in the sandbox's process
    list (`foreground`), reached by .../signal and DELETE, not by .../output or
    .../stdin, and leaves the list with its stream."""
    sid = server.create()
    base = "/v1/sandboxes/%s" % sid
    marker = unique_sleep_arg()
    conn = server.conn()
    conn.request("POST", base + "/exec?stream=1",
                 body=json.dumps({"argv": ["sh", "-c", "trap 'echo got-int; exit 9' INT; echo ready; "
                                           "while :; do sleep 0.05; done", marker], "timeout_ms": 120000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    events = read_events(r)
    name, start = next(events)
    assert name == "start", (name, start)
    pid = start["process_id"]
    assert next(events) == ("stdout", {"data": "ready\n"})
    listed = {p["id"]: p for p in server.request("GET", base + "/processes").json["processes"]}
    assert listed[pid]["foreground"] is True and listed[pid]["running"] is True, listed
    assert listed[pid]["program"] == "sh" and listed[pid]["command"].startswith("sh -c trap"), listed
    assert server.request("GET", base + "/processes/%d" % pid).json["foreground"] is True
    _error(server.request("GET", base + "/processes/%d/output" % pid), 409, "bad_state", "stream")
    _error(server.request("POST", base + "/processes/%d/stdin" % pid, b"x"), 409, "bad_state", "stream")
    r2 = server.request("POST", base + "/processes/%d/signal" % pid, {"signal": "INT"})
    assert r2.status == 204, r2
    rest = list(events)
    assert ("stdout", {"data": "got-int\n"}) in rest, rest
    assert rest[-1][0] == "exit" and rest[-1][1]["exit_code"] == 9, rest
    r.close()
    conn.close()
    deadline = time.monotonic() + 10
    while pid in [p["id"] for p in server.request("GET", base + "/processes").json["processes"]]:
        assert time.monotonic() < deadline, "an ended stream's process is still listed"
        time.sleep(0.05)
    _error(server.request("POST", base + "/processes/%d/signal" % pid, {"signal": "INT"}), 404, "not_found")
    # DELETE kills it with everything it started; its stream ends killed.
    conn = server.conn()
    conn.request("POST", base + "/exec?stream=1", body=json.dumps({"argv": ["sleep", marker]}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    events = read_events(r)
    pid = next(events)[1]["process_id"]
    wait_running(marker)
    assert server.request("DELETE", base + "/processes/%d" % pid).status == 204
    rest = list(events)
    assert rest[-1][0] == "exit" and rest[-1][1]["signal"] == 9, rest
    r.close()
    conn.close()
    assert not procs_with_arg(marker)
    assert server.request("DELETE", base).status == 204


def test_files(server):
    sid = server.create()
    data = os.urandom(300000) + b"end"
    r = server.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/d/blob" % sid, data)
    assert r.status == 404, r  # no directory d yet
    r = server.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid, data,
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200 and r.json == {"path": "/workspace/blob", "size": len(data)}
    r = server.request("GET", "/v1/sandboxes/%s/files?path=blob" % sid)
    assert r.status == 200 and r.data == data and r.headers["Accept-Ranges"] == "bytes"
    r = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid, headers={"Range": "bytes=10-19"})
    assert r.status == 206 and r.data == data[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/%d" % len(data)
    r = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid, headers={"Range": "bytes=-3"})
    assert r.status == 206 and r.data == b"end"
    r = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid,
                       headers={"Range": "bytes=%d-" % len(data)})
    assert r.status == 416
    server.exec(sid, ["mkdir", "/workspace/sub"])
    r = server.request("GET", "/v1/sandboxes/%s/dir?path=/workspace" % sid)
    assert r.status == 200
    entries = {e["name"]: e for e in r.json["entries"]}
    assert entries["blob"]["type"] == "file" and entries["blob"]["size"] == len(data)
    assert entries["sub"]["type"] == "directory"
    assert server.request("DELETE", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid).status == 204
    r = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid)
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    r = server.request("GET", "/v1/sandboxes/%s/files" % sid)
    assert r.status == 400 and "path" in r.json["error"]["message"]
    # The sandbox's root is never removed by a path (DELETE the sandbox instead).
    for root in ("/", "..", "/workspace/../", "a/../../."):
        r = server.request("DELETE", "/v1/sandboxes/%s/files?path=%s&recursive=1" % (sid, root))
        _error(r, 403, "permission_denied", "root")
    assert server.exec(sid, ["ls", "/workspace/sub"])["exit_code"] == 0
    # Paths resolve inside the sandbox: the host's files are not reachable.
    r = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/../../../etc/shadow" % sid)
    assert r.status != 200 or b"root:" not in r.data
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_errors(server):
    r = server.request("POST", "/v1/sandboxes", b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["error"]["code"] == "invalid_argument" and "JSON" in r.json["error"]["message"]
    r = server.request("POST", "/v1/sandboxes", [1, 2])
    assert r.status == 400 and "object" in r.json["error"]["message"]
    r = server.request("POST", "/v1/sandboxes", {"memroy_mb": 5})
    assert r.status == 400 and "memory_mb" in r.json["error"]["message"]
    r = server.request("POST", "/v1/sandboxes", {"isolation": "vm"})
    assert r.status == 400 and "isolation" in r.json["error"]["message"]
    r = server.request("POST", "/v1/sandboxes", {"memory_mb": "lots"})
    assert r.status == 400
    r = server.request("GET", "/v1/sandboxes/0123456789abcdef")
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    r = server.request("POST", "/v1/sandboxes/0123456789abcdef/exec", {"argv": ["true"]})
    assert r.status == 404
    r = server.request("GET", "/v1/nothing", check=False)
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    r = server.request("PATCH", "/v1/sandboxes", check=False)
    assert r.status == 405 and r.headers["Allow"] == "GET, POST"
    sid = server.create()
    r = server.request("POST", "/v1/sandboxes/%s/exec" % sid, {"argv": []})
    assert r.status == 400 and "argv" in r.json["error"]["message"]
    r = server.request("POST", "/v1/sandboxes/%s/exec" % sid, {"argv": ["true"], "stdin_b64": "***"})
    assert r.status == 400
    # Over the limits: 1 MiB of JSON, 16 MiB of file. The server answers
    # from the Content-Length, before the body: send only its start.
    for path, limit in (("/v1/sandboxes/%s/exec" % sid, 1 << 20),
                        ("/v1/sandboxes/%s/files?path=/workspace/big" % sid, 16 << 20)):
        conn = server.conn()
        conn.putrequest("POST" if "exec" in path else "PUT", path)
        conn.putheader("Content-Length", str(limit + 1))
        conn.endheaders()
        try:
            conn.send(b"x" * 1024)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed already: what is checked next
        r = conn.getresponse()
        data = r.read()
        conn.close()
        check_response("POST" if "exec" in path else "PUT", path, r.status, r.headers["Content-Type"], data)
        assert r.status == 413 and json.loads(data)["error"]["code"] == "too_large"
    # A chunked body has no length up front: it is counted as it comes.
    conn = server.conn()
    conn.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/big" % sid,
                 body=iter([b"\0" * (1 << 20)] * 17), encode_chunked=True)
    r = conn.getresponse()
    assert r.status == 413, r.read()
    conn.close()
    # Just under the limit is fine.
    r = server.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/big" % sid, b"\1" * (16 << 20))
    assert r.status == 200 and r.json["size"] == 16 << 20
    assert server.metric("errors_total") >= 10
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_run_one_shot(server):
    ids = set()
    for i in range(3):
        r = server.request("POST", "/v1/run", {"argv": ["sh", "-c", "echo run$N; ls /workspace"], "env": {"N": str(i)},
                                               "memory_mb": 256})
        assert r.status == 200, r
        assert r.json["stdout"] == "run%d\n" % i and r.json["exit_code"] == 0
        ids.add(r.json["sandbox_id"])
    # Every run had a fresh sandbox or one reset after the run before (a
    # pool of os sandboxes reuses them: mbx_pool_set_reuse()), and none
    # stays listed.
    assert 1 <= len(ids) <= 3
    assert server.request("GET", "/v1/sandboxes").json["sandboxes"] == []
    # What one run leaves is not seen by the next.
    server.request("POST", "/v1/run", {"argv": ["sh", "-c", "echo x > /workspace/left; echo y > /tmp/left; ipcmk -M 4096"],
                                       "memory_mb": 256})
    r = server.request("POST", "/v1/run", {"argv": ["sh", "-c", "ls -A /workspace /tmp; tail -n +2 /proc/sysvipc/shm"],
                                           "memory_mb": 256})
    assert r.json["stdout"] == "/tmp:\n\n/workspace:\n", r.json
    r = server.request("POST", "/v1/run", {"argv": ["no-such-program"]})
    assert r.status == 404


def test_ttl_expiry(server):
    sid = server.create(ttl_ms=300)
    keep = server.create()
    deadline = time.monotonic() + 30
    while server.request("GET", "/v1/sandboxes/%s" % sid).status == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.request("GET", "/v1/sandboxes/%s" % sid).status == 404
    assert server.request("GET", "/v1/sandboxes/%s" % keep).status == 200
    assert server.metric("sandboxes_expired_total") == 1
    server.request("DELETE", "/v1/sandboxes/%s" % keep)


def test_concurrent_sandboxes(server):
    """64 sandboxes made and used at once, all of them live together before
    any is destroyed; a long execute in one sandbox does not hold up the
    others."""
    n = 64
    slow_id = server.create()
    slow_result = {}

    def slow():
        slow_result["r"] = server.exec(slow_id, ["sleep", "8"])

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    results, errors = {}, []
    # Read by the last one to arrive, before any is let go to destroy its own.
    all_live = threading.Barrier(n, action=lambda: results.update(live=server.metric("sandboxes_live")),
                                 timeout=240)

    def one(i, barrier=None):
        try:
            sid = server.create(env={"I": str(i)})
            res = server.exec(sid, ["sh", "-c", "echo $I > /workspace/i; cat /workspace/i"])
            results[i] = (sid, res["stdout"])
            if barrier:
                barrier.wait()
            assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
            if barrier:
                barrier.abort()

    # One first, while the slow execute runs: it is not queued behind it.
    one(-1)
    assert t.is_alive(), "the slow execute ended before the other sandbox's call: not a concurrency test"
    threads = [threading.Thread(target=one, args=(i, all_live)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(300)
    assert not errors, errors
    # The n, and the slow one if its sleep still ran.
    assert results.pop("live") >= n
    assert sorted(results) == list(range(-1, n))
    assert len({sid for sid, _ in results.values()}) == n + 1
    assert all(out == "%d\n" % i for i, (_, out) in results.items())
    t.join(60)
    assert slow_result["r"]["exit_code"] == 0
    server.request("DELETE", "/v1/sandboxes/%s" % slow_id)
    assert server.metric("sandboxes_live") == 0


def test_same_sandbox_concurrent_calls_all_complete(server):
    """Concurrent calls on one sandbox all complete (they run side by side:
    the library is thread-safe per sandbox)."""
    sid = server.create()
    outs, errors = [], []

    def one(i):
        try:
            res = server.exec(sid, ["sh", "-c", "echo $0 >> /workspace/log; echo $0", str(i)])
            outs.append(res["stdout"])
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert sorted(outs) == sorted("%d\n" % i for i in range(12))
    log = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/log" % sid).data.decode().split()
    assert sorted(log, key=int) == [str(i) for i in range(12)]
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def _start_stream(server, sid, argv):
    conn = server.conn()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid,
                 body=json.dumps({"argv": argv, "timeout_ms": 120000}), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200, r.read()
    return conn, r, read_events(r)


def test_calls_run_beside_streams_and_executes_of_their_sandbox(server):
    """Neither a running execute nor a stream holds up other calls on the same
    sandbox: they are made (and answered) while both still run, and the
    stream's output comes while the execute runs. A client leaving mid-stream
    still takes its process with it."""
    sid = server.create()
    m_exec, m_stream = unique_sleep_arg(), unique_sleep_arg()
    answer = {}

    def long_exec():
        answer["exec"] = server.exec(sid, ["sleep", m_exec], timeout_ms=120000)

    th = threading.Thread(target=long_exec)
    th.start()
    wait_running(m_exec)
    # A stream starts, and its output comes, while the execute runs.
    conn, r, events = _start_stream(server, sid, ["sh", "-c", "echo go; exec sleep \"$0\"", m_stream])
    assert next(events)[0] == "start"
    name, ev = next(events)
    assert (name, ev["data"]) == ("stdout", "go\n"), (name, ev)
    wait_running(m_stream)
    # Other calls on the sandbox answer while both run.
    assert server.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/beside" % sid, b"side").status in (200, 201)
    assert server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/beside" % sid).data == b"side"
    assert server.exec(sid, ["cat", "/workspace/beside"])["stdout"] == "side"
    assert server.request("GET", "/v1/sandboxes/%s/stat?path=/workspace/beside" % sid).status == 200
    assert procs_with_arg(m_exec) and procs_with_arg(m_stream), "a call waited for the execute or the stream"
    assert th.is_alive()
    # The client leaves mid-stream: its process goes with it; the execute runs on.
    conn.sock.shutdown(socket.SHUT_RDWR)
    r.close()
    conn.close()
    deadline = time.monotonic() + 20
    while procs_with_arg(m_stream) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_with_arg(m_stream), "the streamed process outlived its client"
    assert server.metric("stream_disconnects_total") == 1
    assert procs_with_arg(m_exec) and th.is_alive()
    for pid in procs_with_arg(m_exec):
        os.kill(pid, signal.SIGKILL)
    th.join(30)
    assert answer["exec"]["signal"] == signal.SIGKILL, answer
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204


def test_stream_output_while_its_sandbox_is_busy_and_destroyed(server):
    """Two streams of one sandbox interleave (each gets its output as it comes,
    though the other's events wait on the same descriptor), and a DELETE
    during a stream ends it with an error event at once."""
    sid = server.create()
    assert server.exec(sid, ["mkfifo", "/workspace/fifo"])["exit_code"] == 0
    conn1, r1, ev1 = _start_stream(server, sid, ["sh", "-c", "read x < /workspace/fifo; echo one-$x"])
    assert next(ev1)[0] == "start"
    conn2, r2, ev2 = _start_stream(server, sid, ["sh", "-c", "echo two > /workspace/fifo; echo wrote"])
    assert next(ev2)[0] == "start"
    assert next(ev2)[1]["data"] == "wrote\n"
    assert next(ev1)[1]["data"] == "one-two\n"
    assert next(ev1)[0] == "exit" and next(ev2)[0] == "exit"
    for c in (conn1, conn2):
        c.close()
    marker = unique_sleep_arg()
    conn, r, events = _start_stream(server, sid, ["sleep", marker])
    assert next(events)[0] == "start"
    wait_running(marker)
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
    name, ev = next(events)
    assert name == "error" and "destroyed" in ev["error"]["message"], (name, ev)
    conn.close()
    assert not procs_with_arg(marker)


# ---------------------------------------------------------------------------
# Named sandboxes and idempotent creates

def test_named_sandboxes(server):
    r = server.request("POST", "/v1/sandboxes", {"name": "web.1_a-b", "env": {"X": "named"}})
    assert r.status == 201 and r.json["name"] == "web.1_a-b", r
    sid = r.json["id"]
    unnamed = server.create()
    assert server.request("GET", "/v1/sandboxes/%s" % unnamed).json["name"] is None
    # The name works wherever the id does.
    r = server.request("GET", "/v1/sandboxes/web.1_a-b")
    assert r.status == 200 and r.json["id"] == sid and r.json["name"] == "web.1_a-b"
    assert server.exec("web.1_a-b", ["sh", "-c", "echo $X"])["stdout"] == "named\n"
    r = server.request("PUT", "/v1/sandboxes/web.1_a-b/files?path=/workspace/f", b"by name")
    assert r.status == 200
    assert server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/f" % sid).data == b"by name"
    assert [e["name"] for e in server.request("GET", "/v1/sandboxes/web.1_a-b/dir?path=/workspace").json["entries"]] \
        == ["f"]
    names = {s["id"]: s["name"] for s in server.request("GET", "/v1/sandboxes").json["sandboxes"]}
    assert names == {sid: "web.1_a-b", unnamed: None}
    # A taken name, or the id of another sandbox as a name: 409.
    for taken in ("web.1_a-b", unnamed):
        r = server.request("POST", "/v1/sandboxes", {"name": taken})
        assert r.status == 409 and r.json["error"]["code"] == "already_exists", r
    # Bad names, with the CLI's rule.
    for bad in ("", "-lead", ".hidden", "a/b", "a b", "x" * 65, "é"):
        r = server.request("POST", "/v1/sandboxes", {"name": bad})
        assert r.status == 400 and "name" in r.json["error"]["message"], (bad, r)
    r = server.request("POST", "/v1/sandboxes", {"name": 7})
    assert r.status == 400
    # An unknown name is 404 everywhere.
    for method, path, body in (("GET", "/v1/sandboxes/nosuch", None), ("DELETE", "/v1/sandboxes/nosuch", None),
                               ("POST", "/v1/sandboxes/nosuch/exec", {"argv": ["true"]}),
                               ("GET", "/v1/sandboxes/nosuch/processes", None)):
        r = server.request(method, path, body)
        assert r.status == 404 and r.json["error"]["code"] == "not_found", (path, r)
    assert server.request("GET", "/v1/sandboxes/x" + "y" * 64, check=False).status == 404  # longer than a name
    # Deleted by name, the name is free again.
    assert server.request("DELETE", "/v1/sandboxes/web.1_a-b").status == 204
    assert server.request("GET", "/v1/sandboxes/%s" % sid).status == 404
    r = server.request("POST", "/v1/sandboxes", {"name": "web.1_a-b"})
    assert r.status == 201 and r.json["id"] != sid
    assert server.request("DELETE", "/v1/sandboxes/web.1_a-b").status == 204
    assert server.request("DELETE", "/v1/sandboxes/%s" % unnamed).status == 204


def test_idempotency_key(server):
    key = "create-" + secrets.token_hex(8)
    r1 = server.request("POST", "/v1/sandboxes", {"memory_mb": 128}, headers={"Idempotency-Key": key})
    assert r1.status == 201
    sid = r1.json["id"]
    r2 = server.request("POST", "/v1/sandboxes", {"memory_mb": 128}, headers={"Idempotency-Key": key})
    assert r2.status == 200 and r2.json["id"] == sid and r2.headers["Idempotent-Replayed"] == "true"
    assert server.metric("sandboxes_created_total") == 1
    # Another key, or none, makes another sandbox.
    r3 = server.request("POST", "/v1/sandboxes", {}, headers={"Idempotency-Key": key + "-2"})
    assert r3.status == 201 and r3.json["id"] != sid
    for bad in ("has space", "x" * 256):
        r = server.request("POST", "/v1/sandboxes", {}, headers={"Idempotency-Key": bad})
        assert r.status == 400 and "Idempotency-Key" in r.json["error"]["message"]
    # Once its sandbox is gone, the key makes a new one.
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
    r4 = server.request("POST", "/v1/sandboxes", {}, headers={"Idempotency-Key": key})
    assert r4.status == 201 and r4.json["id"] not in (sid, r3.json["id"])
    # Creates with one key at the same time make one sandbox.
    key2 = "race-" + secrets.token_hex(8)
    answers, errors = [], []

    def one():
        try:
            answers.append(server.request("POST", "/v1/sandboxes", {"name": "raced"},
                                          headers={"Idempotency-Key": key2}))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert sorted(a.status for a in answers) == [200, 200, 200, 201], answers
    assert len({a.json["id"] for a in answers}) == 1
    for s in server.request("GET", "/v1/sandboxes").json["sandboxes"]:
        assert server.request("DELETE", "/v1/sandboxes/%s" % s["id"]).status == 204
    assert server.metric("sandboxes_live") == 0


# ---------------------------------------------------------------------------
# Background processes

def test_stat_and_mkdir(server):
    sid = server.create()
    base = "/v1/sandboxes/%s" % sid
    r = server.request("POST", base + "/dir?path=/workspace/a/b")
    _error(r, 404, "not_found")
    r = server.request("POST", base + "/dir?path=/workspace/a/b&parents=1")
    assert r.status == 201 and r.json == {"path": "/workspace/a/b"}, r
    r = server.request("POST", base + "/dir?path=/workspace/a/b&parents=1")
    assert r.status == 201, r  # an existing directory is no error with parents
    r = server.request("POST", base + "/dir?path=/workspace/a")
    assert r.status == 409 and r.json["error"]["code"] == "already_exists", r
    _error(server.request("POST", base + "/dir?path=/workspace/c&parents=yes"), 400, "invalid_argument", "parents")
    _error(server.request("POST", base + "/dir?path=/workspace/c", b"{}"), 400, "invalid_argument", "no body")
    _error(server.request("POST", base + "/dir"), 400, "invalid_argument", "path")
    r = server.request("PUT", base + "/files?path=/workspace/a/b/f", b"12345")
    assert r.status == 200
    server.exec(sid, ["sh", "-c", "chmod 0640 /workspace/a/b/f && ln -s b/f /workspace/a/l && touch -d @1700000000 "
                      "/workspace/a/b/f"])
    r = server.request("GET", base + "/stat?path=/workspace/a/b/f")
    assert r.status == 200, r
    st = r.json
    assert st["path"] == "/workspace/a/b/f" and st["type"] == "file" and st["size"] == 5 and st["mode"] == "0640"
    assert st["mtime_ns"] == 1700000000 * 10**9 and st["mtime"] == "2023-11-14T22:13:20.000000000Z"
    assert st["symlink"] is False and st["target"] is None
    st = server.request("GET", base + "/stat?path=a/l").json  # relative to /workspace; not followed
    assert st["type"] == "symlink" and st["symlink"] is True and st["target"] == "b/f"
    st = server.request("GET", base + "/stat?path=/workspace/a").json
    assert st["type"] == "directory" and st["mode"] == "0755"
    _error(server.request("GET", base + "/stat?path=/workspace/nope"), 404, "not_found")
    _error(server.request("GET", base + "/stat"), 400, "invalid_argument", "path")
    _error(server.request("GET", "/v1/sandboxes/nosuch/stat?path=/"), 404, "not_found")
    r = server.request("DELETE", base + "/stat?path=/", check=False)
    assert r.status == 405 and r.headers["Allow"] == "GET"
    r = server.request("PUT", base + "/dir?path=/", check=False)
    assert r.status == 405 and r.headers["Allow"] == "GET, POST"
    server.request("DELETE", base)


def test_modes_and_symlinks(server):
    """A file's and a directory's mode from the query (what `cp -r` copies
    in), and symlinks made as given, never followed."""
    sid = server.create()
    base = "/v1/sandboxes/%s" % sid
    assert server.request("PUT", base + "/files?path=/workspace/run.sh&mode=0751", b"#!/bin/sh\necho hi\n").status == 200
    assert server.request("GET", base + "/stat?path=/workspace/run.sh").json["mode"] == "0751"
    assert server.request("PUT", base + "/files?path=/workspace/plain", b"x").status == 200
    assert server.request("GET", base + "/stat?path=/workspace/plain").json["mode"] == "0644"
    r = server.request("POST", base + "/dir?path=/workspace/priv&mode=700")
    assert r.status == 201, r
    assert server.request("GET", base + "/stat?path=/workspace/priv").json["mode"] == "0700"
    assert server.exec(sid, ["/workspace/run.sh"])["stdout"] == "hi\n"
    for bad in ("1777", "0800", "abc", "", "07777"):
        _error(server.request("PUT", base + "/files?path=/workspace/b&mode=" + bad, b"x"), 400, "invalid_argument",
               "mode")
        _error(server.request("POST", base + "/dir?path=/workspace/d&mode=" + bad), 400, "invalid_argument", "mode")
    assert server.request("GET", base + "/stat?path=/workspace/b").status == 404, "a refused mode wrote the file"
    r = server.request("POST", base + "/symlink?path=/workspace/up&target=../etc/passwd")
    assert r.status == 201 and r.json == {"path": "/workspace/up", "target": "../etc/passwd"}, r
    r = server.request("POST", base + "/symlink?path=rel&target=run.sh")  # relative to /workspace
    assert r.status == 201, r
    st = server.request("GET", base + "/stat?path=/workspace/up").json
    assert st["type"] == "symlink" and st["target"] == "../etc/passwd", st
    assert server.exec(sid, ["readlink", "/workspace/rel"])["stdout"] == "run.sh\n"
    _error(server.request("POST", base + "/symlink?path=/workspace/up&target=x"), 409, "already_exists")
    _error(server.request("POST", base + "/symlink?path=/workspace/none/l&target=x"), 404, "not_found")
    _error(server.request("POST", base + "/symlink?path=/workspace/t"), 400, "invalid_argument", "target")
    _error(server.request("POST", base + "/symlink?target=x"), 400, "invalid_argument", "path")
    _error(server.request("POST", base + "/symlink?path=/workspace/t&target=x", b"{}"), 400, "invalid_argument",
           "no body")
    r = server.request("GET", base + "/symlink?path=/workspace/up", check=False)
    assert r.status == 405 and r.headers["Allow"] == "POST"
    server.request("DELETE", base)


def wait_ended(server, sid, pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = server.request("GET", "/v1/sandboxes/%s/processes/%d" % (sid, pid)).json
        if not p["running"]:
            return p
        time.sleep(0.05)
    raise AssertionError("process %d still runs" % pid)


def spawn(server, sid, argv, **kw):
    r = server.request("POST", "/v1/sandboxes/%s/processes" % sid, dict(kw, argv=argv))
    assert r.status == 201, r
    assert r.json["running"] is True and r.json["program"] == argv[0]
    joined = " ".join(argv)
    assert r.json["command"] == (joined if len(joined) <= 256 else joined[:253] + "..."), r
    return r.json["id"]


def test_processes_spawn_list_output(server):
    r = server.request("POST", "/v1/sandboxes", {"name": "procs", "env": {"A": "from-sandbox"}})
    assert r.status == 201
    p1 = spawn(server, "procs", ["sh", "-c", "echo out $A $B; echo err >&2; printf '\\377\\n'; exit 3"],
               env={"B": "from-spawn"}, workdir="/tmp")
    marker = unique_sleep_arg()
    p2 = spawn(server, "procs", ["sleep", marker])
    assert p2 != p1
    wait_running(marker)
    ended = wait_ended(server, "procs", p1)
    assert ended["exit_code"] == 3 and ended["signal"] == 0 and ended["timed_out"] is False
    assert ended["stdout_bytes"] == len(b"out from-sandbox from-spawn\n\xff\n") and ended["stderr_bytes"] == 4
    lst = server.request("GET", "/v1/sandboxes/procs/processes").json["processes"]
    assert [(p["id"], p["running"]) for p in lst] == [(p1, False), (p2, True)]
    assert "exit_code" not in lst[1] and lst[1]["age_ms"] >= 0
    out = server.request("GET", "/v1/sandboxes/procs/processes/%d/output" % p1).json
    assert base64.b64decode(out["stdout_b64"]) == b"out from-sandbox from-spawn\n\xff\n"
    assert out["stdout"] == "out from-sandbox from-spawn\n\ufffd\n" and out["stderr"] == "err\n"
    assert out["stdout_dropped"] == 0 and out["running"] is False
    # A running background process does not make its sandbox busy, and
    # other calls on the sandbox run while it does.
    info = server.request("GET", "/v1/sandboxes/procs").json
    assert info["busy"] is False
    assert server.exec("procs", ["echo", "meanwhile"])["stdout"] == "meanwhile\n"
    # timeout_ms applies; errors.
    p3 = spawn(server, "procs", ["sleep", "30"], timeout_ms=200)
    assert wait_ended(server, "procs", p3)["timed_out"] is True
    r = server.request("POST", "/v1/sandboxes/procs/processes", {"argv": ["/no/such/program"]})
    assert r.status == 404 and r.json["error"]["code"] == "not_found"
    for body in ({"argv": []}, {"argv": ["true"], "stdin": "text"}, {"argv": ["true"], "stdin_b64": ""},
                 {"argv": ["true"], "timeout_ms": -1}, {"argv": ["true"], "env": {"X": 1}}):
        r = server.request("POST", "/v1/sandboxes/procs/processes", body)
        assert r.status == 400 and r.json["error"]["code"] == "invalid_argument", (body, r)
    for path in ("/v1/sandboxes/procs/processes/999", "/v1/sandboxes/procs/processes/999/output"):
        r = server.request("GET", path)
        assert r.status == 404 and "999" in r.json["error"]["message"]
    assert server.request("GET", "/v1/sandboxes/procs/processes/0", check=False).status == 404
    r = server.request("PUT", "/v1/sandboxes/procs/processes", b"", check=False)
    assert r.status == 405 and r.headers["Allow"] == "GET, POST"
    # Deleting the sandbox ends its processes.
    assert server.request("DELETE", "/v1/sandboxes/procs").status == 204
    assert server.request("GET", "/v1/sandboxes/procs/processes").status == 404
    deadline = time.monotonic() + 20
    while procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_with_arg(marker), "a background process outlived its sandbox"


def test_process_output_is_bounded_and_drained(server):
    """A process nobody reads is drained by the server (it never blocks on a
    full pipe) and 1 MiB per stream is kept, older bytes counted as dropped."""
    sid = server.create()
    total = 3 << 20
    pid = spawn(server, sid, ["sh", "-c", "head -c %d /dev/zero | tr '\\0' a; echo end" % (total - 4)])
    ended = wait_ended(server, sid, pid, timeout=60)
    assert ended["exit_code"] == 0 and ended["stdout_bytes"] == total
    out = server.request("GET", "/v1/sandboxes/%s/processes/%d/output" % (sid, pid)).json
    assert len(out["stdout"]) == 1 << 20 and out["stdout"].endswith("aaend\n")
    assert out["stdout_dropped"] == total - (1 << 20)
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def follow(server, sid, pid, sink, conn=None):
    conn = conn or server.conn()
    conn.request("GET", "/v1/sandboxes/%s/processes/%d/output?follow=1" % (sid, pid))
    r = conn.getresponse()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    for ev in read_events(r):
        sink.append(ev)
    conn.close()


def test_process_follow_stream(server):
    sid = server.create()
    pid = spawn(server, sid, ["sh", "-c", "echo one; echo two >&2; sleep 0.5; for i in 1 2 3; do echo l$i; "
                                         "sleep 0.1; done; exit 5"])
    wait = time.monotonic()
    while server.request("GET", "/v1/sandboxes/%s/processes/%d" % (sid, pid)).json["stdout_bytes"] == 0:
        assert time.monotonic() - wait < 20
        time.sleep(0.02)
    events = []
    follow(server, sid, pid, events)   # joins while it runs: what was kept, then live output, then exit
    names = [n for n, _ in events]
    assert names[-1] == "exit" and names.count("exit") == 1, events
    assert events[-1][1]["exit_code"] == 5
    assert "".join(e["data"] for n, e in events if n == "stdout") == "one\nl1\nl2\nl3\n"
    assert "".join(e["data"] for n, e in events if n == "stderr") == "two\n"
    assert len([n for n in names if n == "stdout"]) >= 2, "nothing came live: %r" % events
    # Followed after its end: the kept output, then the exit.
    events = []
    follow(server, sid, pid, events)
    assert [n for n, _ in events] == ["stdout", "stderr", "exit"]
    assert events[0][1]["data"] == "one\nl1\nl2\nl3\n"
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_process_stdin(server):
    sid = server.create()
    pid = spawn(server, sid, ["cat"], stdin=True)
    assert server.request("GET", "/v1/sandboxes/%s/processes/%d" % (sid, pid)).json["stdin"] is True
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/stdin" % (sid, pid), b"hello ")
    assert r.status == 200 and r.json == {"written": 6, "closed": False}
    # Nearly 1 MiB that cat echoes: the server takes its output while it writes.
    big = base64.b64encode(os.urandom(700000))
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/stdin?close=1" % (sid, pid), big)
    assert r.status == 200 and r.json == {"written": len(big), "closed": True}, r
    ended = wait_ended(server, sid, pid)
    assert ended["exit_code"] == 0 and ended["stdin"] is False
    out = server.request("GET", "/v1/sandboxes/%s/processes/%d/output" % (sid, pid)).json
    assert out["stdout"].encode() == b"hello " + big
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/stdin" % (sid, pid), b"late")
    assert r.status == 409 and r.json["error"]["code"] == "bad_state"
    # Without "stdin": true there is no pipe.
    marker = unique_sleep_arg()
    p2 = spawn(server, sid, ["sleep", marker])
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/stdin" % (sid, p2), b"x")
    assert r.status == 409 and "stdin" in r.json["error"]["message"]
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/stdin?close=maybe" % (sid, p2), b"x")
    assert r.status == 400
    # An empty body with close=1 only closes.
    p3 = spawn(server, sid, ["wc", "-c"], stdin=True)
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/stdin?close=1" % (sid, p3), b"")
    assert r.status == 200 and r.json == {"written": 0, "closed": True}
    assert wait_ended(server, sid, p3)["exit_code"] == 0
    assert server.request("GET", "/v1/sandboxes/%s/processes/%d/output" % (sid, p3)).json["stdout"].strip() == "0"
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_process_signal_and_delete(server):
    sid = server.create()
    m1 = unique_sleep_arg()
    p1 = spawn(server, sid, ["sleep", m1])
    wait_running(m1)
    for bad in ({"signal": "NOPE"}, {"signal": 0}, {"signal": 65}, {"signal": [15]}, {}, {"sig": "TERM"}):
        r = server.request("POST", "/v1/sandboxes/%s/processes/%d/signal" % (sid, p1), bad)
        assert r.status == 400 and r.json["error"]["code"] == "invalid_argument", (bad, r)
    assert procs_with_arg(m1), "a refused signal was sent"
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/signal" % (sid, p1), {"signal": "TERM"})
    assert r.status == 204 and r.data == b""
    ended = wait_ended(server, sid, p1)
    assert ended["signal"] == signal.SIGTERM and ended["exit_code"] == -1
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/signal" % (sid, p1), {"signal": 9})
    assert r.status == 409 and r.json["error"]["code"] == "bad_state"
    m2 = unique_sleep_arg()
    p2 = spawn(server, sid, ["sh", "-c", "trap '' TERM; sleep %s; :" % m2])
    wait_running(m2)
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/signal" % (sid, p2), {"signal": "SIGusr1"})
    assert r.status == 204
    assert wait_ended(server, sid, p2)["signal"] == signal.SIGUSR1
    # "tree": SIGKILL to the process and everything it started; the process stays listed.
    m4 = unique_sleep_arg()
    p4 = spawn(server, sid, ["sh", "-c", "sleep %s & sleep %s; :" % (m4, m4)])
    wait_running(m4)
    for bad in ({"tree": True, "signal": "TERM"}, {"tree": 1}, {"tree": False}):
        _error(server.request("POST", "/v1/sandboxes/%s/processes/%d/signal" % (sid, p4), bad), 400, "invalid_argument")
    r = server.request("POST", "/v1/sandboxes/%s/processes/%d/signal" % (sid, p4), {"tree": True})
    assert r.status == 204, r
    assert wait_ended(server, sid, p4)["signal"] == signal.SIGKILL
    deadline = time.monotonic() + 10
    while procs_with_arg(m4) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_with_arg(m4), "the tree kill left a child running"
    assert server.request("DELETE", "/v1/sandboxes/%s/processes/%d" % (sid, p4)).status == 204
    long = spawn(server, sid, ["echo"] + ["x" * 100] * 4)
    assert server.request("GET", "/v1/sandboxes/%s/processes/%d" % (sid, long)).json["command"].endswith("x...")
    assert server.request("DELETE", "/v1/sandboxes/%s/processes/%d" % (sid, long)).status == 204
    # DELETE kills (everything it started), waits, and forgets.
    m3 = unique_sleep_arg()
    p3 = spawn(server, sid, ["sh", "-c", "sleep %s & sleep %s; :" % (m3, m3)])
    wait_running(m3)
    events = []
    t = threading.Thread(target=follow, args=(server, sid, p3, events))
    t.start()
    time.sleep(0.3)
    assert server.request("DELETE", "/v1/sandboxes/%s/processes/%d" % (sid, p3)).status == 204
    assert not procs_with_arg(m3), "DELETE returned before the process tree was gone"
    t.join(30)
    assert [n for n, _ in events] == ["error"] and events[0][1]["error"]["code"] == "not_found", events
    assert server.request("GET", "/v1/sandboxes/%s/processes/%d" % (sid, p3)).status == 404
    assert server.request("DELETE", "/v1/sandboxes/%s/processes/%d" % (sid, p3)).status == 404
    assert [p["id"] for p in server.request("GET", "/v1/sandboxes/%s/processes" % sid).json["processes"]] == [p1, p2]
    # An ended one is forgotten by DELETE too.
    assert server.request("DELETE", "/v1/sandboxes/%s/processes/%d" % (sid, p1)).status == 204
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_process_table_is_bounded(server):
    """A sandbox keeps its 32 newest background processes: a 33rd start
    forgets the oldest ended one. (32 running ones, when a 33rd is refused,
    are beyond the sandbox's default limit of 64 tasks.)"""
    sid = server.create()
    marker = unique_sleep_arg()
    ids = []
    for i in range(33):
        if i == 5:
            ids.append(spawn(server, sid, ["sleep", marker]))  # a running one is never forgotten
            continue
        ids.append(spawn(server, sid, ["sh", "-c", "echo $0", str(i)]))
        wait_ended(server, sid, ids[-1])
    listed = [p["id"] for p in server.request("GET", "/v1/sandboxes/%s/processes" % sid).json["processes"]]
    assert listed == ids[1:], (listed, ids)
    assert server.request("GET", "/v1/sandboxes/%s/processes/%d/output" % (sid, ids[0])).status == 404
    assert server.request("GET", "/v1/sandboxes/%s/processes/%d/output" % (sid, ids[1])).json["stdout"] == "1\n"
    ids.append(spawn(server, sid, ["true"]))
    listed = [p["id"] for p in server.request("GET", "/v1/sandboxes/%s/processes" % sid).json["processes"]]
    assert listed == ids[2:] and ids[5] in listed
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
    deadline = time.monotonic() + 20
    while procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_with_arg(marker)


def test_process_of_a_deleted_sandbox(server):
    """A follower of a process whose sandbox is deleted gets an error event;
    the process dies with the sandbox, and a server stopped with background
    processes running leaves nothing behind (the guard checks)."""
    sid = server.create(ttl_ms=0)
    marker = unique_sleep_arg()
    pid = spawn(server, sid, ["sh", "-c", "echo started; sleep %s" % marker])
    wait_running(marker)
    events = []
    t = threading.Thread(target=follow, args=(server, sid, pid, events))
    t.start()
    time.sleep(0.3)
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
    t.join(30)
    assert [n for n, _ in events] == ["stdout", "error"], events
    assert events[1][1]["error"]["code"] == "bad_state"
    deadline = time.monotonic() + 20
    while procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not procs_with_arg(marker)
    # Left running for the server's stop.
    other = server.create()
    spawn(server, other, ["sh", "-c", "while :; do echo tick; sleep 0.05; done"])
    running = server.request("GET", "/v1/sandboxes/%s/processes" % other).json["processes"]
    assert running[0]["running"] is True


# ---------------------------------------------------------------------------
# The server process: socket, shutdown, crash

def test_default_socket_private_and_single(guard, host_tmp):
    s = Server(guard, host_tmp, args=[], socket_path=os.path.join(guard.state_dir, "serve.sock")).start()
    try:
        st = os.stat(s.socket)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.geteuid()
        assert s.request("GET", "/v1/health").status == 200
        # A second server on the same socket is refused while the first lives.
        r = subprocess.run([CLI, "serve"], capture_output=True, text=True, timeout=60,
                           env=host_env({"MIMOBOX_STATE_DIR": guard.state_dir}))
        assert r.returncode == 125 and "already runs" in r.stderr, r
        assert s.request("GET", "/v1/health").status == 200
    finally:
        s.stop()


def test_graceful_stop_destroys_every_sandbox(guard, host_tmp):
    s = Server(guard, host_tmp).start()
    ids = [s.create() for _ in range(3)]
    marker = unique_sleep_arg()
    s.exec(ids[0], ["sh", "-c", "echo ok"])
    # A stream in flight ends too.
    conn = s.conn()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % ids[1],
                 body=json.dumps({"argv": ["sleep", marker], "timeout_ms": 600000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert next(read_events(r))[0] == "start"
    wait_running(marker)
    assert set(e for e in os.listdir(guard.state_dir)) >= set(i + ".lock" for i in ids)
    s.stop()
    assert "destroyed 3 sandboxes" in s.log_text()
    conn.close()
    assert not procs_with_arg(marker)
    # The guard checks that no state directory, cgroup or process remains.


def test_sigkill_then_restart_leaves_nothing(guard, host_tmp):
    s = Server(guard, host_tmp).start()
    ids = [s.create() for _ in range(2)]
    marker = unique_sleep_arg()
    conn = s.conn()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % ids[0],
                 body=json.dumps({"argv": ["sleep", marker], "timeout_ms": 600000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert next(read_events(r))[0] == "start"
    wait_running(marker)
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    conn.close()
    assert os.path.exists(s.socket), "a killed server cannot remove its socket"
    # Nothing of the dead server's sandboxes keeps running.
    deadline = time.monotonic() + 20
    while procs_with_arg(marker) and time.monotonic() < deadline:
        reap_zombies()
        time.sleep(0.05)
    assert not procs_with_arg(marker)
    # A new server replaces the stale socket; the dead sandboxes are gone
    # from its API, and the library collects their directories.
    s2 = Server(guard, host_tmp).start()
    assert s2.request("GET", "/v1/health").status == 200
    assert s2.request("GET", "/v1/sandboxes").json["sandboxes"] == []
    assert s2.request("GET", "/v1/sandboxes/%s" % ids[0]).status == 404
    fresh = s2.create()
    # A sandbox's state is its directory or its lock file (<id>.lock).
    left = {e[:-len(".lock")] if e.endswith(".lock") else e for e in os.listdir(guard.state_dir)} & set(ids)
    assert not left, "state of the dead server's sandboxes remains: %s" % left
    s2.request("DELETE", "/v1/sandboxes/%s" % fresh)
    s2.stop()


def test_socket_refuses_other_uid(guard, host_tmp, user):
    """SO_PEERCRED: another uid is refused even when the socket's mode lets it connect."""
    if not user.is_root:
        pytest.skip("needs root to run a client as another uid")
    s = Server(guard, host_tmp).start()
    try:
        os.chmod(s.socket, 0o666)
        # The request in one write: the server answers 403 from the peer's
        # credentials alone and may close before a body sent apart arrives.
        client = ("import http.client, socket, sys\n"
                  "so = socket.socket(socket.AF_UNIX); so.connect(sys.argv[1])\n"
                  "so.sendall(b'POST /v1/sandboxes HTTP/1.1\\r\\nHost: localhost\\r\\n'\n"
                  "           b'Content-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}')\n"
                  "r = http.client.HTTPResponse(so); r.begin(); print(r.status); print(r.read().decode())\n")
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                            sys.executable, "-c", client, s.socket], capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        assert r.returncode == 0, r
        status, body = r.stdout.split("\n", 1)
        assert status == "403", r.stdout
        check_response("POST", "/v1/sandboxes", 403, "application/json", body.encode())
        assert json.loads(body)["error"]["code"] == "permission_denied"
        assert s.request("GET", "/v1/sandboxes").json["sandboxes"] == []
    finally:
        s.stop()


def _free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_tcp_needs_the_token(guard, host_tmp):
    token_file = os.path.join(host_tmp, "token")
    # Without --token-file, TCP is refused.
    r = subprocess.run([CLI, "serve", "--listen", "127.0.0.1:%d" % _free_port()], capture_output=True, text=True,
                       timeout=60, env=host_env({"MIMOBOX_STATE_DIR": guard.state_dir}))
    assert r.returncode == 125 and "--token-file" in r.stderr
    port = _free_port()
    s = Server(guard, host_tmp, args=["--listen", "127.0.0.1:%d" % port, "--token-file", token_file]).start()
    try:
        st = os.stat(token_file)
        assert stat.S_IMODE(st.st_mode) == 0o600
        token = open(token_file).read().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", token)

        def call(method, path, headers=None, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                c.request(method, path, body=body, headers=headers or {})
                resp = c.getresponse()
                data = resp.read()
                check_response(method, path, resp.status, resp.headers.get("Content-Type"), data)
                return resp.status, resp.headers, data
            finally:
                c.close()

        status, headers, data = call("GET", "/v1/health")
        assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
        assert json.loads(data)["error"]["code"] == "unauthorized"
        assert call("GET", "/v1/health", {"Authorization": "Bearer " + "0" * 64})[0] == 401
        assert call("GET", "/v1/health", {"Authorization": "Bearer " + token[:-1]})[0] == 401
        assert call("GET", "/v1/health", {"Authorization": "Bearer " + token + "0"})[0] == 401
        assert call("GET", "/v1/health", {"Authorization": "Basic " + token})[0] == 401
        assert call("POST", "/v1/sandboxes", {}, "{}")[0] == 401
        assert call("GET", "/v1/health", {"Authorization": "Bearer " + token})[0] == 200
        status, _, data = call("POST", "/v1/run", {"Authorization": "Bearer " + token}, '{"argv": ["echo", "tcp"]}')
        assert status == 200 and json.loads(data)["stdout"] == "tcp\n"
    finally:
        s.stop()
    assert token not in s.log_text()
    # The next start reads the same token; a token file others can read is refused.
    os.chmod(token_file, 0o644)
    r = subprocess.run([CLI, "serve", "--listen", "127.0.0.1:%d" % port, "--token-file", token_file],
                       capture_output=True, text=True, timeout=60, env=host_env({"MIMOBOX_STATE_DIR": guard.state_dir}))
    assert r.returncode == 125 and "0600" in r.stderr and token not in r.stderr


def test_usage_errors(guard, host_tmp):
    env = host_env({"MIMOBOX_STATE_DIR": guard.state_dir})
    tok = os.path.join(host_tmp, "token")
    for args, words in ((["--socket", tok, "--listen", "127.0.0.1:1"], "not both"),
                        (["--token-file", tok], "--listen"),
                        (["--listen", "localhost", "--token-file", tok], "ADDR:PORT"),
                        (["--pool-size", "99"], "pool-size"),
                        (["extra"], "unexpected")):
        r = subprocess.run([CLI, "serve"] + args, capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 125 and words in r.stderr, (args, r)
    assert not os.path.exists(tok), "a refused command line made the token file"


# ---------------------------------------------------------------------------
# Snapshots, restores and forks

def _error(r, status, code, *words):
    assert r.status == status, r
    err = r.json["error"]
    assert err["code"] == code, r
    for w in words:
        assert w in err["message"], (w, r)
    return err


def test_snapshot_restore_fork(server):
    sid = server.create(memory_mb=256, env={"KEEP": "yes"}, workdir="/tmp")
    server.exec(sid, ["sh", "-c", "echo saved > /workspace/f; mkdir /workspace/d"])
    r = server.request("POST", "/v1/sandboxes/%s/snapshots" % sid)
    assert r.status == 201, r
    snap = r.json
    assert snap["sandbox_id"] == sid and snap["isolation"] == "os" and "files" in snap["contents"]
    assert snap["size_bytes"] >= len("saved\n")
    snap_id = snap["snapshot_id"]
    assert [x["snapshot_id"] for x in server.request("GET", "/v1/snapshots").json["snapshots"]] == [snap_id]
    assert server.request("GET", "/v1/snapshots/%s" % snap_id).json == snap
    # The parent changes on; the snapshot keeps what was.
    server.exec(sid, ["sh", "-c", "echo later > /workspace/f"])

    r = server.request("POST", "/v1/snapshots/%s/restore" % snap_id, {"ttl_ms": 600000})
    assert r.status == 201, r
    restored = r.json
    assert restored["id"] != sid and restored["ttl_ms"] == 600000
    # Described (and counted) as the sandbox it was taken of.
    assert restored["memory_mb"] == 256 and restored["env"] == ["KEEP"] and restored["workdir"] == "/tmp"
    res = server.exec(restored["id"], ["sh", "-c", "cat /workspace/f; test -d /workspace/d && echo dir; echo $KEEP"])
    assert res["stdout"] == "saved\ndir\nyes\n", res

    # Forks: three children with the parent's files, apart from it and from each other.
    r = server.request("POST", "/v1/sandboxes/%s/fork" % sid, {"count": 3})
    assert r.status == 201, r
    kids = [k["id"] for k in r.json["sandboxes"]]
    assert len(set(kids)) == 3 and sid not in kids and all(k["memory_mb"] == 256 for k in r.json["sandboxes"])
    for i, k in enumerate(kids):
        assert server.exec(k, ["cat", "/workspace/f"])["stdout"] == "later\n"
        server.exec(k, ["sh", "-c", "echo kid%d > /workspace/f" % i])
    assert server.exec(sid, ["cat", "/workspace/f"])["stdout"] == "later\n"
    assert [server.exec(k, ["cat", "/workspace/f"])["stdout"] for k in kids] == ["kid0\n", "kid1\n", "kid2\n"]
    listed = {x["id"] for x in server.request("GET", "/v1/sandboxes").json["sandboxes"]}
    assert listed == {sid, restored["id"]} | set(kids)
    assert server.metric("sandboxes_live") == 5 and server.metric("sandboxes_created_total") == 5
    for bad in ({"count": 0}, {"count": 17}, {"count": "3"}, {"cuont": 2}):
        _error(server.request("POST", "/v1/sandboxes/%s/fork" % sid, bad), 400, "invalid_argument")
    _error(server.request("POST", "/v1/sandboxes/%s/fork" % ("0" * 16), {"count": 1}), 404, "not_found")
    _error(server.request("POST", "/v1/sandboxes/%s/snapshots" % ("0" * 16)), 404, "not_found")

    # Every new sandbox is freed like the others.
    for k in kids + [restored["id"]]:
        assert server.request("DELETE", "/v1/sandboxes/%s" % k).status == 204
    assert server.metric("sandboxes_live") == 1 and server.metric("sandboxes_destroyed_total") == 4
    r = server.request("DELETE", "/v1/snapshots/%s" % snap_id)
    assert r.status == 204 and r.data == b""
    _error(server.request("GET", "/v1/snapshots/%s" % snap_id), 404, "not_found")
    _error(server.request("POST", "/v1/snapshots/%s/restore" % snap_id), 404, "not_found")
    assert server.request("GET", "/v1/snapshots").json["snapshots"] == []


def test_restore_and_fork_with_names(server):
    sid = server.create(name="parent")
    server.exec(sid, ["sh", "-c", "echo kept > /workspace/f"])
    snap = server.request("POST", "/v1/sandboxes/parent/snapshots", {})
    assert snap.status == 201, snap
    sn = snap.json["snapshot_id"]
    r = server.request("POST", "/v1/snapshots/%s/restore" % sn, {"name": "again"})
    assert r.status == 201 and r.json["name"] == "again", r
    assert server.exec("again", ["cat", "/workspace/f"])["stdout"] == "kept\n"
    _error(server.request("POST", "/v1/snapshots/%s/restore" % sn, {"name": "again"}), 409, "already_exists", "again")
    _error(server.request("POST", "/v1/snapshots/%s/restore" % sn, {"name": sid}), 409, "already_exists")
    _error(server.request("POST", "/v1/snapshots/%s/restore" % sn, {"name": "../x"}), 400, "invalid_argument")
    _error(server.request("POST", "/v1/snapshots/%s/restore" % sn, {"name": 5}), 400, "invalid_argument")
    r = server.request("POST", "/v1/sandboxes/parent/fork", {"names": ["kid-1", "kid-2"]})
    assert r.status == 201 and [k["name"] for k in r.json["sandboxes"]] == ["kid-1", "kid-2"], r
    assert server.exec("kid-2", ["cat", "/workspace/f"])["stdout"] == "kept\n"
    for bad, words in (({"names": []}, "names"), ({"names": ["a", "a"]}, "twice"), ({"names": ["a"], "count": 2}, "count"),
                       ({"names": ["ok", "b c"]}, "names"), ({"names": "kid"}, "names"), ({"names": [1]}, "strings"),
                       ({"names": ["n%d" % i for i in range(17)]}, "16")):
        _error(server.request("POST", "/v1/sandboxes/parent/fork", bad), 400, "invalid_argument", words)
    # A taken name refuses the whole fork: none of the others is made.
    _error(server.request("POST", "/v1/sandboxes/parent/fork", {"names": ["new-1", "kid-1"]}), 409, "already_exists",
           "kid-1")
    names = sorted(x.get("name", "") for x in server.request("GET", "/v1/sandboxes").json["sandboxes"])
    assert names == ["again", "kid-1", "kid-2", "parent"], names
    # The names are free again for a create after a refusal.
    assert server.request("POST", "/v1/sandboxes", {"name": "new-1"}).status == 201
    for name in ("again", "kid-1", "kid-2", "parent", "new-1"):
        assert server.request("DELETE", "/v1/sandboxes/" + name).status == 204
    assert server.request("DELETE", "/v1/snapshots/" + sn).status == 204


def test_snapshot_download_upload(server):
    sid = server.create()
    raw = bytes(range(256)) * 64
    assert server.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/blob" % sid, raw).status == 200
    snap_id = server.request("POST", "/v1/sandboxes/%s/snapshots" % sid).json["snapshot_id"]
    r = server.request("GET", "/v1/snapshots/%s/data" % snap_id)
    assert r.status == 200 and r.headers["Content-Type"] == "application/octet-stream"
    data = r.data
    assert len(data) > len(raw)
    server.request("DELETE", "/v1/sandboxes/%s" % sid)
    server.request("DELETE", "/v1/snapshots/%s" % snap_id)

    # Moved back in: a new snapshot, restorable, with the file whole.
    r = server.request("POST", "/v1/snapshots", data, {"Content-Type": "application/octet-stream"})
    assert r.status == 201, r
    assert r.json["sandbox_id"] is None and r.json["isolation"] == "os"
    up = r.json["snapshot_id"]
    new = server.request("POST", "/v1/snapshots/%s/restore" % up).json["id"]
    r = server.request("GET", "/v1/sandboxes/%s/files?path=/workspace/blob" % new)
    assert r.status == 200 and r.data == raw
    assert server.request("GET", "/v1/snapshots/%s/data" % up).data == data

    # Corrupt uploads are refused before anything is kept.
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    for body, status, code in ((data[:100], 400, "invalid_argument"), (b"not a snapshot at all", 400, "invalid_argument"),
                               (b"", 400, "invalid_argument"), (bytes(flipped), 403, "permission_denied")):
        err = _error(server.request("POST", "/v1/snapshots", body), status, code)
        assert err["suggestion"], err
    assert [x["snapshot_id"] for x in server.request("GET", "/v1/snapshots").json["snapshots"]] == [up]
    server.request("DELETE", "/v1/sandboxes/%s" % new)


def test_snapshot_store_is_bounded(guard, host_tmp):
    s = Server(guard, host_tmp, args=["--socket", os.path.join(host_tmp, "serve.sock"), "--max-snapshots", "2",
                                      "--max-snapshot-mb", "1"]).start()
    try:
        small = s.create()
        big = s.create()
        s.request("PUT", "/v1/sandboxes/%s/files?path=/workspace/big" % big, os.urandom(700 << 10))

        def take(sb):
            return s.request("POST", "/v1/sandboxes/%s/snapshots" % sb)

        first = take(small)
        assert first.status == 201
        assert take(big).status == 201
        _error(take(small), 507, "quota_exceeded", "at most 2 snapshots", "it keeps 2")
        s.request("DELETE", "/v1/snapshots/%s" % first.json["snapshot_id"])
        _error(take(big), 507, "quota_exceeded", "this one has")
        assert take(small).status == 201
        # An upload over --max-snapshot-mb is refused before it is read.
        so = socket.socket(socket.AF_UNIX)
        so.connect(s.socket)
        so.sendall(b"POST /v1/snapshots HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % ((1 << 20) + 1))
        resp = http.client.HTTPResponse(so)
        resp.begin()
        data = resp.read()
        so.close()
        check_response("POST", "/v1/snapshots", resp.status, resp.getheader("Content-Type"), data)
        assert resp.status == 413 and json.loads(data)["error"]["code"] == "too_large", data
        assert s.metric("snapshots_kept") == 2
    finally:
        s.stop()


# ---------------------------------------------------------------------------
# Quotas and the cap on live sandboxes

def _two_clients_server(guard, host_tmp, *args):
    """A server on 127.0.0.1 whose token file names the clients alice and bob:
    (the started Server, call(token, method, path, body=None, headers=None), alice's token, bob's token)."""
    port = _free_port()
    token_file = os.path.join(host_tmp, "tokens")
    alice, bob = secrets.token_hex(20), secrets.token_hex(20)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, ("# two clients\nalice %s\n\nbob\t%s\n" % (alice, bob)).encode())
    os.close(fd)
    s = Server(guard, host_tmp, args=["--listen", "127.0.0.1:%d" % port, "--token-file", token_file] + list(args))
    s.port = port
    s.start()

    def call(token, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            c.request(method, path, body=body, headers=dict(headers or {}, Authorization="Bearer " + token))
            resp = c.getresponse()
            data = resp.read()
            check_response(method, path, resp.status, resp.headers.get("Content-Type"), data)
            return Resp(resp.status, resp.headers, data)
        finally:
            c.close()

    return s, call, alice, bob


def _metric_of(call, token):
    """metric(name): the value of mimobox_NAME in the server's metrics, as the client of `token` reads them."""
    def metric(name):
        text = call(token, "GET", "/v1/metrics").data.decode()
        m = re.search(r"^mimobox_%s (\d+)$" % re.escape(name), text, re.M)
        assert m, (name, text)
        return int(m.group(1))
    return metric


def test_quotas_per_client_and_max_sandboxes(guard, host_tmp):
    s, call, alice, bob = _two_clients_server(guard, host_tmp, "--quota-sandboxes", "2", "--quota-memory-mb", "384",
                                              "--max-sandboxes", "3")

    metric = _metric_of(call, alice)

    try:
        a1 = call(alice, "POST", "/v1/sandboxes", {"memory_mb": 128}).json["id"]
        a2 = call(alice, "POST", "/v1/sandboxes", {"memory_mb": 128}).json["id"]
        _error(call(alice, "POST", "/v1/sandboxes", {"memory_mb": 64}), 429, "quota_exceeded",
               "client `alice`", "at most 2 sandboxes", "it has 2")
        _error(call(alice, "POST", "/v1/sandboxes/%s/fork" % a1, {"count": 1}), 429, "quota_exceeded", "alice")
        _error(call(alice, "POST", "/v1/run", {"argv": ["true"]}), 429, "quota_exceeded", "alice")
        assert call(alice, "DELETE", "/v1/sandboxes/%s" % a2).status == 204
        _error(call(alice, "POST", "/v1/sandboxes", {"memory_mb": 300}), 429, "quota_exceeded",
               "384 MiB", "have 128 MiB", "300 MiB more")
        a3 = call(alice, "POST", "/v1/sandboxes", {"memory_mb": 256}).json["id"]
        # Bob's own quota is untouched, but the server's cap counts everyone.
        b1 = call(bob, "POST", "/v1/sandboxes", {"memory_mb": 128}).json["id"]
        _error(call(bob, "POST", "/v1/sandboxes", {"memory_mb": 128}), 429, "quota_exceeded",
               "--max-sandboxes", "3 are live")
        assert metric('client_sandboxes{client="alice"}') == 2 and metric('client_sandboxes{client="bob"}') == 1
        assert metric('client_memory_mb{client="alice"}') == 384
        assert metric("quota_refusals_total") == 5
        # Freed again after DELETE (each by its own client).
        for who, sb in ((alice, a1), (alice, a3), (bob, b1)):
            assert call(who, "DELETE", "/v1/sandboxes/%s" % sb).status == 204
        assert metric('client_sandboxes{client="alice"}') == 0 and metric('client_memory_mb{client="bob"}') == 0
        b2 = call(bob, "POST", "/v1/sandboxes", {"memory_mb": 384}).json["id"]
        _error(call(bob, "POST", "/v1/sandboxes/%s/fork" % b2, {"count": 2}), 429, "quota_exceeded", "client `bob`")
        # A run counts too (512 MiB by default: over alice's 384).
        _error(call(alice, "POST", "/v1/run", {"argv": ["true"]}), 429, "quota_exceeded", "512 MiB more")
        assert call(alice, "POST", "/v1/run", {"argv": ["echo", "ok"], "memory_mb": 128}).json["stdout"] == "ok\n"
        call(bob, "DELETE", "/v1/sandboxes/%s" % b2)
    finally:
        s.stop()
    assert alice not in s.log_text() and bob not in s.log_text()


def test_process_quota_per_client(guard, host_tmp):
    s, call, alice, bob = _two_clients_server(guard, host_tmp, "--quota-procs", "100")
    metric = _metric_of(call, alice)
    try:
        a1 = call(alice, "POST", "/v1/sandboxes", {}).json
        assert a1["max_procs"] == 64, a1  # the default counts
        _error(call(alice, "POST", "/v1/sandboxes", {}), 429, "quota_exceeded", "client `alice`",
               "at most 100 processes", "may hold 64", "64 more", "--quota-procs")
        _error(call(alice, "POST", "/v1/run", {"argv": ["true"]}), 429, "quota_exceeded", "--quota-procs")
        small = call(alice, "POST", "/v1/sandboxes", {"max_procs": 30}).json
        assert small["max_procs"] == 30, small
        assert metric('client_procs{client="alice"}') == 94 and metric('client_procs{client="bob"}') == 0
        r = call(alice, "POST", "/v1/run", {"argv": ["true"], "max_procs": 6}).json
        assert r["exit_code"] == 0, r
        # Bob's quota is his own; a deletion gives back what it held.
        b1 = call(bob, "POST", "/v1/sandboxes", {"max_procs": 100}).json["id"]
        assert call(alice, "DELETE", "/v1/sandboxes/%s" % a1["id"]).status == 204
        assert metric('client_procs{client="alice"}') == 30
        assert call(alice, "POST", "/v1/sandboxes", {"max_procs": 70}).status == 201
        assert call(bob, "DELETE", "/v1/sandboxes/%s" % b1).status == 204
    finally:
        s.stop()


def test_disk_and_snapshot_quotas_per_client(guard, host_tmp):
    s, call, alice, bob = _two_clients_server(guard, host_tmp, "--quota-disk-mb", "3000", "--quota-snapshots", "1")

    metric = _metric_of(call, alice)

    try:
        a1 = call(alice, "POST", "/v1/sandboxes", {}).json
        assert a1["disk_mb"] == 2048, a1  # the default counts
        _error(call(alice, "POST", "/v1/sandboxes", {}), 429, "quota_exceeded", "client `alice`",
               "at most 3000 MiB of sandbox storage", "have 2048 MiB", "2048 MiB more")
        _error(call(alice, "POST", "/v1/run", {"argv": ["true"]}), 429, "quota_exceeded", "--quota-disk-mb")
        small = call(alice, "POST", "/v1/sandboxes", {"disk_mb": 16}).json
        assert small["disk_mb"] == 16, small
        assert metric('client_disk_mb{client="alice"}') == 2064 and metric('client_disk_mb{client="bob"}') == 0
        # The limit is the sandbox's: 16 MiB of storage, however much the host has.
        r = call(alice, "POST", "/v1/sandboxes/%s/exec" % small["id"],
                 {"argv": ["sh", "-c", "head -c 33554432 /dev/zero > /workspace/big"]}).json
        assert r["exit_code"] != 0 and "No space left on device" in r["stderr"], r
        for bad in (0, 1048577, "16", 1.5):
            _error(call(alice, "POST", "/v1/sandboxes", {"disk_mb": bad}), 400, "invalid_argument", "disk_mb")
        # Bob's quota is his own.
        b1 = call(bob, "POST", "/v1/sandboxes", {"disk_mb": 2048}).json["id"]
        # Snapshots: one kept per client.
        snap = call(alice, "POST", "/v1/sandboxes/%s/snapshots" % small["id"])
        assert snap.status == 201, snap
        _error(call(alice, "POST", "/v1/sandboxes/%s/snapshots" % small["id"]), 429, "quota_exceeded",
               "client `alice`", "at most 1 snapshots", "it keeps 1")
        assert call(bob, "POST", "/v1/sandboxes/%s/snapshots" % b1).status == 201
        assert metric('client_snapshots{client="alice"}') == 1 and metric('client_snapshots{client="bob"}') == 1
        assert call(alice, "DELETE", "/v1/snapshots/%s" % snap.json["snapshot_id"]).status == 204
        assert metric('client_snapshots{client="alice"}') == 0
        assert call(alice, "POST", "/v1/sandboxes/%s/snapshots" % small["id"]).status == 201
        # Freed with the sandboxes.
        for who, sb in ((alice, a1["id"]), (alice, small["id"]), (bob, b1)):
            assert call(who, "DELETE", "/v1/sandboxes/%s" % sb).status == 204
        assert metric('client_disk_mb{client="alice"}') == 0 and metric('client_disk_mb{client="bob"}') == 0
    finally:
        s.stop()


def _pty_handshake(port, token, path):
    """A WebSocket handshake for a terminal over TCP: (status, headers, body of a refusal); the socket is closed."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as so:
        so.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                    % (path, token, key)).encode())
        resp = http.client.HTTPResponse(so)
        resp.begin()
        body = b"" if resp.status == 101 else resp.read()
        return resp.status, resp.headers, body


def test_clients_are_tenants(guard, host_tmp):
    """Each client of a token file sees and uses only its own sandboxes, processes and snapshots:
    another client's answer exactly as missing ones do, lists are the caller's, names and
    Idempotency-Keys are per client; the metrics stay the server's."""
    s, call, alice, bob = _two_clients_server(guard, host_tmp)

    def as_missing(who, method, path, ref, missing, body=None, headers=None):
        """`path` (naming `ref`, another client's) answers as the same path naming `missing`, which does not exist."""
        got = call(who, method, path, body, headers)
        want = call(who, method, path.replace(ref, missing), body, headers)
        assert got.status == want.status == 404, (method, path, got, want)
        assert got.json["error"]["code"] == "not_found", got
        assert got.json == json.loads(want.data.decode().replace(missing, ref)), (method, path, got, want)

    try:
        r = call(alice, "POST", "/v1/sandboxes", {"name": "web"}, {"Idempotency-Key": "same-key"})
        assert r.status == 201, r
        a_id = r.json["id"]
        assert call(alice, "PUT", "/v1/sandboxes/web/files?path=/workspace/f", b"alice's\n").status == 200
        r = call(alice, "POST", "/v1/sandboxes/web/processes",
                 {"argv": ["sh", "-c", "echo started; exec cat"], "stdin": True})
        assert r.status == 201, r
        pid = r.json["id"]
        r = call(alice, "POST", "/v1/sandboxes/web/snapshots", {})
        assert r.status == 201, r
        snap_id = r.json["snapshot_id"]

        # Bob lists nothing of alice's.
        assert call(bob, "GET", "/v1/sandboxes").json["sandboxes"] == []
        assert call(bob, "GET", "/v1/snapshots").json["snapshots"] == []
        # Every route naming alice's sandbox, by id or by name, answers bob as a missing one.
        for ref in (a_id, "web"):
            missing = "0123456789abcdef" if ref == a_id else "nosuch"
            sb = "/v1/sandboxes/" + ref
            for method, path, body in (
                    ("GET", sb, None), ("DELETE", sb, None),
                    ("POST", sb + "/exec", {"argv": ["cat", "/workspace/f"]}),
                    ("POST", sb + "/exec?stream=1", {"argv": ["true"]}),
                    ("GET", sb + "/files?path=/workspace/f", None),
                    ("PUT", sb + "/files?path=/workspace/f", b"bob's\n"),
                    ("DELETE", sb + "/files?path=/workspace/f", None),
                    ("GET", sb + "/dir?path=/workspace", None),
                    ("POST", sb + "/dir?path=/workspace/d", None),
                    ("GET", sb + "/stat?path=/workspace/f", None),
                    ("POST", sb + "/symlink?path=/workspace/l&target=f", None),
                    ("POST", sb + "/processes", {"argv": ["true"]}),
                    ("GET", sb + "/processes", None),
                    ("GET", sb + "/processes/%d" % pid, None),
                    ("POST", sb + "/processes/%d/signal" % pid, {"signal": "KILL"}),
                    ("POST", sb + "/processes/%d/signal" % pid, {"tree": True}),
                    ("POST", sb + "/processes/%d/stdin?close=1" % pid, b"bob\n"),
                    ("GET", sb + "/processes/%d/output" % pid, None),
                    ("GET", sb + "/processes/%d/output?follow=1" % pid, None),
                    ("DELETE", sb + "/processes/%d" % pid, None),
                    ("POST", sb + "/snapshots", {}),
                    ("POST", sb + "/fork", {"count": 1}),
                    ("POST", sb + "/fork", {"names": ["bobs-kid"]}),
                    ("GET", sb + "/network/audit", None)):
                as_missing(bob, method, path, ref, missing, body)
            # A terminal: refused before the upgrade, as for a missing sandbox.
            got = _pty_handshake(s.port, bob, sb + "/pty?cmd=sh")
            want = _pty_handshake(s.port, bob, "/v1/sandboxes/%s/pty?cmd=sh" % missing)
            assert got[0] == want[0] == 404, (got, want)
            assert json.loads(got[2]) == json.loads(want[2].decode().replace(missing, ref)), (got, want)
        # And alice's snapshot: not there for bob.
        for method, path, body in (("GET", "/v1/snapshots/" + snap_id, None),
                                   ("GET", "/v1/snapshots/%s/data" % snap_id, None),
                                   ("POST", "/v1/snapshots/%s/restore" % snap_id, {}),
                                   ("POST", "/v1/snapshots/%s/restore" % snap_id, {"name": "stolen"}),
                                   ("DELETE", "/v1/snapshots/" + snap_id, None)):
            as_missing(bob, method, path, snap_id, "fedcba9876543210", body)

        # Names and idempotency keys are per client: bob's `web` is his own sandbox; his
        # create with alice's key makes a new one (and replays his own); alice's id is a name he may take.
        r = call(bob, "POST", "/v1/sandboxes", {"name": "web"}, {"Idempotency-Key": "same-key"})
        assert r.status == 201 and r.json["id"] != a_id and r.json["name"] == "web", r
        b_id = r.json["id"]
        r = call(bob, "POST", "/v1/sandboxes", {"name": "web"}, {"Idempotency-Key": "same-key"})
        assert r.status == 200 and r.json["id"] == b_id and r.headers["Idempotent-Replayed"] == "true", r
        r = call(alice, "POST", "/v1/sandboxes", {}, {"Idempotency-Key": "same-key"})
        assert r.status == 200 and r.json["id"] == a_id, r
        _error(call(bob, "POST", "/v1/sandboxes", {"name": "web"}), 409, "already_exists", "web")
        r = call(bob, "POST", "/v1/sandboxes", {"name": a_id})
        assert r.status == 201 and r.json["id"] != a_id, r
        b_named_as_a = r.json["id"]
        assert call(bob, "GET", "/v1/sandboxes/" + a_id).json["id"] == b_named_as_a
        assert call(bob, "POST", "/v1/sandboxes/web/exec", {"argv": ["sh", "-c", "echo bob > /workspace/f"]}).status == 200
        r = call(bob, "POST", "/v1/sandboxes/web/fork", {"names": ["bobs-kid"]})
        assert r.status == 201, r
        bobs_kid = r.json["sandboxes"][0]["id"]
        b_snap = call(bob, "POST", "/v1/sandboxes/web/snapshots", {}).json["snapshot_id"]
        assert sorted(x["id"] for x in call(bob, "GET", "/v1/sandboxes").json["sandboxes"]) == \
            sorted([b_id, b_named_as_a, bobs_kid])
        assert [x["snapshot_id"] for x in call(bob, "GET", "/v1/snapshots").json["snapshots"]] == [b_snap]
        as_missing(alice, "GET", "/v1/sandboxes/" + bobs_kid, bobs_kid, "0123456789abcdef")
        as_missing(alice, "GET", "/v1/snapshots/" + b_snap, b_snap, "fedcba9876543210")

        # Alice's things are untouched, and she still does everything with them.
        assert [x["id"] for x in call(alice, "GET", "/v1/sandboxes").json["sandboxes"]] == [a_id]
        assert [x["snapshot_id"] for x in call(alice, "GET", "/v1/snapshots").json["snapshots"]] == [snap_id]
        assert call(alice, "GET", "/v1/sandboxes/web/files?path=/workspace/f").data == b"alice's\n"
        r = call(alice, "GET", "/v1/sandboxes/web/processes/%d" % pid)
        assert r.status == 200 and r.json["running"] and r.json["stdin"], r
        r = call(alice, "POST", "/v1/sandboxes/web/processes/%d/stdin?close=1" % pid, b"alice\n")
        assert r.status == 200 and r.json["closed"], r
        deadline = time.monotonic() + 30
        while call(alice, "GET", "/v1/sandboxes/web/processes/%d" % pid).json["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert call(alice, "GET", "/v1/sandboxes/web/processes/%d/output" % pid).json["stdout"] == "started\nalice\n"
        for path in ("/v1/sandboxes/web/dir?path=/workspace", "/v1/sandboxes/web/stat?path=/workspace/f",
                     "/v1/sandboxes/web/network/audit", "/v1/sandboxes/" + a_id):
            assert call(alice, "GET", path).status == 200, path
        assert call(alice, "POST", "/v1/sandboxes/web/exec", {"argv": ["cat", "/workspace/f"]}).json["stdout"] == "alice's\n"
        st = _pty_handshake(s.port, alice, "/v1/sandboxes/web/pty?cmd=true")
        assert st[0] == 101, st
        assert len(call(alice, "GET", "/v1/snapshots/%s/data" % snap_id).data) > 0
        r = call(alice, "POST", "/v1/snapshots/%s/restore" % snap_id, {"name": "stolen"})
        assert r.status == 201, r
        restored = r.json["id"]
        assert call(alice, "POST", "/v1/sandboxes/stolen/exec", {"argv": ["cat", "/workspace/f"]}).json["stdout"] == \
            "alice's\n"
        r = call(alice, "POST", "/v1/sandboxes/web/fork", {"names": ["bobs-kid"]})
        assert r.status == 201, r
        alices_kid = r.json["sandboxes"][0]["id"]
        # The metrics are the operator's: the whole server's, whoever asks.
        text = call(bob, "GET", "/v1/metrics").data.decode()
        assert re.search(r"^mimobox_sandboxes_live 6$", text, re.M), text
        assert 'mimobox_client_sandboxes{client="alice"} 3' in text, text
        for sb in (restored, alices_kid, "web"):
            assert call(alice, "DELETE", "/v1/sandboxes/" + sb).status == 204
        assert call(alice, "DELETE", "/v1/snapshots/" + snap_id).status == 204
        for sb in (bobs_kid, b_named_as_a, "web"):
            assert call(bob, "DELETE", "/v1/sandboxes/" + sb).status == 204
        assert call(bob, "DELETE", "/v1/snapshots/" + b_snap).status == 204
    finally:
        s.stop()


def test_cpu_quota(guard, host_tmp):
    s = Server(guard, host_tmp, args=["--socket", os.path.join(host_tmp, "serve.sock"), "--quota-cpus", "1.5"]).start()
    try:
        # Over the quota: refused before anything is made, wherever the host stands.
        _error(s.request("POST", "/v1/sandboxes", {"cpus": 2}), 429, "quota_exceeded", "at most 1.500 CPUs")
        r = s.request("POST", "/v1/sandboxes", {"cpus": 0.5})
        if r.status == 501:
            # No cgroup with the cpu controller (unprivileged, not delegated): the
            # limit cannot be applied, so the sandbox is refused, and its quota given back.
            assert r.json["error"]["layer"] == "limits", r
            assert s.metric(re.escape('client_millicpus{client="uid:%d"}' % os.geteuid())) == 0
            pytest.skip("no cgroup with the cpu controller here: %s" % r.json["error"]["message"])
        assert r.status == 201 and r.json["cpus"] == 0.5, r
        half = r.json["id"]
        # Without `cpus` a sandbox gets (and counts) 1 CPU under a CPU quota.
        r = s.request("POST", "/v1/sandboxes", {})
        assert r.status == 201 and r.json["cpus"] == 1.0, r
        one = r.json["id"]
        _error(s.request("POST", "/v1/sandboxes", {"cpus": 0.25}), 429, "quota_exceeded",
               "at most 1.500 CPUs", "have 1.500", "0.250 more")
        _error(s.request("POST", "/v1/sandboxes", {"cpus": 0}), 400, "invalid_argument", "cpus")
        s.request("DELETE", "/v1/sandboxes/%s" % one)
        assert s.request("POST", "/v1/sandboxes/%s/fork" % half, {"count": 2}).status == 201
        _error(s.request("POST", "/v1/sandboxes/%s/fork" % half, {"count": 1}), 429, "quota_exceeded", "CPUs")
    finally:
        s.stop()


def test_token_file_formats(guard, host_tmp):
    env = host_env({"MIMOBOX_STATE_DIR": guard.state_dir})
    tok = secrets.token_hex(20)
    for i, (text, words) in enumerate((("a %s\na %s\n" % (tok, tok[::-1]), "twice"),
                                       ("a %s\nb %s\n" % (tok, tok), "same token"),
                                       ("%s\nb %s\n" % (tok, tok[::-1]), "only line"),
                                       ("a b %s\n" % tok, "NAME TOKEN"),
                                       ("bad/name %s\n" % tok, "name"),
                                       ("a short\n", "16 to"),
                                       ("# nothing\n\n", "no token"))):
        path = os.path.join(host_tmp, "tokens%d" % i)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, text.encode())
        os.close(fd)
        r = subprocess.run([CLI, "serve", "--listen", "127.0.0.1:%d" % _free_port(), "--token-file", path],
                           capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 125 and words in r.stderr, (text, r)
        assert tok not in r.stderr and tok[::-1] not in r.stderr


# ---------------------------------------------------------------------------
# The network audit log, pools, socket activation

def test_network_audit(server):
    # A loopback listener the sandbox's requests name: the proxy must refuse them, so nothing reaches it.
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(4)
    lst.setblocking(False)
    port = lst.getsockname()[1]
    try:
        sid = server.create(network=["allowed.invalid"])
        code = ("import urllib.request\n"
                "for u in ('http://denied.invalid:%d/x', 'http://other.invalid:%d/y'):\n"
                "    try:\n        urllib.request.urlopen(u, timeout=20)\n"
                "    except Exception as e:\n        print(e)\n" % (port, port))
        res = server.exec(sid, ["python3", "-c", code])
        assert res["stdout"].count("403") == 2, res
        r = server.request("GET", "/v1/sandboxes/%s/network/audit" % sid)
        assert r.status == 200, r
        recs = r.json["records"]
        assert r.json["dropped"] == 0
        assert [(x["host"], x["port"], x["verdict"], x["source"]) for x in recs] == [
            ("denied.invalid", port, "denied", "proxy"), ("other.invalid", port, "denied", "proxy")], recs
        assert "not in the allow list" in recs[0]["reason"] and recs[0]["status"] == 403
        assert recs[0]["method"] == "GET" and recs[0]["time_us"] > 1.5e15
        with pytest.raises(BlockingIOError):
            lst.accept()
        # A sandbox without network has an empty log; an unknown one is 404.
        quiet = server.create()
        assert server.request("GET", "/v1/sandboxes/%s/network/audit" % quiet).json == {"records": [], "dropped": 0}
        _error(server.request("GET", "/v1/sandboxes/%s/network/audit" % ("0" * 16)), 404, "not_found")
        assert server.request("POST", "/v1/sandboxes/%s/network/audit" % quiet, check=False).status == 405
    finally:
        lst.close()


def test_http_route(server, cli, host_tmp):
    """POST .../http: a request under the sandbox's policy, made on the host
    (mbx_sandbox_http_request). The sandbox reaches a loopback server by a
    name under .invalid: made by the CLI with --add-host and
    --allow-private, which the API has not, and restored on the server."""
    from netservers import WebServer
    web = WebServer(label="plain")
    local = {"MIMOBOX_HOST": "local"}
    name = "web-" + secrets.token_hex(3)
    snap = os.path.join(host_tmp, "web.snap")
    try:
        assert cli(["create", "--name", name, "--network", "allow:api.example.invalid", "--add-host",
                    "api.example.invalid:127.0.0.1", "--add-host", "denied.invalid:127.0.0.1", "--allow-private"],
                   env=local).rc == 0
        assert cli(["snapshot", name, snap], env=local).rc == 0
        assert cli(["rm", name], env=local).rc == 0
        with open(snap, "rb") as f:
            r = server.request("POST", "/v1/snapshots", f.read(), {"Content-Type": "application/octet-stream"})
        assert r.status == 201, r
        up = r.json["snapshot_id"]
        sid = server.request("POST", "/v1/snapshots/%s/restore" % up).json["id"]
        server.request("DELETE", "/v1/snapshots/%s" % up)
        base = "http://api.example.invalid:%d" % web.port
        path = "/v1/sandboxes/%s/http" % sid

        r = server.request("POST", path, {"url": base + "/hello"})
        assert r.status == 200 and r.json["status"] == 200 and r.json["url"] == base + "/hello", r
        assert r.json["body"] == "plain api.example.invalid:%d /hello\n" % web.port and "body_b64" not in r.json, r
        assert {"name": "X-Server", "value": "plain"} in r.json["headers"], r
        assert web.hits[-1] == ("GET", "api.example.invalid:%d" % web.port, "/hello"), web.hits
        # Bytes both ways: body_b64 in, body_b64 out when it is not UTF-8; POST by default with a body.
        raw = b"\x00\xff bytes"
        r = server.request("POST", path, {"url": base + "/echo", "body_b64": base64.b64encode(raw).decode(),
                                          "headers": ["X-Test: 1"]})
        assert r.status == 200 and base64.b64decode(r.json["body_b64"]) == raw, r
        assert web.hits[-1][0] == "POST", web.hits
        r = server.request("POST", path, {"method": "PUT", "url": base + "/echo", "body": "text"})
        assert r.status == 200 and r.json["body"] == "text" and web.hits[-1][0] == "PUT", r
        # Redirects are followed: the answer names the last URL.
        r = server.request("POST", path, {"url": base + "/redirect?to=" + base + "/there"})
        assert r.status == 200 and r.json["url"] == base + "/there", r
        # The policy refuses: 403 `denied`, and nothing reaches the listener.
        hits = len(web.hits)
        _error(server.request("POST", path, {"url": "http://denied.invalid:%d/" % web.port}), 403, "denied",
               "not in the allow list")
        assert len(web.hits) == hits, "a denied host was reached"
        # Each request is in the network log, as the library's.
        recs = server.request("GET", "/v1/sandboxes/%s/network/audit" % sid).json["records"]
        assert [x["source"] for x in recs] == ["api"] * len(recs) and recs[-1]["verdict"] == "denied", recs
        assert recs[-1]["host"] == "denied.invalid", recs
        # Bad requests.
        for body, words in [({}, "`url` is required"), ({"url": base, "bogus": 1}, "unknown field `bogus`"),
                            ({"url": base, "body": "a", "body_b64": "YQ=="}, "not both"),
                            ({"url": base, "headers": "X: y"}, "array"), ({"url": base, "headers": [1]}, "array"),
                            ({"url": base, "body_b64": "%%%"}, "not base64"), ({"url": 5}, "must be a string"),
                            ({"url": base, "method": ""}, "empty"), ({"url": "ftp://x.invalid/"}, "")]:
            _error(server.request("POST", path, body), 400, "invalid_argument", words)
        _error(server.request("POST", "/v1/sandboxes/%s/http" % ("0" * 16), {"url": base}), 404, "not_found")
        assert server.request("GET", path, check=False).status == 405
        server.request("DELETE", "/v1/sandboxes/%s" % sid)
    finally:
        web.close()
        cli(["rm", "-f", name], env=local)


def test_pool_freed_when_idle(guard, host_tmp):
    s = Server(guard, host_tmp, args=["--socket", os.path.join(host_tmp, "serve.sock"), "--pool-size", "1",
                                      "--pool-idle-ms", "300"]).start()
    try:
        assert s.request("POST", "/v1/run", {"argv": ["true"]}).status == 200
        deadline = time.monotonic() + 30
        while s.metric("pools_freed_idle_total") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.metric("pools_freed_idle_total") == 1 and s.metric("pools") == 0
        # A later run makes its pool again.
        assert s.request("POST", "/v1/run", {"argv": ["echo", "again"]}).json["stdout"] == "again\n"
    finally:
        s.stop()


_ACTIVATE = r"""
import os, socket, sys
path, fds = sys.argv[1], sys.argv[2]
so = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
so.bind(path)
so.listen(16)
os.dup2(so.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = fds
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[3], sys.argv[3:])
"""


def test_socket_activation(guard, host_tmp, user):
    path = os.path.join(host_tmp, "activated.sock")
    s = Server(guard, host_tmp, args=[], socket_path=path,
               cmd=[sys.executable, "-c", _ACTIVATE, path, "1", CLI, "serve"])
    s.owns_socket = False
    s.start()
    try:
        assert "listening on unix:%s (socket activation)" % path in s.log_text()
        sid = s.create()
        res = s.exec(sid, ["sh", "-c", "env | grep -c ^LISTEN_ || true"])
        assert res["stdout"] == "0\n", res
        assert not os.path.exists(os.path.join(guard.state_dir, "serve.sock"))
        if user.is_root:
            # The caller's uid is checked on a socket the server did not make, too.
            os.chmod(path, 0o666)
            client = ("import http.client, socket, sys\n"
                      "so = socket.socket(socket.AF_UNIX); so.connect(sys.argv[1])\n"
                      "so.sendall(b'GET /v1/sandboxes HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n')\n"
                      "r = http.client.HTTPResponse(so); r.begin(); print(r.status)\n")
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                                sys.executable, "-c", client, path], capture_output=True, text=True, timeout=60,
                               env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
            assert r.returncode == 0 and r.stdout == "403\n", r
    finally:
        s.stop()
    # The socket is systemd's: it stays.
    assert os.path.exists(path)
    os.unlink(path)
    env = host_env({"MIMOBOX_STATE_DIR": guard.state_dir})
    r = subprocess.run([sys.executable, "-c", _ACTIVATE, path, "2", CLI, "serve"], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 125 and "exactly one" in r.stderr, r
    os.unlink(path)
    r = subprocess.run([sys.executable, "-c", _ACTIVATE, path, "1", CLI, "serve", "--socket", path + "2"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 125 and "socket activation" in r.stderr, r
    os.unlink(path)


def _cut_off(sock, deadline_s):
    """Whether the server closed `sock` (EOF or a reset) within deadline_s,
    without answering; reads what comes."""
    sock.settimeout(deadline_s)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return data == b""
            data += chunk
    except ConnectionResetError:
        return data == b""
    except socket.timeout:
        return False


def test_slow_clients_are_cut_off(guard, host_tmp):
    """--request-timeout-ms: a head that trickles in and a body slower than
    16 KiB/s are cut off and counted; a request that comes whole, an idle
    keep-alive connection and an execute longer than the bound are not."""
    s = Server(guard, host_tmp, args=["--socket", os.path.join(host_tmp, "serve.sock"),
                                      "--request-timeout-ms", "1000"]).start()
    try:
        # A head that never ends: a byte every 0.2 s (never idle for MHD).
        head = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        head.connect(s.socket)
        head.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < 6:
            try:
                head.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            head.settimeout(0.2)
            try:
                if head.recv(4096) == b"":
                    cut = True
                    break
            except socket.timeout:
                pass
        head.close()
        assert cut, "a head trickling in for 6 s was not cut off"
        assert time.monotonic() - t0 >= 0.9, "cut off before the bound"

        # A body far slower than 16 KiB/s.
        body = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        body.connect(s.socket)
        body.sendall(b"POST /v1/sandboxes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n{")
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < 8 and not cut:
            try:
                body.sendall(b" " * 16)
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            body.settimeout(0.2)
            try:
                data = body.recv(4096)
                cut = data == b""
                assert not data, data
            except socket.timeout:
                pass
        body.close()
        assert cut, "a body at 80 bytes/s was not cut off"
        assert s.metric("slow_clients_total") >= 2

        # Whole requests on one keep-alive connection with idle gaps longer
        # than the bound, and an execute that runs longer than it.
        conn = s.conn()
        assert s.request("GET", "/v1/health", conn=conn).status == 200
        sid = s.create()
        time.sleep(1.5)
        before = s.metric("slow_clients_total")
        r = s.exec(sid, ["sh", "-c", "sleep 2; echo done"])
        assert r["stdout"] == "done\n", r
        assert s.request("GET", "/v1/health", conn=conn).status in (200,), "an idle keep-alive connection was cut"
        assert s.metric("slow_clients_total") == before
        s.request("DELETE", "/v1/sandboxes/%s" % sid)
    finally:
        s.stop()


def test_tcp_connections_have_keepalive_and_a_cap_per_address(guard, host_tmp):
    """Over TCP the server's end of a connection probes a silent peer (TCP
    keepalive: the kernel's timer shows in /proc/net/tcp), and one address
    gets at most 64 connections at once."""
    port = _free_port()
    s = Server(guard, host_tmp, args=["--listen", "127.0.0.1:%d" % port, "--token-file",
                                      os.path.join(host_tmp, "token")]).start()
    socks = []
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(c)
        time.sleep(0.3)
        timers = []
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, state, timer = fields[1], fields[3], fields[5]
                if state == "01" and int(local.split(":")[1], 16) == port:
                    timers.append(timer.split(":")[0])
        # 02: the keepalive timer runs on the server's end.
        assert timers == ["02"], timers
        # 64 at once from 127.0.0.1 (one is open already); the next is closed at once.
        for _ in range(63):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        extra = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(extra)
        assert _cut_off(extra, 5), "a 65th connection from one address was served"
    finally:
        for x in socks:
            x.close()
        s.stop()
