/*
 * fuse_int.h - private to src/fuse/: the session loop (loop.c) that
 * fuse.c runs.
 */
#ifndef TESSERA_FUSE_FUSE_INT_H
#define TESSERA_FUSE_FUSE_INT_H

struct fuse_session;

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

#endif
