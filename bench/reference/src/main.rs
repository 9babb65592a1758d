// SPDX-License-Identifier: Apache-2.0
//! bench-reference: the reference SDK (`mimobox-sdk`, a path dependency on
//! the pinned checkout, see bench/bench_reference.py) timed on the same
//! paths as mimobox's own benches, through its public API only.
//!
//! Paths (each iteration runs every live path once, in an order that rotates
//! from one iteration to the next, so noise hits every path alike):
//!
//!   wasm_new_run   Sandbox::with_config(Wasm) + exec([module]) + destroy;
//!                  the module is in the reference's disk cache (warm-up)
//!   wasm_warm      exec([module]) in a live wasm sandbox
//!   os_cold        Sandbox::with_config(Os) + exec(["/bin/true"]) + destroy
//!   os_warm        exec(["/bin/true"]) in a live os sandbox
//!   first_byte     stream_exec(["/bin/echo", "x"]) in a live os sandbox,
//!                  until the first Stdout event
//!
//! and once each, not timed unless it works: write_file / read_file of
//! --file-mib MiB in an os and in a wasm sandbox of their own, and python3
//! in the live os sandbox. A path that fails is reported with the SDK's error and
//! left out of the loop; the program goes on with the rest.
//!
//! Output: one JSON object on stdout (microseconds), or a table.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mimobox_sdk::{Config, IsolationLevel, Sandbox, StreamEvent};

struct Opts {
    module: String,
    n: usize,
    warmup: usize,
    file_mib: usize,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "Usage: bench-reference --module NOOP.wasm [-n ITERATIONS] [-w WARMUP] [--file-mib MIB] [--json]"
    );
    std::process::exit(2);
}

fn parse_opts() -> Opts {
    let mut o = Opts { module: String::new(), n: 300, warmup: 20, file_mib: 64, json: false };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("bench-reference: {name} needs a value");
                usage()
            })
        };
        match a.as_str() {
            "--module" => o.module = val("--module"),
            "-n" => o.n = val("-n").parse().unwrap_or_else(|_| usage()),
            "-w" => o.warmup = val("-w").parse().unwrap_or_else(|_| usage()),
            "--file-mib" => o.file_mib = val("--file-mib").parse().unwrap_or_else(|_| usage()),
            "--json" => o.json = true,
            "-h" | "--help" => usage(),
            _ => {
                eprintln!("bench-reference: unknown argument {a:?}");
                usage()
            }
        }
    }
    if o.module.is_empty() || o.n < 1 {
        usage();
    }
    o
}

fn config(level: IsolationLevel) -> Result<Config, String> {
    Config::builder().isolation(level).build().map_err(|e| format!("config: {e}"))
}

/// Runs argv in `sb` and checks it exited 0.
fn run_ok(sb: &mut Sandbox, argv: &[&str]) -> Result<(), String> {
    let r = sb.exec(argv).map_err(|e| format!("exec {argv:?}: {e}"))?;
    if r.timed_out {
        return Err(format!("exec {argv:?}: timed out"));
    }
    match r.exit_code {
        Some(0) => Ok(()),
        code => Err(format!(
            "exec {argv:?}: exit status {code:?}, stderr {:?}",
            String::from_utf8_lossy(&r.stderr).trim()
        )),
    }
}

fn new_exec_free(level: IsolationLevel, argv: &[&str]) -> Result<(), String> {
    let mut sb = Sandbox::with_config(config(level)?).map_err(|e| format!("new: {e}"))?;
    let r = run_ok(&mut sb, argv);
    let d = sb.destroy().map_err(|e| format!("destroy: {e}"));
    r.and(d)
}

fn first_byte(sb: &mut Sandbox) -> Result<Duration, String> {
    let t0 = Instant::now();
    let rx = sb.stream_exec(&["/bin/echo", "x"]).map_err(|e| format!("stream_exec: {e}"))?;
    let mut first = None;
    let mut exit = None;
    for ev in rx.iter() {
        match ev {
            StreamEvent::Stdout(b) if !b.is_empty() && first.is_none() => first = Some(t0.elapsed()),
            StreamEvent::Exit(c) => exit = Some(c),
            StreamEvent::TimedOut => return Err("stream_exec: timed out".into()),
            _ => {}
        }
    }
    match (first, exit) {
        (Some(d), Some(0)) => Ok(d),
        (f, e) => Err(format!("stream_exec: first stdout {f:?}, exit {e:?}")),
    }
}

