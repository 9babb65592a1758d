# SPDX-License-Identifier: Apache-2.0
"""Network policies end to end (docs/network.md): allow-domains through the
host-side proxy, allow-all through pasta, deny-all, HTTP requests made by
the library under the same policy, and the audit log.

Every destination is a local server: on this host's loopback (reached
through host-name overrides and the switch for private destinations,
which is how tests and special set-ups point allowed names at local
servers), or inside a network namespace a test makes (root only), where
addresses that count as public can exist without any real network.
"""
import ctypes
import json
import re
import secrets
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

import mbxnet
from conftest import ISOLATION, LIB_ASAN, HELPERS, backend_of, host_env, must_work_skip
from mbxnet import MBX_NETWORK_ALLOW_ALL, MBX_NETWORK_ALLOW_DOMAINS, MBX_NETWORK_DENY_ALL, NetError
from netservers import Recorder, WebServer, host_addresses

HERE = os.path.dirname(os.path.abspath(__file__))

DOMAINS = ["api.example.test", "*.example.test"]
# Names the tests point at the host's loopback. denied.test is not in the
# allow list: the override alone must allow nothing.
OVERRIDES = {"api.example.test": "127.0.0.1", "relay.example.test": "127.0.0.1",
             "other.example.test": "127.0.0.1", "denied.test": "127.0.0.1", "v6.example.test": "::1"}

# Sends raw bytes to the proxy from inside a sandbox and prints the time to
# the first answer and everything the proxy (or the tunnel) sent back.
# argv: first message, [marker to wait for, second message].
RAW = r"""
import socket, sys, time
def unesc(s): return s.encode().decode("unicode_escape").encode("latin-1")
t = time.time()
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(unesc(sys.argv[1]))
data = b""
first = None
def read_some(until=None, quiet=1.0):
    global data, first
    s.settimeout(quiet)
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return False
            if first is None:
                first = time.time() - t
            data += b
            if until and until in data:
                return True
    except socket.timeout:
        return True
if len(sys.argv) > 2:
    read_some(unesc(sys.argv[2]), 5)
    s.sendall(unesc(sys.argv[3]))
read_some(None, 1.5 if len(sys.argv) <= 4 else float(sys.argv[4]))
print("%.3f" % (first if first is not None else -1))
sys.stdout.write(data.decode("latin-1"))
"""


def status_line(out):
    """(seconds to the first answer, first status line) of a RAW run."""
    lines = out.split("\n")
    return float(lines[0]), (lines[1].rstrip("\r") if len(lines) > 1 else "")


def curl_in_the_sandbox(backend):
    """The tests that run curl (or Python's http modules) inside the
    sandbox: the microVM guest image has neither; the same proxy paths run
    on it through raw sockets (test_guest_reaches_only_the_proxy,
    test_tls_tunnel_with_the_config_ca and the RAW tests)."""
    if backend == "microvm":
        pytest.skip("not applicable: the microvm guest image has no curl and no Python http modules")


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def api(lib):
    # `lib` decides whether this Python can load the library (ASan builds).
    return mbxnet.Api(os.environ["MIMOBOX_LIB"])


@pytest.fixture
def make_sandbox(api, guard, request):
    """A factory of library sandboxes on the test's backend (a test that
    takes the `backend` fixture runs on each; docs/microvm.md "Network")."""
    made = []
    isolation = ISOLATION[backend_of(request)]

    def make(**kw):
        kw.setdefault("isolation", isolation)
        cfg = mbxnet.Config(api, **kw)
        try:
            sb = mbxnet.Sandbox(api, cfg)
        finally:
            cfg.close()
        guard.ids.add(sb.id)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.close()


@pytest.fixture(scope="session")
def tls_files(base_tmp):
    """A test CA and a server certificate for *.example.test (and
    api.example.invalid, for the CLI tests), made with the
    openssl command now."""
    if shutil.which("openssl") is None:
        must_work_skip("the openssl command is not installed")
    d = os.path.join(base_tmp, "tls")
    os.mkdir(d)

    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True, timeout=60)

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=mimobox test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=api.example.test")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:api.example.test,DNS:*.example.test,DNS:localhost,DNS:api.example.invalid\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": os.path.join(d, "ca.pem"), "cert": os.path.join(d, "server.pem"),
            "key": os.path.join(d, "server.key")}


@pytest.fixture
def web():
    s = WebServer(label="plain")
    yield s
    s.close()


@pytest.fixture
def tls_web(tls_files):
    s = WebServer(label="tls", tls=(tls_files["cert"], tls_files["key"]))
    yield s
    s.close()


@pytest.fixture
def proxied(make_sandbox, tls_files):
    """A factory of allow-domains sandboxes pointed at local servers."""
    def make(**kw):
        args = dict(network=MBX_NETWORK_ALLOW_DOMAINS, domains=DOMAINS, overrides=OVERRIDES, allow_private=True,
                    ca_file=tls_files["ca"])
        args.update(kw)
        return make_sandbox(**args)
    return make


# ---------------------------------------------------------------------------
# Allowed traffic


def test_proxy_environment(backend, proxied):
    sb = proxied(env={"no_proxy": "internal"})
    rc, out, _ = sb.sh("env | sort")
    env = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    for k in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        assert env.get(k) == "http://127.0.0.1:3128", out
    assert env["NO_PROXY"] == "localhost,127.0.0.1,::1"
    assert env["no_proxy"] == "internal", "the caller's own setting wins"
    for k in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert env.get(k) == "/etc/ssl/mimobox-ca.pem", out
    rc, out, _ = sb.sh("grep -c 'BEGIN CERTIFICATE' /etc/ssl/mimobox-ca.pem; touch /etc/ssl/mimobox-ca.pem 2>&1 || true")
    assert int(out.splitlines()[0]) >= 1, out
    assert "Read-only" in out, "the bundle must not be writable: %s" % out
    # Only loopback inside: the proxy is the one way out.
    rc, out, _ = sb.sh("cat /proc/net/dev")
    ifaces = [l.split(":")[0].strip() for l in out.splitlines()[2:]]
    if backend == "microvm":
        # The guest kernel's built-in IPv6-in-IPv4 tunnel: no device under
        # it, down, and no capability in the guest to bring it up.
        ifaces = [i for i in ifaces if i != "sit0"]
        rc, out, _ = sb.sh("ls /sys/class/net/*/device 2>&1; cat /sys/class/net/sit0/operstate")
        assert "No such file" in out and "down" in out, out
    assert ifaces == ["lo"], out


def test_curl_https_through_proxy(backend, proxied, tls_web):
    curl_in_the_sandbox(backend)
    sb = proxied()
    rc, out, err = sb.sh("curl -sS --max-time 10 https://api.example.test:%d/hello" % tls_web.port)
    assert rc == 0, err
    assert out == "tls api.example.test:%d /hello\n" % tls_web.port
    log = [e for e in sb.log() if e.method == "CONNECT"]
    assert len(log) == 1, log
    e = log[0]
    assert (e.source, e.host, e.port, e.address, e.verdict, e.status) == \
        ("proxy", "api.example.test", tls_web.port, "127.0.0.1", "allowed", 200), e
    assert "api.example.test" in e.reason and e.bytes_up > 100 and e.bytes_down > 100, e


def test_python_https_through_proxy(backend, proxied, tls_web):
    curl_in_the_sandbox(backend)
    sb = proxied()
    code = ("import urllib.request, sys\n"
            "print(urllib.request.urlopen('https://other.example.test:%d/py', timeout=10).read().decode(), end='')\n"
            % tls_web.port)
    rc, out, err = sb.python(code)
    assert rc == 0, err
    assert out == "tls other.example.test:%d /py\n" % tls_web.port


