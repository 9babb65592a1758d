/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file mbx/process.h
 * @brief Processes that run while the caller goes on: streaming output
 *        (the reference's stream_execute / StreamEvent), stdin, background
 *        processes and PTYs (PtySession / PtyConfig / PtySize / PtyEvent).
 *
 * mbx_sandbox_spawn() starts a program and returns at once with a process
 * handle. Its output arrives as events, in order per stream, and the last
 * event is its exit (or its timeout). A process lives until it exits, is
 * killed, or its sandbox is destroyed; the handle may be freed earlier
 * (mbx_process_free() does not stop the process: see mbx_process_kill()).
 *
 * Each spawned process runs with its whole process tree in a nested pid
 * namespace, so a kill or a timeout ends every process it started, and
 * processes of other executes are not touched.
 *
 * Flow control: each process may have at most `buffer` bytes of unread
 * output on the host (mbx_spawn_options_set_buffer, 1 MiB by default);
 * beyond it the sandbox stops reading the process's output, so a process
 * nobody reads eventually blocks on write instead of growing memory.
 *
 * Thread safety: every call on a process handle, on other processes of its
 * sandbox and on the sandbox itself may come from several threads at once
 * (see mbx/sandbox.h). A call that waits (mbx_process_next_event(),
 * mbx_process_wait(), mbx_process_write_stdin() waiting for stdin credit)
 * does not hold up other threads' calls. Not allowed: any call on a handle
 * after or while mbx_process_free() frees it, and freeing the sandbox while
 * calls on its processes run. Two threads may take events of one process;
 * each event goes to exactly one of them.
 *
 * Many processes without a thread each: mbx_sandbox_event_fd() gives a
 * descriptor to poll() that is readable while any process of the sandbox
 * may have an event; then mbx_process_next_event(proc, 0, ...) on each
 * process takes what is there without blocking.
 */
#ifndef MBX_PROCESS_H
#define MBX_PROCESS_H

#include "common.h"
#include "error.h"
#include "config.h"
#include "result.h"

MBX_BEGIN_DECL

/** A process running in a sandbox. */
typedef struct mbx_process mbx_process;
/** Options of mbx_sandbox_spawn(). */
typedef struct mbx_spawn_options mbx_spawn_options;
/** One event of a process. */
typedef struct mbx_event mbx_event;

/** Kind of an event (the reference's StreamEvent / PtyEvent). */
typedef uint8_t mbx_event_kind_t;
#define MBX_EVENT_STDOUT    ((mbx_event_kind_t)1) /**< bytes on stdout (on a PTY: all output) */
#define MBX_EVENT_STDERR    ((mbx_event_kind_t)2) /**< bytes on stderr */
#define MBX_EVENT_EXIT      ((mbx_event_kind_t)3) /**< the process ended; always last */
#define MBX_EVENT_TIMED_OUT ((mbx_event_kind_t)4) /**< the timeout killed it; always last */

/** @brief Creates spawn options with the defaults (no stdin, no PTY, the sandbox's timeout). */
MBX_EXTERN(int) mbx_spawn_options_new(mbx_spawn_options **out, mbx_error **err);
/** @brief Frees spawn options; NULL is a no-op. */
MBX_EXTERN(void) mbx_spawn_options_free(mbx_spawn_options *opts);
/** @brief Sets a variable for this process; same rules as mbx_config_set_env(). */
MBX_EXTERN(int) mbx_spawn_options_set_env(mbx_spawn_options *opts, const char *name, const char *value, mbx_error **err);
/** @brief Working directory (absolute, or relative to /workspace). */
MBX_EXTERN(int) mbx_spawn_options_set_workdir(mbx_spawn_options *opts, const char *path, mbx_error **err);
/**
 * @brief Timeout in milliseconds; 0 means none (a background server that
 *        runs until killed or until the sandbox is destroyed). The default
 *        is the sandbox's timeout.
 */
MBX_EXTERN(void) mbx_spawn_options_set_timeout_ms(mbx_spawn_options *opts, uint64_t timeout_ms);
/** @brief Gives the process a stdin pipe (mbx_process_write_stdin()); otherwise stdin is /dev/null. */
MBX_EXTERN(void) mbx_spawn_options_set_stdin(mbx_spawn_options *opts, int enable);
/**
 * @brief Runs the process on a pseudo-terminal of rows x cols (the
 *        reference's PtyConfig/PtySize): stdin, stdout and stderr are the
 *        terminal, output arrives as MBX_EVENT_STDOUT, input goes through
 *        mbx_process_write_stdin() (so Ctrl-C is the byte 0x03), and
 *        mbx_process_resize() changes the size the program sees.
 * @return MBX_EINVAL for a zero or over-large size
 */
MBX_EXTERN(int) mbx_spawn_options_set_pty(mbx_spawn_options *opts, uint16_t rows, uint16_t cols, mbx_error **err);
/** @brief Unread output the host keeps per process before it stops the process's output (bytes, at least 64 KiB). */
MBX_EXTERN(int) mbx_spawn_options_set_buffer(mbx_spawn_options *opts, uint64_t bytes, mbx_error **err);

/**
 * @brief Starts a program in the sandbox and returns without waiting.
 * @param argv     NULL-terminated; looked up in the sandbox's PATH
 * @param opts     may be NULL
 * @param[out] out the process, owned by the caller (mbx_process_free())
 * @return MBX_OK; MBX_ENOTFOUND / MBX_ENOEXEC for the program; MBX_EINVAL;
 *         MBX_ENOTSUP when the sandbox's backend cannot spawn processes
 */
MBX_EXTERN(int) mbx_sandbox_spawn(mbx_sandbox *sb, const char *const *argv, const mbx_spawn_options *opts, mbx_process **out, mbx_error **err);

/**
 * @brief Waits up to timeout_ms (-1: forever, 0: poll) for the next event.
 * @param[out] out the event, owned by the caller (mbx_event_free()); NULL
 *                 when none came in time, or, before the time is up, when
 *                 stdin credit came for bytes mbx_process_write_stdin_some()
 *                 could not write (write them now)
 * @return MBX_OK (also when none came: *out is NULL); MBX_ESTATE after the
 *         last event was taken; transport errors as for mbx_sandbox_exec()
 */
MBX_EXTERN(int) mbx_process_next_event(mbx_process *proc, int timeout_ms, mbx_event **out, mbx_error **err);

/** @brief Kind of an event. */
MBX_EXTERN(mbx_event_kind_t) mbx_event_kind(const mbx_event *ev);
/** @brief Output bytes of a STDOUT/STDERR event (borrowed; NULL otherwise). */
MBX_EXTERN(const uint8_t *) mbx_event_data(const mbx_event *ev, size_t *len);
/** @brief Exit status of an EXIT event, -1 when killed by a signal. */
MBX_EXTERN(int) mbx_event_exit_code(const mbx_event *ev);
/** @brief Signal that killed the process (EXIT or TIMED_OUT events), or 0. */
MBX_EXTERN(int) mbx_event_signal(const mbx_event *ev);
/** @brief CPU time of the whole tree in microseconds (EXIT/TIMED_OUT events), or 0. */
MBX_EXTERN(uint64_t) mbx_event_cpu_time_us(const mbx_event *ev);
/** @brief Largest resident set in bytes (EXIT/TIMED_OUT events), or 0. */
MBX_EXTERN(uint64_t) mbx_event_peak_memory_bytes(const mbx_event *ev);
/** @brief Run time in microseconds as the sandbox measured it (EXIT/TIMED_OUT events), or 0. */
MBX_EXTERN(uint64_t) mbx_event_elapsed_us(const mbx_event *ev);
/** @brief Frees an event; NULL is a no-op. */
MBX_EXTERN(void) mbx_event_free(mbx_event *ev);

/**
 * @brief Writes bytes to the process's stdin (or its terminal), of any size.
 *
 * Stdin is flow-controlled: the sandbox takes a bounded window of bytes
 * (256 KiB) and grants more as the program reads, so neither side holds
 * more than that however much is written. When the window is used up, the
 * call waits for the program to read. Output that arrives meanwhile is
 * queued, up to the process's buffer (mbx_spawn_options_set_buffer());
 * beyond it the program waits for the caller to take events, so a program
 * that writes much more than it reads before reading on (`cat` of a large
 * input) needs mbx_process_write_stdin_some() interleaved with
 * mbx_process_next_event(). A program that never reads makes the call wait
 * until the program ends (its timeout), then return MBX_ESTATE.
 *
 * @return MBX_OK; MBX_ESTATE without stdin, after close or once the
 *         process ended; an error the sandbox reported for an earlier
 *         stdin write, signal or resize of this process is returned by the
 *         next call on it (this one or another).
 */
MBX_EXTERN(int) mbx_process_write_stdin(mbx_process *proc, const void *data, size_t len, mbx_error **err);
/**
 * @brief Writes as much of `data` to the process's stdin as the sandbox
 *        takes now, without waiting.
 *
 * @param[out] written bytes taken (0 when the window is full: take events,
 *             then try again). Set on every return.
 * @return as mbx_process_write_stdin().
 */
MBX_EXTERN(int) mbx_process_write_stdin_some(mbx_process *proc, const void *data, size_t len, size_t *written,
					     mbx_error **err);
/** @brief Closes the process's stdin (end of file for the program). */
MBX_EXTERN(int) mbx_process_close_stdin(mbx_process *proc, mbx_error **err);
/** @brief Sends a signal to the process: the program itself, not its mini-init (PID 1 of its namespace). */
MBX_EXTERN(int) mbx_process_signal(mbx_process *proc, int signal, mbx_error **err);
/** @brief Kills the process and every process it started. */
MBX_EXTERN(int) mbx_process_kill(mbx_process *proc, mbx_error **err);
/** @brief Changes the terminal size of a PTY process; MBX_ESTATE without a PTY. */
MBX_EXTERN(int) mbx_process_resize(mbx_process *proc, uint16_t rows, uint16_t cols, mbx_error **err);

/**
 * @brief Waits for the process to end and returns what remains of its
 *        output with its exit status (events not yet taken go into the
 *        result, up to the sandbox's output limit).
 * @param timeout_ms -1 to wait for ever; on expiry MBX_ETIMEDOUT and the process keeps running
 */
MBX_EXTERN(int) mbx_process_wait(mbx_process *proc, int timeout_ms, mbx_result **out, mbx_error **err);

/** @brief Id of the process in its sandbox (stable, small, never reused within a sandbox). */
MBX_EXTERN(uint32_t) mbx_process_id(const mbx_process *proc);
/** @brief 1 while the process runs (as far as the events taken so far tell). */
MBX_EXTERN(int) mbx_process_running(const mbx_process *proc);
/**
 * @brief Frees the handle; the process goes on (kill it first to stop it).
 *        NULL is a no-op. A handle may outlive its sandbox: once the
 *        sandbox is freed, every other call on the handle answers
 *        MBX_ESTATE, and this one only frees it.
 */
MBX_EXTERN(void) mbx_process_free(mbx_process *proc);

/**
 * @brief A descriptor to wait on for the events of all the sandbox's
 *        processes with poll(), select() or epoll, instead of a thread or
 *        a timed mbx_process_next_event() per process.
 *
 * The descriptor is readable while any process of the sandbox may have an
 * event (output, exit, stdin credit) to take: then call
 * mbx_process_next_event(proc, 0, ...) on each process of interest, which
 * takes what has arrived without blocking, until each answers with no
 * event. Level-triggered: it stays readable until the events are taken;
 * with EPOLLET, drain every process before waiting again. "May": a
 * wakeup can find nothing (another thread took the event, or only part of
 * a message had arrived); poll again then. Do not read from it, write to
 * it or close it.
 *
 * A destroy (mbx_sandbox_destroy(), a broken channel, a reset that
 * failed) makes it readable for good, so that a thread waiting on it
 * wakes up; the calls then answer MBX_ESTATE. It stays open until
 * mbx_sandbox_free(), so its number is never another open's meanwhile.
 *
 * @return the descriptor (>= 0), owned by the sandbox and valid until
 *         mbx_sandbox_free(); the same one on every call. MBX_ENOTSUP on a
 *         backend without processes (wasm); MBX_ESTATE once destroyed;
 *         MBX_ESYS when the kernel refuses an eventfd or epoll instance.
 */
MBX_EXTERN(int) mbx_sandbox_event_fd(mbx_sandbox *sb, mbx_error **err);

/** A snapshot of a sandbox's spawned processes. */
typedef struct mbx_proc_list mbx_proc_list;

/**
 * @brief Lists the processes started with mbx_sandbox_spawn() that still
 *        run, as the agent in the sandbox sees them.
 * @param[out] out owned by the caller (mbx_proc_list_free())
 */
MBX_EXTERN(int) mbx_sandbox_list_processes(mbx_sandbox *sb, mbx_proc_list **out, mbx_error **err);
/** @brief Number of processes in the list. */
MBX_EXTERN(size_t) mbx_proc_list_count(const mbx_proc_list *list);
/** @brief Id of entry i (as mbx_process_id()), 0 when out of range. */
MBX_EXTERN(uint32_t) mbx_proc_list_id(const mbx_proc_list *list, size_t i);
/** @brief Program (argv[0]) of entry i; borrowed, NULL when out of range. */
MBX_EXTERN(const char *) mbx_proc_list_program(const mbx_proc_list *list, size_t i);
/** @brief Milliseconds entry i has been running. */
MBX_EXTERN(uint64_t) mbx_proc_list_age_ms(const mbx_proc_list *list, size_t i);
/** @brief Frees a list; NULL is a no-op. */
MBX_EXTERN(void) mbx_proc_list_free(mbx_proc_list *list);

/**
 * @brief Looks up a running process of the sandbox by id and returns a new
 *        handle to it (for example from another call site). Only one handle
 *        per process receives its events; a second handle gets MBX_EEXIST.
 */
MBX_EXTERN(int) mbx_sandbox_process(mbx_sandbox *sb, uint32_t id, mbx_process **out, mbx_error **err);

MBX_END_DECL

#endif /* MBX_PROCESS_H */
