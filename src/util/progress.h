/*
 * progress.h - one progress line on stderr for commands that can run for
 * seconds (fsck, gc, rmr, destroy, warmup, restore...).
 *
 * The line ("WHAT: DONE/TOTAL UNIT (PCT%), RATE/s, ETA Ns") is drawn only
 * when stderr is a terminal and the caller did not ask for quiet; it is
 * redrawn at most ten times a second and erased by progress_end, so a
 * command's real output is never mixed with it.  Without a total (0) it
 * shows the count and the rate.  A struct progress belongs to one thread.
 */
#ifndef TESSERA_UTIL_PROGRESS_H
#define TESSERA_UTIL_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress {
	const char *what; /* borrowed: lives as long as the progress */
	const char *unit; /* "files", "objects"; NULL: bytes (binary units) */
	uint64_t done, total;
	int64_t start_ns, drawn_ns;
	bool on;    /* drawing (a TTY and not quiet) */
	bool shown; /* a line is on the screen */
};

/** Start: @total may be 0 (unknown).  @quiet: never draw. */
void progress_init(struct progress *p, const char *what, const char *unit,
		   uint64_t total, bool quiet);
/** Add @n done (and redraw when due). */
void progress_add(struct progress *p, uint64_t n);
/** Set the total (it may grow as work is found). */
void progress_total(struct progress *p, uint64_t total);
/** Erase the line.  Safe to call twice. */
void progress_end(struct progress *p);

#endif
