/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Wasmtime C API, loaded on first use.
 *
 * libwasmtime.so is ~30 MB with ~45,000 relocations: linking it into
 * libmimobox would make every program that uses the library, and every
 * one-shot `mimobox run` of a shell command, pay milliseconds of dynamic
 * loading for a backend it may never touch. So the wasm backend opens it
 * with dlopen() the first time a wasm engine is needed, and calls it through
 * a table of pointers whose types come from Wasmtime's own headers
 * (__typeof__), so every call is still checked by the compiler against the
 * pinned headers. Each name used below is redirected to its table entry; a
 * call to a function not in the list fails to link (-Wl,--no-undefined).
 */
#pragma once

#include <wasi.h>
#include <wasm.h>
#include <wasmtime.h>

#define MBX_WASMTIME_FUNCTIONS(X) \
	X(wasi_config_delete) X(wasi_config_new) X(wasi_config_preopen_dir) X(wasi_config_set_argv) \
	X(wasi_config_set_env) X(wasi_config_set_stderr_custom) X(wasi_config_set_stdout_custom) \
	X(wasm_byte_vec_delete) X(wasm_byte_vec_new) X(wasi_config_set_stdin_bytes) X(wasm_config_new) X(wasm_engine_delete) X(wasm_engine_new_with_config) \
	X(wasm_exporttype_name) X(wasm_exporttype_type) X(wasm_exporttype_vec_delete) X(wasm_externtype_kind) \
	X(wasm_importtype_module) X(wasm_importtype_name) X(wasm_importtype_vec_delete) \
	X(wasm_trap_delete) X(wasm_trap_message) \
	X(wasmtime_config_consume_fuel_set) X(wasmtime_config_cranelift_opt_level_set) \
	X(wasmtime_config_epoch_interruption_set) X(wasmtime_config_memory_guard_size_set) \
	X(wasmtime_config_memory_reservation_for_growth_set) X(wasmtime_config_memory_reservation_set) \
	X(wasmtime_config_strategy_set) X(wasmtime_config_wasm_component_model_set) X(wasmtime_config_wasm_gc_set) \
	X(wasmtime_config_wasm_threads_set) X(wasmtime_context_set_epoch_deadline) X(wasmtime_context_set_fuel) \
	X(wasmtime_context_set_wasi) X(wasmtime_engine_increment_epoch) X(wasmtime_error_delete) \
	X(wasmtime_error_exit_status) X(wasmtime_error_message) X(wasmtime_error_new) X(wasmtime_extern_delete) \
	X(wasmtime_func_call) X(wasmtime_instance_export_get) X(wasmtime_instance_pre_delete) \
	X(wasmtime_instance_pre_instantiate) X(wasmtime_linker_define_wasi) X(wasmtime_linker_delete) \
	X(wasmtime_linker_instantiate_pre) X(wasmtime_linker_new) X(wasmtime_module_delete) \
	X(wasmtime_module_deserialize) X(wasmtime_module_exports) X(wasmtime_module_imports) X(wasmtime_module_new) X(wasmtime_module_serialize) \
	X(wasmtime_pooling_allocation_config_delete) X(wasmtime_pooling_allocation_config_linear_memory_keep_resident_set) \
	X(wasmtime_pooling_allocation_config_max_memory_size_set) X(wasmtime_pooling_allocation_config_new) \
	X(wasmtime_pooling_allocation_config_table_keep_resident_set) \
	X(wasmtime_pooling_allocation_config_total_component_instances_set) \
	X(wasmtime_pooling_allocation_config_total_core_instances_set) \
	X(wasmtime_pooling_allocation_config_total_gc_heaps_set) X(wasmtime_pooling_allocation_config_total_memories_set) \
	X(wasmtime_pooling_allocation_config_total_stacks_set) X(wasmtime_pooling_allocation_config_total_tables_set) \
	X(wasmtime_pooling_allocation_strategy_set) X(wasmtime_store_context) X(wasmtime_store_delete) \
	X(wasmtime_store_epoch_deadline_callback) X(wasmtime_store_limiter) X(wasmtime_store_new) X(wasmtime_trap_code) \
	X(wasmtime_wat2wasm)

