/*
 * fuse_int.h - private to src/fuse/: the session loop (loop.c) that
 * fuse.c runs.
 */
#ifndef TESSERA_FUSE_FUSE_INT_H
#define TESSERA_FUSE_FUSE_INT_H

#include <stdint.h>
#include <time.h>

struct fuse_session;
struct fuse_buf;

/** The name FUSE_TMPFILE arrives with (the kernel's unnamed dentry). */
#define FSOP_TMPFILE_NAME "/"

/** CLOCK_MONOTONIC now, in ns. */
int64_t fsop_mono_ns(void);
/** *ts = CLOCK_MONOTONIC now + @ns (for condvars on the monotonic clock). */
void fsop_deadline_after(struct timespec *ts, int64_t ns);

/**
 * fuse_session_process_buf, counting the request and its time in the
 * handler per opcode for fsop_op_stats_text.  libfuse 3.14 answers
 * FUSE_TMPFILE (O_TMPFILE, Linux 6.1+) with ENOSYS; its arguments are
 * FUSE_CREATE's and its name is "/", which no create can carry, so it is
 * passed on as a FUSE_CREATE that fsop_create recognises by that name.
 */
void fsop_process(struct fuse_session *se, const struct fuse_buf *buf);

/*
 * The access log (vfs ".accesslog"): the mount's vfs (one per process),
 * and the error the request being processed on this thread replied with
 * (fuse.c's fuse_reply_err records it; 0 for any other reply).
 */
struct vfs;
extern struct vfs *fsop_alog_vfs;
extern _Thread_local int fsop_reply_errno;

/**
 * Serve @se until it ends (unmount, or a signal handler calling
 * fuse_session_exit), on up to @max_threads worker threads started as
 * the load needs them.  Startup thread only; the ops run on the workers.
 * Returns 0, or the -errno a read of /dev/fuse failed with, or -ENOMEM.
 */
int fsop_loop_run(struct fuse_session *se, int max_threads);
/**
 * Called by an op about to do something that may wait (object I/O, a lock
 * wait): let another thread read the next request now rather than after
 * the watchdog's delay.  No-op outside the loop's worker threads.
 */
void fsop_loop_may_block(void);

/*
 * FUSE over io_uring (uring.c).  fsop_uring_available: the kernel lets us
 * (fuse.enable_uring).  fsop_uring_attach: after fuse_session_mount,
 * before the loop: the session's transport goes through uring.c, which
 * starts the rings once FUSE_INIT is answered.  fsop_uring_may_block:
 * fsop_loop_may_block on a ring thread.  fsop_uring_stop: after the loop.
 */
#include <stdbool.h>
bool fsop_uring_available(void);
int fsop_uring_attach(struct fuse_session *se);
void fsop_uring_may_block(void);
void fsop_uring_stop(void);

#endif