# TLS through a CONNECT tunnel with Python's ssl alone (a microVM guest's
# Python has no http modules), trusting the bundle SSL_CERT_FILE names.
TLS_RAW = r"""
import os, socket, ssl, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(b"CONNECT api.example.test:%d HTTP/1.1\r\nHost: api.example.test:%d\r\n\r\n" % (port, port))
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(1)
    if not b:
        break
    head += b
print(head.split(b"\r\n")[0].decode())
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
t = ctx.wrap_socket(s, server_hostname="api.example.test")
t.sendall(b"GET /raw HTTP/1.1\r\nHost: api.example.test:%d\r\nConnection: close\r\n\r\n" % port)
data = b""
while True:
    b = t.recv(65536)
    if not b:
        break
    data += b
print(data.split(b"\r\n\r\n", 1)[1].decode(), end="")
"""


def test_tls_tunnel_with_the_config_ca(backend, proxied, tls_web):
    """A TLS connection through a CONNECT tunnel, verified against the
    bundle the sandbox got (the host's plus the config's CA), on each
    backend; the tunnel's bytes are in the audit log."""
    sb = proxied()
    rc, out, err = sb.python(TLS_RAW, tls_web.port)
    assert rc == 0, (out, err)
    assert out.splitlines() == ["HTTP/1.1 200 Connection established",
                                "tls api.example.test:%d /raw" % tls_web.port], (out, err)
    log = [e for e in sb.log() if e.method == "CONNECT"]
    assert len(log) == 1 and log[0].verdict == "allowed" and log[0].bytes_down > 100, log


def test_test_ca_comes_from_config(backend, make_sandbox, tls_web):
    """Without the CA in the config, the same request fails verification:
    the sandbox trusts what the config gives, nothing more."""
    curl_in_the_sandbox(backend)
    sb = make_sandbox(network=MBX_NETWORK_ALLOW_DOMAINS, domains=DOMAINS, overrides=OVERRIDES, allow_private=True)
    rc, out, err = sb.sh("curl -sS --max-time 10 https://api.example.test:%d/; echo rc=$?" % tls_web.port)
    assert "rc=60" in out, (out, err)


def test_plain_http_forwarding(backend, proxied, web):
    curl_in_the_sandbox(backend)
    sb = proxied()
    rc, out, err = sb.sh("curl -sS --max-time 10 -H 'X-Probe: 1' http://api.example.test:%d/plain?x=1" % web.port)
    assert rc == 0, err
    assert out == "plain api.example.test:%d /plain?x=1\n" % web.port
    assert web.hits == [("GET", "api.example.test:%d" % web.port, "/plain?x=1")]
    rc, out, err = sb.sh("curl -sS --max-time 10 --data-binary 'hello body' http://api.example.test:%d/echo" % web.port)
    assert out == "hello body", (out, err)
    e = [e for e in sb.log() if e.method == "POST"][0]
    assert e.verdict == "allowed" and e.status == 200 and e.bytes_down > 0, e


def test_ipv6_destination(backend, proxied):
    curl_in_the_sandbox(backend)
    try:
        s = WebServer(host="::1", label="v6")
    except OSError:
        must_work_skip("no IPv6 loopback on this host")
    try:
        sb = proxied()
        rc, out, err = sb.sh("curl -sS --max-time 10 http://v6.example.test:%d/" % s.port)
        assert out == "v6 v6.example.test:%d /\n" % s.port, err
    finally:
        s.close()


# ---------------------------------------------------------------------------
# Denials


def test_denied_name_gets_403_at_once(backend, proxied, web):
    curl_in_the_sandbox(backend)
    sb = proxied()
    rc, out, err = sb.sh("curl -sS -o /dev/null -w '%%{http_connect} %%{time_total}' --max-time 10 "
                         "https://denied.test:%d/; echo \" rc=$?\"" % web.port)
    code, secs, rcs = out.split()
    assert code == "403" and rcs == "rc=56", (out, err)
    assert float(secs) < 1.0, out
    code = ("import urllib.request\n"
            "try:\n    urllib.request.urlopen('https://denied.test:%d/', timeout=10)\n"
            "except Exception as e:\n    print(e)\n" % web.port)
    rc, out, err = sb.python(code)
    assert "403" in out and "not in the allow list" in out, (out, err)
    # Plain HTTP gets the reason in the body too.
    rc, out, err = sb.sh("curl -sS -i --max-time 10 http://denied.test:%d/x" % web.port)
    assert out.startswith("HTTP/1.1 403 ") and "X-Mimobox-Reason: host `denied.test` is not in the allow list" in out, out
    assert web.hits == [], "a denied request reached the server"
    log = sb.log()
    assert [e.verdict for e in log] == ["denied"] * 3, log
    assert all(e.status == 403 and e.host == "denied.test" and e.address == "" for e in log), log


def test_bypass_attempts_find_no_route(backend, proxied):
    """Direct TCP to the host's addresses (v4 and v6), UDP, raw and packet
    sockets: nothing leaves the sandbox except through the proxy."""
    tcp4 = Recorder("0.0.0.0")
    try:
        tcp6 = Recorder("::", port=tcp4.port)
    except OSError:
        tcp6 = None
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    udp.setblocking(False)
    try:
        sb = proxied()
        targets = ["127.0.0.1", "::1"] + host_addresses()
        code = r"""
import errno, socket, sys
port, uport = int(sys.argv[1]), int(sys.argv[2])
def name(e): return errno.errorcode.get(e.errno, str(e)) if getattr(e, "errno", None) else type(e).__name__
for a in sys.argv[3:]:
    fam = socket.AF_INET6 if ":" in a else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(3)
    try:
        s.connect((a, port)); print("tcp", a, "CONNECTED")
    except OSError as e:
        print("tcp", a, name(e))
    u = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        u.sendto(b"x", (a, uport)); print("udp", a, "sent")
    except OSError as e:
        print("udp", a, name(e))
for fam, typ, proto, label in ((socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, "raw4"),
                               (socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6, "raw6"),
                               (socket.AF_PACKET, socket.SOCK_RAW, 0, "packet")):
    try:
        socket.socket(fam, typ, proto); print(label, "OPENED")
    except OSError as e:
        print(label, name(e))
"""
        rc, out, err = sb.python(code, tcp4.port, udp.getsockname()[1], *targets)
        assert rc == 0, err
        lines = out.splitlines()
        assert not [l for l in lines if "CONNECTED" in l or "OPENED" in l], out
        for a in targets:
            # The sandbox's own loopback refuses; anything else has no route.
            want = "ECONNREFUSED" if a in ("127.0.0.1", "::1") else "ENETUNREACH"
            assert "tcp %s %s" % (a, want) in lines, out
            if a not in ("127.0.0.1", "::1"):
                assert "udp %s ENETUNREACH" % a in lines, out
        for label in ("raw4", "raw6", "packet"):
            assert "%s EPERM" % label in lines or "%s EAFNOSUPPORT" % label in lines, out
        time.sleep(0.2)
        assert tcp4.connections == 0 and (tcp6 is None or tcp6.connections == 0), "a direct connection got out"
        with pytest.raises(BlockingIOError):
            udp.recvfrom(100)
    finally:
        tcp4.close()
        if tcp6:
            tcp6.close()
        udp.close()