struct mbx_wasmtime_api {
#define MBX_WT_FIELD(name) __typeof__(name) *name;
	MBX_WASMTIME_FUNCTIONS(MBX_WT_FIELD)
#undef MBX_WT_FIELD
};

extern struct mbx_wasmtime_api mbx__wt;

/*
 * Loads libwasmtime.so and fills mbx__wt, once per process: from the
 * directory of libmimobox itself, then from the Wasmtime directory the
 * build used. Returns 0, or -1 with *why saying what failed (valid for the
 * life of the process). Safe to call from any thread.
 */
int mbx__wasmtime_load(const char **why);

/* From here on, every listed name calls through the table (loader.c alone
 * sees the real names, to look them up). */
#ifndef MBX_WASMTIME_LOADER
#define wasi_config_delete (mbx__wt.wasi_config_delete)
#define wasi_config_new (mbx__wt.wasi_config_new)
#define wasi_config_preopen_dir (mbx__wt.wasi_config_preopen_dir)
#define wasi_config_set_argv (mbx__wt.wasi_config_set_argv)
#define wasi_config_set_env (mbx__wt.wasi_config_set_env)
#define wasi_config_set_stderr_custom (mbx__wt.wasi_config_set_stderr_custom)
#define wasi_config_set_stdout_custom (mbx__wt.wasi_config_set_stdout_custom)
#define wasm_byte_vec_delete (mbx__wt.wasm_byte_vec_delete)
#define wasm_byte_vec_new (mbx__wt.wasm_byte_vec_new)
#define wasi_config_set_stdin_bytes (mbx__wt.wasi_config_set_stdin_bytes)
#define wasm_config_new (mbx__wt.wasm_config_new)
#define wasm_engine_delete (mbx__wt.wasm_engine_delete)
#define wasm_engine_new_with_config (mbx__wt.wasm_engine_new_with_config)
#define wasm_exporttype_name (mbx__wt.wasm_exporttype_name)
#define wasm_exporttype_type (mbx__wt.wasm_exporttype_type)
#define wasm_exporttype_vec_delete (mbx__wt.wasm_exporttype_vec_delete)
#define wasm_externtype_kind (mbx__wt.wasm_externtype_kind)
#define wasm_importtype_module (mbx__wt.wasm_importtype_module)
#define wasm_importtype_name (mbx__wt.wasm_importtype_name)
#define wasm_importtype_vec_delete (mbx__wt.wasm_importtype_vec_delete)
#define wasm_trap_delete (mbx__wt.wasm_trap_delete)
#define wasm_trap_message (mbx__wt.wasm_trap_message)
#define wasmtime_config_consume_fuel_set (mbx__wt.wasmtime_config_consume_fuel_set)
#define wasmtime_config_cranelift_opt_level_set (mbx__wt.wasmtime_config_cranelift_opt_level_set)
#define wasmtime_config_epoch_interruption_set (mbx__wt.wasmtime_config_epoch_interruption_set)
#define wasmtime_config_memory_guard_size_set (mbx__wt.wasmtime_config_memory_guard_size_set)
#define wasmtime_config_memory_reservation_for_growth_set (mbx__wt.wasmtime_config_memory_reservation_for_growth_set)
#define wasmtime_config_memory_reservation_set (mbx__wt.wasmtime_config_memory_reservation_set)
#define wasmtime_config_strategy_set (mbx__wt.wasmtime_config_strategy_set)
#define wasmtime_config_wasm_component_model_set (mbx__wt.wasmtime_config_wasm_component_model_set)
#define wasmtime_config_wasm_gc_set (mbx__wt.wasmtime_config_wasm_gc_set)
#define wasmtime_config_wasm_threads_set (mbx__wt.wasmtime_config_wasm_threads_set)
#define wasmtime_context_set_epoch_deadline (mbx__wt.wasmtime_context_set_epoch_deadline)
#define wasmtime_context_set_fuel (mbx__wt.wasmtime_context_set_fuel)
#define wasmtime_context_set_wasi (mbx__wt.wasmtime_context_set_wasi)
#define wasmtime_engine_increment_epoch (mbx__wt.wasmtime_engine_increment_epoch)
#define wasmtime_error_delete (mbx__wt.wasmtime_error_delete)
#define wasmtime_error_exit_status (mbx__wt.wasmtime_error_exit_status)
#define wasmtime_error_message (mbx__wt.wasmtime_error_message)
#define wasmtime_error_new (mbx__wt.wasmtime_error_new)
#define wasmtime_extern_delete (mbx__wt.wasmtime_extern_delete)
#define wasmtime_func_call (mbx__wt.wasmtime_func_call)
#define wasmtime_instance_export_get (mbx__wt.wasmtime_instance_export_get)
#define wasmtime_instance_pre_delete (mbx__wt.wasmtime_instance_pre_delete)
#define wasmtime_instance_pre_instantiate (mbx__wt.wasmtime_instance_pre_instantiate)
#define wasmtime_linker_define_wasi (mbx__wt.wasmtime_linker_define_wasi)
#define wasmtime_linker_delete (mbx__wt.wasmtime_linker_delete)
#define wasmtime_linker_instantiate_pre (mbx__wt.wasmtime_linker_instantiate_pre)
#define wasmtime_linker_new (mbx__wt.wasmtime_linker_new)
#define wasmtime_module_delete (mbx__wt.wasmtime_module_delete)
#define wasmtime_module_deserialize (mbx__wt.wasmtime_module_deserialize)
#define wasmtime_module_exports (mbx__wt.wasmtime_module_exports)
#define wasmtime_module_imports (mbx__wt.wasmtime_module_imports)
#define wasmtime_module_new (mbx__wt.wasmtime_module_new)
#define wasmtime_module_serialize (mbx__wt.wasmtime_module_serialize)
#define wasmtime_pooling_allocation_config_delete (mbx__wt.wasmtime_pooling_allocation_config_delete)
#define wasmtime_pooling_allocation_config_linear_memory_keep_resident_set (mbx__wt.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set)
#define wasmtime_pooling_allocation_config_max_memory_size_set (mbx__wt.wasmtime_pooling_allocation_config_max_memory_size_set)
#define wasmtime_pooling_allocation_config_new (mbx__wt.wasmtime_pooling_allocation_config_new)
#define wasmtime_pooling_allocation_config_table_keep_resident_set (mbx__wt.wasmtime_pooling_allocation_config_table_keep_resident_set)
#define wasmtime_pooling_allocation_config_total_component_instances_set (mbx__wt.wasmtime_pooling_allocation_config_total_component_instances_set)
#define wasmtime_pooling_allocation_config_total_core_instances_set (mbx__wt.wasmtime_pooling_allocation_config_total_core_instances_set)
#define wasmtime_pooling_allocation_config_total_gc_heaps_set (mbx__wt.wasmtime_pooling_allocation_config_total_gc_heaps_set)
#define wasmtime_pooling_allocation_config_total_memories_set (mbx__wt.wasmtime_pooling_allocation_config_total_memories_set)
#define wasmtime_pooling_allocation_config_total_stacks_set (mbx__wt.wasmtime_pooling_allocation_config_total_stacks_set)
#define wasmtime_pooling_allocation_config_total_tables_set (mbx__wt.wasmtime_pooling_allocation_config_total_tables_set)
#define wasmtime_pooling_allocation_strategy_set (mbx__wt.wasmtime_pooling_allocation_strategy_set)
#define wasmtime_store_context (mbx__wt.wasmtime_store_context)
#define wasmtime_store_delete (mbx__wt.wasmtime_store_delete)
#define wasmtime_store_epoch_deadline_callback (mbx__wt.wasmtime_store_epoch_deadline_callback)
#define wasmtime_store_limiter (mbx__wt.wasmtime_store_limiter)
#define wasmtime_store_new (mbx__wt.wasmtime_store_new)
#define wasmtime_trap_code (mbx__wt.wasmtime_trap_code)
#define wasmtime_wat2wasm (mbx__wt.wasmtime_wat2wasm)
#endif /* MBX_WASMTIME_LOADER */
