/*
 * cmd_bench.c - `tessera bench PATH [-p THREADS] [--big-file-size S]
 * [--small-file-size S] [--small-files N]`: a quick benchmark of any
 * directory (a Tessera mount or not), in the spirit of `juicefs bench`.
 *
 * Phases, each on P threads working in their own files under a fresh
 * PATH/.tessera-bench-PID/ (removed at the end, also after a failure):
 * write one big file per thread (1 MiB writes, fsync before close), read it
 * back (the page cache is dropped first when we are root, so the read goes
 * to the filesystem), write N small files per thread, read them, stat them.
 * Every byte read is checked against what was written: a benchmark of a
 * filesystem that returns wrong data must not print a nice number.
 * Exit status 1 when any operation failed.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BENCH_IO (1 * MiB)
#define BENCH_MAX_THREADS 256

enum bench_phase { BP_BIG_WRITE, BP_BIG_READ, BP_SMALL_WRITE, BP_SMALL_READ,
		   BP_STAT, BP_N };

static const char *const bp_names[BP_N] = {
	"write big file", "read big file", "write small file",
	"read small file", "stat file",
};

struct bench_conf {
	const char *path;
	char dir[4096];
	uint64_t big_size;
	uint64_t small_size;
	uint64_t small_files;
	long threads;
};

struct bench_thread {
	const struct bench_conf *c;
	pthread_t tid;
	int idx;
	enum bench_phase phase;
	unsigned char *buf; /* BENCH_IO bytes of this thread's pattern */
	unsigned char *rbuf;
	int err;            /* first errno seen */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (seed + 1);

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

static int write_file(const char *path, const unsigned char *buf,
		      uint64_t size, bool sync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int rc = 0;

	if (fd < 0)
		return -errno;
	for (uint64_t off = 0; off < size && rc == 0;) {
		size_t n = (size_t)MIN(size - off, (uint64_t)BENCH_IO);
		ssize_t w = write(fd, buf, n);

		if (w < 0)
			rc = -errno;
		else
			off += (uint64_t)w;
	}
	if (rc == 0 && sync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

static int read_file(const char *path, const unsigned char *want,
		     unsigned char *buf, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	uint64_t off = 0;
	int rc = 0;

	if (fd < 0)
		return -errno;
	while (rc == 0) {
		ssize_t r = read(fd, buf, BENCH_IO);
		size_t chunk_off;

		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		/* writes were BENCH_IO sized, so the pattern repeats */
		chunk_off = (size_t)(off % BENCH_IO);
		if (chunk_off + (size_t)r > BENCH_IO ||
		    memcmp(buf, want + chunk_off, (size_t)r) != 0)
			rc = -EILSEQ;
		off += (uint64_t)r;
	}
	close(fd);
	if (rc == 0 && off != size)
		rc = -EILSEQ;
	return rc;
}

static int run_one(struct bench_thread *t)
{
	const struct bench_conf *c = t->c;
	char path[4200];
	struct stat st;
	int rc = 0;

	if (t->phase == BP_BIG_WRITE || t->phase == BP_BIG_READ) {
		snprintf(path, sizeof(path), "%s/big.%d", c->dir, t->idx);
		if (t->phase == BP_BIG_WRITE)
			return write_file(path, t->buf, c->big_size, true);
		return read_file(path, t->buf, t->rbuf, c->big_size);
	}
	for (uint64_t i = 0; i < c->small_files && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/small.%d.%llu", c->dir, t->idx,
			 (unsigned long long)i);
		if (t->phase == BP_SMALL_WRITE)
			rc = write_file(path, t->buf, c->small_size, false);
		else if (t->phase == BP_SMALL_READ)
			rc = read_file(path, t->buf, t->rbuf, c->small_size);
		else if (stat(path, &st) < 0)
			rc = -errno;
	}
	return rc;
}

static void *bench_thread_main(void *arg)
{
	struct bench_thread *t = arg;

	t->err = run_one(t);
	return NULL;
}

static void drop_page_cache(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return; /* not root: the read may be served from memory */
	if (write(fd, "3\n", 2) < 0) {
		/* best effort */
	}
	close(fd);
}

static int run_phase(struct bench_thread *th, long n, enum bench_phase p,
		     double *secs)
{
	uint64_t t0;
	int rc = 0;

	if (p == BP_BIG_READ || p == BP_SMALL_READ)
		drop_page_cache();
	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		th[i].phase = p;
		if (pthread_create(&th[i].tid, NULL, bench_thread_main,
				   &th[i]) != 0) {
			th[i].err = -EAGAIN;
			th[i].tid = 0;
		}
	}
	for (long i = 0; i < n; i++) {
		if (th[i].tid)
			pthread_join(th[i].tid, NULL);
		if (th[i].err && !rc)
			rc = th[i].err;
	}
	*secs = (double)(now_ns() - t0) / 1e9;
	return rc;
}