# Inside the sandbox: a request through the proxy, a direct connection to a
# host port, a name lookup. argv: proxy request, direct port.
ONLY_PROXY = r"""
import errno, socket, sys
def name(e): return errno.errorcode.get(e.errno, str(e)) if getattr(e, "errno", None) else type(e).__name__
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(sys.argv[1].encode().decode("unicode_escape").encode("latin-1"))
s.settimeout(10)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print("proxy", data.split(b"\r\n")[0].decode("latin-1"))
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=3); print("direct CONNECTED")
except OSError as e:
    print("direct", name(e))
try:
    socket.getaddrinfo("nothing.invalid", 80); print("lookup RESOLVED")
except OSError as e:
    print("lookup", type(e).__name__)
"""


def test_guest_reaches_only_the_proxy(backend, proxied):
    """The proxy applies the allow list on each backend (a denied name is
    refused and never reached, an allowed one is), and nothing else is
    reachable: not another port of the host's loopback, not a resolver."""
    allowed = Recorder(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    other = Recorder()
    try:
        sb = proxied()
        get = "GET http://%s:%d/ HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n"
        rc, out, err = sb.python(ONLY_PROXY, get % ("denied.test", other.port, "denied.test", other.port), other.port)
        assert rc == 0, (out, err)
        lines = out.splitlines()
        assert lines[0].startswith("proxy HTTP/1.1 403 "), out
        assert "direct ECONNREFUSED" in lines, out
        assert "lookup gaierror" in lines, out
        rc, out, err = sb.python(ONLY_PROXY, get % ("relay.example.test", allowed.port, "relay.example.test",
                                                    allowed.port), other.port)
        assert out.splitlines()[0] == "proxy HTTP/1.1 200 OK", (out, err)
        time.sleep(0.2)
        assert other.connections == 0, "the guest reached a host port other than the proxy"
        assert allowed.connections == 1 and b"GET / HTTP/1.1" in allowed.data, allowed.data
        log = sb.log()
        assert [(e.host, e.verdict) for e in log] == [("denied.test", "denied"), ("relay.example.test", "allowed")], log
    finally:
        allowed.close()
        other.close()


def test_relayed_connect_goes_nowhere_else(backend, proxied):
    """A CONNECT sent inside a tunnel (or pipelined behind the first) is
    data for the allowed host; the proxy never acts on it."""
    allowed = Recorder(reply=b"HTTP/1.1 501 not a proxy\r\n\r\n")
    target = Recorder()
    try:
        sb = proxied()
        inner = "CONNECT denied.test:%d HTTP/1.1\\r\\nHost: denied.test:%d\\r\\n\\r\\n" % (target.port, target.port)
        outer = "CONNECT relay.example.test:%d HTTP/1.1\\r\\n\\r\\n" % allowed.port
        # Inside the established tunnel...
        rc, out, err = sb.python(RAW, outer, "\\r\\n\\r\\n", inner)
        assert out.split("\n")[1].startswith("HTTP/1.1 200 "), out
        assert "HTTP/1.1 501 not a proxy" in out, out
        # ...and pipelined in the same write as the first CONNECT.
        rc, out, err = sb.python(RAW, outer + inner + "GET http://denied.test:%d/ HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n"
                                 % target.port)
        assert out.split("\n")[1].startswith("HTTP/1.1 200 "), out
        time.sleep(0.3)
        assert allowed.connections == 2
        assert allowed.data.count(b"CONNECT denied.test:%d" % target.port) == 2, allowed.data
        assert b"GET http://denied.test" in allowed.data
        assert target.connections == 0, "the relayed CONNECT reached its target"
        assert [e.host for e in sb.log()] == ["relay.example.test"] * 2
    finally:
        allowed.close()
        target.close()


def test_pipelined_request_is_not_forwarded(backend, proxied):
    """One checked request per connection: a second one pipelined behind it
    (naming another host) reaches neither that host nor the first one."""
    allowed = Recorder(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    target = Recorder()
    try:
        sb = proxied()
        req = ("GET http://relay.example.test:%d/first HTTP/1.1\\r\\nHost: relay.example.test:%d\\r\\n\\r\\n"
               "GET http://denied.test:%d/second HTTP/1.1\\r\\nHost: denied.test:%d\\r\\n\\r\\n"
               % (allowed.port, allowed.port, target.port, target.port))
        rc, out, err = sb.python(RAW, req)
        assert "\nok" in out, out
        time.sleep(0.2)
        assert allowed.data.startswith(b"GET /first HTTP/1.1\r\n"), allowed.data
        assert b"denied.test" not in allowed.data and b"/second" not in allowed.data, allowed.data
        assert target.connections == 0
    finally:
        allowed.close()
        target.close()


IP_FORMS = ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1", "0x7f000001", "127.1", "017700000001",
            "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[64:ff9b::7f00:1]", "[::127.0.0.1]"]


def test_ip_literals_are_refused(backend, proxied):
    """Every spelling of an address is an IP literal, refused unless the
    allow list names it, even with private destinations admitted."""
    curl_in_the_sandbox(backend)
    target = Recorder()
    try:
        sb = proxied()
        for form in IP_FORMS:
            rc, out, err = sb.python(RAW, "CONNECT %s:%d HTTP/1.1\\r\\n\\r\\n" % (form, target.port))
            secs, line = status_line(out)
            assert line.startswith("HTTP/1.1 403 ") and "IP literal" in line, (form, out, err)
            assert 0 <= secs < 1.0, (form, out)
            rc, out, err = sb.python(RAW, "GET http://%s:%d/ HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n"
                                     % (form, target.port, form, target.port))
            assert status_line(out)[1].startswith("HTTP/1.1 403 "), (form, out)
        # curl normalizes the forms itself; still refused.
        rc, out, err = sb.sh("curl -sS --noproxy '' -o /dev/null -w '%%{http_code}' --max-time 5 http://2130706433:%d/" % target.port)
        assert out == "403", (out, err)
        time.sleep(0.2)
        assert target.connections == 0
        assert all(e.verdict == "denied" and e.host in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "64:ff9b::7f00:1",
                                                         "::127.0.0.1") for e in sb.log())
    finally:
        target.close()


def test_listed_ip_literal(backend, make_sandbox, web):
    """An IP literal the allow list names is allowed (in any spelling),
    but it still passes the address checks."""
    curl_in_the_sandbox(backend)
    sb = make_sandbox(network=MBX_NETWORK_ALLOW_DOMAINS, domains=["127.0.0.1"])
    rc, out, err = sb.sh("curl -sS -o /dev/null -w '%%{http_code}' --max-time 5 http://127.0.0.1:%d/ --noproxy ''"
                         % web.port)
    assert out == "403", "loopback needs allow_private: %s %s" % (out, err)
    sb = make_sandbox(network=MBX_NETWORK_ALLOW_DOMAINS, domains=["127.0.0.1"], allow_private=True)
    rc, out, err = sb.python(RAW, "GET http://2130706433:%d/ HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\n\\r\\n"
                             % (web.port, web.port))
    assert "plain 127.0.0.1:%d /" % web.port in out, out


def test_host_header_must_match(backend, proxied, web):
    sb = proxied()
    rc, out, err = sb.python(RAW, "GET http://api.example.test:%d/ HTTP/1.1\\r\\nHost: denied.test:%d\\r\\n\\r\\n"
                             % (web.port, web.port))
    assert status_line(out)[1].startswith("HTTP/1.1 400 "), out
    rc, out, err = sb.python(RAW, "GET http://api.example.test:%d/ HTTP/1.1\\r\\nHost: a\\r\\nHost: b\\r\\n\\r\\n" % web.port)
    assert status_line(out)[1].startswith("HTTP/1.1 400 "), out
    rc, out, err = sb.python(RAW, "GET http://api.example.test@denied.test:%d/ HTTP/1.1\\r\\nHost: denied.test\\r\\n\\r\\n"
                             % web.port)
    assert status_line(out)[1].startswith("HTTP/1.1 400 "), out
    assert web.hits == []


