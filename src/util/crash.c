/*
 * crash.c - the table of crash point names and the kill (crash.h).
 *
 * Design note.  Only the armed point is ever counted: CRASH_POINT() of any
 * other point is a compare that fails.  The count is atomic because most
 * points sit on paths several threads run (upload workers, FUSE threads);
 * exactly one pass sees the count reach N, and it kills the whole process
 * with SIGKILL (kill(2) on our pid, not raise(3), which targets one
 * thread; SIGKILL takes every thread anyway).  Other threads may run on
 * for the microseconds the kernel needs: a crash at a point means "dead
 * at or shortly after it", which is what a real crash looks like too.
 */
#include "util/common.h"
#include "util/crash.h"
#include "util/log.h"

#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#define CRASH_ENV "TESSERA_CRASH_POINT"

int crash_armed = CRASH_NONE;
static unsigned long crash_nth = 1;
static atomic_ulong crash_hits;

static const char *const crash_names[CRASH_NPOINTS] = {
	[CRASH_WRITE_BLOCK_UPLOADED] = "write.block_uploaded",
	[CRASH_WRITE_BEFORE_COMMIT] = "write.before_commit",
	[CRASH_WRITE_AFTER_COMMIT] = "write.after_commit",
	[CRASH_FSYNC_BEFORE_SYNC] = "fsync.before_sync",
	[CRASH_FSYNC_AFTER_SYNC] = "fsync.after_sync",
	[CRASH_COMPACT_AFTER_UPLOAD] = "compact.after_upload",
	[CRASH_COMPACT_AFTER_SWAP] = "compact.after_swap",
	[CRASH_DELETE_BEFORE_STORE] = "delete.before_store",
	[CRASH_DELETE_AFTER_STORE] = "delete.after_store",
	[CRASH_RENAME_BEFORE_COMMIT] = "rename.before_commit",
	[CRASH_RENAME_AFTER_COMMIT] = "rename.after_commit",
	[CRASH_STAGE_AFTER_WRITE] = "stage.after_write",
	[CRASH_STAGE_AFTER_UPLOAD] = "stage.after_upload",
};

const char *crash_name(enum crash_point p)
{
	return p > CRASH_NONE && p < CRASH_NPOINTS ? crash_names[p] : NULL;
}

int crash_init(void)
{
	const char *v = getenv(CRASH_ENV);
	const char *colon;
	size_t len;
	char *end;

	if (!v || !*v)
		return 0;
#ifdef TESSERA_NO_CRASH_POINTS
	UNUSED(colon);
	UNUSED(len);
	UNUSED(end);
	log_error("%s='%s': crash points are compiled out of this build",
		  CRASH_ENV, v);
	return -EINVAL;
#else
	colon = strchr(v, ':');
	len = colon ? (size_t)(colon - v) : strlen(v);
	if (colon) {
		errno = 0;
		crash_nth = strtoul(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || crash_nth < 1 ||
		    colon[1] == '-') {
			log_error(
				"%s='%s': expected NAME or NAME:N with N >= 1",
				CRASH_ENV, v);
			return -EINVAL;
		}
	}
	for (int p = CRASH_NONE + 1; p < CRASH_NPOINTS; p++) {
		if (strlen(crash_names[p]) == len &&
		    strncmp(crash_names[p], v, len) == 0) {
			crash_armed = p;
			return 0;
		}
	}
	log_error("%s='%s': unknown crash point (see docs/design-notes.md)",
		  CRASH_ENV, v);
	return -EINVAL;
#endif
}

void crash_hit(enum crash_point p)
{
	unsigned long n = atomic_fetch_add(&crash_hits, 1) + 1;

	if (n != crash_nth)
		return;
	log_error("crash point '%s' reached (hit %lu): killing the process",
		  crash_names[p], n);
	kill(getpid(), SIGKILL);
	_exit(137); /* not reached */
}
