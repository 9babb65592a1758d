# SPDX-License-Identifier: Apache-2.0
"""Local servers for the network tests: an HTTP(S) server with a few
routes, and a raw TCP recorder that notes every connection and byte (so a
test can prove a destination was never reached). Loopback or addresses
inside a network namespace the test made; never anything else."""
import http.server
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /redirect?to=URL (302), /big?n=BYTES, /slow?s=SECONDS,
    /echo (the request body back), anything else: "<label> <host> <path>"."""
    protocol_version = "HTTP/1.1"

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _route(self):
        self.server.hits.append((self.command, self.headers.get("Host"), self.path))
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        body = self._body()
        if u.path == "/redirect":
            return self._send(302, b"", [("Location", q["to"][0])])
        if u.path == "/big":
            n = int(q["n"][0])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                while n > 0:
                    self.wfile.write(chunk[:n])
                    n -= min(n, len(chunk))
            except OSError:
                pass
            self.close_connection = True
            return None
        if u.path == "/slow":
            time.sleep(float(q["s"][0]))
        if u.path == "/echo":
            return self._send(200, body, [("X-Length", str(len(body)))])
        return self._send(200, ("%s %s %s\n" % (self.server.label, self.headers.get("Host"), self.path)).encode(),
                          [("X-Server", self.server.label)])

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _route

    def log_message(self, *a):
        pass


class WebServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host="127.0.0.1", port=0, label="server", tls=None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.label = label
        self.hits = []
        super().__init__((host, port), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def handle_error(self, request, client_address):
        pass

    def close(self):
        self.shutdown()
        self.server_close()


class Recorder:
    """Accepts TCP connections and records what arrives; optionally
    answers each connection with `reply` once something arrived."""

    def __init__(self, host="127.0.0.1", port=0, reply=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.connections = 0
        self.data = b""
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.05)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        c.settimeout(3)
        replied = False
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                with self.lock:
                    self.data += b
                if self.reply and not replied:
                    c.sendall(self.reply)
                    replied = True
        except OSError:
            pass
        c.close()

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def host_addresses():
    """Non-loopback addresses of this host (v4 and v6), from `ip`."""
    try:
        out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    addrs = []
    for line in out.splitlines():
        f = line.split()
        if len(f) > 3 and f[2] in ("inet", "inet6") and f[1] != "lo":
            a = f[3].split("/")[0]
            if not a.startswith("fe80"):
                addrs.append(a)
    return addrs