def test_redirects_are_checked_again(backend, proxied, web):
    curl_in_the_sandbox(backend)
    sb = proxied()
    base = "http://api.example.test:%d" % web.port
    # The client follows the redirect itself: a new request, checked again.
    for to in ("http://denied.test:%d/x" % web.port, "http://127.0.0.1:%d/x" % web.port):
        rc, out, err = sb.sh("curl -sS -L --noproxy '' -o /dev/null -w '%%{http_code}' --max-time 5 '%s/redirect?to=%s'" % (base, to))
        assert out == "403", (to, out, err)
    assert [h[2].split("?")[0] for h in web.hits] == ["/redirect", "/redirect"], web.hits
    # So does the library's own client.
    for to in ("http://denied.test:%d/x" % web.port, "http://127.0.0.1:%d/x" % web.port,
               "http://[::1]:%d/x" % web.port):
        with pytest.raises(NetError) as ei:
            sb.http("GET", "%s/redirect?to=%s" % (base, to))
        assert ei.value.name == "denied" and ei.value.layer == "network", ei.value
    r = sb.http("GET", "%s/redirect?to=http://other.example.test:%d/there" % (base, web.port))
    assert r.status == 200 and r.body == b"plain other.example.test:%d /there\n" % web.port
    assert r.url == "http://other.example.test:%d/there" % web.port
    hops = [e for e in sb.log() if e.source == "api"]
    assert [e.verdict for e in hops] == ["allowed", "denied", "allowed", "denied", "allowed", "denied", "allowed",
                                         "allowed"], hops


# ---------------------------------------------------------------------------
# Limits


def test_oversized_bodies_are_cut_off(backend, proxied, web, tls_web):
    curl_in_the_sandbox(backend)
    mib = 1 << 20
    sb = proxied(limits={"request_bytes": mib, "response_bytes": mib})
    # A declared request body over the limit: 413 before any connection.
    rc, out, err = sb.sh("head -c 2000000 /dev/zero > /tmp/big && curl -sS -o /dev/null -w '%%{http_code}' "
                         "--max-time 10 --data-binary @/tmp/big http://api.example.test:%d/echo" % web.port)
    assert out == "413", (out, err)
    assert web.hits == []
    # Responses over the limit stop at the limit, plain and tunnelled.
    for url in ("http://api.example.test:%d/big?n=4000000" % web.port,
                "https://api.example.test:%d/big?n=4000000" % tls_web.port):
        rc, out, err = sb.sh("curl -sS -o /dev/null -w '%%{size_download}' --max-time 20 '%s'; echo \" rc=$?\"" % url)
        got, rcs = out.split()
        assert int(got) <= mib and rcs != "rc=0", (url, out, err)
    # An upload through a tunnel over the limit is cut.
    rc, out, err = sb.sh("curl -sS -o /dev/null --max-time 20 --data-binary @/tmp/big https://api.example.test:%d/echo;"
                         " echo rc=$?" % tls_web.port)
    assert "rc=0" not in out, out
    reasons = [e.reason for e in sb.log() if e.verdict == "failed"]
    assert len(reasons) == 4 and "over the limit" in reasons[0], reasons
    assert sum("response larger than the limit" in r for r in reasons) == 2, reasons
    assert "request larger than the limit" in reasons[3], reasons
    # The library's client applies the same limits.
    with pytest.raises(NetError) as ei:
        sb.http("GET", "http://api.example.test:%d/big?n=4000000" % web.port)
    assert ei.value.name == "too_large"
    with pytest.raises(NetError) as ei:
        sb.http("POST", "http://api.example.test:%d/echo" % web.port, body=b"x" * (mib + 1))
    assert ei.value.name == "too_large"


def test_slow_clients_are_cut_off(backend, proxied, web):
    curl_in_the_sandbox(backend)
    sb = proxied(limits={"idle_ms": 1000})
    rc, out, err = sb.python(RAW, "CONNECT api.exa", "never", "", "4")
    secs, line = status_line(out)
    assert line.startswith("HTTP/1.1 408 "), out
    assert 0.8 <= secs < 3.0, out
    # A silent tunnel is closed after the idle limit too.
    code = r"""
import socket, time
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(b"CONNECT api.example.test:%d HTTP/1.1\r\n\r\n")
print(s.recv(100).split(b"\r\n")[0].decode())
t = time.time()
print(s.recv(100), round(time.time() - t))
""" % web.port
    rc, out, err = sb.python(code)
    first, rest = out.splitlines()
    assert first.startswith("HTTP/1.1 200 "), out
    assert rest.startswith("b'' ") and 0 <= int(rest.split()[1]) <= 3, out
    # A destination that does not answer in time: 504.
    rc, out, err = sb.sh("curl -sS -o /dev/null -w '%%{http_code}' --max-time 10 'http://api.example.test:%d/slow?s=3'"
                         % web.port)
    assert out == "504", (out, err)


def test_connection_limit(backend, proxied, web):
    sb = proxied(limits={"connections": 2})
    code = r"""
import socket, time
held = [socket.create_connection(("127.0.0.1", 3128)) for _ in range(2)]
time.sleep(0.3)
t = time.time()
s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
print(s.recv(200).split(b"\r\n")[0].decode(), round(time.time() - t, 1))
"""
    rc, out, err = sb.python(code)
    assert out.startswith("HTTP/1.1 503 ") and float(out.split()[-1]) < 1.5, (out, err)


# ---------------------------------------------------------------------------
# The other policies


def pasta_usable():
    """Why pasta cannot give this user a network here, or None."""
    if not any(os.access(os.path.join(d, "pasta"), os.X_OK) for d in ("/usr/bin", "/usr/local/bin", "/usr/sbin")):
        return "pasta is not installed"
    if os.geteuid() != 0 and not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "/dev/net/tun is not usable by this user"
    return None


GATEWAY = r"""
import socket, struct
for line in open("/proc/net/route").read().splitlines()[1:]:
    f = line.split()
    if f[1] == "00000000":
        print(socket.inet_ntoa(struct.pack("<I", int(f[2], 16))))
"""


def test_allow_all_reaches_a_local_server(make_sandbox, web):
    why = pasta_usable()
    if why == "pasta is not installed":
        must_work_skip(why + " (apt-get install passt)")
    if why:
        pytest.skip("not applicable: " + why + "; test_allow_all_fails_closed covers this user")
    # The gateway address maps to the host's loopback only on request.
    sb = make_sandbox(network=MBX_NETWORK_ALLOW_ALL, allow_private=True)
    rc, gw, err = sb.python(GATEWAY)
    gw = gw.strip()
    assert gw, "no default route in an allow-all sandbox: %s" % err
    rc, out, err = sb.sh("curl -sS --max-time 10 http://%s:%d/all" % (gw, web.port))
    assert out == "plain %s:%d /all\n" % (gw, web.port), err
    assert web.hits and web.hits[-1][2] == "/all"
    rc, out, err = sb.sh("cat /etc/resolv.conf; ip -o link show 2>/dev/null | wc -l")
    # Without the switch, the host's loopback stays out of reach.
    sb2 = make_sandbox(network=MBX_NETWORK_ALLOW_ALL)
    rc, out, err = sb2.sh("curl -sS --max-time 2 http://%s:%d/none; echo rc=$?" % (gw, web.port))
    assert "rc=0" not in out
    assert [h[2] for h in web.hits] == ["/all"]


