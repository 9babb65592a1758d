# SPDX-License-Identifier: Apache-2.0
"""Network policy deny (the default): an empty network namespace with only
loopback (os backend), or a guest without a network interface (microvm).
Every connection here goes to 127.0.0.1, on the host or inside the
sandbox's own namespace or guest."""
import json
import os
import socket
import subprocess

import pytest

# The same policy on every backend that runs the agent.
pytestmark = pytest.mark.usefixtures("backend")

CONNECT = r"""
import errno, socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("python=connected")
except OSError as e:
    print("python=" + (errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__))
"""


@pytest.fixture
def host_listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.setblocking(False)
    yield s
    s.close()


def pending_connections(listener):
    n = 0
    while True:
        try:
            c, _ = listener.accept()
        except BlockingIOError:
            return n
        c.close()
        n += 1


def test_host_listener_is_unreachable(cli, host_listener):
    port = host_listener.getsockname()[1]
    script = ("python3 -c '%s' %d; "
              "if command -v bash >/dev/null; then "
              "  if bash -c 'echo x > /dev/tcp/127.0.0.1/%d' 2>/dev/null; then echo bash=connected; "
              "  else echo bash=failed; fi; "
              "fi") % (CONNECT.replace("'", "'\\''"), port, port)
    r, res = cli.json("--", "sh", "-c", script)
    assert res["exit_code"] == 0, res
    out = res["stdout"]
    assert "python=" in out and "python=connected" not in out, res
    assert "bash=connected" not in out, res
    assert pending_connections(host_listener) == 0, "the host listener saw a connection from the sandbox"
    # Control: the listener does accept connections from the host.
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.close()
    host_listener.settimeout(5)
    a, _ = host_listener.accept()
    a.close()


def test_only_loopback_interface(cli, backend):
    r, res = cli.json("--", "sh", "-c", "cat /proc/net/dev; echo ---; ip -o link show 2>&1 || true; echo ---; ls /sys/class/net 2>&1; true")
    dev, ip, sysnet = res["stdout"].split("---\n")
    names = [l.split(":")[0].strip() for l in dev.splitlines()[2:] if ":" in l]
    links = [l.split(":")[1].strip() for l in ip.splitlines() if l[:1].isdigit()]
    if backend == "microvm":
        # The guest's own sysfs: no network device but loopback and the
        # kernel's built-in IPv6-in-IPv4 tunnel sit0 (no device under it,
        # down; nothing in the guest may bring it up).
        names = [n for n in names if n != "sit0"]
        links = [n for n in links if not n.startswith("sit0")]
        assert sorted(sysnet.split()) in (["lo"], ["lo", "sit0"]), res
    else:
        assert "lo" not in sysnet.split(), res  # /sys is not in the view at all
    assert names == ["lo"], res
    if links:  # ip is installed on the host and so in the sandbox
        assert links == ["lo"], res


def test_own_network_namespace(cli, backend):
    """The os backend's agent makes the sandbox's network namespace itself
    (a helper of its own, while it starts) and joins it before anything of
    the sandbox runs: a program is never in the host's."""
    if backend != "os":
        pytest.skip("not applicable: a guest's namespaces are the guest kernel's")
    r, res = cli.json("--", "readlink", "/proc/self/ns/net")
    assert res["exit_code"] == 0, res
    program = res["stdout"].strip()
    assert program.startswith("net:["), res
    assert program != os.readlink("/proc/self/ns/net"), res


def test_no_network_namespace_no_sandbox(cli, backend):
    """Fail closed: where the agent cannot make the network namespace, no
    sandbox is made and the error names the layer. The CLI runs in a user
    namespace of the test's whose limit of network namespaces is zero (the
    sandbox's namespaces count against it; the host's own creation steps
    make no network namespace)."""
    if backend != "os":
        pytest.skip("not applicable: a guest's namespaces are the guest kernel's")
    inner = 'echo 0 > /proc/sys/user/max_net_namespaces && exec "$@"'
    cmd = ["unshare", "--user", "--map-user=1000", "--map-group=1000", "--keep-caps", "sh", "-c", inner, "sh",
           cli.path, "run", "--json", "--", "/bin/echo", "ran"]
    p = subprocess.run(cmd, env=cli.env({"MIMOBOX_HOST": "local"}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert p.returncode == 125, p
    res = json.loads(p.stdout)
    assert res["ok"] is False and "ran" not in p.stdout.decode(), p
    assert res["error"]["layer"] == "network-namespace", res
    assert "network namespace" in res["error"]["message"], res
    # Without the limit the same run works.
    r, res = cli.json("--", "/bin/echo", "ran")
    assert res["stdout"] == "ran\n", res


def test_loopback_works_inside(cli):
    script = r"""
import socket, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]
def serve():
    c, _ = srv.accept()
    c.sendall(c.recv(100).upper())
    c.close()
t = threading.Thread(target=serve)
t.start()
c = socket.create_connection(("127.0.0.1", port), timeout=5)
c.sendall(b"ping")
print(c.recv(100).decode())
t.join()
"""
    r, res = cli.json("--", "python3", "-c", script)
    assert res["exit_code"] == 0, res
    assert res["stdout"] == "PING\n", res


def test_no_route_outside(cli):
    # Without leaving the namespace: a UDP "connect" to a documentation
    # address needs a route, and there is none besides loopback.
    script = r"""
import errno, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect(("192.0.2.1", 9))
    print("route")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
"""
    r, res = cli.json("--", "python3", "-c", script)
    assert res["stdout"] == "ENETUNREACH\n", res
