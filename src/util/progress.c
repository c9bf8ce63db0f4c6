/*
 * progress.c - the progress line of progress.h.  Drawn with "\r" and an
 * erase-to-end-of-line escape, so it needs a terminal; on a pipe or a file
 * nothing is written at all.
 */
#include "util/common.h"
#include "util/progress.h"

#include <time.h>
#include <unistd.h>

#define REDRAW_NS 100000000LL

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* @v in @unit, or as bytes with a binary suffix. */
static void fmt_amount(char *out, size_t n, const char *unit, double v)
{
	static const char *const suf[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	size_t i = 0;

	if (unit) {
		snprintf(out, n, "%.0f", v);
		return;
	}
	while (v >= 1024 && i + 1 < ARRAY_SIZE(suf)) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, suf[i]);
}

static void draw(struct progress *p, int64_t now)
{
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)p->done / secs : 0;
	char done[32], total[32], r[32], tail[64] = "";

	fmt_amount(done, sizeof(done), p->unit, (double)p->done);
	fmt_amount(r, sizeof(r), p->unit, rate);
	if (p->total) {
		fmt_amount(total, sizeof(total), p->unit, (double)p->total);
		if (rate > 0 && p->total > p->done)
			snprintf(tail, sizeof(tail), ", ETA %.0fs",
				 (double)(p->total - p->done) / rate);
		fprintf(stderr, "\r\033[K%s: %s/%s%s%s (%.0f%%), %s/s%s",
			p->what, done, total, p->unit ? " " : "",
			p->unit ? p->unit : "",
			100.0 * (double)p->done / (double)p->total, r,
			tail);
	} else {
		fprintf(stderr, "\r\033[K%s: %s%s%s, %s/s", p->what, done,
			p->unit ? " " : "", p->unit ? p->unit : "", r);
	}
	fflush(stderr);
	p->drawn_ns = now;
	p->shown = true;
}

void progress_init(struct progress *p, const char *what, const char *unit,
		   uint64_t total, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->unit = unit;
	p->total = total;
	p->start_ns = mono_ns();
	p->on = !quiet && isatty(STDERR_FILENO);
}

void progress_add(struct progress *p, uint64_t n)
{
	int64_t now;

	p->done += n;
	if (!p->on)
		return;
	now = mono_ns();
	if (now - p->drawn_ns >= REDRAW_NS)
		draw(p, now);
}

void progress_total(struct progress *p, uint64_t total)
{
	p->total = total;
}

void progress_end(struct progress *p)
{
	if (p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->shown = false;
	p->on = false;
}