def test_allow_all_fails_closed(make_sandbox):
    why = pasta_usable()
    if why is None:
        pytest.skip("not applicable: pasta works for this user (test_allow_all_reaches_a_local_server)")
    with pytest.raises(NetError) as ei:
        make_sandbox(network=MBX_NETWORK_ALLOW_ALL)
    e = ei.value
    assert e.name == "unsupported" and e.layer == "network", e
    assert "pasta" in e.message or "tun" in e.message, e


def test_allow_all_refused_on_microvm(backend, make_sandbox):
    """A guest has no network interface: `all` is refused, naming the
    layer, never turned into something narrower."""
    if backend != "microvm":
        pytest.skip("not applicable: the os backend gives `all` through pasta (test_allow_all_*)")
    with pytest.raises(NetError) as ei:
        make_sandbox(network=MBX_NETWORK_ALLOW_ALL)
    e = ei.value
    assert e.name == "unsupported" and e.layer == "network", e
    assert "no network interface" in e.message and "allow all" in e.message, e


def _threads_and_fds():
    """Threads and descriptors of this process, less the agent image the
    library keeps once made (a memfd, the first sandbox's)."""
    fds = 0
    for f in os.listdir("/proc/self/fd"):
        try:
            fds += "mimobox-agent" not in os.readlink("/proc/self/fd/" + f)
        except OSError:
            pass
    return len(os.listdir("/proc/self/task")), fds


def test_microvm_network_leaves_nothing_behind(backend, proxied):
    """The network channel's thread, its streams and the proxy's threads
    end with the sandbox: the library process has the threads and
    descriptors it had before."""
    if backend != "microvm":
        pytest.skip("not applicable: the microvm backend's channel (the os backend's proxy is in the other tests)")
    allowed = Recorder(reply=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        before = _threads_and_fds()
        sb = proxied()
        # One finished request and one connection left open at the end.
        code = ("import socket, sys\n"
                "s = socket.create_connection(('127.0.0.1', 3128)); "
                "s.sendall(b'GET http://relay.example.test:%d/ HTTP/1.1\\r\\nHost: relay.example.test:%d\\r\\n\\r\\n'); "
                "print(s.recv(100).split(b'\\r\\n')[0].decode())\n"
                "import subprocess\n"
                "subprocess.Popen(['python3', '-c', 'import socket, time; "
                "s = socket.create_connection((\"127.0.0.1\", 3128)); s.sendall(b\"CONNECT relay.example.test:%d HTTP/1.1\\\\r\\\\n\\\\r\\\\n\"); time.sleep(60)'])\n"
                % (allowed.port, allowed.port, allowed.port))
        rc, out, err = sb.python(code)
        assert out.startswith("HTTP/1.1 200 OK"), (out, err)
        during = _threads_and_fds()
        assert during[0] > before[0], "no thread serves the channel"
        sb.close()
        deadline = time.time() + 5
        while time.time() < deadline and _threads_and_fds() != before:
            time.sleep(0.05)
        assert _threads_and_fds() == before, (before, during, _threads_and_fds())
    finally:
        allowed.close()


def test_deny_all_reaches_nothing(backend, make_sandbox, web):
    curl_in_the_sandbox(backend)
    sb = make_sandbox(network=MBX_NETWORK_DENY_ALL, overrides=OVERRIDES, allow_private=True)
    rc, out, err = sb.sh("env | grep -ci proxy; curl -sS --max-time 3 http://api.example.test:%d/ 2>&1;"
                         "curl -sS --max-time 3 -x http://127.0.0.1:3128 http://api.example.test:%d/ 2>&1; true"
                         % (web.port, web.port))
    assert out.startswith("0\n"), out
    assert "Could not resolve host" in out and "Failed to connect to 127.0.0.1 port 3128" in out, out
    with pytest.raises(NetError) as ei:
        sb.http("GET", "http://api.example.test:%d/" % web.port)
    assert ei.value.name == "denied" and "denies all" in ei.value.message
    assert web.hits == []
    assert [e.verdict for e in sb.log()] == ["denied"]


def test_cli_allow_domains(backend, cli, web):
    curl_in_the_sandbox(backend)
    r, res = cli.json("--network", "allow:api.example.test", "--", "sh", "-c",
                      "echo $HTTPS_PROXY; curl -sS -o /dev/null -w '%%{http_code}' --max-time 5 "
                      "http://denied.test:%d/" % web.port)
    assert res["stdout"] == "http://127.0.0.1:3128\n403", res
    assert web.hits == []


def test_cli_allow_all(cli):
    r = cli.run("--network", "all", "--", "sh", "-c", "cat /proc/net/route | wc -l")
    why = pasta_usable()
    if why is None:
        assert r.rc == 0 and int(r.out) >= 2, r
    else:
        assert r.rc == 125 and "network" in r.stderr, r


# ---------------------------------------------------------------------------
# HTTP requests made by the library


def test_http_request(backend, proxied, web, tls_web):
    sb = proxied()
    r = sb.http("GET", "https://api.example.test:%d/tls" % tls_web.port, headers=["X-Test: 1"])
    assert r.status == 200 and r.body == b"tls api.example.test:%d /tls\n" % tls_web.port
    assert r.header("x-server") == "tls" and r.header("Content-Length") == str(len(r.body))
    r = sb.http("POST", "http://api.example.test:%d/echo" % web.port, body=b"\x00binary\xff")
    assert r.status == 200 and r.body == b"\x00binary\xff"
    r = sb.http("HEAD", "http://api.example.test:%d/head" % web.port)
    assert r.status == 200 and r.body == b""
    r = sb.http("DELETE", "http://api.example.test:%d/del" % web.port)
    assert r.status == 200 and web.hits[-1][0] == "DELETE"
    r = sb.http("GET", "http://api.example.test:%d/x" % web.port, headers=["Host: api.example.test:%d" % web.port])
    assert r.status == 200
    log = [e for e in sb.log() if e.source == "api"]
    assert len(log) == 5 and all(e.verdict == "allowed" and e.address == "127.0.0.1" for e in log), log
    assert log[0].status == 200 and log[0].bytes_down == len(b"tls api.example.test:%d /tls\n" % tls_web.port)


# Run in a process of its own, which has not made a request yet.
FIRST_USE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
import mbxnet

def curl_mapped():
    with open("/proc/self/maps") as f:
        return "/libcurl" in f.read()

api = mbxnet.Api(os.environ["MIMOBOX_LIB"])
seen = {"loaded": curl_mapped()}
cfg = mbxnet.Config(api)
try:
    sb = mbxnet.Sandbox(api, cfg)
finally:
    cfg.close()
try:
    seen["created"] = curl_mapped()
    try:
        sb.http("GET", "http://api.example.invalid/")
        seen["error"] = None
    except mbxnet.NetError as e:
        seen["error"] = e.name
        seen["message"] = e.message
        seen["suggestion"] = e.suggestion
    seen["requested"] = curl_mapped()
finally:
    sb.close()
print(json.dumps(seen))
"""


def test_http_request_loads_libcurl_on_first_use(guard):
    """libmimobox maps no libcurl until mbx_sandbox_http_request() is
    called (src/net/curl-api.h): not when it is loaded, not when a sandbox
    is made."""
    p = subprocess.run([sys.executable, "-c", FIRST_USE, HERE], capture_output=True, timeout=120,
                       env=dict(os.environ, MIMOBOX_STATE_DIR=guard.state_dir))
    assert p.returncode == 0, p
    seen = json.loads(p.stdout)
    assert seen.pop("message").startswith("GET http://api.example.invalid/ denied"), seen
    assert seen == {"loaded": False, "created": False, "error": "denied", "suggestion": None, "requested": True}, seen


def test_http_request_without_libcurl(guard, host_tmp):
    """Where libcurl is missing at run time, a request is `unsupported`
    and says which package to install; everything else works. libcurl is
    hidden by an empty file mounted over it in a mount namespace of the
    test's own (root only)."""
    if os.geteuid() != 0:
        pytest.skip("not applicable: hiding a system library needs a mount namespace of root's")
    if shutil.which("unshare") is None:
        must_work_skip("unshare is not installed (util-linux)")
    cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    paths = re.findall(r"^\s*libcurl\.so\.4 \(.*\) => (\S+)$", cache, re.M)
    if not paths:
        must_work_skip("libcurl.so.4 is not in the dynamic loader's cache")
    empty = os.path.join(host_tmp, "empty.so")
    open(empty, "w").close()
    mounts = " && ".join("mount --bind %s %s" % (empty, os.path.realpath(p)) for p in sorted(set(paths)))
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        mounts + ' && exec "$0" -c "$1" "$2"', sys.executable, FIRST_USE, HERE],
                       capture_output=True, timeout=120, env=dict(os.environ, MIMOBOX_STATE_DIR=guard.state_dir))
    assert p.returncode == 0, p
    seen = json.loads(p.stdout)
    assert seen["message"].startswith("HTTP requests need libcurl (Debian package libcurl4): "), seen
    assert seen["suggestion"] == "install it (apt-get install libcurl4)", seen
    del seen["message"]
    del seen["suggestion"]
    assert seen == {"loaded": False, "created": False, "error": "unsupported", "requested": False}, seen


