/*
 * cmd_warmup.c - `tessera warmup PATH... [--evict|--check] [-p THREADS]`:
 * fetch the blocks of files (or of every file under directories) into the
 * local disk cache of the mount holding them, drop them from it, or report
 * how much of them is cached.
 *
 * The work happens in the mount process, which owns the cache.  This
 * command talks to it through the control file ".control" at the root of
 * the mount (a virtual file, hidden from readdir), one request per file:
 *
 *   write  "warm INO\n" | "evict INO\n" | "check INO\n"
 *   read   "progress BLOCKS BYTES\n" ... (after each 64 MiB chunk, so far)
 *          "done ERR BLOCKS BYTES CACHED_BLOCKS CACHED_BYTES FAILED\n"
 *
 * ERR is 0 or a positive errno (ENOENT: the file is gone, ENOSYS: the
 * mount has no disk cache, EACCES: not readable by the caller).  BLOCKS and
 * BYTES count the distinct blocks the file's data uses; CACHED_* those in
 * the cache afterwards (evict: those that were, and are dropped now);
 * FAILED the blocks that could not be fetched or stored (logged by the
 * mount).  Reads on the control file return one line each; the mount does
 * the work of the next chunk in each read, so progress streams.
 *
 * Paths are resolved here: a PATH's mount root is found by walking up while
 * the device stays the same, and must hold ".stats" (a Tessera mount).
 * Directories are walked (not crossing into other mounts; symlinks are not
 * followed).  -p THREADS (default 4) requests run in parallel, each
 * thread with its own control file handle.  While running, a progress line
 * goes to stderr when it is a terminal; a summary goes to stdout.  Exit 1
 * when any file failed.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"
#include "util/progress.h"

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEF_THREADS 4
#define MAX_THREADS 256
#define LINE_MAX_LEN 256

struct wfile {
	char *path;
	uint64_t ino;
	uint64_t size;
};

/* The files of one mount. */
struct wgroup {
	char root[PATH_MAX];
	dev_t dev;
	struct wfile *files;
	size_t n, cap;
};

struct wjob {
	const char *op; /* "warm", "evict", "check" */
	struct wgroup *groups;
	size_t ngroups;
	size_t total_files;
	uint64_t total_size;
	atomic_size_t next; /* index over all files of all groups */
	/* progress and results */
	atomic_uint_fast64_t files_done, bytes_seen;
	atomic_uint_fast64_t blocks, bytes, cached_blocks, cached_bytes;
	atomic_uint_fast64_t failed_blocks, failed_files;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a worker ended */
	int running;
};

/* ---- collecting files ---- */

static int group_add(struct wgroup *g, const char *path, const struct stat *st)
{
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		struct wfile *v = realloc(g->files, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		g->files = v;
		g->cap = cap;
	}
	g->files[g->n].path = strdup(path);
	if (!g->files[g->n].path)
		return -ENOMEM;
	g->files[g->n].ino = st->st_ino;
	g->files[g->n].size = (uint64_t)st->st_size;
	g->n++;
	return 0;
}

/* The root of the mount holding @path (resolved) into @root. */
static int mount_root(const char *path, char *root, dev_t *dev)
{
	char cur[PATH_MAX], parent[PATH_MAX + 16];
	struct stat st, pst;
	char *slash;

	if (!realpath(path, cur) || stat(cur, &st) < 0)
		return -errno;
	*dev = st.st_dev;
	if (!S_ISDIR(st.st_mode)) {
		slash = strrchr(cur, '/');
		if (slash == cur)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
	}
	for (;;) {
		if (strcmp(cur, "/") == 0)
			break;
		snprintf(parent, sizeof(parent), "%s/..", cur);
		if (stat(parent, &pst) < 0)
			return -errno;
		if (pst.st_dev != *dev)
			break;
		slash = strrchr(cur, '/');
		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	snprintf(root, PATH_MAX, "%s", cur);
	snprintf(parent, sizeof(parent), "%s/.stats", cur);
	if (stat(parent, &pst) < 0 || !S_ISREG(pst.st_mode))
		return -ENOTSUP;
	return 0;
}

static struct wgroup *g_walk; /* nftw has no user argument */
static int g_walk_rc;

static int walk_cb(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode) && st->st_dev == g_walk->dev)
		g_walk_rc = group_add(g_walk, path, st);
	else if (flag == FTW_DNR || flag == FTW_NS)
		fprintf(stderr, "tessera warmup: cannot read '%s'\n", path);
	return g_walk_rc < 0;
}