/// A live sandbox of `level` whose backend is up (the SDK starts it on the
/// first command).
fn live(level: IsolationLevel, argv: &[&str]) -> Result<Sandbox, String> {
    let mut sb = Sandbox::with_config(config(level)?).map_err(|e| format!("new: {e}"))?;
    run_ok(&mut sb, argv)?;
    Ok(sb)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Path {
    WasmNewRun,
    WasmWarm,
    OsCold,
    OsWarm,
    FirstByte,
}

impl Path {
    const ALL: [Path; 5] = [Path::WasmNewRun, Path::WasmWarm, Path::OsCold, Path::OsWarm, Path::FirstByte];
    fn name(self) -> &'static str {
        match self {
            Path::WasmNewRun => "wasm_new_run",
            Path::WasmWarm => "wasm_warm",
            Path::OsCold => "os_cold",
            Path::OsWarm => "os_warm",
            Path::FirstByte => "first_byte",
        }
    }
}

/// Nearest rank: the smallest sample with at least p of them at or below it.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let k = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn main() {
    let o = parse_opts();
    let wasm_argv = [o.module.as_str()];
    let os_argv = ["/bin/true"];

    // Probes: each path once; a failing one is reported and left out.
    let mut failed: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut wasm_sb = None;
    let mut os_sb = None;
    match live(IsolationLevel::Wasm, &wasm_argv) {
        Ok(sb) => wasm_sb = Some(sb),
        Err(e) => {
            failed.insert("wasm_warm", e.clone());
            failed.insert("wasm_new_run", e);
        }
    }
    if !failed.contains_key("wasm_new_run") {
        if let Err(e) = new_exec_free(IsolationLevel::Wasm, &wasm_argv) {
            failed.insert("wasm_new_run", e);
        }
    }
    match live(IsolationLevel::Os, &os_argv) {
        Ok(sb) => os_sb = Some(sb),
        Err(e) => {
            for p in ["os_warm", "first_byte", "os_cold"] {
                failed.insert(p, e.clone());
            }
        }
    }
    if !failed.contains_key("os_cold") {
        if let Err(e) = new_exec_free(IsolationLevel::Os, &os_argv) {
            failed.insert("os_cold", e);
        }
    }
    if let Some(sb) = os_sb.as_mut() {
        if let Err(e) = first_byte(sb) {
            failed.insert("first_byte", e);
        }
    }

    // Paths that are not timed: the SDK's file API and python3.
    let mut notes: BTreeMap<String, String> = BTreeMap::new();
    let data = vec![b'x'; o.file_mib << 20];
    let mut file_times: BTreeMap<String, f64> = BTreeMap::new();
    for (label, level) in [("os", IsolationLevel::Os), ("wasm", IsolationLevel::Wasm)] {
        // A sandbox of its own: the SDK starts the backend for the file call
        // itself, so this works even where commands fail.
        let mut sb = match config(level).and_then(|c| Sandbox::with_config(c).map_err(|e| format!("new: {e}"))) {
            Ok(sb) => sb,
            Err(e) => {
                notes.insert(format!("file_write_{label}"), e);
                continue;
            }
        };
        let t0 = Instant::now();
        match sb.write_file("/tmp/bench-reference-file", &data) {
            Err(e) => {
                notes.insert(format!("file_write_{label}"), format!("write_file {} MiB: {e}", o.file_mib));
            }
            Ok(()) => {
                file_times.insert(format!("file_write_{label}"), t0.elapsed().as_secs_f64() * 1e6);
                let t0 = Instant::now();
                match sb.read_file("/tmp/bench-reference-file") {
                    Ok(b) if b.len() == data.len() => {
                        file_times.insert(format!("file_read_{label}"), t0.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(b) => {
                        notes.insert(format!("file_read_{label}"), format!("read_file: {} bytes back of {}", b.len(), data.len()));
                    }
                    Err(e) => {
                        notes.insert(format!("file_read_{label}"), format!("read_file: {e}"));
                    }
                }
            }
        }
        if let Err(e) = sb.destroy() {
            notes.insert(format!("file_destroy_{label}"), format!("destroy: {e}"));
        }
    }
    drop(data);
    if let Some(sb) = os_sb.as_mut() {
        let py = match run_ok(sb, &["/usr/bin/python3", "-c", "pass"]) {
            Ok(()) => "works".to_string(),
            Err(e) => format!("fails: {e}"),
        };
        notes.insert("python3_os".into(), py);
    }

    let live_paths: Vec<Path> = Path::ALL.iter().copied().filter(|p| !failed.contains_key(p.name())).collect();
    let mut samples: BTreeMap<Path, Vec<f64>> = live_paths.iter().map(|p| (*p, Vec::with_capacity(o.n))).collect();

    for i in 0..(o.warmup + o.n) {
        for k in 0..live_paths.len() {
            let p = live_paths[(i + k) % live_paths.len()];
            let t0 = Instant::now();
            let r = match p {
                Path::WasmNewRun => new_exec_free(IsolationLevel::Wasm, &wasm_argv).map(|_| t0.elapsed()),
                Path::WasmWarm => run_ok(wasm_sb.as_mut().expect("probed"), &wasm_argv).map(|_| t0.elapsed()),
                Path::OsCold => new_exec_free(IsolationLevel::Os, &os_argv).map(|_| t0.elapsed()),
                Path::OsWarm => run_ok(os_sb.as_mut().expect("probed"), &os_argv).map(|_| t0.elapsed()),
                Path::FirstByte => first_byte(os_sb.as_mut().expect("probed")),
            };
            match r {
                Ok(d) if i >= o.warmup => samples.get_mut(&p).expect("path").push(d.as_secs_f64() * 1e6),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("bench-reference: {} failed in iteration {i}: {e}", p.name());
                    std::process::exit(1);
                }
            }
        }
    }
    for sb in [wasm_sb, os_sb].into_iter().flatten() {
        if let Err(e) = sb.destroy() {
            eprintln!("bench-reference: destroy: {e}");
        }
    }

    let mut stats: Vec<(&'static str, f64, f64, usize)> = Vec::new();
    for (p, mut v) in samples {
        v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
        stats.push((p.name(), pct(&v, 0.50), pct(&v, 0.99), v.len()));
    }

    if o.json {
        let mut s = String::from("{\"unit\":\"us\",\"paths\":{");
        let items: Vec<String> = stats
            .iter()
            .map(|(name, p50, p99, n)| format!("{}:{{\"p50\":{p50:.1},\"p99\":{p99:.1},\"n\":{n}}}", json_str(name)))
            .collect();
        s.push_str(&items.join(","));
        s.push_str("},\"failed\":{");
        let items: Vec<String> = failed.iter().map(|(k, v)| format!("{}:{}", json_str(k), json_str(v))).collect();
        s.push_str(&items.join(","));
        s.push_str("},\"once\":{");
        let items: Vec<String> = file_times.iter().map(|(k, v)| format!("{}:{v:.1}", json_str(k))).collect();
        s.push_str(&items.join(","));
        s.push_str("},\"notes\":{");
        let items: Vec<String> = notes.iter().map(|(k, v)| format!("{}:{}", json_str(k), json_str(v))).collect();
        s.push_str(&items.join(","));
        s.push_str(&format!("}},\"file_mib\":{}}}", o.file_mib));
        println!("{s}");
    } else {
        println!("bench-reference: {} iterations ({} warm-up), us", o.n, o.warmup);
        for (name, p50, p99, _) in &stats {
            println!("{name:<14} p50 {p50:10.1}  p99 {p99:10.1}");
        }
        for (k, v) in &failed {
            println!("{k:<14} fails: {v}");
        }
        for (k, v) in &file_times {
            println!("{k:<14} once {v:10.1}");
        }
        for (k, v) in &notes {
            println!("{k:<14} {v}");
        }
    }
}
