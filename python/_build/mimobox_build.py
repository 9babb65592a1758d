# SPDX-License-Identifier: Apache-2.0
"""The PEP 517 / PEP 660 build backend of the mimobox package.

The package is pure Python (it loads libmimobox with ctypes), so building it
only means zipping files. This backend does that with the standard library
alone: `pip install ./python` then works offline, in any virtualenv, with or
without build isolation, with no setuptools or wheel to fetch.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "mimobox"
TAG = "py3-none-any"


def _project():
    """name, version, summary and requires-python from pyproject.toml (a
    small reader: tomllib is not in every Python this must run on)."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S).group(1)
    fields = dict(re.findall(r'^(\w[\w-]*)\s*=\s*"([^"]*)"\s*$', section, re.M))
    return fields


def _table(name):
    """{key: raw value} of a [name] table of pyproject.toml, one key a line."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^\[%s\]\s*$(.*?)(?=^\[|\Z)" % re.escape(name), text, re.M | re.S)
    return dict(re.findall(r"^([\w-]+)\s*=\s*(.+?)\s*$", m.group(1), re.M)) if m else {}


def _entry_points():
    """entry_points.txt with the console scripts of [project.scripts]."""
    scripts = ["%s = %s" % (k, v.strip('"')) for k, v in _table("project.scripts").items()]
    return "[console_scripts]\n" + "".join(line + "\n" for line in scripts) if scripts else ""


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"],
             "Summary: " + p.get("description", ""), "License: Apache-2.0",
             "Requires-Python: " + p.get("requires-python", ">=3.8"),
             "Classifier: Operating System :: POSIX :: Linux", "Classifier: Typing :: Typed"]
    for extra, reqs in _table("project.optional-dependencies").items():
        lines.append("Provides-Extra: " + extra)
        lines += ['Requires-Dist: %s ; extra == "%s"' % (r, extra) for r in re.findall(r'"([^"]+)"', reqs)]
    readme = os.path.join(ROOT, "README.md")
    body = ""
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _dist_info():
    p = _project()
    return "%s-%s.dist-info" % (p["name"], p["version"]), p


def _package_files():
    base = os.path.join(ROOT, PACKAGE)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".py", ".typed")):
                full = os.path.join(dirpath, name)
                yield full, os.path.relpath(full, ROOT).replace(os.sep, "/")


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def _write_wheel(wheel_directory, entries):
    info, p = _dist_info()
    name = "%s-%s-%s.whl" % (p["name"], p["version"], TAG)
    entries = list(entries) + [
        (info + "/METADATA", _metadata().encode()),
        (info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: mimobox_build\nRoot-Is-Purelib: true\nTag: %s\n"
                           % TAG).encode()),
        (info + "/top_level.txt", (PACKAGE + "\n").encode()),
    ]
    if _entry_points():
        entries.append((info + "/entry_points.txt", _entry_points().encode()))
    record = [_record_line(a, d) for a, d in entries] + [info + "/RECORD,,"]
    entries.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))
    stamp = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")))[:6]
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in entries:
            zi = zipfile.ZipInfo(arcname, date_time=stamp)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    info, _ = _dist_info()
    os.makedirs(os.path.join(metadata_directory, info), exist_ok=True)
    with open(os.path.join(metadata_directory, info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata())
    if _entry_points():
        with open(os.path.join(metadata_directory, info, "entry_points.txt"), "w", encoding="utf-8") as f:
            f.write(_entry_points())
    return info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = []
    for full, arc in _package_files():
        with open(full, "rb") as f:
            entries.append((arc, f.read()))
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """An editable install: a .pth file putting this checkout's python/ on
    sys.path (the checkout's build/libmimobox.so is then found too)."""
    return _write_wheel(wheel_directory, [("mimobox-editable.pth", (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    _, p = _dist_info()
    base = "%s-%s" % (p["name"], p["version"])
    name = base + ".tar.gz"
    files = [(full, arc) for full, arc in _package_files()]
    for extra in ("pyproject.toml", "README.md", "_build/mimobox_build.py"):
        if os.path.exists(os.path.join(ROOT, extra)):
            files.append((os.path.join(ROOT, extra), extra))
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for full, arc in files:
            t.add(full, arcname=base + "/" + arc, recursive=False)
        meta = _metadata().encode()
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(meta)
        ti.mode = 0o644
        t.addfile(ti, io.BytesIO(meta))
    return name