static struct wgroup *group_for(struct wjob *j, const char *root, dev_t dev)
{
	struct wgroup *v;

	for (size_t i = 0; i < j->ngroups; i++)
		if (strcmp(j->groups[i].root, root) == 0)
			return &j->groups[i];
	v = realloc(j->groups, (j->ngroups + 1) * sizeof(*v));
	if (!v)
		return NULL;
	j->groups = v;
	v = &j->groups[j->ngroups++];
	memset(v, 0, sizeof(*v));
	snprintf(v->root, sizeof(v->root), "%s", root);
	v->dev = dev;
	return v;
}

static int add_path(struct wjob *j, const char *path)
{
	char root[PATH_MAX];
	struct wgroup *g;
	struct stat st;
	dev_t dev = 0;
	int rc;

	if (lstat(path, &st) < 0) {
		fprintf(stderr, "tessera warmup: '%s': %s\n", path,
			strerror(errno));
		return -errno;
	}
	rc = mount_root(path, root, &dev);
	if (rc < 0) {
		fprintf(stderr, "tessera warmup: '%s' %s\n", path,
			rc == -ENOTSUP ? "is not inside a tessera mount"
				       : strerror(-rc));
		return rc;
	}
	g = group_for(j, root, dev);
	if (!g)
		return -ENOMEM;
	if (S_ISREG(st.st_mode))
		return group_add(g, path, &st);
	if (!S_ISDIR(st.st_mode))
		return 0; /* symlinks, devices: no data of their own */
	g_walk = g;
	g_walk_rc = 0;
	if (nftw(path, walk_cb, 32, FTW_PHYS | FTW_MOUNT) < 0 && !g_walk_rc)
		g_walk_rc = -errno;
	return g_walk_rc;
}

/* ---- talking to the mount ---- */

