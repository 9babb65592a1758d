#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The peer of bench-wasm: the same module on the same Wasmtime library,
driven from PyPI's wasmtime binding (the wheel scripts/wasmtime.sh unpacks,
on PYTHONPATH), with the engine configured like mimobox's (Cranelift, fuel,
epoch interruption, the pooling allocator through the binding's raw FFI).

Per iteration, as bench-wasm does:
  compile      Module(engine, bytes)
  deserialize  Module.deserialize(engine, serialized)
  instantiate  InstancePre.instantiate(store) with a fresh Store + WASI
  run          instantiate + calling _start (the store set-up included)

Usage: bench_wasm_peer.py MODULE.wasm [-n N] [-w WARMUP]
Prints one line per measure: "peer <name> p50 <us> p99 <us>".
"""
import argparse
import ctypes
import time

import wasmtime
from wasmtime import _ffi as ffi


def engine():
    cfg = wasmtime.Config()
    cfg.consume_fuel = True
    cfg.epoch_interruption = True
    cfg.wasm_threads = False
    cfg.wasm_gc = False
    cfg.wasm_component_model = False
    pool = ffi.wasmtime_pooling_allocation_config_new()
    ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, 256)
    ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, 256)
    ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, 256)
    ffi.wasmtime_pooling_allocation_config_total_stacks_set(pool, 0)
    ffi.wasmtime_pooling_allocation_config_total_component_instances_set(pool, 0)
    ffi.wasmtime_pooling_allocation_config_total_gc_heaps_set(pool, 0)
    ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, 4 << 30)
    ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(pool, 1 << 20)
    ffi.wasmtime_pooling_allocation_strategy_set(cfg.ptr(), pool)
    ffi.wasmtime_pooling_allocation_config_delete(pool)
    return wasmtime.Engine(cfg)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("module")
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("-w", type=int, default=20)
    a = ap.parse_args()
    with open(a.module, "rb") as f:
        wasm = f.read()
    eng = engine()
    linker = wasmtime.Linker(eng)
    linker.define_wasi()
    serialized = wasmtime.Module(eng, wasm).serialize()
    pre = linker.instantiate_pre(wasmtime.Module.deserialize(eng, serialized))
    times = {"compile": [], "deserialize": [], "instantiate": [], "instantiate+run": []}
    for i in range(a.w + a.n):
        t0 = time.perf_counter_ns()
        wasmtime.Module(eng, wasm)
        t1 = time.perf_counter_ns()
        wasmtime.Module.deserialize(eng, serialized)
        t2 = time.perf_counter_ns()
        store = wasmtime.Store(eng)
        store.set_fuel(30000 * 20000000)
        store.set_epoch_deadline(1)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["noop.wasm"]
        store.set_wasi(wasi)
        t3 = time.perf_counter_ns()
        inst = pre.instantiate(store)
        t4 = time.perf_counter_ns()
        inst.exports(store)["_start"](store)
        t5 = time.perf_counter_ns()
        del inst, store
        if i >= a.w:
            times["compile"].append((t1 - t0) / 1000)
            times["deserialize"].append((t2 - t1) / 1000)
            times["instantiate"].append((t4 - t3) / 1000)
            times["instantiate+run"].append((t5 - t2) / 1000)
    for name, xs in times.items():
        print("peer %-16s p50 %9.1f us  p99 %9.1f us" % (name, pct(xs, 50), pct(xs, 99)))


if __name__ == "__main__":
    main()