static void print_row(const struct bench_conf *c, enum bench_phase p,
		      double secs)
{
	double n = (double)c->threads;

	if (secs <= 0)
		secs = 1e-9;
	switch (p) {
	case BP_BIG_WRITE:
	case BP_BIG_READ:
		printf("| %-17s | %8.1f MiB/s    | %9.2f s/file    |\n",
		       bp_names[p], n * (double)c->big_size / MiB / secs,
		       secs);
		break;
	default:
		printf("| %-17s | %8.1f files/s  | %9.3f ms/file   |\n",
		       bp_names[p], n * (double)c->small_files / secs,
		       secs * 1000.0 / (double)c->small_files);
		break;
	}
}

static void cleanup(const struct bench_conf *c)
{
	char path[4200];

	for (long i = 0; i < c->threads; i++) {
		snprintf(path, sizeof(path), "%s/big.%ld", c->dir, i);
		unlink(path);
		for (uint64_t j = 0; j < c->small_files; j++) {
			snprintf(path, sizeof(path), "%s/small.%ld.%llu",
				 c->dir, i, (unsigned long long)j);
			unlink(path);
		}
	}
	rmdir(c->dir);
}

enum { OPT_BIG = 256, OPT_SMALL, OPT_NSMALL };

static const struct option bench_opts[] = {
	{ "threads", required_argument, NULL, 'p' },
	{ "big-file-size", required_argument, NULL, OPT_BIG },
	{ "small-file-size", required_argument, NULL, OPT_SMALL },
	{ "small-files", required_argument, NULL, OPT_NSMALL },
	{ NULL, 0, NULL, 0 },
};

static int bench_opt(void *arg, int c, const char *optval)
{
	struct bench_conf *b = arg;
	uint64_t v;

	switch (c) {
	case 'p':
		if (cli_parse_uint(optval, &v) < 0 || v < 1 ||
		    v > BENCH_MAX_THREADS)
			return cli_usage_error("bench", "invalid -p '%s' (1 to "
					       "%d)", optval, BENCH_MAX_THREADS);
		b->threads = (long)v;
		return 0;
	case OPT_BIG:
		if (cli_parse_size(optval, &b->big_size) < 0 ||
		    b->big_size == 0)
			return cli_usage_error("bench", "invalid "
					       "--big-file-size '%s'", optval);
		return 0;
	case OPT_SMALL:
		if (cli_parse_size(optval, &b->small_size) < 0 ||
		    b->small_size == 0 || b->small_size > BENCH_IO)
			return cli_usage_error("bench", "invalid "
					       "--small-file-size '%s' (at most "
					       "1M)", optval);
		return 0;
	case OPT_NSMALL:
		if (cli_parse_uint(optval, &b->small_files) < 0 ||
		    b->small_files == 0)
			return cli_usage_error("bench", "invalid --small-files "
					       "'%s'", optval);
		return 0;
	}
	return EXIT_USAGE;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_conf c = { .big_size = 1 * GiB, .small_size = 128 * KiB,
				.small_files = 100, .threads = 1 };
	struct bench_thread *th;
	const char *pos[1];
	double secs;
	int npos, rc = 0;

	rc = cli_getopt("bench", argc, argv, "p:", bench_opts, bench_opt, &c,
			pos, 1, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return cli_usage_error("bench", "missing PATH");
	c.path = pos[0];
	snprintf(c.dir, sizeof(c.dir), "%s/.tessera-bench-%d", c.path,
		 (int)getpid());
	if (mkdir(c.dir, 0755) < 0) {
		log_fail(-errno, "cannot create '%s'", c.dir);
		return EXIT_ERR;
	}
	th = calloc((size_t)c.threads, sizeof(*th));
	for (long i = 0; th && i < c.threads; i++) {
		th[i].c = &c;
		th[i].idx = (int)i;
		th[i].buf = malloc(BENCH_IO);
		th[i].rbuf = malloc(BENCH_IO);
		if (!th[i].buf || !th[i].rbuf) {
			rc = -ENOMEM;
			break;
		}
		fill_pattern(th[i].buf, BENCH_IO, (unsigned)i);
	}
	if (!th)
		rc = -ENOMEM;
	if (rc == 0) {
		printf("benchmark of '%s': %ld thread(s), big file %llu MiB, "
		       "%llu small files of %llu KiB per thread\n",
		       c.path, c.threads,
		       (unsigned long long)(c.big_size / MiB),
		       (unsigned long long)c.small_files,
		       (unsigned long long)(c.small_size / KiB));
		printf("| %-17s | %16s | %18s |\n", "item", "value", "cost");
		printf("|-------------------|------------------|--------------------|\n");
	}
	for (int p = 0; rc == 0 && p < BP_N; p++) {
		rc = run_phase(th, c.threads, (enum bench_phase)p, &secs);
		if (rc == 0)
			print_row(&c, (enum bench_phase)p, secs);
		else if (rc == -EILSEQ)
			log_error("%s in '%s': read back wrong bytes",
				  bp_names[p], c.dir);
		else
			log_fail(rc, "%s in '%s' failed", bp_names[p], c.dir);
	}
	cleanup(&c);
	for (long i = 0; th && i < c.threads; i++) {
		free(th[i].buf);
		free(th[i].rbuf);
	}
	free(th);
	return rc == 0 ? EXIT_OK : EXIT_ERR;
}
