# SPDX-License-Identifier: Apache-2.0
"""`mimobox serve`: PTYs over WebSocket, GET /v1/sandboxes/{id}/pty (docs/server.md).

The client is written here on raw sockets (RFC 6455: the handshake, masked
client frames, the server's frames), so that it can also send what a
library would refuse to: unmasked frames, bad text, frames over the limit.
Processes are looked for in the host's process table, as test_serve.py does.
"""
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import time

import pytest

from conftest import procs_with_arg, unique_sleep_arg
from test_serve import OPENAPI, Server, _schema_validator, check_response, server  # noqa: F401 (the fixture)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WS:
    """A WebSocket client on the server's unix socket."""

    def __init__(self, server, path, key=None, version="13", upgrade=True, extra_headers=""):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(server.socket)
        self.path = path
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: localhost"]
        if upgrade:
            lines += ["Upgrade: websocket", "Connection: keep-alive, Upgrade"]
        if self.key:
            lines.append("Sec-WebSocket-Key: " + self.key)
        if version is not None:
            lines.append("Sec-WebSocket-Version: " + version)
        self.sock.sendall(("\r\n".join(lines) + "\r\n" + extra_headers + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            assert data, "the server closed before answering: %r" % self.buf
            self.buf += data
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.body = b""
        if self.status != 101:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.buf += data
            self.body, self.buf = self.buf[:n], self.buf[n:]

    @property
    def json(self):
        return json.loads(self.body)

    def accept_ok(self):
        want = base64.b64encode(hashlib.sha1((self.key + GUID).encode()).digest()).decode()
        return self.headers.get("sec-websocket-accept") == want

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, length=None):
        n = len(payload) if length is None else length
        head = bytes([(0x80 if fin else 0) | opcode])
        bit = 0x80 if mask else 0
        if n < 126:
            head += bytes([bit | n])
        elif n <= 0xffff:
            head += bytes([bit | 126]) + struct.pack(">H", n)
        else:
            head += bytes([bit | 127]) + struct.pack(">Q", n)
        if mask:
            m = os.urandom(4)
            head += m
            payload = bytes(c ^ m[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(head + payload)

    def keys(self, data):
        self.send_frame(0x2, data)

    def control(self, obj):
        self.send_frame(0x1, json.dumps(obj).encode())

    def _fill(self, n):
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data

    def recv_frame(self):
        """(fin, opcode, payload) of the next server frame; the server never masks."""
        self._fill(2)
        fin, opcode, masked, n = self.buf[0] >> 7, self.buf[0] & 0xf, self.buf[1] >> 7, self.buf[1] & 0x7f
        assert self.buf[0] & 0x70 == 0 and not masked, self.buf[:2]
        off = 2
        if n == 126:
            self._fill(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._fill(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._fill(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return fin, opcode, payload

    def read_until(self, want=None, deadline_s=30):
        """Collects output until `want` is in it (or until the close frame with want=None).
        Returns (output, text messages, close code or None)."""
        out, texts, code = b"", [], None
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            fin, opcode, payload = self.recv_frame()
            assert fin
            if opcode == 0x2:
                out += payload
                if want is not None and want in out:
                    return out, texts, None
            elif opcode == 0x1:
                msg = json.loads(payload)
                schema = {"exit": "PtyExit", "error": "PtyError"}[msg["type"]]
                _schema_validator({"$ref": "#/components/schemas/" + schema}).validate(msg)
                texts.append(msg)
            elif opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                return out, texts, code
            elif opcode == 0xa:
                texts.append({"pong": payload})
        raise AssertionError("nothing like %r came: %r %r" % (want, out[-500:], texts))

    def close(self):
        self.sock.close()


def pty_path(sid, *args):
    q = "&".join(args)
    return "/v1/sandboxes/%s/pty%s" % (sid, "?" + q if q else "")


def wait_gone(marker, seconds=20):
    deadline = time.monotonic() + seconds
    while procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not procs_with_arg(marker)


def wait_running(marker, seconds=20):
    deadline = time.monotonic() + seconds
    while not procs_with_arg(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(procs_with_arg(marker))


def test_openapi_describes_the_pty_endpoint():
    op = OPENAPI["paths"]["/v1/sandboxes/{id}/pty"]["get"]
    assert {"101", "400", "404", "501"} <= set(op["responses"])
    params = OPENAPI["paths"]["/v1/sandboxes/{id}/pty"]["parameters"]
    assert {p["name"] for p in params} >= {"rows", "cols", "cmd", "env", "workdir", "timeout_ms"}


def test_pty_shell_echo_and_exit_code(server):
    sid = server.create()
    ws = WS(server, pty_path(sid))
    assert ws.status == 101 and ws.accept_ok(), (ws.status, ws.headers, ws.body)
    assert ws.headers["upgrade"].lower() == "websocket" and "upgrade" in ws.headers["connection"].lower()
    ws.keys(b"echo hi-$((40+2)); exit 3\n")
    out, texts, code = ws.read_until()
    assert b"hi-42" in out, out
    assert texts[-1]["type"] == "exit" and texts[-1]["exit_code"] == 3 and texts[-1]["signal"] == 0, texts
    assert code == 1000
    # The client answers the close; the server then closes the connection.
    ws.send_frame(0x8, struct.pack(">H", 1000))
    assert ws.sock.recv(10) == b""
    ws.close()
    # The sandbox lives on.
    assert server.exec(sid, ["echo", "after"])["stdout"] == "after\n"
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204


def test_pty_resize_and_signal_messages(server):
    sid = server.create()
    ws = WS(server, pty_path(sid, "rows=24", "cols=80", "cmd=/bin/sh", "env=PS1=%24%20"))
    assert ws.status == 101
    ws.keys(b"stty size\n")
    ws.read_until(b"24 80")
    ws.control({"type": "resize", "rows": 40, "cols": 100})
    ws.keys(b"stty size\n")
    ws.read_until(b"40 100")
    # A control message in fragments, a ping in between.
    msg = json.dumps({"type": "resize", "rows": 33, "cols": 77}).encode()
    ws.send_frame(0x1, msg[:5], fin=False)
    ws.send_frame(0x9, b"are-you-there")
    ws.send_frame(0x0, msg[5:12], fin=False)
    ws.send_frame(0x0, msg[12:], fin=True)
    ws.keys(b"stty size\n")
    out, texts, _ = ws.read_until(b"33 77")
    assert {"pong": b"are-you-there"} in texts
    # Bad control messages are answered with an error message; the session goes on.
    ws.control({"type": "resize", "rows": 0, "cols": 80})
    ws.control({"type": "warp"})
    ws.send_frame(0x1, b"not json")
    ws.keys(b"echo still-$((6*7))\n")
    out, texts, _ = ws.read_until(b"still-42")
    assert [t["type"] for t in texts] == ["error", "error", "error"], texts
    assert "rows" in texts[0]["message"] and "warp" in texts[1]["message"]
    # A signal to the program itself: the shell ends with it.
    ws.control({"type": "signal", "signal": "KILL"})
    out, texts, code = ws.read_until()
    assert texts[-1]["type"] == "exit" and texts[-1]["signal"] == signal.SIGKILL and code == 1000, texts
    ws.close()


def test_pty_ctrl_c_interrupts(server):
    sid = server.create()
    ws = WS(server, pty_path(sid))
    assert ws.status == 101
    marker = unique_sleep_arg()
    ws.keys(b"sleep %s\n" % marker.encode())
    assert wait_running(marker), "sleep never ran"
    ws.keys(b"\x03")
    assert wait_gone(marker, 10), "Ctrl-C did not interrupt sleep"
    ws.keys(b"echo alive-$((40+2))\n")
    ws.read_until(b"alive-42")
    ws.keys(b"exit 5\n")
    out, texts, code = ws.read_until()
    assert texts[-1]["exit_code"] == 5 and code == 1000
    ws.close()


def test_pty_disconnect_kills_the_process_tree(server):
    sid = server.create()
    m1, m2 = unique_sleep_arg(), unique_sleep_arg()
    ws = WS(server, pty_path(sid, "cmd=sh", "cmd=-c", "cmd=sleep%%20%s%%20%%26%%20sleep%%20%s" % (m1, m2)))
    assert ws.status == 101, ws.body
    assert wait_running(m1) and wait_running(m2)
    # Busy while the session runs (it holds the sandbox).
    assert server.request("GET", "/v1/sandboxes/%s" % sid).json["busy"] is True
    ws.sock.shutdown(socket.SHUT_RDWR)
    ws.close()
    assert wait_gone(m1) and wait_gone(m2), "the PTY's processes outlived their client"
    deadline = time.monotonic() + 10
    while server.metric("stream_disconnects_total") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.metric("stream_disconnects_total") == 1
    assert server.exec(sid, ["echo", "after"])["stdout"] == "after\n"
    assert server.request("GET", "/v1/sandboxes/%s" % sid).json["busy"] is False
    # A close frame from the client ends a session too, its process with it.
    marker = unique_sleep_arg()
    ws = WS(server, pty_path(sid, "cmd=sleep", "cmd=" + marker))
    assert wait_running(marker)
    ws.send_frame(0x8, struct.pack(">H", 1000) + b"bye")
    out, texts, code = ws.read_until()
    assert code == 1000
    ws.close()
    assert wait_gone(marker)
    assert server.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204


def _check_error(ws, status, code):
    assert ws.status == status, (ws.status, ws.body)
    check_response("GET", ws.path, ws.status, ws.headers.get("content-type"), ws.body)
    assert ws.json["error"]["code"] == code, ws.body
    ws.close()


def test_pty_bad_handshakes(server):
    sid = server.create()
    _check_error(WS(server, pty_path(sid), key=""), 400, "invalid_argument")
    _check_error(WS(server, pty_path(sid), key="c2hvcnQ="), 400, "invalid_argument")
    ws = WS(server, pty_path(sid), version="8")
    assert ws.headers.get("sec-websocket-version") == "13"
    _check_error(ws, 400, "invalid_argument")
    _check_error(WS(server, pty_path(sid), version=None), 400, "invalid_argument")
    _check_error(WS(server, pty_path(sid), upgrade=False), 400, "invalid_argument")
    _check_error(WS(server, pty_path("0123456789abcdef")), 404, "not_found")
    _check_error(WS(server, pty_path(sid, "row=3")), 400, "invalid_argument")
    _check_error(WS(server, pty_path(sid, "rows=0")), 400, "invalid_argument")
    _check_error(WS(server, pty_path(sid, "env=NOEQUALS")), 400, "invalid_argument")
    _check_error(WS(server, pty_path(sid, "cmd=/no/such/program")), 404, "not_found")
    # No body: the 405 comes before a body would be read, and the connection is closed.
    r = server.request("POST", "/v1/sandboxes/%s/pty" % sid, check=False)
    assert r.status == 405 and r.headers["Allow"] == "GET"
    # Nothing was left running by the refusals.
    assert server.exec(sid, ["echo", "ok"])["stdout"] == "ok\n"
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


@pytest.mark.parametrize("case", ["unmasked", "too-big", "bad-utf8", "bad-close-code", "reserved-bits"])
def test_pty_protocol_errors_close_the_session(server, case):
    sid = server.create()
    marker = unique_sleep_arg()
    ws = WS(server, pty_path(sid, "cmd=sleep", "cmd=" + marker))
    assert ws.status == 101
    assert wait_running(marker)
    if case == "unmasked":
        ws.send_frame(0x2, b"abc", mask=False)
        want = 1002
    elif case == "too-big":
        ws.send_frame(0x2, b"", length=(1 << 20) + 1)  # the header is enough
        want = 1009
    elif case == "bad-utf8":
        ws.send_frame(0x1, b'{"type":"\xff"}')
        want = 1007
    elif case == "bad-close-code":
        ws.send_frame(0x8, struct.pack(">H", 1005))
        want = 1002
    else:
        ws.sock.sendall(bytes([0x80 | 0x40 | 0x2, 0x80 | 1]) + os.urandom(4) + b"x")
        want = 1002
    out, texts, code = ws.read_until()
    assert code == want, (code, texts)
    # Frames after a protocol error are not read: the client's end of its
    # side is what the server waits for (at most 2 s) before it closes.
    ws.sock.shutdown(socket.SHUT_WR)
    assert ws.sock.recv(10) == b""
    ws.close()
    assert wait_gone(marker), "the process outlived a session closed for a protocol error"
    server.request("DELETE", "/v1/sandboxes/%s" % sid)


def test_pty_ends_with_the_sandbox_and_the_server(guard, host_tmp):
    srv = Server(guard, host_tmp).start()
    try:
        sid = srv.create()
        marker = unique_sleep_arg()
        ws = WS(srv, pty_path(sid, "cmd=sleep", "cmd=" + marker))
        assert wait_running(marker)
        assert srv.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
        out, texts, code = ws.read_until()
        assert code == 1001
        ws.close()
        assert wait_gone(marker)
        sid = srv.create()
        marker = unique_sleep_arg()
        ws = WS(srv, pty_path(sid, "cmd=sleep", "cmd=" + marker))
        assert wait_running(marker)
    finally:
        srv.stop()
    out, texts, code = ws.read_until()
    assert code == 1001
    ws.close()
    assert wait_gone(marker)


def _ping_server(guard, host_tmp, ms):
    return Server(guard, host_tmp, args=["--socket", os.path.join(host_tmp, "serve.sock"), "--ws-ping-ms", str(ms)])


def test_pty_pings_and_ends_a_silent_client(guard, host_tmp):
    """With --ws-ping-ms, a quiet connection is pinged; a client that answers
    keeps its session, one that answers nothing within the bound loses it
    (close 1001), and its process goes as with a disconnect."""
    srv = _ping_server(guard, host_tmp, 300).start()
    try:
        sid = srv.create()
        # Answering: pings come (each after 300 ms of quiet), the session stays.
        marker = unique_sleep_arg()
        ws = WS(srv, pty_path(sid, "cmd=sleep", "cmd=" + marker))
        assert ws.status == 101 and wait_running(marker)
        pings = 0
        while pings < 4:
            fin, opcode, payload = ws.recv_frame()
            assert opcode == 0x9, (opcode, payload)
            pings += 1
            ws.send_frame(0xa, payload)
        assert procs_with_arg(marker), "a client that answers pings lost its session"
        assert srv.metric("stream_disconnects_total") == 0
        ws.send_frame(0x8, struct.pack(">H", 1000))
        out, texts, code = ws.read_until()
        assert code == 1000
        ws.close()
        assert wait_gone(marker)
        assert srv.metric("stream_disconnects_total") == 1  # its program still ran
        # Silent: the ping goes unanswered; the session ends as a disconnect does.
        marker = unique_sleep_arg()
        ws = WS(srv, pty_path(sid, "cmd=sleep", "cmd=" + marker))
        assert ws.status == 101 and wait_running(marker)
        fin, opcode, payload = ws.recv_frame()
        assert opcode == 0x9, (opcode, payload)
        fin, opcode, payload = ws.recv_frame()
        assert opcode == 0x8 and struct.unpack(">H", payload[:2])[0] == 1001, (opcode, payload)
        assert b"ping" in payload[2:]
        assert ws.sock.recv(10) == b""
        ws.close()
        assert wait_gone(marker), "the process of a silent client's session lived on"
        assert srv.metric("stream_disconnects_total") == 2
        # The sandbox lives on.
        assert srv.exec(sid, ["echo", "after"])["stdout"] == "after\n"
        assert srv.request("DELETE", "/v1/sandboxes/%s" % sid).status == 204
    finally:
        srv.stop()


def test_pty_beside_a_stream_and_no_pings_by_default(server):
    """By default (30 s) a short session sees no ping; keystrokes and output
    flow while a stream of the same sandbox waits on the same descriptor."""
    sid = server.create()
    conn = server.conn()
    marker = unique_sleep_arg()
    conn.request("POST", "/v1/sandboxes/%s/exec?stream=1" % sid,
                 body=json.dumps({"argv": ["sleep", marker], "timeout_ms": 120000}),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    assert wait_running(marker)
    ws = WS(server, pty_path(sid, "cmd=cat"))
    assert ws.status == 101
    for i in range(20):
        ws.keys(b"line-%d\n" % i)
        out, texts, _ = ws.read_until(b"line-%d\r\n" % i)
        assert not [t for t in texts if "pong" in t]
    # Ctrl-D ends cat (its status is not checked: it is at times SIGHUP, also before these changes).
    ws.keys(b"\x04")
    out, texts, code = ws.read_until()
    assert texts[-1]["type"] == "exit" and code == 1000, (texts, out)
    ws.close()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    assert wait_gone(marker)
