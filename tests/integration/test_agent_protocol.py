# SPDX-License-Identifier: Apache-2.0
"""The agent's side of the handshake (src/agent/agent.c, src/proto/proto.h).

The built agent runs as PID 1 of a fresh user and pid namespace (unshare),
with one end of a socketpair as its fd 3, and this test speaks the protocol
to it frame by frame: its HELLO carries a version range, features and a
session id; it takes nothing before HELLO_ACK; it refuses a version it does
not speak and ends.
"""
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from conftest import LIB

MSG_HELLO, MSG_INIT, MSG_ERROR, MSG_SHUTDOWN, MSG_HELLO_ACK = 1, 2, 4, 9, 25
F_VERSION, F_CODE, F_MESSAGE, F_VERSION_MIN, F_FEATURES, F_SESSION = 1, 2, 5, 58, 59, 60
PROTO_VERSION = 4
MBX_ESTATE, MBX_EPROTO = -8, -13


def agent_path():
    p = Path(LIB).resolve().parent / "mimobox-agent"
    return p if p.is_file() else None


def frame(typ, fields=(), fid=0):
    body = b"".join(struct.pack("<HI", tag, len(v)) + v for tag, v in fields)
    return struct.pack("<IHHI", len(body), typ, 0, fid) + body


def u32(v):
    return struct.pack("<I", v & 0xffffffff)


def u64(v):
    return struct.pack("<Q", v)


def read_frame(sock):
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = sock.recv(n - len(b))
            if not chunk:
                return None
            b += chunk
        return b

    head = exact(12)
    if head is None:
        return None
    blen, typ, _flags, fid = struct.unpack("<IHHI", head)
    body = exact(blen) if blen else b""
    fields = {}
    off = 0
    while off < len(body):
        tag, n = struct.unpack_from("<HI", body, off)
        fields[tag] = body[off + 6:off + 6 + n]
        off += 6 + n
    return typ, fid, fields


class Agent:
    def __init__(self):
        exe = agent_path()
        if exe is None:
            pytest.skip("the built agent (mimobox-agent) is not next to MIMOBOX_LIB")
        if shutil.which("unshare") is None:
            pytest.skip("unshare(1) is not installed")
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        host.settimeout(10)

        def to_fd3():
            os.dup2(child.fileno(), 3)
            os.set_inheritable(3, True)

        self.proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child", str(exe)],
            preexec_fn=to_fd3, close_fds=False, stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        child.close()
        self.sock = host
        first = read_frame(host)
        if first is None:
            err = self.proc.stderr.read().decode(errors="replace")
            self.close()
            pytest.skip("the agent did not start in a new user+pid namespace here: " + err.strip())
        self.hello = first

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        return read_frame(self.sock)

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


@pytest.fixture
def agent():
    a = Agent()
    yield a
    a.close()


def test_hello_carries_range_features_and_session(agent):
    typ, fid, f = agent.hello
    assert typ == MSG_HELLO and fid == 0
    hi = struct.unpack("<I", f[F_VERSION])[0]
    lo = struct.unpack("<I", f[F_VERSION_MIN])[0]
    assert lo <= PROTO_VERSION <= hi
    assert F_FEATURES in f and len(f[F_FEATURES]) == 8
    # The os-mode agent ends with its channel: it offers no resume.
    assert struct.unpack("<Q", f[F_FEATURES])[0] & 1 == 0
    session = struct.unpack("<Q", f[F_SESSION])[0]
    assert session != 0
    # Each agent draws its own.
    other = Agent()
    try:
        assert struct.unpack("<Q", other.hello[2][F_SESSION])[0] != session
    finally:
        other.close()


def test_nothing_before_hello_ack(agent):
    agent.send(frame(MSG_INIT, [(F_VERSION, u32(1))]))
    typ, _fid, f = agent.recv()
    assert typ == MSG_ERROR
    assert struct.unpack("<i", f[F_CODE])[0] == MBX_ESTATE
    assert b"HELLO_ACK" in f[F_MESSAGE]
    # After the ACK, the same INIT reaches the sandbox set-up (which refuses
    # this empty one for its own reasons, not for the handshake).
    agent.send(frame(MSG_HELLO_ACK, [(F_VERSION, u32(PROTO_VERSION)), (F_FEATURES, u64(0))]))
    agent.send(frame(MSG_HELLO_ACK, [(F_VERSION, u32(PROTO_VERSION))]))
    typ, _fid, f = agent.recv()
    assert typ == MSG_ERROR and b"twice" in f[F_MESSAGE]
    agent.send(frame(MSG_SHUTDOWN))
    assert agent.recv() is None
    assert agent.proc.wait(timeout=10) == 0


@pytest.mark.parametrize("version,features,needle", [
    (PROTO_VERSION + 1, 0, b"chose protocol"),
    (0, 0, b"chose protocol"),
    (PROTO_VERSION, 1 << 40, b"chose features"),
])
def test_a_choice_it_cannot_speak_ends_it(agent, version, features, needle):
    agent.send(frame(MSG_HELLO_ACK, [(F_VERSION, u32(version)), (F_FEATURES, u64(features))]))
    typ, _fid, f = agent.recv()
    assert typ == MSG_ERROR
    assert struct.unpack("<i", f[F_CODE])[0] == MBX_EPROTO
    assert needle in f[F_MESSAGE]
    assert agent.recv() is None  # it ended
    assert agent.proc.wait(timeout=10) == 0
