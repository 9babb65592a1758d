/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/file.h
 * @brief Files inside a sandbox (the reference's read_file, write_file,
 *        list_dir, stat, DirEntry, FileStat, FileType).
 *
 * Paths are sandbox paths: absolute, or relative to /workspace. They are
 * resolved inside the sandbox, by the sandbox's own agent, so symlinks
 * (absolute or relative), `..` and races cannot reach anything outside the
 * sandbox's view. Transfers are chunked; a transfer larger than the
 * sandbox's file limit (mbx_config_set_file_limit(), 1 GiB by default) fails
 * with MBX_ETOOBIG.
 *
 * Errors: MBX_ENOTFOUND (no such file), MBX_EPERM (permission denied or
 * read-only), MBX_ENOTDIR (a path component is not a directory), MBX_ETOOBIG
 * (over the limit), MBX_EEXIST, MBX_EINVAL (a bad path or a directory where
 * a file is needed).
 */
#ifndef MBX_FILE_H
#define MBX_FILE_H

#include "common.h"
#include "error.h"
#include "config.h"

MBX_BEGIN_DECL

/** Type of a file (the reference's FileType). */
typedef uint8_t mbx_file_type_t;
#define MBX_FILE_REGULAR   ((mbx_file_type_t)1)
#define MBX_FILE_DIRECTORY ((mbx_file_type_t)2)
#define MBX_FILE_SYMLINK   ((mbx_file_type_t)3)
#define MBX_FILE_OTHER     ((mbx_file_type_t)4)

/** Metadata of one file (the reference's FileStat). */
typedef struct mbx_stat mbx_stat;
/** A directory listing (the reference's Vec<DirEntry>). */
typedef struct mbx_dir mbx_dir;

/** Flags of mbx_sandbox_write_file(). */
#define MBX_WRITE_APPEND    ((uint32_t)1) /**< append instead of replacing */
#define MBX_WRITE_EXCLUSIVE ((uint32_t)2) /**< fail with MBX_EEXIST if the file exists */

/**
 * @brief Reads a whole file.
 * @param[out] data malloc'd bytes plus a NUL not counted in len; free with mbx_buffer_free()
 */
MBX_EXTERN(int) mbx_sandbox_read_file(mbx_sandbox *sb, const char *path, uint8_t **data, size_t *len, mbx_error **err);

/**
 * @brief Creates or replaces a file atomically (written to a temporary name
 *        in the same directory, then renamed), or appends to it.
 * @param mode permission bits of a new file (e.g. 0644)
 */
MBX_EXTERN(int) mbx_sandbox_write_file(mbx_sandbox *sb, const char *path, const void *data, size_t len, uint32_t mode,
				       uint32_t flags, mbx_error **err);

/** @brief Streams a sandbox file into the host descriptor fd (any size up to the limit). */
MBX_EXTERN(int) mbx_sandbox_read_file_to_fd(mbx_sandbox *sb, const char *path, int fd, mbx_error **err);

/** @brief Streams the host descriptor fd to its end into a sandbox file, replaced atomically. */
MBX_EXTERN(int) mbx_sandbox_write_file_from_fd(mbx_sandbox *sb, const char *path, int fd, uint32_t mode, mbx_error **err);

/** @brief Frees bytes returned by mbx_sandbox_read_file(); NULL is a no-op. */
MBX_EXTERN(void) mbx_buffer_free(uint8_t *data);

/**
 * @brief Metadata of a path, without following a final symlink.
 * @param[out] out owned by the caller (mbx_stat_free())
 */
MBX_EXTERN(int) mbx_sandbox_stat(mbx_sandbox *sb, const char *path, mbx_stat **out, mbx_error **err);
MBX_EXTERN(mbx_file_type_t) mbx_stat_type(const mbx_stat *st);
MBX_EXTERN(uint64_t) mbx_stat_size(const mbx_stat *st);
/** @brief Permission bits (07777). */
MBX_EXTERN(uint32_t) mbx_stat_mode(const mbx_stat *st);
/** @brief Modification time in nanoseconds since the epoch. */
MBX_EXTERN(int64_t) mbx_stat_mtime_ns(const mbx_stat *st);
/** @brief Owner as seen inside the sandbox. */
MBX_EXTERN(uint32_t) mbx_stat_uid(const mbx_stat *st);
MBX_EXTERN(uint32_t) mbx_stat_gid(const mbx_stat *st);
/** @brief Where a symlink points (as stored, not resolved); borrowed, NULL when not a symlink. */
MBX_EXTERN(const char *) mbx_stat_symlink_target(const mbx_stat *st);
MBX_EXTERN(void) mbx_stat_free(mbx_stat *st);

/**
 * @brief Lists a directory (without `.` and `..`), sorted by name.
 * @param[out] out owned by the caller (mbx_dir_free())
 */
MBX_EXTERN(int) mbx_sandbox_list_dir(mbx_sandbox *sb, const char *path, mbx_dir **out, mbx_error **err);
MBX_EXTERN(size_t) mbx_dir_count(const mbx_dir *dir);
/** @brief Name of entry i; borrowed, NULL when out of range. */
MBX_EXTERN(const char *) mbx_dir_name(const mbx_dir *dir, size_t i);
MBX_EXTERN(mbx_file_type_t) mbx_dir_type(const mbx_dir *dir, size_t i);
MBX_EXTERN(uint64_t) mbx_dir_size(const mbx_dir *dir, size_t i);
/** @brief 1 when entry i is a symbolic link (its type is then MBX_FILE_SYMLINK). */
MBX_EXTERN(int) mbx_dir_is_symlink(const mbx_dir *dir, size_t i);
/** @brief Where entry i points when it is a symlink (as stored, not resolved); borrowed, else NULL. */
MBX_EXTERN(const char *) mbx_dir_symlink_target(const mbx_dir *dir, size_t i);
MBX_EXTERN(void) mbx_dir_free(mbx_dir *dir);

/** @brief Creates a directory (with its missing parents when `parents` is non-zero); without
 *         `parents` the new directory's mode is `mode` exactly (no umask; set-id bits are refused). */
MBX_EXTERN(int) mbx_sandbox_mkdir(mbx_sandbox *sb, const char *path, uint32_t mode, int parents, mbx_error **err);
/** @brief Removes a file or an empty directory, or a whole tree when `recursive` is non-zero. */
MBX_EXTERN(int) mbx_sandbox_remove(mbx_sandbox *sb, const char *path, int recursive, mbx_error **err);
/**
 * @brief Makes the symlink `path` pointing at `target`, which is stored as
 *        given (1 to 4095 bytes, relative or absolute) and never resolved
 *        here: like every path, it resolves inside the sandbox when used.
 * @return MBX_OK, MBX_EEXIST when `path` exists, MBX_EINVAL for a bad target
 */
MBX_EXTERN(int) mbx_sandbox_symlink(mbx_sandbox *sb, const char *target, const char *path, mbx_error **err);
/** @brief Renames within the sandbox (replacing the target like rename(2)). */
MBX_EXTERN(int) mbx_sandbox_rename(mbx_sandbox *sb, const char *from, const char *to, mbx_error **err);

/** @brief Largest file a transfer may move, in bytes (default 1 GiB). */
MBX_EXTERN(int) mbx_config_set_file_limit(mbx_config *cfg, uint64_t bytes, mbx_error **err);

MBX_END_DECL

#endif /* MBX_FILE_H */
