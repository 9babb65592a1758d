# SPDX-License-Identifier: Apache-2.0
"""The README as a user reads it: its C example compiles and runs as printed,
`meson install` lays the files where the README says, and the README's CLI
synopsis and docs/cli.md are what the CLI's --help prints."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLI, LIB, LIB_ASAN, host_env

TOP = Path(__file__).resolve().parent.parent.parent
README = TOP / "README.md"
BUILD = Path(LIB).parent


def readme_block(marker):
    """The fenced block that follows `<!-- marker -->` in the README."""
    text = README.read_text()
    m = re.search(r"<!-- " + re.escape(marker) + r" -->\n```[a-z]*\n(.*?)```\n", text, re.S)
    assert m, "README has no block after <!-- %s -->" % marker
    return m.group(1)


def need_build_tree():
    if not (BUILD / "build.ninja").exists() or not README.exists():
        pytest.skip("needs the build tree and the sources (not copied for this stage)")


def sanitize_flags():
    # A sanitized libmimobox needs the sanitizer runtimes in the program too.
    return ["-fsanitize=address,undefined"] if LIB_ASAN else []


def test_readme_c_example_compiles_and_runs(tmp_path):
    need_build_tree()
    src = tmp_path / "example.c"
    src.write_text(readme_block("readme-example: c"))
    exe = tmp_path / "example"
    cmd = ["cc", "-std=c99", "-Wall", "-Werror", str(src), "-I", str(TOP / "include"), "-I", str(BUILD / "include"),
           "-L", str(BUILD), "-lmimobox", "-Wl,-rpath," + str(BUILD), "-o", str(exe)] + sanitize_flags()
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=host_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "exit 0: hi\n"


def test_install_layout_and_pkg_config(tmp_path):
    """`meson install` puts Wasmtime in a private directory, and a program
    built with pkg-config against the installed tree runs, wasm included."""
    need_build_tree()
    if LIB_ASAN:
        pytest.skip("the installed tree of a sanitized build is not what users install")
    dest = tmp_path / "dest"
    subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir", str(dest), "--quiet", "--no-rebuild"],
                   check=True, capture_output=True, timeout=300)
    # `mimobox setup vm` of an installed CLI runs the installed guest asset
    # script, with the kernel config fragment where the script looks for it.
    scripts = list(dest.rglob("share/mimobox/scripts/vm-assets.sh"))
    assert len(scripts) == 1 and os.access(scripts[0], os.X_OK), scripts
    share = scripts[0].parent.parent
    assert (share / "tools" / "vm" / "kernel.config").read_bytes() == \
        (TOP / "tools" / "vm" / "kernel.config").read_bytes()
    libdirs = [p.parent for p in dest.rglob("libmimobox.so.0")]
    assert len(libdirs) == 1
    libdir = libdirs[0]
    assert not (libdir / "libwasmtime.so").exists(), "an unversioned libwasmtime.so in the library directory"
    has_wasm = (BUILD / "libwasmtime.so").exists()
    if has_wasm:
        assert (libdir / "mimobox" / "libwasmtime.so").is_file()
    env = dict(host_env(), PKG_CONFIG_SYSROOT_DIR=str(dest), PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libmimobox"], check=True, capture_output=True,
                           text=True, env=env).stdout.split()
    src = tmp_path / "example.c"
    src.write_text(readme_block("readme-example: c"))
    exe = tmp_path / "example"
    subprocess.run(["cc", str(src)] + flags + ["-o", str(exe)], check=True, capture_output=True, timeout=120)
    run_env = dict(host_env(), LD_LIBRARY_PATH=str(libdir))
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=run_env)
    assert r.returncode == 0 and r.stdout == "exit 0: hi\n", r.stderr
    # The `mimobox` program is the front (cli/front.c): it finds the whole
    # CLI in the installed tree it is in, also under a DESTDIR.
    fronts, fulls = list(dest.rglob("bin/mimobox")), list(dest.rglob("libexec/mimobox/mimobox-full"))
    assert len(fronts) == 1 and len(fulls) == 1, (fronts, fulls)
    r = subprocess.run([str(fronts[0]), "version"], capture_output=True, text=True, timeout=60, env=run_env)
    assert r.returncode == 0 and r.stdout.startswith("mimobox "), r
    if has_wasm:
        # The installed CLI finds the private copy of Wasmtime through the
        # installed library, not the build tree's.
        cli = next(dest.rglob("bin/mimobox"))
        wat = tmp_path / "hi.wat"
        wat.write_text('(module (import "wasi_snapshot_preview1" "proc_exit" (func $e (param i32)))'
                       ' (memory (export "memory") 1) (func (export "_start") (call $e (i32.const 7))))')
        r = subprocess.run([str(cli), "run", "--", str(wat)], capture_output=True, text=True, timeout=120,
                           env=dict(run_env, LD_DEBUG="files"))
        loaded = re.findall(r"file=(\S*libwasmtime\.so) \[0\];\s+generating link map", r.stderr)
        assert loaded == [str(libdir / "mimobox" / "libwasmtime.so")], loaded
        assert r.returncode == 7, r.stderr


def help_text(*verb):
    r = subprocess.run([CLI] + list(verb) + ["--help"], capture_output=True, text=True, timeout=30, env=host_env())
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_readme_synopsis_is_the_cli_help():
    if not README.exists():
        pytest.skip("needs the sources")
    blocks = re.findall(r"<!-- mimobox (?:([a-z-]+) )?--help -->\n```\n(.*?)```\n", README.read_text(), re.S)
    assert [b[0] for b in blocks][:2] == ["", "run"]
    for verb, text in blocks:
        assert text == help_text(*([verb] if verb else [])), \
            "README's `mimobox %s --help` is stale (run scripts/cli-reference.sh)" % verb


def test_cli_reference_is_every_verb_help():
    """docs/cli.md holds `mimobox VERB --help` for every verb the CLI lists
    (scripts/cli-reference.sh writes it)."""
    doc = TOP / "docs" / "cli.md"
    if not doc.exists():
        pytest.skip("needs the sources")
    text = doc.read_text()
    verbs = re.findall(r"^  ([a-z]+)\s{2,}", help_text().split("Commands:", 1)[1], re.M)
    assert len(verbs) > 10
    for verb in verbs:
        m = re.search(r"<!-- help: " + verb + r" -->\n```\n(.*?)```\n", text, re.S)
        assert m, "docs/cli.md lacks `mimobox %s --help` (run scripts/cli-reference.sh)" % verb
        assert m.group(1) == help_text(verb), "docs/cli.md is stale for %s (run scripts/cli-reference.sh)" % verb
