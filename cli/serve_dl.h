/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libmicrohttpd and json-c for `mimobox serve`, loaded with dlopen() when
 * the server starts: every other verb of the CLI starts without them and
 * the dozen libraries they pull in (GnuTLS and its chain). serve.c includes
 * this header instead of theirs; it routes each call it makes through
 * `serve_dl`, which serve_dl_load() fills.
 */
#ifndef MBX_CLI_SERVE_DL_H
#define MBX_CLI_SERVE_DL_H

#include <stddef.h>

#include <json-c/json.h>
#include <microhttpd.h>

/* Every function of the two libraries the server calls. */
#define SERVE_DL_FUNCTIONS(X) \
	X(json_object_object_add) \
	X(json_object_new_string) \
	X(json_object_new_object) \
	X(json_object_put) \
	X(json_object_new_int64) \
	X(json_object_is_type) \
	X(json_object_get_string) \
	X(json_object_new_boolean) \
	X(json_object_object_get_ex) \
	X(json_object_new_array) \
	X(json_object_array_add) \
	X(json_object_to_json_string_ext) \
	X(json_object_new_int) \
	X(json_tokener_get_error) \
	X(json_object_get) \
	X(json_tokener_free) \
	X(json_object_new_string_len) \
	X(json_object_get_string_len) \
	X(json_object_array_length) \
	X(json_object_array_get_idx) \
	X(json_tokener_parse_ex) \
	X(json_tokener_new) \
	X(json_tokener_get_parse_end) \
	X(json_tokener_error_desc) \
	X(json_object_to_json_string_length) \
	X(json_object_object_length) \
	X(json_object_get_int64) \
	X(json_object_deep_copy) \
	X(json_object_get_object) \
	X(json_object_get_double) \
	X(json_object_new_double_s) \
	X(MHD_add_response_header) \
	X(MHD_lookup_connection_value) \
	X(MHD_create_response_from_buffer) \
	X(MHD_set_connection_option) \
	X(MHD_stop_daemon) \
	X(MHD_start_daemon) \
	X(MHD_quiesce_daemon) \
	X(MHD_queue_response) \
	X(MHD_get_connection_info) \
	X(MHD_destroy_response) \
	X(MHD_create_response_from_fd_at_offset64) \
	X(MHD_create_response_from_callback) \
	X(MHD_create_response_for_upgrade) \
	X(MHD_upgrade_action) \
	X(MHD_get_connection_values) \
	X(MHD_is_feature_supported)

struct serve_dl {
#define SERVE_DL_FIELD(name) __typeof__(name) *name;
	SERVE_DL_FUNCTIONS(SERVE_DL_FIELD)
#undef SERVE_DL_FIELD
};

extern struct serve_dl serve_dl;

/*
 * Loads both libraries and every function; 0, or -1 with what is missing
 * (and the Debian package that has it) in `why`. Call it once, before any
 * thread starts. The libraries stay loaded.
 */
int serve_dl_load(char *why, size_t whylen);

/* Loads json-c alone and its functions (remote.c: the CLI through a server); the same contract. */
int serve_dl_load_json(char *why, size_t whylen);

#ifndef SERVE_DL_NO_REDIRECT
#define json_object_object_add (serve_dl.json_object_object_add)
#define json_object_new_string (serve_dl.json_object_new_string)
#define json_object_new_object (serve_dl.json_object_new_object)
#define json_object_put (serve_dl.json_object_put)
#define json_object_new_int64 (serve_dl.json_object_new_int64)
#define json_object_is_type (serve_dl.json_object_is_type)
#define json_object_get_string (serve_dl.json_object_get_string)
#define json_object_new_boolean (serve_dl.json_object_new_boolean)
#define json_object_object_get_ex (serve_dl.json_object_object_get_ex)
#define json_object_new_array (serve_dl.json_object_new_array)
#define json_object_array_add (serve_dl.json_object_array_add)
#define json_object_to_json_string_ext (serve_dl.json_object_to_json_string_ext)
#define json_object_new_int (serve_dl.json_object_new_int)
#define json_tokener_get_error (serve_dl.json_tokener_get_error)
#define json_object_get (serve_dl.json_object_get)
#define json_tokener_free (serve_dl.json_tokener_free)
#define json_object_new_string_len (serve_dl.json_object_new_string_len)
#define json_object_get_string_len (serve_dl.json_object_get_string_len)
#define json_object_array_length (serve_dl.json_object_array_length)
#define json_object_array_get_idx (serve_dl.json_object_array_get_idx)
#define json_tokener_parse_ex (serve_dl.json_tokener_parse_ex)
#define json_tokener_new (serve_dl.json_tokener_new)
#define json_tokener_get_parse_end (serve_dl.json_tokener_get_parse_end)
#define json_tokener_error_desc (serve_dl.json_tokener_error_desc)
#define json_object_to_json_string_length (serve_dl.json_object_to_json_string_length)
#define json_object_object_length (serve_dl.json_object_object_length)
#define json_object_get_int64 (serve_dl.json_object_get_int64)
#define json_object_deep_copy (serve_dl.json_object_deep_copy)
#define json_object_get_object (serve_dl.json_object_get_object)
#define json_object_get_double (serve_dl.json_object_get_double)
#define json_object_new_double_s (serve_dl.json_object_new_double_s)
#define MHD_add_response_header (serve_dl.MHD_add_response_header)
#define MHD_lookup_connection_value (serve_dl.MHD_lookup_connection_value)
#define MHD_create_response_from_buffer (serve_dl.MHD_create_response_from_buffer)
#define MHD_set_connection_option (serve_dl.MHD_set_connection_option)
#define MHD_stop_daemon (serve_dl.MHD_stop_daemon)
#define MHD_start_daemon (serve_dl.MHD_start_daemon)
#define MHD_quiesce_daemon (serve_dl.MHD_quiesce_daemon)
#define MHD_queue_response (serve_dl.MHD_queue_response)
#define MHD_get_connection_info (serve_dl.MHD_get_connection_info)
#define MHD_destroy_response (serve_dl.MHD_destroy_response)
#define MHD_create_response_from_fd_at_offset64 (serve_dl.MHD_create_response_from_fd_at_offset64)
#define MHD_create_response_from_callback (serve_dl.MHD_create_response_from_callback)
#define MHD_create_response_for_upgrade (serve_dl.MHD_create_response_for_upgrade)
#define MHD_upgrade_action (serve_dl.MHD_upgrade_action)
#define MHD_get_connection_values (serve_dl.MHD_get_connection_values)
#define MHD_is_feature_supported (serve_dl.MHD_is_feature_supported)
#endif

#endif /* MBX_CLI_SERVE_DL_H */
