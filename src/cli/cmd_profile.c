/*
 * cmd_profile.c - `tessera profile MOUNTPOINT|FILE [--interval S]
 * [--count N]`: what a mount spends its time on, from its access log.
 *
 * On a mount it reads MOUNTPOINT/.accesslog (which streams one line per
 * request while it is open) and every interval prints, per operation, the
 * requests, errors, total and mean time, the busiest first.  Given a file
 * (a saved access log: `cat MNT/.accesslog > FILE`) it prints one table for
 * the whole file.  Lines starting with '#' are the log's keep-alives.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROF_OPS 64



struct prof_opts {
	double interval;
	uint64_t count;
};

struct prof_op {
	char name[24];
	uint64_t n, errors;
	double secs;
};

struct prof {
	struct prof_op op[PROF_OPS];
	int nops;
	uint64_t lines, bad;
};

static const struct option prof_longopts[] = {
	{"interval", required_argument, NULL, CLI_OPT_INTERVAL},
	{"count", required_argument, NULL, CLI_OPT_COUNT},
	{NULL, 0, NULL, 0},
};

static int prof_opt(void *arg, int c, const char *val)
{
	struct prof_opts *o = arg;
	int rc = cli_live_opt("profile", c, val, &o->interval, &o->count);

	return rc >= 0 ? rc : EXIT_USAGE;
}

/* "TIME [uid:..] OP (ARGS): RESULT <SECONDS>" */
static void add_line(struct prof *p, const char *l)
{
	const char *b = strstr(l, "] "), *lt = strrchr(l, '<');
	const char *res;
	char name[24];
	size_t nl;
	double secs;
	bool err;
	int i;

	if (l[0] == '#' || !l[0])
		return;
	p->lines++;
	if (!b || !lt || sscanf(lt + 1, "%lf", &secs) != 1) {
		p->bad++;
		return;
	}
	b += 2;
	nl = strcspn(b, " ");
	if (nl == 0 || nl >= sizeof(name)) {
		p->bad++;
		return;
	}
	memcpy(name, b, nl);
	name[nl] = '\0';
	/* the result is the word before " <" */
	res = lt - 1;
	while (res > b && res[-1] != ' ')
		res--;
	err = strncmp(res, "OK ", 3) != 0;
	for (i = 0; i < p->nops; i++)
		if (strcmp(p->op[i].name, name) == 0)
			break;
	if (i == p->nops) {
		if (p->nops == PROF_OPS) {
			p->bad++;
			return;
		}
		snprintf(p->op[i].name, sizeof(p->op[i].name), "%s", name);
		p->nops++;
	}
	p->op[i].n++;
	p->op[i].errors += err;
	p->op[i].secs += secs;
}

static int by_time(const void *a, const void *b)
{
	const struct prof_op *x = a, *y = b;

	return x->secs < y->secs ? 1 : x->secs > y->secs ? -1 : 0;
}

static void print_table(struct prof *p, double span)
{
	uint64_t total = 0;

	qsort(p->op, (size_t)p->nops, sizeof(p->op[0]), by_time);
	for (int i = 0; i < p->nops; i++)
		total += p->op[i].n;
	printf("%-14s %9s %9s %7s %11s %10s\n", "op", "count", "ops/s",
	       "errors", "total_ms", "mean_us");
	for (int i = 0; i < p->nops; i++) {
		const struct prof_op *o = &p->op[i];

		printf("%-14s %9llu %9.1f %7llu %11.3f %10.1f\n", o->name,
		       (unsigned long long)o->n,
		       span > 0 ? (double)o->n / span : 0,
		       (unsigned long long)o->errors, o->secs * 1e3,
		       o->n ? o->secs * 1e6 / (double)o->n : 0);
	}
	printf("%-14s %9llu%s\n\n", "total", (unsigned long long)total,
	       p->bad ? "  (some lines not understood)" : "");
	fflush(stdout);
}

/* Feed @n bytes of @data, keeping a partial last line in @part. */
static void feed(struct prof *p, char *part, size_t *plen, size_t cap,
		 const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			part[*plen] = '\0';
			add_line(p, part);
			*plen = 0;
		} else if (*plen + 1 < cap) {
			part[(*plen)++] = data[i];
		}
	}
}

int cmd_profile(int argc, char **argv)
{
	struct prof_opts o = {.interval = 2};
	static struct prof p;
	char path[PATH_MAX + 16], part[4096], data[65536];
	const char *pos[1];
	struct stat st;
	size_t plen = 0;
	bool live;
	int npos, rc, fd;
	double t0;

	rc = cli_getopt("profile", argc, argv, "", prof_longopts, prof_opt, &o,
			pos, 1, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("profile", "missing mountpoint or file");
	if (stat(pos[0], &st) < 0) {
		log_error("cannot access '%s': %s", pos[0], strerror(errno));
		return EXIT_ERR;
	}
	live = S_ISDIR(st.st_mode);
	if (live)
		snprintf(path, sizeof(path), "%s/.accesslog", pos[0]);
	else
		snprintf(path, sizeof(path), "%s", pos[0]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (live)
			log_error("'%s' is not a tessera mount, or not "
				  "readable by you (%s: %s)",
				  pos[0], path, strerror(errno));
		else
			log_error("cannot open '%s': %s", path,
				  strerror(errno));
		return EXIT_ERR;
	}
	memset(&p, 0, sizeof(p));
	t0 = cli_mono_s();
	for (uint64_t shown = 0;;) {
		ssize_t n = read(fd, data, sizeof(data));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("cannot read '%s': %s", path, strerror(errno));
			close(fd);
			return EXIT_ERR;
		}
		if (n == 0 && !live)
			break;
		feed(&p, part, &plen, sizeof(part), data, (size_t)n);
		if (live && cli_mono_s() - t0 >= o.interval) {
			print_table(&p, cli_mono_s() - t0);
			memset(&p, 0, sizeof(p));
			t0 = cli_mono_s();
			if (o.count && ++shown >= o.count)
				break;
		}
	}
	close(fd);
	if (!live) {
		if (plen) {
			part[plen] = '\0';
			add_line(&p, part);
		}
		print_table(&p, 0);
	}
	return EXIT_OK;
}