/* Read one line (one read() returns one line; tolerate splits). */
static int read_line(int fd, char *line, size_t n)
{
	size_t len = 0;

	while (len + 1 < n) {
		ssize_t r = read(fd, line + len, n - 1 - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPROTO;
		len += (size_t)r;
		if (line[len - 1] == '\n')
			break;
	}
	line[len] = '\0';
	return 0;
}

/* One file: send the request, follow progress, add the result. */
static int run_file(struct wjob *j, int fd, const struct wfile *f)
{
	char line[LINE_MAX_LEN];
	uint64_t last = 0;
	int rc = dprintf(fd, "%s %" PRIu64 "\n", j->op, f->ino);

	if (rc < 0)
		return -errno;
	for (;;) {
		uint64_t blocks, bytes, cb, cby, failed;
		int err;

		rc = read_line(fd, line, sizeof(line));
		if (rc < 0)
			return rc;
		if (sscanf(line, "progress %" SCNu64 " %" SCNu64, &blocks,
			   &bytes) == 2) {
			if (bytes > last)
				atomic_fetch_add(&j->bytes_seen, bytes - last);
			last = MAX(last, bytes);
			continue;
		}
		if (sscanf(line,
			   "done %d %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %" SCNu64,
			   &err, &blocks, &bytes, &cb, &cby, &failed) != 6)
			return -EPROTO;
		if (bytes > last)
			atomic_fetch_add(&j->bytes_seen, bytes - last);
		if (err)
			return -err;
		atomic_fetch_add(&j->blocks, blocks);
		atomic_fetch_add(&j->bytes, bytes);
		atomic_fetch_add(&j->cached_blocks, cb);
		atomic_fetch_add(&j->cached_bytes, cby);
		atomic_fetch_add(&j->failed_blocks, failed);
		return failed ? -EIO : 0;
	}
}

static const struct wfile *file_at(struct wjob *j, size_t i,
				   const struct wgroup **g)
{
	for (size_t k = 0; k < j->ngroups; k++) {
		if (i < j->groups[k].n) {
			*g = &j->groups[k];
			return &j->groups[k].files[i];
		}
		i -= j->groups[k].n;
	}
	return NULL;
}

static const char *file_error(int rc)
{
	switch (rc) {
	case -ENOSYS:
		return "the mount has no disk cache";
	case -EIO:
		return "some blocks could not be fetched or cached (see the "
		       "mount's log)";
	case -EPROTO:
		return "unexpected answer from the mount";
	default:
		return strerror(-rc);
	}
}

static void *worker(void *arg)
{
	struct wjob *j = arg;
	const struct wgroup *cur = NULL;
	int fd = -1;

	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		const struct wgroup *g;
		const struct wfile *f = file_at(j, i, &g);
		char path[PATH_MAX + 16];
		int rc;

		if (!f)
			break;
		if (g != cur) {
			if (fd >= 0)
				close(fd);
			snprintf(path, sizeof(path), "%s/.control", g->root);
			fd = open(path, O_RDWR | O_CLOEXEC);
			cur = g;
		}
		rc = fd < 0 ? -errno : run_file(j, fd, f);
		if (rc == -ENOENT && fd < 0)
			rc = -EOPNOTSUPP;
		if (rc < 0) {
			fprintf(stderr, "%stessera warmup: '%s': %s\n",
				isatty(2) ? "\r\033[K" : "", f->path,
				rc == -EOPNOTSUPP
					? "the mount has no control file"
					: file_error(rc));
			atomic_fetch_add(&j->failed_files, 1);
		}
		atomic_fetch_add(&j->files_done, 1);
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&j->lock);
	j->running--;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* ---- output ---- */

static void human(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%" PRIu64 " B", n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static void summary(struct wjob *j)
{
	uint64_t files = j->total_files - atomic_load(&j->failed_files);
	uint64_t bytes = atomic_load(&j->bytes);
	uint64_t cb = atomic_load(&j->cached_blocks);
	uint64_t cby = atomic_load(&j->cached_bytes);
	char a[32], b[32];

	human(cby, a, sizeof(a));
	human(bytes, b, sizeof(b));
	if (strcmp(j->op, "check") == 0)
		printf("%" PRIu64 " files: %s of %s cached (%.1f%%), %" PRIu64
		       " of %" PRIu64 " blocks\n",
		       files, a, b,
		       bytes ? 100.0 * (double)cby / (double)bytes : 100.0, cb,
		       atomic_load(&j->blocks));
	else if (strcmp(j->op, "evict") == 0)
		printf("%" PRIu64 " files: evicted %" PRIu64 " blocks (%s)\n",
		       files, cb, a);
	else
		printf("%" PRIu64 " files: %s of %s cached, %" PRIu64
		       " blocks failed\n",
		       files, a, b, atomic_load(&j->failed_blocks));
}

/* The progress line follows the bytes the workers have gone through. */
static void show_progress(struct wjob *j, struct progress *p)
{
	uint64_t seen = atomic_load(&j->bytes_seen);

	if (seen > p->done)
		progress_add(p, seen - p->done);
}

static void run(struct wjob *j, int nthreads, bool quiet)
{
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	struct progress p;
	int started = 0;

	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	for (int i = 0; t && i < nthreads; i++) {
		pthread_mutex_lock(&j->lock);
		j->running++;
		pthread_mutex_unlock(&j->lock);
		if (pthread_create(&t[i], NULL, worker, j) != 0) {
			pthread_mutex_lock(&j->lock);
			j->running--;
			pthread_mutex_unlock(&j->lock);
			break;
		}
		started++;
	}
	if (started == 0) /* no thread: do it here */
		worker(j);
	progress_init(&p, j->op, NULL, j->total_size, quiet);
	pthread_mutex_lock(&j->lock);
	while (j->running > 0) {
		struct timespec ts;

		show_progress(j, &p);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&j->cond, &j->lock, &ts);
	}
	pthread_mutex_unlock(&j->lock);
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	progress_end(&p);
	free(t);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
}

/* ---- arguments ---- */

static int parse_args(int argc, char **argv, struct wjob *j, int *nthreads,
		      bool *quiet, const char ***paths, int *npaths)
{
	*nthreads = DEF_THREADS;
	j->op = "warm";
	*paths = calloc((size_t)argc, sizeof(**paths));
	if (!*paths)
		return EXIT_ERR;
	*npaths = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		uint64_t n;

		if (strcmp(a, "--evict") == 0 || strcmp(a, "--check") == 0) {
			if (strcmp(j->op, "warm") != 0)
				return cli_usage_error("warmup",
						       "--evict and "
						       "--check exclude each "
						       "other");
			j->op = a + 2;
		} else if (strcmp(a, "-p") == 0 ||
			   strcmp(a, "--threads") == 0 ||
			   strncmp(a, "--threads=", 10) == 0) {
			const char *v = a[2] == 't' && a[9] == '=' ? a + 10
					: i + 1 < argc		   ? argv[++i]
								   : "";

			if (cli_parse_uint(v, &n) < 0 || n == 0 ||
			    n > MAX_THREADS)
				return cli_usage_error("warmup",
						       "invalid thread count "
						       "'%s' (1 to %d)",
						       v, MAX_THREADS);
			*nthreads = (int)n;
		} else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
			*quiet = true;
		} else if (strcmp(a, "--") == 0) {
			while (++i < argc)
				(*paths)[(*npaths)++] = argv[i];
		} else if (a[0] == '-' && a[1]) {
			return cli_usage_error("warmup", "unknown option '%s'",
					       a);
		} else {
			(*paths)[(*npaths)++] = a;
		}
	}
	if (*npaths == 0)
		return cli_usage_error("warmup", "missing PATH");
	return 0;
}

