/*
 * fsop.h - the FUSE adapter: mounts a struct vfs with libfuse3's low-level
 * API and runs a multi-threaded session loop (loop.c).
 *
 * Mount options chosen here (DESIGN section 5):
 *  - default_permissions is always on: the kernel checks mode bits with
 *    its cached attributes on every path walk (a FUSE file system without
 *    it is not asked for cached dentries, so checks would be skipped), and
 *    meta/ checks again with the caller's credentials (uid, gid,
 *    supplementary groups, umask) inside each transaction.
 *  - writeback cache off, readdirplus, flock and POSIX locks, atomic
 *    O_TRUNC, max_write 1 MiB, attribute/entry timeouts from the caller.
 *  - fsname "tessera:NAME", type fuse.tessera.
 *
 * Lifecycle: fsop_mount (the mountpoint is live when it returns 0), then
 * fsop_run (until unmounted or SIGTERM/SIGINT/SIGHUP), then fsop_free
 * (unmounts if still mounted).  Startup thread only, except that the ops
 * run on the loop's worker threads.
 */
#ifndef TESSERA_FUSE_FSOP_H
#define TESSERA_FUSE_FSOP_H

#include <stdbool.h>

struct buf;
struct vfs;
struct fsop;

struct fsop_conf {
	double attr_timeout;  /* seconds */
	double entry_timeout; /* seconds */
	bool read_only;
	bool debug;	     /* libfuse request log on stderr */
	const char *fsname;  /* shown in /proc/mounts; may be NULL */
	const char *options; /* extra -o options (allow_other, ...); or NULL */
	int max_threads;     /* worker threads (0: 64) */
	bool no_uring;	     /* stay on /dev/fuse even if io_uring is on */
	bool no_acl; /* no FUSE_CAP_POSIX_ACL (meta_set_acl(m, false) too) */
};

/**
 * Create the session for @v and mount it at @mountpoint (absolute).
 * Installs handlers for SIGTERM/SIGINT/SIGHUP that end fsop_run.
 * Returns 0, -EINVAL (bad option; logged) or -EIO (mount failed; logged).
 */
int fsop_mount(struct vfs *v, const char *mountpoint,
	       const struct fsop_conf *conf, struct fsop **out);
/** Serve requests until the file system is unmounted or a signal ends it. */
int fsop_run(struct fsop *fs);
/** Unmount (if still mounted), restore signal handlers, free.  NULL: no-op. */
void fsop_free(struct fsop *fs);
/** Whether requests come through FUSE over io_uring rings now. */
bool fsop_uring_serving(void);
/**
 * Append one ".stats" line per FUSE opcode served so far:
 * "fuse_op NAME COUNT TOTAL_US", TOTAL_US the time spent in the handlers
 * (reply included).  Returns 0 or -ENOMEM.
 */
int fsop_op_stats_text(struct buf *b);
/* The same as Prometheus series (counts by op, latency histograms). */
int fsop_op_metrics_prom(struct buf *b);

#endif