@pytest.mark.parametrize("case", ["invalid-url", "ftp", "userinfo", "denied", "literal", "host-header", "tls-plain",
                                  "tls-untrusted", "connect", "timeout", "bad-header", "bad-method"])
def test_http_request_errors(make_sandbox, proxied, web, tls_web, case):
    sb = proxied(limits={"timeout_ms": 1000})
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()
    args = {
        "invalid-url": (("GET", "not a url"), "invalid_argument"),
        "ftp": (("GET", "ftp://api.example.test/"), "invalid_argument"),
        "userinfo": (("GET", "http://u:p@api.example.test:%d/" % web.port), "invalid_argument"),
        "denied": (("GET", "http://denied.test:%d/" % web.port), "denied"),
        "literal": (("GET", "http://0x7f.1:%d/" % web.port), "denied"),
        "host-header": (("GET", "http://api.example.test:%d/" % web.port, ["Host: denied.test"]), "denied"),
        "tls-plain": (("GET", "https://api.example.test:%d/" % web.port), "tls_error"),
        "tls-untrusted": None,
        "connect": (("GET", "http://api.example.test:%d/" % closed_port), "network_error"),
        "timeout": (("GET", "http://api.example.test:%d/slow?s=3" % web.port), "timed_out"),
        "bad-header": (("GET", "http://api.example.test:%d/" % web.port, ["X: a\r\nInjected: 1"]), "invalid_argument"),
        "bad-method": (("GE T", "http://api.example.test:%d/" % web.port), "invalid_argument"),
    }[case]
    if case == "tls-untrusted":
        sb = make_sandbox(network=MBX_NETWORK_ALLOW_DOMAINS, domains=DOMAINS, overrides=OVERRIDES, allow_private=True)
        args = (("GET", "https://api.example.test:%d/" % tls_web.port), "tls_error")
    call, want = args
    t = time.monotonic()
    with pytest.raises(NetError) as ei:
        sb.http(*call)
    assert ei.value.name == want, ei.value
    assert ei.value.layer == "network", ei.value
    assert time.monotonic() - t < 5
    assert [h for h in web.hits if h[2] != "/slow?s=3"] == [], web.hits


def test_http_request_redirect_limit(proxied, web):
    sb = proxied(limits={"redirects": 0})
    r = sb.http("GET", "http://api.example.test:%d/redirect?to=/elsewhere" % web.port)
    assert r.status == 302 and r.header("Location") == "/elsewhere"
    sb = proxied(limits={"redirects": 1})
    url = "http://api.example.test:%d/redirect?to=/redirect%%3Fto%%3D/end" % web.port
    r = sb.http("GET", url)
    assert r.status == 302, "one redirect followed, the second returned"


def test_audit_log_fields(backend, proxied, web):
    sb = proxied()
    t0 = time.time()
    for host, path in (("api.example.test", "a"), ("denied.test", "b")):
        sb.python(RAW, "GET http://%s:%d/%s HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n" % (host, web.port, path, host, web.port))
    sb.http("GET", "http://api.example.test:%d/c" % web.port)
    log = sb.log()
    assert len(log) == 3, log
    assert [(e.source, e.method, e.host, e.verdict) for e in log] == [
        ("proxy", "GET", "api.example.test", "allowed"), ("proxy", "GET", "denied.test", "denied"),
        ("api", "GET", "api.example.test", "allowed")], log
    assert all(e.port == web.port for e in log)
    assert t0 - 1 <= log[0].time_us / 1e6 <= log[1].time_us / 1e6 <= log[2].time_us / 1e6 <= time.time() + 1
    assert log[0].status == 200 and log[1].status == 403 and log[2].status == 200
    assert log[0].reason == "allowed by `api.example.test`", log[0]


# ---------------------------------------------------------------------------
# In a network namespace of our own (root): public addresses without any
# real network, and a resolver that changes its answers.


def test_rebinding_and_public_destinations(user, guard, tmp_path):
    if not user.is_root:
        pytest.skip("not applicable: needs a network namespace with addresses of our choosing (root)")
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        must_work_skip("unshare or ip is not installed")
    fake = os.path.join(HELPERS, "fake-dns.so")
    if not os.path.exists(fake):
        must_work_skip("fake-dns.so was not built")
    env = host_env({
        "MBX_FAKE_DNS": "rebind.test=8.8.8.8|127.0.0.1;public.test=8.8.8.8;internal.example.test=127.0.0.1;"
                        "meta.test=169.254.169.254;nat64.test=64:ff9b::808:808;mixed.test=10.0.0.1,8.8.8.8",
        "MBX_FAKE_DNS_LOG": str(tmp_path / "dns.log"),
        "MIMOBOX_STATE_DIR": guard.state_dir,
        "PYTHONPATH": HERE,
    })
    env["LD_PRELOAD"] = ":".join(x for x in ([LIB_ASAN] if LIB_ASAN else []) + [fake])
    if LIB_ASAN:
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    p = subprocess.run(["unshare", "--net", "--", sys.executable, os.path.join(HERE, "netns_world.py")],
                       capture_output=True, env=env, timeout=180)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
    res = json.loads(p.stdout.decode().splitlines()[-1])
    guard.ids.update(res["ids"])
    # An allowed name with a public answer: reached without allow_private.
    assert res["public"] == "public public.test:%d /\n" % res["port"], res
    # Rebinding: the first lookup (public) is the one used; the second
    # request looks up again and gets loopback, which is refused.
    assert res["rebind1"] == "public rebind.test:%d /\n" % res["port"], res
    assert res["rebind2"] == "403", res
    assert res["dns_calls"].count("rebind.test") == 2, res["dns_calls"]
    # Redirect to an allowed name that resolves privately: refused.
    assert res["redirect_private"] == "403", res
    assert res["api_redirect_private"] == "denied", res
    # Metadata, NAT64 and mixed answers.
    assert res["meta"] == "403" and res["meta_private_allowed"] == "403", res
    assert res["nat64"] == "403", res
    assert res["mixed"] == "public mixed.test:%d /\n" % res["port"], res
    assert res["private_hits"] == [] and res["meta_hits"] == [], res
    reasons = {e["host"]: e["reason"] for e in res["log"] if e["verdict"] == "denied"}
    assert "loopback" in reasons["rebind.test"] and "metadata" in reasons["meta.test"] and "NAT64" in reasons["nat64.test"], reasons


