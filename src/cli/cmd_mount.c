/*
 * cmd_mount.c - `tessera mount NAME|META-URL MOUNTPOINT [options]`.
 *
 * Order of work, so that every error reaches the terminal as one line:
 *   1. parse options; resolve the volume; check the mountpoint (exists,
 *      directory, not already a mount, empty);
 *   2. take the mount lock (flock on $TESSERA_HOME/NAME/mount.lock, or
 *      next to a sqlite3:// database): a second mount of the volume fails;
 *   3. unless -f: fork.  The parent waits on a pipe for the child's verdict
 *      and exits with it; the child inherits the lock.  Forking happens
 *      before any thread exists (metadata engines and the upload pool
 *      start threads);
 *   4. open metadata (cli_vol_open: for STORAGE-URL/NAME or a local copy
 *      older than the object store, restore it first, with progress on
 *      the terminal; take the lease of a replicated volume and put the
 *      replication wrapper in front, so an fsync returns only once its
 *      transaction is in the object store), load the settings, open the
 *      object store, register a session (heartbeat thread; --heartbeat
 *      S), start the vfs, mount (the mountpoint is live now);
 *      an object store that does not answer at all (or only with 5xx) is
 *      no reason to refuse when the metadata is elsewhere: the mount
 *      goes on with one warning (warn_offline) and the store's requests
 *      fail until it is back.  One that answers "no" (403, no such
 *      bucket) is refused; so is a writable mount of a replicated
 *      volume, whose lease lives in that store (cli_volume.c);
 *   5. tell the parent "ok", detach (setsid, stdio to /dev/null, log to
 *      syslog), serve until unmounted or SIGTERM/SIGINT;
 *   6. flush everything (vfs_free commits, syncs objects and metadata,
 *      ends the session), release the lock, exit 0.
 * The mount lock exists only for SQLite volumes (embedded or sqlite3://):
 * Redis and PostgreSQL volumes may be mounted by many processes and hosts
 * at once, each with its own session.
 * `tessera umount` finds this process through the ".stats" virtual file
 * and waits for it to exit, so data is durable when umount returns.
 *
 * A mount whose lease another host took (--force there) cannot commit
 * any more: its commits and fsyncs fail with EROFS, the mount log says so
 * at ERROR, and ".stats" shows "repl_lease_lost 1"; it keeps serving reads
 * until unmounted.
 */
#include "util/common.h"
#include "cache/cache.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "fuse/fsop.h"
#include "meta/kv.h"
#include "meta/meta.h"
#include "object/frame.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/buf.h"
#include "util/httpd.h"
#include "util/log.h"
#include "util/url.h"
#include "vfs/vfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct mount_opts {
	const char *volume;
	const char *mountpoint;
	bool foreground;
	bool debug;
	bool read_only;
	bool force;
	bool accept_partial;
	double attr_timeout;
	double entry_timeout;
	double heartbeat_s;
	uint64_t buffer_size;
	uint64_t max_uploads;
	uint64_t max_readahead; /* bytes; 0: no readahead */
	const char *encrypt_key;
	char options[2048];
	enum vfs_atime_mode atime; /* from -o (atime_opts) */
	bool nodiratime;
	bool no_acl; /* -o noacl (atime_opts) */
	/* disk cache (cache/cache.h) */
	const char *cache_dir; /* parent of <uuid>/; NULL: $TESSERA_HOME/cache */
	uint64_t cache_size;
	bool cache_size_set; /* given on the command line */
	double free_ratio;
	bool writeback;
	bool cache_large_write;
	bool no_uring;
	const char *metrics; /* --metrics ADDR; NULL: the default */
	bool no_metrics;
};

enum {
	OPT_RO = 256,
	OPT_ATTR,
	OPT_ENTRY,
	OPT_BUFFER,
	OPT_UPLOADS,
	OPT_CACHE_DIR,
	OPT_CACHE_SIZE,
	OPT_WRITEBACK,
	OPT_FORCE,
	OPT_PARTIAL,
	OPT_KEY,
	OPT_FREE_RATIO,
	OPT_HEARTBEAT,
	OPT_READAHEAD,
	OPT_CACHE_LARGE,
	OPT_NO_URING,
	OPT_METRICS,
	OPT_NO_METRICS,
};

