# SPDX-License-Identifier: Apache-2.0
"""Files through the package: round trips, listings, metadata, directories,
renames, streaming to and from host file objects, the error of each code
(and the built-in exception it also is), and paths that try to leave the
sandbox's view (the scenarios of tests/integration/test_sessions.py's file
tests, seen from Python)."""
import hashlib
import io
import os
import secrets
import time

import pytest


def test_round_trip_text_and_binary(sb):
    sb.write_file("notes.txt", "héllo\n")
    assert sb.read_file("/workspace/notes.txt") == "héllo\n".encode()
    assert sb.files.read_text("notes.txt") == "héllo\n"
    blob = os.urandom(700 * 1024)  # more than one chunk
    sb.write_file("bin/blob", blob, mode=0o600, parents=True)
    assert sb.read_file("bin/blob") == blob
    st = sb.files.stat("bin/blob")
    assert (st.type, st.size, st.mode, st.name, st.path) == ("file", len(blob), 0o600, "blob", "bin/blob")
    assert st.is_file and not st.is_dir
    assert abs(st.mtime - time.time()) < 300
    r = sb.execute(["sha256sum", "/workspace/bin/blob"])
    assert r.stdout.split()[0] == hashlib.sha256(blob).hexdigest()


def test_append_and_exclusive(sb, mimobox):
    sb.files.write("log", "a\n")
    sb.files.write("log", "b\n", append=True)
    assert sb.read_file("log") == b"a\nb\n"
    with pytest.raises(FileExistsError) as e:
        sb.files.write("log", "c", exclusive=True)
    assert isinstance(e.value, mimobox.SandboxFileExistsError) and e.value.code == "already_exists"


def test_files_written_by_the_payload_are_read(sb):
    sb.execute(["sh", "-c", "mkdir -p out && echo result > out/r.txt"])
    assert sb.read_file("out/r.txt") == b"result\n"


def test_list_mkdir_rename_remove(sb):
    sb.files.mkdir("a/b/c", parents=True)
    sb.files.mkdir("a/b/c", parents=True)  # exists: fine with parents
    sb.write_file("a/f.txt", b"12345")
    sb.execute(["ln", "-s", "f.txt", "/workspace/a/link"])
    entries = sb.files.list("a")
    assert [(e.name, e.type) for e in entries] == [("b", "dir"), ("f.txt", "file"), ("link", "symlink")]
    f = entries[1]
    assert f.size == 5 and f.mode == 0o644 and f.mtime and abs(f.mtime - time.time()) < 300 and f.is_file
    assert entries[0].is_dir
    quick = sb.files.list("a", details=False)
    assert [e.name for e in quick] == ["b", "f.txt", "link"] and quick[1].mode is None
    sb.files.rename("a/f.txt", "a/b/g.txt")
    assert sb.read_file("a/b/g.txt") == b"12345"
    assert not sb.files.exists("a/f.txt") and sb.files.exists("a/b/g.txt")
    with pytest.raises(OSError):
        sb.files.remove("a/b")  # not empty
    sb.files.remove("a/b", recursive=True)
    assert [e.name for e in sb.files.list("a")] == ["link"]
    sb.files.remove("a/link")
    sb.files.remove("a")
    assert "a" not in [e.name for e in sb.files.list()]


def test_error_codes_and_builtin_exceptions(sb, mimobox):
    with pytest.raises(FileNotFoundError) as e:
        sb.read_file("missing")
    assert e.value.code == "not_found" and "missing" in e.value.message
    assert e.value.errno is None or isinstance(e.value.errno, int)
    sb.write_file("plain", b"x")
    with pytest.raises(NotADirectoryError) as e:
        sb.read_file("plain/child")
    assert isinstance(e.value, mimobox.SandboxNotADirectoryError) and e.value.code == "not_a_directory"
    with pytest.raises(PermissionError) as e:
        sb.write_file("/usr/evil", b"x")
    assert isinstance(e.value, mimobox.SandboxPermissionError) and e.value.code == "permission_denied"
    with pytest.raises(ValueError) as e:
        sb.read_file("")
    assert e.value.code == "invalid_argument"
    with pytest.raises(ValueError):
        sb.read_file("nul\0byte")
    with pytest.raises(FileNotFoundError):
        sb.files.stat("nope")
    with pytest.raises(FileNotFoundError):
        sb.files.list("nope")
    with pytest.raises(FileNotFoundError):
        sb.files.rename("nope", "other")
    with pytest.raises(FileExistsError):
        sb.files.mkdir("plain")
    # Every error is also a SandboxError carrying the library's message.
    with pytest.raises(mimobox.SandboxError):
        sb.read_file("missing")


def test_file_limit_is_too_large(mimobox):
    with mimobox.Sandbox(isolation="os", file_limit=1 << 20) as sb:
        with pytest.raises(mimobox.TooLargeError) as e:
            sb.write_file("big", b"x" * (2 << 20))
        assert e.value.code == "too_large"


def test_paths_cannot_escape_the_view(sb, host_tmp):
    token = secrets.token_hex(16)
    secret = os.path.join(host_tmp, "host-secret")
    with open(secret, "w") as f:
        f.write(token)
    sb.execute(["ln", "-s", secret, "/workspace/abs"])
    sb.execute(["ln", "-s", "../../../../../../.." + secret, "/workspace/rel"])
    for path in ("abs", "rel", "../../.." + secret, secret):
        with pytest.raises(FileNotFoundError):
            sb.read_file(path)
    with open("/etc/passwd", "rb") as f:
        assert sb.read_file("../../../etc/passwd") != f.read()
    with pytest.raises(OSError):
        sb.write_file(secret, b"overwritten")
    with open(secret) as f:
        assert f.read() == token


def test_streaming_to_and_from_host_files(sb, host_tmp):
    data = os.urandom(3 << 20) + b"end"
    src = os.path.join(host_tmp, "src.bin")
    with open(src, "wb") as f:
        f.write(data)
    with open(src, "rb") as f:
        sb.files.upload("up.bin", f)
    assert sb.files.stat("up.bin").size == len(data)
    dst = os.path.join(host_tmp, "dst.bin")
    with open(dst, "wb") as f:
        sb.files.download("up.bin", f)
    with open(dst, "rb") as f:
        assert f.read() == data


def test_streaming_with_objects_without_a_descriptor(sb):
    data = os.urandom(300 * 1024)
    sb.files.upload("mem.bin", io.BytesIO(data), mode=0o600)
    assert sb.files.stat("mem.bin").mode == 0o600
    out = io.BytesIO()
    sb.files.download("mem.bin", out)
    assert out.getvalue() == data
    with pytest.raises(FileNotFoundError):
        sb.files.download("absent", io.BytesIO())


def test_files_on_wasm(mimobox):
    from conftest import backend_or_skip
    backend_or_skip(mimobox, "wasm")
    with mimobox.Sandbox(isolation="wasm") as sb:
        sb.write_file("dir/data.txt", "wasm data", parents=True)
        assert sb.read_file("dir/data.txt") == b"wasm data"
        assert [e.name for e in sb.files.list("dir")] == ["data.txt"]
        assert sb.files.stat("/workspace/dir/data.txt").size == 9
        sb.files.rename("dir/data.txt", "moved.txt")
        sb.files.remove("dir")
        assert [e.name for e in sb.files.list()] == ["moved.txt"]
        with pytest.raises(FileNotFoundError):
            sb.read_file("dir/data.txt")
