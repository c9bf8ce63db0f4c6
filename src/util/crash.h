/*
 * crash.h - named crash points for the crash-point tests.
 *
 * A crash point marks a spot of a write path where a process death must
 * leave a state the next mount repairs: no fsynced byte lost, fsck clean,
 * every unreferenced object findable by gc.  The test suite (tests/
 * integration/0160-crash-points.sh) arms one point per mount through the
 * environment:
 *
 *   TESSERA_CRASH_POINT=NAME[:N]
 *
 * The Nth time (default 1) the process passes point NAME, it logs one line
 * ("crash point 'NAME' reached (hit N): killing the process") and sends
 * itself SIGKILL, as `kill -9` would: no handler, no flush, no unmount.
 *
 * Cost when off: CRASH_POINT() is one compare of a global written once
 * at startup (crash_init) with a constant; nothing else runs.  The points
 * are compiled into every build, because the default build is the one the
 * tests run; `make CRASH_POINTS=0` compiles them out (CRASH_POINT() is
 * empty and crash_init refuses a set TESSERA_CRASH_POINT).
 *
 * The names are listed once, in crash.c's table; docs/design-notes.md
 * says where each one is and what a crash there leaves behind.
 */
#ifndef TESSERA_UTIL_CRASH_H
#define TESSERA_UTIL_CRASH_H

enum crash_point {
	CRASH_NONE = 0,
	CRASH_WRITE_BLOCK_UPLOADED, /* chunk/writer.c: a block is stored */
	CRASH_WRITE_BEFORE_COMMIT,  /* vfs_file.c: slices sealed, no txn */
	CRASH_WRITE_AFTER_COMMIT,   /* vfs_file.c: slices committed */
	CRASH_FSYNC_BEFORE_SYNC,    /* vfs_file.c: committed, not synced */
	CRASH_FSYNC_AFTER_SYNC,	    /* vfs_file.c: synced, not answered */
	CRASH_COMPACT_AFTER_UPLOAD, /* vfs_bg.c: new slice stored, no swap */
	CRASH_COMPACT_AFTER_SWAP,   /* vfs_bg.c: swapped, old ones queued */
	CRASH_DELETE_BEFORE_STORE,  /* vfs_bg.c: queue synced, no delete */
	CRASH_DELETE_AFTER_STORE,   /* vfs_bg.c: objects gone, still queued */
	CRASH_RENAME_BEFORE_COMMIT, /* meta/rename.c: txn built, no commit */
	CRASH_RENAME_AFTER_COMMIT,  /* meta/rename.c: committed, no effects */
	CRASH_STAGE_AFTER_WRITE,    /* cache/stage.c: staged, not uploaded */
	CRASH_STAGE_AFTER_UPLOAD,   /* cache/stage.c: uploaded, still staged */
	CRASH_NPOINTS
};

/*
 * The armed point (CRASH_NONE: none).  Written by crash_init before any
 * thread starts, read-only after: read it through CRASH_POINT() only.
 */
extern int crash_armed;

#ifdef TESSERA_NO_CRASH_POINTS
#define CRASH_POINT(p) ((void)0)
#else
#define CRASH_POINT(p)                                                         \
	do {                                                                   \
		if (__builtin_expect(crash_armed == (p), 0))                   \
			crash_hit(p);                                          \
	} while (0)
#endif

/**
 * Arm the point TESSERA_CRASH_POINT names, if it is set (startup only,
 * before any thread).  Returns 0 (set or not), or -EINVAL after logging
 * one line when the value is not NAME or NAME:N with a known NAME and
 * N >= 1, or when crash points are compiled out.
 */
int crash_init(void);

/** Count a pass through armed point @p; the Nth one kills the process. */
void crash_hit(enum crash_point p);

/** The name of point @p ("write.block_uploaded"), NULL when unknown. */
const char *crash_name(enum crash_point p);

#endif
