/*
 * cmd_stats.c - `tessera stats MOUNTPOINT [--interval S] [--count N]
 * [--json]`: a live view of a mount's counters.
 *
 * Every interval it reads MOUNTPOINT/.stats (the same numbers /metrics
 * serves) and prints one line of rates over the interval: FUSE requests,
 * application read/write throughput, object requests and bytes, disk
 * cache hit ratio, mean request latency, buffer memory and pending
 * uploads.  A header is repeated every 20 lines on a terminal.  --count N
 * prints N lines and exits, for scripts; --json prints one JSON object per
 * line instead.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

enum { OPT_JSON = 256 };

struct stats_opts {
	double interval;
	uint64_t count; /* 0: until interrupted */
	bool json;
};

struct sample {
	double t;
	uint64_t ops, op_us, read_b, write_b;
	uint64_t obj_req, obj_get, obj_put, obj_err, up_b, down_b;
	uint64_t hits, misses, mem, staged, txns, conflicts;
};

static const struct option stats_longopts[] = {
	{"interval", required_argument, NULL, CLI_OPT_INTERVAL},
	{"count", required_argument, NULL, CLI_OPT_COUNT},
	{"json", no_argument, NULL, OPT_JSON},
	{NULL, 0, NULL, 0},
};

static int stats_opt(void *arg, int c, const char *val)
{
	struct stats_opts *o = arg;
	int rc = cli_live_opt("stats", c, val, &o->interval, &o->count);

	if (rc >= 0)
		return rc;
	if (c == OPT_JSON) {
		o->json = true;
		return 0;
	}
	return EXIT_USAGE;
}

/* Read and parse MOUNTPOINT/.stats; -errno with one line logged. */
static int take(const char *mp, struct sample *s)
{
	char path[PATH_MAX + 16], text[65536];
	char *save = NULL;
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/.stats", mp);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		log_error("'%s' is not a live tessera mount (%s: %s)", mp, path,
			  strerror(e));
		return -e;
	}
	while ((n = read(fd, text + got, sizeof(text) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (n < 0 || got == 0) {
		log_error("cannot read '%s': %s", path,
			  n < 0 ? strerror(errno) : "empty");
		return -EIO;
	}
	text[got] = '\0';
	memset(s, 0, sizeof(*s));
	s->t = cli_mono_s();
	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char name[64];
		unsigned long long a = 0, b = 0, c = 0, d = 0;

		if (sscanf(l, "fuse_op %63s %llu %llu", name, &a, &b) == 3) {
			s->ops += a;
			s->op_us += b;
		} else if (sscanf(l, "object_%63s %llu %llu %llu %llu", name,
				  &a, &b, &c, &d) == 5) {
			s->obj_req += a + b + c;
			s->obj_err += c;
			if (!strcmp(name, "GET"))
				s->obj_get += a + b + c;
			else if (!strcmp(name, "PUT"))
				s->obj_put += a + b + c;
		} else if (sscanf(l, "%63s %llu", name, &a) == 2) {
			static const struct {
				const char *k;
				size_t off;
			} f[] = {
				{"read_bytes", offsetof(struct sample, read_b)},
				{"write_bytes", offsetof(struct sample, write_b)},
				{"object_bytes_up", offsetof(struct sample, up_b)},
				{"object_bytes_down",
				 offsetof(struct sample, down_b)},
				{"cache_hits", offsetof(struct sample, hits)},
				{"cache_misses", offsetof(struct sample, misses)},
				{"mem_used", offsetof(struct sample, mem)},
				{"cache_staged", offsetof(struct sample, staged)},
				{"meta_txns", offsetof(struct sample, txns)},
				{"meta_retries",
				 offsetof(struct sample, conflicts)},
			};

			for (size_t i = 0; i < ARRAY_SIZE(f); i++)
				if (!strcmp(name, f[i].k))
					*(uint64_t *)((char *)s + f[i].off) = a;
		}
	}
	return 0;
}

#define RATE(x) ((double)(b->x - a->x) / dt)

static void print_line(const struct sample *a, const struct sample *b,
		       const struct stats_opts *o, bool header)
{
	double dt = b->t - a->t > 0 ? b->t - a->t : 1e-9;
	uint64_t dops = b->ops - a->ops, dh = b->hits - a->hits;
	uint64_t dm = b->misses - a->misses;
	double lat_ms = dops ? (double)(b->op_us - a->op_us) / 1000 / dops : 0;
	double hit = dh + dm ? 100.0 * (double)dh / (double)(dh + dm) : 0;
	time_t now = time(NULL);
	struct tm tm;
	char ts[16];

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	if (o->json) {
		printf("{\"time\":%lld,\"interval_s\":%.3f,\"ops\":%.1f,"
		       "\"latency_ms\":%.3f,\"read_Bps\":%.0f,"
		       "\"write_Bps\":%.0f,\"object_requests\":%.1f,"
		       "\"object_gets\":%.1f,\"object_puts\":%.1f,"
		       "\"object_errors\":%.1f,\"up_Bps\":%.0f,"
		       "\"down_Bps\":%.0f,\"cache_hit_pct\":%.1f,"
		       "\"meta_txns\":%.1f,\"meta_conflicts\":%.1f,"
		       "\"buffer_bytes\":%llu,\"uploads_pending\":%llu}\n",
		       (long long)now, dt, RATE(ops), lat_ms, RATE(read_b),
		       RATE(write_b), RATE(obj_req), RATE(obj_get),
		       RATE(obj_put), RATE(obj_err), RATE(up_b), RATE(down_b),
		       hit, RATE(txns), RATE(conflicts),
		       (unsigned long long)b->mem,
		       (unsigned long long)b->staged);
		fflush(stdout);
		return;
	}
	if (header)
		printf("%-8s %8s %8s %9s %9s %7s %7s %9s %9s %6s %7s %7s %7s\n",
		       "time", "ops/s", "lat_ms", "read_MB/s", "write_MB/s",
		       "get/s", "put/s", "up_MB/s", "down_MB/s", "hit%",
		       "txn/s", "buf_MB", "pending");
	printf("%-8s %8.0f %8.3f %9.1f %9.1f %7.0f %7.0f %9.1f %9.1f %6.1f "
	       "%7.0f %7.1f %7llu\n",
	       ts, RATE(ops), lat_ms, RATE(read_b) / 1e6, RATE(write_b) / 1e6,
	       RATE(obj_get), RATE(obj_put), RATE(up_b) / 1e6,
	       RATE(down_b) / 1e6, hit, RATE(txns), (double)b->mem / 1e6,
	       (unsigned long long)b->staged);
	fflush(stdout);
}

int cmd_stats(int argc, char **argv)
{
	struct stats_opts o = {.interval = 1};
	struct sample prev, cur;
	const char *pos[1];
	bool tty = isatty(STDOUT_FILENO);
	int npos, rc;

	rc = cli_getopt("stats", argc, argv, "", stats_longopts, stats_opt, &o,
			pos, 1, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("stats", "missing mountpoint");
	if (take(pos[0], &prev) < 0)
		return EXIT_ERR;
	for (uint64_t i = 0; o.count == 0 || i < o.count; i++) {
		struct timespec ts = {
			.tv_sec = (time_t)o.interval,
			.tv_nsec = (long)((o.interval - (double)(time_t)o.interval) *
					  1e9)};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (take(pos[0], &cur) < 0)
			return EXIT_ERR;
		print_line(&prev, &cur, &o, i == 0 || (tty && i % 20 == 0));
		prev = cur;
	}
	return EXIT_OK;
}