static void job_release(struct wjob *j)
{
	for (size_t k = 0; k < j->ngroups; k++) {
		for (size_t i = 0; i < j->groups[k].n; i++)
			free(j->groups[k].files[i].path);
		free(j->groups[k].files);
	}
	free(j->groups);
}

int cmd_warmup(int argc, char **argv)
{
	struct wjob j;
	const char **paths = NULL;
	int nthreads, npaths, rc, bad = 0;
	bool quiet = false;

	memset(&j, 0, sizeof(j));
	rc = parse_args(argc, argv, &j, &nthreads, &quiet, &paths, &npaths);
	if (rc) {
		free(paths);
		return rc;
	}
	for (int i = 0; i < npaths; i++) {
		rc = add_path(&j, paths[i]);
		if (rc == -ENOMEM) {
			fprintf(stderr, "tessera warmup: out of memory\n");
			free(paths);
			job_release(&j);
			return EXIT_ERR;
		}
		bad += rc < 0;
	}
	free(paths);
	for (size_t k = 0; k < j.ngroups; k++) {
		j.total_files += j.groups[k].n;
		for (size_t i = 0; i < j.groups[k].n; i++)
			j.total_size += j.groups[k].files[i].size;
	}
	if (j.total_files > 0) {
		run(&j, (int)MIN((size_t)nthreads, j.total_files), quiet);
		summary(&j);
	}
	rc = bad || atomic_load(&j.failed_files) ? EXIT_ERR : EXIT_OK;
	job_release(&j);
	return rc;
}