const struct option cmd_mount_longopts[] = {
	{"foreground", no_argument, NULL, 'f'},
	{"debug", no_argument, NULL, 'd'},
	{"read-only", no_argument, NULL, OPT_RO},
	{"attr-timeout", required_argument, NULL, OPT_ATTR},
	{"entry-timeout", required_argument, NULL, OPT_ENTRY},
	{"buffer-size", required_argument, NULL, OPT_BUFFER},
	{"max-uploads", required_argument, NULL, OPT_UPLOADS},
	{"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
	{"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
	{"writeback", no_argument, NULL, OPT_WRITEBACK},
	{"force", no_argument, NULL, OPT_FORCE},
	{"accept-partial", no_argument, NULL, OPT_PARTIAL},
	{"encrypt-key", required_argument, NULL, OPT_KEY},
	{"free-space-ratio", required_argument, NULL, OPT_FREE_RATIO},
	{"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
	{"max-readahead", required_argument, NULL, OPT_READAHEAD},
	{"cache-large-write", no_argument, NULL, OPT_CACHE_LARGE},
	{"no-uring", no_argument, NULL, OPT_NO_URING},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"no-metrics", no_argument, NULL, OPT_NO_METRICS},
	{NULL, 0, NULL, 0},
};

static int add_fuse_opts(struct mount_opts *o, const char *s)
{
	size_t len = strlen(o->options);

	if (!*s)
		return -EINVAL;
	if (snprintf(o->options + len, sizeof(o->options) - len, "%s%s",
		     len ? "," : "", s) >= (int)(sizeof(o->options) - len))
		return -EINVAL;
	return 0;
}

/*
 * The atime options among the -o options: a FUSE daemon moves atime
 * itself (the kernel never does for FUSE), so they are ours.  The last of
 * noatime, relatime, strictatime and atime wins, as with mount(8);
 * nodiratime / diratime; lazytime / nolazytime are accepted: atimes are
 * kept in memory and written once a second anyway.  They are taken out
 * of @opts (libfuse knows only "atime" and "noatime"), except noatime,
 * which stays so that the mount table shows it.  "acl" (the default) and
 * "noacl" turn POSIX ACLs on and off (*no_acl) and are taken out too.
 */
static void atime_opts(char *opts, enum vfs_atime_mode *mode,
		       bool *nodiratime, bool *no_acl)
{
	static const char *const ours[] = {
	    "relatime",	   "norelatime", "strictatime", "nostrictatime",
	    "diratime",	   "nodiratime", "lazytime",	"nolazytime",
	    "atime",	   "acl",	 "noacl",
	};
	char *copy = strdup(opts), *save = NULL;
	size_t len = 0;

	*mode = VFS_RELATIME;
	*nodiratime = false;
	*no_acl = false;
	if (!copy)
		return;
	opts[0] = '\0';
	for (char *w = strtok_r(copy, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		bool mine = false;

		if (!strcmp(w, "noatime"))
			*mode = VFS_NOATIME;
		else if (!strcmp(w, "relatime") || !strcmp(w, "atime") ||
			 !strcmp(w, "nostrictatime"))
			*mode = VFS_RELATIME;
		else if (!strcmp(w, "strictatime"))
			*mode = VFS_STRICTATIME;
		else if (!strcmp(w, "nodiratime") || !strcmp(w, "diratime"))
			*nodiratime = w[0] == 'n';
		else if (!strcmp(w, "noacl") || !strcmp(w, "acl"))
			*no_acl = w[0] == 'n';
		for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
			mine |= !strcmp(w, ours[i]);
		if (!mine) /* fits: never longer than the original */
			len += (size_t)sprintf(opts + len, "%s%s",
					       len ? "," : "", w);
	}
	free(copy);
}

static int bad_value(const char *opt, const char *val)
{
	return cli_usage_error("mount", "invalid value '%s' for %s", val, opt);
}

static int mount_opt(void *arg, int c, const char *val)
{
	struct mount_opts *o = arg;

	switch (c) {
	case 'f':
		o->foreground = true;
		return 0;
	case 'd':
		o->debug = o->foreground = true;
		return 0;
	case 'o':
		return add_fuse_opts(o, val) < 0 ? bad_value("-o", val) : 0;
	case OPT_RO:
		o->read_only = true;
		return 0;
	case OPT_ATTR:
		return cli_parse_double(val, &o->attr_timeout) < 0
			       ? bad_value("--attr-timeout", val)
			       : 0;
	case OPT_ENTRY:
		return cli_parse_double(val, &o->entry_timeout) < 0
			       ? bad_value("--entry-timeout", val)
			       : 0;
	case OPT_BUFFER:
		if (cli_parse_size(val, &o->buffer_size) < 0 ||
		    o->buffer_size < 16 * MiB)
			return bad_value("--buffer-size (at least 16M)", val);
		return 0;
	case OPT_UPLOADS:
		if (cli_parse_uint(val, &o->max_uploads) < 0 ||
		    o->max_uploads == 0 || o->max_uploads > 256)
			return bad_value("--max-uploads (1 to 256)", val);
		return 0;
	case OPT_READAHEAD:
		if (cli_parse_size(val, &o->max_readahead) < 0 ||
		    o->max_readahead > 1 * GiB)
			return bad_value("--max-readahead (0 to 1G)", val);
		return 0;
	case OPT_CACHE_DIR:
		o->cache_dir = val;
		return *val ? 0 : bad_value("--cache-dir", val);
	case OPT_CACHE_SIZE:
		o->cache_size_set = true;
		return cli_parse_size(val, &o->cache_size) < 0
			       ? bad_value("--cache-size", val)
			       : 0;
	case OPT_HEARTBEAT:
		if (cli_parse_double(val, &o->heartbeat_s) < 0 ||
		    o->heartbeat_s < 0.1 || o->heartbeat_s > 3600)
			return bad_value("--heartbeat (0.1 to 3600 s)", val);
		return 0;
	case OPT_FORCE:
		o->force = true;
		return 0;
	case OPT_PARTIAL:
		o->accept_partial = true;
		return 0;
	case OPT_KEY:
		o->encrypt_key = val;
		return *val ? 0 : bad_value("--encrypt-key", val);
	case OPT_FREE_RATIO:
		if (cli_parse_double(val, &o->free_ratio) < 0 ||
		    !(o->free_ratio >= 0 && o->free_ratio < 1))
			return bad_value("--free-space-ratio (0 to 0.99)",
					 val);
		return 0;
	case OPT_WRITEBACK:
		o->writeback = true;
		return 0;
	case OPT_CACHE_LARGE:
		o->cache_large_write = true;
		return 0;
	case OPT_NO_URING:
		o->no_uring = true;
		return 0;
	case OPT_METRICS:
		o->metrics = val;
		return *val ? 0 : bad_value("--metrics", val);
	case OPT_NO_METRICS:
		o->no_metrics = true;
		return 0;
	}
	return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct mount_opts *o)
{
	const char *pos[2];
	int npos, rc;

	memset(o, 0, sizeof(*o));
	o->attr_timeout = 1;
	o->entry_timeout = 1;
	o->heartbeat_s = META_HEARTBEAT_MS / 1000.0;
	o->cache_size = CACHE_DEF_SIZE;
	o->free_ratio = CACHE_DEF_FREE_RATIO;
	o->max_readahead = 32 * MiB;
	rc = cli_getopt("mount", argc, argv, "fdo:", cmd_mount_longopts, mount_opt,
			o, pos, 2, &npos);
	if (rc)
		return rc;
	if (npos < 2)
		return cli_usage_error("mount", "%s",
				       npos == 0 ? "missing volume"
						 : "missing mountpoint");
	o->volume = pos[0];
	o->mountpoint = pos[1];
	atime_opts(o->options, &o->atime, &o->nodiratime, &o->no_acl);
	return 0;
}

/* Is @path (absolute, resolved) the root of a mount? */
static bool is_mount_point(const char *path)
{
	char parent[PATH_MAX + 4];
	struct stat a, b;

	if (strcmp(path, "/") == 0)
		return true;
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(path, &a) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static int check_mountpoint(const char *arg, char *real, size_t n)
{
	struct stat st;
	struct dirent *d;
	DIR *dir;
	char buf[PATH_MAX];

	if (stat(arg, &st) < 0) {
		int e = errno;

		if (e == ENOTCONN)
			log_error("mountpoint '%s' is a dead mount (run "
				  "'tessera umount %s')",
				  arg, arg);
		else
			log_error("mountpoint '%s' %s", arg,
				  e == ENOENT ? "does not exist" : strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("mountpoint '%s' is not a directory", arg);
		return -ENOTDIR;
	}
	if (!realpath(arg, buf) || strlen(buf) >= n) {
		log_error("mountpoint '%s': %s", arg, strerror(errno));
		return -EINVAL;
	}
	snprintf(real, n, "%s", buf);
	if (is_mount_point(real)) {
		log_error("mountpoint '%s' is already a mount point", arg);
		return -EBUSY;
	}
	dir = opendir(real);
	if (!dir) {
		log_error("mountpoint '%s': %s", arg, strerror(errno));
		return -errno;
	}
	while ((d = readdir(dir))) {
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) {
			closedir(dir);
			log_error("mountpoint '%s' is not empty", arg);
			return -ENOTEMPTY;
		}
	}
	closedir(dir);
	return 0;
}

/* Where the mount lock of a volume lives; "" when it has none. */
static void lock_path(const struct cli_volume *vol, char *out, size_t n)
{
	const char *p;
	size_t len;

	out[0] = '\0';
	if (vol->embedded) {
		snprintf(out, n, "%s/%s/mount.lock", cli_home(), vol->name);
		return;
	}
	if (!kv_url_is_file(vol->meta_url))
		return; /* shared engines: many mounts are fine */
	p = strstr(vol->meta_url, "://") + 3;
	len = strcspn(p, "?");
	if (len >= 8 && strncmp(p + len - 8, "/meta.db", 8) == 0)
		snprintf(out, n, "%.*s/mount.lock", (int)(len - 8), p);
	else
		snprintf(out, n, "%.*s.mount.lock", (int)len, p);
}

static int take_lock(const char *path, const char *volname, int *fd_out)
{
	char info[512];
	ssize_t n;
	int fd;

	*fd_out = -1;
	if (!*path)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_error("cannot open mount lock '%s': %s", path,
			  strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		n = pread(fd, info, sizeof(info) - 1, 0);
		info[n > 0 ? n : 0] = '\0';
		for (char *c = info; *c; c++)
			if (*c == '\n')
				*c = ' ';
		if (e == EWOULDBLOCK)
			log_error("volume '%s' is already mounted (%s)",
				  volname, n > 0 ? info : "lock held");
		else
			log_error("cannot lock '%s': %s", path, strerror(e));
		close(fd);
		return -EBUSY;
	}
	*fd_out = fd;
	return 0;
}

static void write_lock_info(int fd, const char *mountpoint)
{
	char info[PATH_MAX + 64];
	int n = snprintf(info, sizeof(info), "pid %d mountpoint %s\n",
			 (int)getpid(), mountpoint);

	if (fd < 0)
		return;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, info, (size_t)n, 0) < 0)
		log_warn("cannot write the mount lock: %s", strerror(errno));
}

/* Fork; the parent waits for the child's verdict and exits with it. */
static int fork_and_wait(int *notify_fd)
{
	int p[2];
	pid_t pid;
	unsigned char code = EXIT_ERR;

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("cannot create a pipe: %s", strerror(errno));
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		log_error("cannot fork: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		close(p[0]);
		*notify_fd = p[1];
		return 0;
	}
	close(p[1]);
	while (read(p[0], &code, 1) < 0 && errno == EINTR)
		;
	_exit(code);
}

static void notify(int *fd, unsigned char code)
{
	if (*fd < 0)
		return;
	if (write(*fd, &code, 1) < 0) {
		/* the parent is gone; nothing to tell */
	}
	close(*fd);
	*fd = -1;
}

static void detach(void)
{
	int fd = open("/dev/null", O_RDWR);

	setsid();
	if (cli_home()[0] == '/' && chdir("/") < 0) {
		/* stay where we are */
	}
	log_use_syslog("tessera");
	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* ".stats" lines of a replicated mount. */
static int repl_stats(void *arg, struct buf *b)
{
	struct repl_status st;

	if (repl_status(meta_engine(arg), &st) < 0)
		return buf_appendf(b, "replicated 0\n");
	return buf_appendf(
	    b,
	    "replicated 1\nrepl_generation %s\nrepl_committed_txn %llu\n"
	    "repl_shipped_txn %llu\nrepl_snapshot_txn %llu\n"
	    "repl_lag_ms %llu\nrepl_pending_bytes %llu\n"
	    "repl_lease_lost %d\nrepl_last_error %d\n"
	    "repl_segments_shipped %llu\nrepl_snapshots_shipped %llu\n",
	    st.generation, (unsigned long long)st.committed_seq,
	    (unsigned long long)st.shipped_seq,
	    (unsigned long long)st.snapshot_seq, (unsigned long long)st.lag_ms,
	    (unsigned long long)st.pending_bytes, (int)st.lease_lost,
	    st.last_error, (unsigned long long)st.segments_shipped,
	    (unsigned long long)st.snapshots_shipped);
}

/*
 * The Prometheus endpoint (--metrics, default 127.0.0.1:9567 or the next
 * free port): one per mount process, so its state is the process's.
 */
#define METRICS_DEFAULT "127.0.0.1:9567"
static char metrics_addr[300]; /* as bound; "" when off */
static char metrics_volume[256];

static int metrics_page(void *arg, const char *path, struct buf *b)
{
	if (strcmp(path, "/metrics") == 0)
		return cli_metrics_render(arg, metrics_volume, b);
	if (strcmp(path, "/") == 0)
		return buf_appendf(b, "tessera mount of volume '%s': see "
				      "/metrics\n",
				   metrics_volume);
	return -ENOENT;
}

/* ".stats" lines of the mount itself: the FUSE transport, replication. */
static int mount_stats(void *arg, struct buf *b)
{
	int rc = buf_appendf(b, "fuse_uring %d\nmetrics_addr %s\n",
			     fsop_uring_serving() ? 1 : 0,
			     metrics_addr[0] ? metrics_addr : "off");

	if (rc == 0)
		rc = fsop_op_stats_text(b);
	if (rc == 0)
		rc = obj_metrics_text(b, false);
	if (rc == 0 && arg)
		rc = repl_stats(arg, b);
	return rc;
}

/* What ".control" requests of the mount's own (checkpoints) need. */
struct mount_ctl {
	struct meta *m;
	char storage[1200];
	char volname[256];
	uid_t owner;
};

/* "create|delete NAMELEN\nNAME" */
static int ckpt_request(struct mount_ctl *mc, const char *req, size_t n,
			struct buf *reply)
{
	char verb[16], name[256];
	unsigned long nlen = 0;
	const char *nl = memchr(req, '\n', n);
	struct obj_store *os = NULL;
	struct repl_ckpt ck;
	int rc;

	if (!nl || sscanf(req, "%15s %lu", verb, &nlen) != 2 || nlen == 0 ||
	    nlen >= sizeof(name) || (size_t)(req + n - nl - 1) != nlen)
		return -EINVAL;
	memcpy(name, nl + 1, nlen);
	name[nlen] = '\0';
	rc = obj_open(mc->storage, false, &os);
	if (rc == 0 && strcmp(verb, "create") == 0) {
		rc = repl_ckpt_create(meta_engine(mc->m), os, mc->volname, name,
				      &ck);
		/* later slices get ids >= the checkpoint's next slice id */
		if (rc == 0)
			meta_forget_slice_ids(mc->m);
		if (rc == 0)
			rc = meta_sync(mc->m);
		if (rc == 0)
			rc = buf_appendf(reply, "txn %llu next_slice %llu",
					 (unsigned long long)ck.txn_seq,
					 (unsigned long long)ck.next_slice);
	} else if (rc == 0 && strcmp(verb, "delete") == 0) {
		rc = repl_ckpt_delete(meta_engine(mc->m), os, mc->volname,
				      name);
		if (rc == 0)
			rc = meta_sync(mc->m);
	} else if (rc == 0) {
		rc = -EINVAL;
	}
	obj_close(os);
	if (rc == -EEXIST)
		buf_appendf(reply, "checkpoint '%s' exists", name);
	else if (rc == -ENOENT)
		buf_appendf(reply, "no checkpoint '%s'", name);
	return rc;
}

/* vfs_conf.control: requests only the mount process can serve. */
static int mount_control(void *arg, const struct vfs_ctx *c, const char *cmd,
			 const char *req, size_t n, struct buf *reply)
{
	struct mount_ctl *mc = arg;

	if (strcmp(cmd, "checkpoint") != 0) {
		buf_appendf(reply, "unknown request '%s'", cmd);
		return -ENOSYS;
	}
	if (c && c->cred.uid != 0 && c->cred.uid != mc->owner) {
		buf_appendf(reply, "only root or the owner of the mount may "
				   "manage checkpoints");
		return -EPERM;
	}
	return ckpt_request(mc, req, n, reply);
}

/*
 * The one line a mount says when its data store is unreachable at start
 * (obj_open_flags, OBJ_OPEN_OFFLINE): the metadata is elsewhere and
 * answers, so the mount goes on; what works until the store is back
 * depends on --writeback and --read-only.
 */
static void warn_offline(const struct mount_opts *o, struct obj_store *os)
{
	struct obj_state st;
	const char *writes;

	obj_state(os, &st);
	if (!st.down)
		return;
	if (o->read_only)
		writes = "";
	else if (o->writeback)
		writes = "; writes are staged on local disk and uploaded "
			 "when it answers";
	else
		writes = "; fsync and close of written files fail with EIO "
			 "until it answers (--writeback stages them)";
	log_warn("object store '%s' is unreachable (%s): mounting anyway, "
		 "serving cached data (uncached blocks read as EIO)%s",
		 obj_describe(os), st.why, writes);
}

static int open_volume(const struct mount_opts *o, struct meta **m_out,
		       struct meta_format *fmt, struct obj_store **os_out,
		       struct mount_ctl *mc)
{
	struct cli_open_opts oo = {.write = !o->read_only,
				   .force = o->force,
				   .accept_partial = o->accept_partial};
	struct cli_vol cv;
	const char *storage;
	struct obj_store *shared = NULL;
	struct meta *m = NULL;
	int rc;

	rc = cli_vol_open(o->volume, &oo, &cv, fmt);
	if (rc < 0)
		return rc; /* one line printed */
	/*
	 * A replicated volume's metadata store is its data store too: one
	 * store object for both, so one connection pool, and one line when
	 * it goes down or comes back.
	 */
	if (cv.store)
		shared = obj_ref(cv.store);
	rc = cli_vol_wrap(&cv);
	if (rc == 0)
		rc = cli_vol_meta(&cv, &m);
	if (rc == 0)
		rc = meta_load_format(m, fmt);
	storage = cli_vol_storage(&cv, fmt);
	if (rc == 0 && !*storage) {
		log_error("volume '%s' has no storage URL", o->volume);
		rc = -EINVAL;
	}
	if (rc == 0 && shared && strcmp(storage, cv.store_url) == 0) {
		*os_out = shared;
		shared = NULL;
	} else if (rc == 0) {
		rc = obj_open_flags(storage, OBJ_OPEN_OFFLINE, os_out);
	}
	obj_close(shared);
	if (rc == 0)
		warn_offline(o, *os_out);
	if (rc == 0) {
		mc->m = m;
		mc->owner = geteuid();
		snprintf(mc->storage, sizeof(mc->storage), "%s", storage);
		snprintf(mc->volname, sizeof(mc->volname), "%s", fmt->name);
	}
	cli_vol_close(&cv);
	if (rc < 0) {
		meta_close(m);
		return rc;
	}
	*m_out = m;
	return 0;
}

/*
 * Whether the volume's store is a file:// directory on the filesystem that
 * holds @dir (or its parent when @dir does not exist yet): a block cache
 * there would only write every block twice to the same disk.
 */
static bool store_beside(const struct meta_format *fmt, const char *dir)
{
	struct url u;
	struct stat a, b;
	char parent[PATH_MAX], *slash;
	bool same = false;

	if (url_parse(fmt->storage, &u, NULL) < 0)
		return false;
	if (strcmp(u.scheme, "file") != 0 || stat(u.path, &a) < 0)
		goto out;
	snprintf(parent, sizeof(parent), "%s", dir);
	while (stat(parent, &b) < 0) {
		slash = strrchr(parent, '/');
		if (!slash || slash == parent)
			goto out;
		*slash = '\0';
	}
	same = a.st_dev == b.st_dev;
out:
	url_release(&u);
	return same;
}

/* The disk cache: <cache dir>/<volume uuid>/ (cache/cache.h). */
static void cache_conf_of(const struct mount_opts *o,
			  const struct meta_format *fmt, char *dir, size_t n,
			  struct cache_conf *cc)
{
	if (o->cache_dir)
		snprintf(dir, n, "%s/%s", o->cache_dir, fmt->uuid);
	else
		snprintf(dir, n, "%s/cache/%s", cli_home(), fmt->uuid);
	memset(cc, 0, sizeof(*cc));
	cc->dir = dir;
	cc->size = o->cache_size;
	if (!o->cache_size_set && store_beside(fmt, dir)) {
		log_info("no block cache: the store '%s' is on the cache's "
			 "filesystem (--cache-size to have one anyway)",
			 fmt->storage);
		cc->size = 0;
	}
	cc->free_ratio = o->free_ratio;
	cc->writeback = o->writeback && !o->read_only;
	cc->cache_large_write = o->cache_large_write;
}

static int serve(const struct mount_opts *o, const struct cli_volume *vol,
		 const char *mp, int lock_fd, int *notify_fd)
{
	struct meta_format fmt;
	struct obj_store *os;
	struct meta *m;
	struct vfs *v;
	struct fsop *fs;
	struct vfs_conf vc;
	struct meta_session_conf sc;
	struct frame_conf frame;
	struct fsop_conf fc;
	struct mount_ctl mc;
	struct cache_conf cc;
	struct httpd *httpd = NULL;
	char fsname[300], cache_dir[PATH_MAX];
	int rc;

	UNUSED(vol);
	rc = open_volume(o, &m, &fmt, &os, &mc);
	if (rc < 0)
		return rc;
	rc = cli_frame_conf(&fmt, o->encrypt_key, &frame);
	if (rc < 0) {
		obj_close(os); /* one line printed */
		meta_close(m);
		return rc;
	}
	meta_set_acl(m, !o->no_acl);
	memset(&sc, 0, sizeof(sc));
	sc.mountpoint = mp;
	sc.heartbeat_ms = (uint32_t)(o->heartbeat_s * 1000 + 0.5);
	rc = meta_session_start(m, &sc);
	if (rc < 0) {
		obj_close(os);
		meta_close(m);
		return rc; /* logged */
	}
	memset(&vc, 0, sizeof(vc));
	vc.control = mount_control;
	vc.control_arg = &mc;
	vc.stats_extra = mount_stats;
	vc.stats_arg = repl_is_wrapper(meta_engine(m)) ? m : NULL;
	vc.atime = o->atime;
	vc.nodiratime = o->nodiratime;
	vc.read_only = o->read_only;
	vc.buffer_size = o->buffer_size;
	vc.max_uploads = (int)o->max_uploads;
	vc.max_readahead = (uint32_t)o->max_readahead;
	vc.no_readahead = o->max_readahead == 0;
	vc.mountpoint = mp;
	vc.frame = &frame;
	cache_conf_of(o, &fmt, cache_dir, sizeof(cache_dir), &cc);
	vc.cache = &cc;
	rc = cache_check_dir(cache_dir); /* one clear line when it is bad */
	if (rc < 0) {
		explicit_bzero(&frame, sizeof(frame));
		obj_close(os);
		meta_close(m);
		return rc;
	}
	rc = vfs_new(m, os, &fmt, &vc, &v);
	explicit_bzero(&frame, sizeof(frame));
	if (rc < 0) {
		log_error("cannot start volume '%s': %s", o->volume,
			  strerror(-rc));
		obj_close(os);
		meta_close(m);
		return rc;
	}
	if (!o->no_metrics) {
		snprintf(metrics_volume, sizeof(metrics_volume), "%s",
			 fmt.name);
		rc = httpd_start(o->metrics ? o->metrics : METRICS_DEFAULT,
				 !o->metrics, metrics_page, v, &httpd,
				 metrics_addr, sizeof(metrics_addr));
		if (rc < 0) {
			vfs_free(v); /* one line printed */
			return rc;
		}
	}
	memset(&fc, 0, sizeof(fc));
	fc.attr_timeout = o->attr_timeout;
	fc.entry_timeout = o->entry_timeout;
	fc.read_only = o->read_only;
	fc.debug = o->debug;
	snprintf(fsname, sizeof(fsname), "tessera:%s", fmt.name);
	fc.fsname = fsname;
	fc.options = o->options;
	fc.no_uring = o->no_uring;
	fc.no_acl = o->no_acl;
	rc = fsop_mount(v, mp, &fc, &fs);
	if (rc < 0) {
		httpd_stop(httpd);
		vfs_free(v);
		return rc;
	}
	write_lock_info(lock_fd, mp);
	log_info("volume '%s' mounted at '%s'%s%s", fmt.name, mp,
		 httpd ? ", metrics on http://" : "",
		 httpd ? metrics_addr : "");
	notify(notify_fd, EXIT_OK);
	if (!o->foreground)
		detach();
	else
		log_set_verbose_format(true);
	rc = fsop_run(fs);
	httpd_stop(httpd);
	fsop_free(fs);
	vfs_free(v);
	log_info("volume '%s' unmounted from '%s'", fmt.name, mp);
	return rc;
}

int cmd_mount(int argc, char **argv)
{
	struct mount_opts o;
	struct cli_volume vol;
	char mp[PATH_MAX], lpath[PATH_MAX + 32];
	int rc, lock_fd = -1, notify_fd = -1;

	rc = parse_args(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.debug)
		log_set_level(LOG_LVL_DEBUG);
	if (cli_resolve_volume(o.volume, &vol) < 0)
		return EXIT_ERR;
	if (vol.from_store) {
		char dir[PATH_MAX + 300];

		if (cli_home()[0] != '/') {
			log_error("TESSERA_HOME '%s' must be an absolute path",
				  cli_home());
			return EXIT_ERR;
		}
		snprintf(dir, sizeof(dir), "%s/%s", cli_home(), vol.name);
		if ((mkdir(cli_home(), 0755) < 0 && errno != EEXIST) ||
		    (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
			log_error("cannot create '%s': %s", dir,
				  strerror(errno));
			return EXIT_ERR;
		}
	} else if (vol.embedded) {
		char db[PATH_MAX + 300];
		struct stat st;

		snprintf(db, sizeof(db), "%s/%s/meta.db", cli_home(), vol.name);
		if (stat(db, &st) < 0) {
			log_error("volume '%s' does not exist (run 'tessera "
				  "format %s')",
				  vol.name, vol.name);
			return EXIT_ERR;
		}
	}
	if (check_mountpoint(o.mountpoint, mp, sizeof(mp)) < 0)
		return EXIT_ERR;
	lock_path(&vol, lpath, sizeof(lpath));
	if (take_lock(lpath, o.volume, &lock_fd) < 0)
		return EXIT_ERR;
	if (!o.foreground && fork_and_wait(&notify_fd) < 0)
		return EXIT_ERR;
	rc = serve(&o, &vol, mp, lock_fd, &notify_fd);
	notify(&notify_fd, EXIT_ERR);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}
