# SPDX-License-Identifier: Apache-2.0
"""http_request and the network policy through the package. Every
destination is a server on this host's loopback, reached through a
host-name override under .invalid and the switch for private destinations
(as tests/integration/test_net_proxy.py does)."""
import http.server
import json
import threading

import pytest

ALLOWED = "api.mimobox.invalid"
OTHER = "other.mimobox.invalid"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, body):
        data = json.dumps({"method": self.command, "path": self.path, "body": body,
                           "x-test": self.headers.get("X-Test"), "host": self.headers.get("Host")}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Server", "loopback")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/target")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._answer(None)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self._answer(self.rfile.read(n).decode())


@pytest.fixture
def web():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def proxied(mimobox):
    with mimobox.Sandbox(isolation="os", network=[ALLOWED], host_overrides={ALLOWED: "127.0.0.1",
                                                                              OTHER: "127.0.0.1"},
                         allow_private_network=True) as sb:
        yield sb


def test_http_request_get_and_post(proxied, web):
    r = proxied.http_request("GET", "http://%s:%d/path?q=1" % (ALLOWED, web), headers={"X-Test": "yes"})
    assert r.status == 200 and r.headers["X-Server"] == "loopback" and r.header("x-server") == "loopback"
    j = r.json()
    assert j["path"] == "/path?q=1" and j["x-test"] == "yes" and j["host"].startswith(ALLOWED)
    r = proxied.http_request("POST", "http://%s:%d/p" % (ALLOWED, web), body=b"payload", timeout=30)
    assert r.status == 201 and r.json()["body"] == "payload"
    assert json.loads(r.text)["method"] == "POST"


def test_http_request_follows_redirects(proxied, web):
    r = proxied.http_request("GET", "http://%s:%d/redirect" % (ALLOWED, web))
    assert r.status == 200 and r.url.endswith("/target") and r.json()["path"] == "/target"


def test_host_outside_the_allow_list_is_denied(proxied, web, mimobox):
    with pytest.raises(PermissionError) as e:
        proxied.http_request("GET", "http://%s:%d/" % (OTHER, web))
    assert isinstance(e.value, mimobox.NetworkDeniedError) and e.value.code == "denied"
    assert OTHER in e.value.message


def test_deny_policy_denies_requests(mimobox, web):
    with mimobox.Sandbox(isolation="os") as sb:
        with pytest.raises(mimobox.NetworkDeniedError):
            sb.http_request("GET", "http://%s:%d/" % (ALLOWED, web))


def test_bad_url_is_a_value_error(proxied):
    with pytest.raises(ValueError):
        proxied.http_request("GET", "ftp://%s/" % ALLOWED)
    with pytest.raises(ValueError):
        proxied.http_request("GET", "http://%s/" % ALLOWED, timeout=-1)


def test_payload_reaches_an_allowed_host_through_the_proxy(proxied, web):
    code = ("import urllib.request, json\n"
            "print(json.load(urllib.request.urlopen('http://%s:%d/from-inside', timeout=20))['path'])" % (ALLOWED, web))
    r = proxied.execute_code(code)
    assert r.ok and r.stdout == "/from-inside\n", r
    r = proxied.execute_code(code.replace(ALLOWED, OTHER))
    assert not r.ok and "403" in r.stderr, r