# ---------------------------------------------------------------------------
# The network flags of the CLI: --add-host, --allow-private, --ca-file,
# --net-limit, run --audit, and `http` with them. Names under .invalid,
# pointed at servers on this host's loopback.

CLI_NET = ["--network", "allow:api.example.invalid", "--add-host", "api.example.invalid:127.0.0.1",
           "--add-host", "denied.invalid:127.0.0.1"]


def test_cli_add_host_allow_private_and_audit(cli, web):
    curl = ("curl -sS -o - -w ' %%{http_code}\\n' --max-time 5 http://api.example.invalid:%d/hello; "
            "curl -sS -o /dev/null -w '%%{http_code}' --max-time 5 http://denied.invalid:%d/" % (web.port, web.port))
    r, res = cli.json(*CLI_NET, "--allow-private", "--audit", "--", "sh", "-c", curl)
    assert res["stdout"] == "plain api.example.invalid:%d /hello\n 200\n403" % web.port, res
    log = res["network_log"]
    assert [(e["host"], e["verdict"], e["source"]) for e in log] == [
        ("api.example.invalid", "allowed", "proxy"), ("denied.invalid", "denied", "proxy")], log
    assert log[0]["port"] == web.port and log[0]["address"] == "127.0.0.1" and log[0]["status"] == 200, log
    assert log[0]["method"] == "GET" and log[0]["bytes_down"] > 0 and "allow" in log[0]["reason"], log
    assert res["network_log_dropped"] == 0
    assert len(web.hits) == 1, web.hits
    # The same without --allow-private: the loopback address is refused, and the log says so.
    r, res = cli.json(*CLI_NET, "--audit", "--", "sh", "-c", curl)
    assert res["stdout"].endswith("403"), res
    assert res["network_log"][0]["verdict"] == "denied" and "127.0.0.1" in res["network_log"][0]["reason"], res
    assert len(web.hits) == 1, "a private destination was reached without --allow-private"
    # Text mode: one line per entry on stderr.
    r = cli.run(*CLI_NET, "--allow-private", "--audit", "--", "sh", "-c", curl)
    assert r.rc == 0 and re.search(r"mimobox: net: proxy allowed GET api\.example\.invalid:\d+ status 200",
                                   r.stderr), r


def test_cli_network_flag_errors(cli):
    for args, words in [
        (["--add-host", "nocolon"], ["--add-host", "NAME:ADDRESS"]),
        (["--add-host", "x.invalid:not-an-ip"], ["--add-host", "not-an-ip"]),
        (["--net-limit", "bogus=1"], ["--net-limit", "unknown limit"]),
        (["--net-limit", "timeout=0"], ["--net-limit", "timeout"]),
        (["--net-limit", "connections"], ["connections=VALUE"]),
        (["--ca-file", "/nonexistent-mbx.pem"], ["--ca-file", "/nonexistent-mbx.pem"]),
        (["--network", "allow:"], ["--network"]),
    ]:
        r = cli.run(*args, "--", "true")
        assert r.rc == 125, (args, r)
        for w in words:
            assert w in r.stderr, (args, w, r)


@pytest.fixture
def net_named(cli):
    made = []

    def create(*args):
        name = "n-" + secrets.token_hex(4)
        r = cli(["create", "--name", name] + list(args))
        assert r.rc == 0, r
        made.append(name)
        return name

    yield create
    for name in made:
        cli(["rm", "-f", name])


def test_cli_http_with_net_flags(cli, net_named, web, tls_web, tls_files, host_tmp):
    name = net_named(*CLI_NET, "--allow-private", "--ca-file", tls_files["ca"], "--net-limit", "redirects=0")
    body = os.path.join(host_tmp, "body.bin")
    with open(body, "wb") as f:
        f.write(b"from a file\x00\xff")
    base = "http://api.example.invalid:%d" % web.port
    # curl's -d @FILE reads the file; --data-raw sends the text as is.
    r = cli(["http", name, "-d", "@" + body, base + "/echo"])
    assert r.rc == 0 and r.stdout == b"from a file\x00\xff", r
    r = cli(["http", name, "--data-raw", "@" + body, base + "/echo"])
    assert r.rc == 0 and r.stdout == ("@" + body).encode(), r
    r = cli(["http", name, "-d", "@-", base + "/echo"], stdin=b"piped")
    assert r.rc == 0 and r.stdout == b"piped", r
    r = cli(["http", name, "-d", "x", "-d", "@" + body, base + "/echo"])
    assert r.rc == 125 and "cannot be combined" in r.stderr, r
    # A body that is not UTF-8 comes exactly in body_b64.
    r = cli(["http", name, "--json", "-d", "@" + body, base + "/echo"])
    import base64
    assert r.rc == 0 and base64.b64decode(r.json["body_b64"]) == b"from a file\x00\xff", r
    # --ca-file: the test CA is trusted for HTTPS.
    r = cli(["http", name, "https://api.example.invalid:%d/tls" % tls_web.port])
    assert r.rc == 0 and r.stdout.startswith(b"tls api.example.invalid"), r
    # --net-limit redirects=0: the redirect itself comes back.
    r = cli(["http", name, "--json", base + "/redirect?to=" + base + "/elsewhere"])
    assert r.rc == 0 and r.json["status"] == 302, r
    # Without the CA file, the same HTTPS request fails verification.
    other = net_named(*CLI_NET, "--allow-private")
    r = cli(["http", other, "https://api.example.invalid:%d/tls" % tls_web.port])
    assert r.rc == 1 and "certif" in r.stderr.lower(), r


def test_cli_allow_list_with_ports(cli):
    """`host:port` in the allow list admits that port only, for the proxy
    (plain HTTP and CONNECT) and for `http`; without a port, any port."""
    a, b = WebServer(label="a"), WebServer(label="b")
    try:
        net = ["--add-host", "api.example.invalid:127.0.0.1", "--add-host", "any.example.invalid:127.0.0.1",
               "--allow-private", "--audit"]
        allow = "allow:api.example.invalid:%d,any.example.invalid" % a.port
        curl = ("for u in api.example.invalid:%d api.example.invalid:%d any.example.invalid:%d; do "
                "curl -sS -o /dev/null -w '%%{http_code} ' --max-time 5 http://$u/; done; "
                "curl -sS -o /dev/null -w '%%{http_code}' --max-time 5 -p -x http://127.0.0.1:3128 "
                "http://api.example.invalid:%d/ 2>/dev/null || echo ' tunnel-refused'") % (a.port, b.port, b.port, b.port)
        r, res = cli.json("--network", allow, *net, "--", "sh", "-c", curl)
        words = res["stdout"].split()
        assert words[:3] == ["200", "403", "200"], res
        assert words[3:] in (["403"], ["000", "tunnel-refused"]), res
        denied = [e for e in res["network_log"] if e["verdict"] == "denied"]
        assert denied and all("port %d of `api.example.invalid`" % b.port in e["reason"] for e in denied), res
        assert len(a.hits) == 1 and len(b.hits) == 1, (a.hits, b.hits)
        r = cli.run("--network", "allow:api.example.invalid:0", "--", "true")
        assert r.rc == 125 and "api.example.invalid:0" in r.stderr, r
    finally:
        a.close()
        b.close()


