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
              "error": "Error"}[name]
    _schema_validator({"$ref": "#/components/schemas/" + schema}).validate(data)


def test_openapi_document_is_valid_and_complete():
    """The document is well-formed JSON Schema and names every endpoint the server has."""
    for name, schema in OPENAPI["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    want = {("/v1/health", "get"), ("/v1/metrics", "get"), ("/v1/sandboxes", "get"), ("/v1/sandboxes", "post"),
            ("/v1/sandboxes/{id}", "get"), ("/v1/sandboxes/{id}", "delete"), ("/v1/sandboxes/{id}/exec", "post"),
            ("/v1/sandboxes/{id}/files", "get"), ("/v1/sandboxes/{id}/files", "put"),
            ("/v1/sandboxes/{id}/files", "delete"), ("/v1/sandboxes/{id}/dir", "get"), ("/v1/sandboxes/{id}/pty", "get"),
            ("/v1/run", "post")}
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

    def __init__(self, guard, tmp, args=None, socket_path=None):
        self.guard = guard
        self.tmp = tmp
        self.socket = socket_path if socket_path is not None else os.path.join(tmp, "serve.sock")
        self.args = args if args is not None else ["--socket", self.socket]
        self.log_path = os.path.join(tmp, "serve-%s.log" % secrets.token_hex(3))
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([CLI, "serve"] + self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
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
            if self.args[:1] == ["--socket"] or "--listen" not in self.args:
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
    # A silent process: its gone client is found by the keep-alive line.
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
    # Every run had a fresh sandbox, and none stays listed.
    assert len(ids) == 3
    assert server.request("GET", "/v1/sandboxes").json["sandboxes"] == []
    # What one run leaves is not seen by the next.
    server.request("POST", "/v1/run", {"argv": ["sh", "-c", "echo x > /workspace/left"], "memory_mb": 256})
    r = server.request("POST", "/v1/run", {"argv": ["ls", "/workspace"], "memory_mb": 256})
    assert r.json["stdout"] == ""
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
    """16 sandboxes made, used and destroyed at once; a long execute in one
    sandbox does not hold up the others."""
    slow_id = server.create()
    slow_result = {}

    def slow():
        slow_result["r"] = server.exec(slow_id, ["sleep", "8"])

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.3)
    results, errors = {}, []

    def one(i):
        try:
            sid = server.create(env={"I": str(i)})
            res = server.exec(sid, ["sh", "-c", "echo $I > /workspace/i; cat /workspace/i"])
            results[i] = (sid, res["stdout"])
            assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    # One first, while the slow execute runs: it is not queued behind it.
    one(-1)
    assert t.is_alive(), "the slow execute ended before the other sandbox's call: not a concurrency test"
    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(180)
    assert not errors, errors
    assert sorted(results) == list(range(-1, 16))
    assert len({sid for sid, _ in results.values()}) == 17
    assert all(out == "%d\n" % i for i, (_, out) in results.items())
    t.join(60)
    assert slow_result["r"]["exit_code"] == 0
    server.request("DELETE", "/v1/sandboxes/%s" % slow_id)
    assert server.metric("sandboxes_live") == 0


def test_same_sandbox_calls_are_serialised(server):
    """Concurrent calls on one sandbox (whose handle is single-threaded) all
    complete, one after the other."""
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
    assert set(e for e in os.listdir(guard.state_dir)) >= set(ids)
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
    left = set(os.listdir(guard.state_dir)) & set(ids)
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