def test_cli_http_rules(cli, net_named, web):
    """--http-rule: methods and paths for plain HTTP through the proxy and
    for `http` (mbx_sandbox_http_request); deny rules first; no CONNECT
    tunnel to a host with rules; other hosts as before."""
    rules = ["--http-rule", "GET,HEAD api.example.invalid/v1/*", "--http-rule",
             "deny * api.example.invalid/v1/admin*", "--http-rule", "POST api.example.invalid/v1/upload"]
    net = ["--network", "allow:api.example.invalid,free.example.invalid", "--add-host",
           "api.example.invalid:127.0.0.1", "--add-host", "free.example.invalid:127.0.0.1", "--allow-private"]
    base = "http://api.example.invalid:%d" % web.port
    script = " ".join(
        "curl -sS -o /dev/null -w '%%{http_code} ' --max-time 5 %s %s%s;" % (opts, base, path)
        for opts, path in [("", "/v1/items"), ("-X POST", "/v1/items"), ("", "/v1/admin/users"),
                           ("--path-as-is", "/v1/%61dmin"), ("--path-as-is", "/v1/x/../admin"), ("", "/v2/"),
                           ("-X POST -d x", "/v1/upload")])
    script += (" curl -sS -o /dev/null -w '%%{http_code} ' --max-time 5 http://free.example.invalid:%d/anything;"
               " curl -sS -o /dev/null -w '%%{http_code}' --max-time 5 -p -x http://127.0.0.1:3128 %s/v1/items"
               " 2>/dev/null || echo ' tunnel-refused'" % (web.port, base))
    r, res = cli.json(*net, *rules, "--audit", "--", "sh", "-c", script)
    words = res["stdout"].split()
    assert words[:8] == ["200", "403", "403", "403", "403", "403", "200", "200"], res
    assert words[8:] in (["403"], ["000", "tunnel-refused"]), res
    reasons = [e["reason"] for e in res["network_log"] if e["verdict"] == "denied"]
    assert any("no HTTP rule allows POST /v1/items" in x for x in reasons), reasons
    assert any("denied by HTTP rule `deny * api.example.invalid/v1/admin*`" in x for x in reasons), reasons
    assert any("`..` segment" in x for x in reasons), reasons
    assert any("CONNECT tunnel" in x for x in reasons), reasons
    assert sum("denied by HTTP rule" in x for x in reasons) == 2, "the escaped spelling was not caught: %s" % reasons
    seen = sorted(path for _, _, path in web.hits)
    assert seen == ["/anything", "/v1/items", "/v1/upload"], seen

    # The same rules for `http`, which the library makes itself.
    name = net_named(*net, *rules)
    assert cli(["http", name, base + "/v1/items"]).rc == 0
    r = cli(["http", name, "-X", "DELETE", base + "/v1/items"])
    assert r.rc == 1 and "no HTTP rule allows DELETE /v1/items" in r.stderr, r
    r = cli(["http", name, base + "/v1/admin"])
    assert r.rc == 1 and "denied by HTTP rule" in r.stderr, r
    r = cli(["http", name, "--json", base + "/v1/%61dmin"])
    assert r.rc == 1 and r.json["error"]["code"] == "denied", r
    assert cli(["http", name, "http://free.example.invalid:%d/x" % web.port]).rc == 0
    # Malformed rules are usage errors.
    r = cli.run("--http-rule", "GET", "--", "true")
    assert r.rc == 125 and "--http-rule" in r.stderr and "is not" in r.stderr, r


def test_cli_exec_audit(cli, net_named, web):
    """exec --audit: the network log of the named sandbox from this exec's
    start on (earlier execs' requests are not repeated)."""
    name = net_named(*CLI_NET, "--allow-private")
    get = "curl -sS -o /dev/null -w '%%{http_code}' --max-time 5 http://%s:%d/%s"
    r = cli(["exec", "--json", "--audit", name, "--", "sh", "-c", get % ("api.example.invalid", web.port, "one")])
    assert r.rc == 0 and r.json["stdout"] == "200", r
    log = r.json["network_log"]
    assert [(e["host"], e["verdict"], e["status"]) for e in log] == [("api.example.invalid", "allowed", 200)], log
    assert r.json["network_log_dropped"] == 0
    r = cli(["exec", "--json", "--audit", name, "--", "sh", "-c", get % ("denied.invalid", web.port, "two")])
    assert r.rc == 0 and r.json["stdout"] == "403", r
    assert [(e["host"], e["verdict"]) for e in r.json["network_log"]] == [("denied.invalid", "denied")], r.json
    # Text mode: lines on stderr; and the `http` verb's requests are in the log too.
    assert cli(["http", name, "http://api.example.invalid:%d/three" % web.port]).rc == 0
    r = cli(["exec", "--audit", name, "--", "sh", "-c", get % ("api.example.invalid", web.port, "four")])
    assert r.rc == 0 and r.stdout == b"200", r
    lines = [l for l in r.stderr.splitlines() if l.startswith("mimobox: net:")]
    assert len(lines) == 1 and "proxy allowed GET api.example.invalid" in lines[0], r.stderr
    r = cli(["exec", "--json", name, "--", "true"])
    assert "network_log" not in r.json, "the log is there only on request"


def test_microvm_snapshot_keeps_the_network_channel(backend, proxied, web, api, guard):
    """A microVM with an allow-list is saved, restored and forked with its
    network channel: the parent's comes back after the snapshot, each
    clone gets a proxy of its own (its own audit log, the same policy), and
    what the policy denies stays denied (docs/snapshots.md, "microvm")."""
    if backend != "microvm":
        pytest.skip("not applicable: the os backend's snapshots keep files, not a guest")
    lib = api.lib
    lib.mbx_sandbox_snapshot.restype = ctypes.c_int
    lib.mbx_sandbox_from_snapshot.restype = ctypes.c_int
    fetch = "busybox wget -q -O - http://api.example.test:%d/page 2>&1; echo rc=$?" % web.port
    denied = "busybox wget -q -O - http://denied.test:%d/ 2>&1; echo rc=$?" % web.port
    parent = proxied()
    rc, out, _ = parent.sh(fetch)
    assert out.endswith("rc=0\n") and "/page" in out, out
    snap = ctypes.c_void_p()
    api.call("mbx_sandbox_snapshot", lib.mbx_sandbox_snapshot, ctypes.byref(snap), parent.sb)
    clones = []
    try:
        for _ in range(2):
            c = object.__new__(mbxnet.Sandbox)
            c.api, c.sb = api, ctypes.c_void_p()
            api.call("mbx_sandbox_from_snapshot", lib.mbx_sandbox_from_snapshot, ctypes.byref(c.sb), snap, None)
            c.id = lib.mbx_sandbox_id(c.sb).decode()
            guard.ids.add(c.id)
            clones.append(c)
        hits = len(web.hits)
        for c in clones:
            rc, out, _ = c.sh(fetch)
            assert out.endswith("rc=0\n") and "/page" in out, out
            rc, out, _ = c.sh(denied)
            assert "403" in out and not out.endswith("rc=0\n"), out
            # The clone's own proxy: its log has its requests only.
            verdicts = [e.verdict for e in c.log()]
            assert verdicts.count("allowed") == 1 and "denied" in verdicts, verdicts
        rc, out, _ = parent.sh(fetch)
        assert out.endswith("rc=0\n") and "/page" in out, out
        assert len(web.hits) == hits + 3, web.hits
    finally:
        for c in clones:
            c.close()
        lib.mbx_snapshot_free(snap)
