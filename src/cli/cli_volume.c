/*
 * cli_volume.c - open a volume for a command: find its local database,
 * bring it up to date from the object store, take the lease, and put the
 * replication wrapper in front (cli.h, DESIGN section 6).
 *
 * Steps of cli_vol_open (each error ends the command with one line):
 *   1. resolve the argument: NAME, a metadata URL, or STORAGE-URL/NAME
 *      (whose local copy is the embedded one, $TESSERA_HOME/NAME/meta.db);
 *   2. STORAGE-URL/NAME: open that store; no local copy yet means a
 *      restore, after taking the lease when the command writes (a restore
 *      is only worth anything if no one else writes meanwhile);
 *   3. open the engine and read the settings; "replicate" and an sqlite3
 *      URL make the volume replicated: open its store (the one given, else
 *      the settings' storage URL), take the lease when writing; when that
 *      store is unreachable, a writing command is refused (no lease) and
 *      a reading one uses the local copy as it is, unchecked;
 *   4. compare the local database with the store (repl_local_check): when
 *      the store holds a newer history (another host wrote, or the local
 *      file lost txns), the local copy is moved aside to "<db>.stale" and
 *      restored.  Read-only commands on NAME or a metadata URL report what
 *      they find instead of restoring.
 * A restore that stopped early (a damaged or missing segment) is refused
 * unless --accept-partial: using it drops every txn after the damage for
 * good, since the next mount starts a new generation from it.
 *
 * The lease is taken with a holder made here and handed to repl_wrap
 * (renewing one's own lease is allowed), so there is no gap between the
 * restore and the wrapper in which another host could slip in.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "meta/kv.h"
#include "meta/meta.h"
#include "meta/meta_scan.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/log.h"
#include "util/url.h"

#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Path of the database file of a file engine's URL (sqlite3://); false
 * when not one. */
static bool sqlite_path(const char *url, char *out, size_t n)
{
	const char *p;
	size_t len;

	if (!kv_url_is_file(url))
		return false;
	p = strstr(url, "://") + 3;
	len = strcspn(p, "?");
	if (len == 0 || len >= n)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* URLs compare equal up to trailing slashes. */
static bool same_url(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 0 && a[la - 1] == '/')
		la--;
	while (lb > 0 && b[lb - 1] == '/')
		lb--;
	return la == lb && strncmp(a, b, la) == 0;
}

static int make_dirs(const struct cli_volume *vol)
{
	char dir[PATH_MAX];
	const char *home = cli_home();

	if (home[0] != '/') {
		log_error("TESSERA_HOME '%s' must be an absolute path", home);
		return -EINVAL;
	}
	if (mkdir(home, 0755) < 0 && errno != EEXIST)
		return log_fail(-errno, "cannot create '%s'", home);
	snprintf(dir, sizeof(dir), "%s/%s", home, vol->name);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_fail(-errno, "cannot create '%s'", dir);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress {
	const char *vol;
	double start, last;
	bool quiet;
};

static void restore_progress(void *arg, const struct repl_restore_info *i)
{
	struct progress *p = arg;
	double t = now_s();

	if (p->quiet || (i->segments > 0 && t - p->last < 1.0))
		return;
	p->last = t;
	if (i->segments == 0)
		fprintf(stderr,
			"tessera: restoring volume '%s' (generation %s): "
			"snapshot at txn %llu, %llu records\n",
			p->vol, i->generation,
			(unsigned long long)i->snapshot_seq,
			(unsigned long long)i->records);
	else
		fprintf(stderr,
			"tessera: restoring volume '%s': txn %llu of %llu "
			"(%llu segments)\n",
			p->vol, (unsigned long long)i->seq,
			(unsigned long long)i->latest_seq,
			(unsigned long long)i->segments);
}

/* Move a stale local database (and its WAL) to "<path>.stale". */
static int move_aside(const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm"};
	char from[PATH_MAX + 8], to[PATH_MAX + 16];

	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		snprintf(from, sizeof(from), "%s%s", path, sfx[i]);
		snprintf(to, sizeof(to), "%s.stale%s", path, sfx[i]);
		if (rename(from, to) == 0)
			continue;
		if (errno != ENOENT)
			return log_fail(-errno, "cannot move '%s' aside", from);
		unlink(to); /* keep the stale set consistent */
	}
	return 0;
}

static int take_lease(struct cli_vol *cv, const char *name)
{
	bool displaced = false;
	int rc;

	if (cv->leased || !cv->o.write)
		return 0;
	rc = repl_lease_take(cv->store, name, &cv->holder, cv->o.force,
			     &displaced);
	if (rc < 0)
		return rc; /* logged, naming the holder */
	cv->leased = true;
	cv->takeover |= displaced;
	return 0;
}

/* Restore @name from cv->store into cv->vol.meta_url (absent now). */
static int restore(struct cli_vol *cv, const char *name)
{
	struct progress p = {name, now_s(), 0, cv->o.quiet};
	struct repl_restore_info info;
	int rc;

	rc = take_lease(cv, name);
	if (rc < 0)
		return rc;
	if (!cv->o.quiet)
		fprintf(stderr, "tessera: restoring volume '%s' from '%s'\n",
			name, obj_describe(cv->store));
	rc = repl_restore(cv->store, name, cv->vol.meta_url, &info,
			  restore_progress, &p);
	if (rc < 0)
		return rc; /* logged */
	cv->restored = true;
	if (!cv->o.quiet)
		fprintf(stderr,
			"tessera: restored volume '%s' at txn %llu "
			"(generation %s, snapshot at txn %llu, %llu segments, "
			"%llu records) in %.1f s\n",
			name, (unsigned long long)info.seq, info.generation,
			(unsigned long long)info.snapshot_seq,
			(unsigned long long)info.segments,
			(unsigned long long)info.records, now_s() - p.start);
	if (!info.complete && !cv->o.accept_partial) {
		log_error("volume '%s' was restored only up to txn %llu of "
			  "%llu (%s): refusing to use it; --accept-partial "
			  "drops the rest for good",
			  name, (unsigned long long)info.seq,
			  (unsigned long long)info.latest_seq,
			  info.stop_reason[0] ? info.stop_reason
					      : "incomplete");
		return -EIO;
	}
	if (!info.complete)
		log_warn("volume '%s': using a partial restore (up to txn "
			 "%llu of %llu)",
			 name, (unsigned long long)info.seq,
			 (unsigned long long)info.latest_seq);
	/* A restore follows another writer: it may have run on. */
	cv->takeover = true;
	return 0;
}

/* Read and decode the settings of cv->kv. */
static int read_settings(struct cli_vol *cv, struct meta_format *f)
{
	struct buf b = BUF_INIT;
	char red[1200];
	struct kv_txn *t;
	int rc = kv_begin(cv->kv, false, &t);

	url_redact(cv->vol.meta_url, red, sizeof(red));
	if (rc == 0) {
		rc = kv_get(t, KV_SETTING, "volume", 6, &b);
		if (rc == -ENOENT && meta_rec_load_marker(t) == 1)
			rc = -EINPROGRESS;
		kv_rollback(t);
	}
	if (rc == 0 && meta_format_from_json(b.data ? b.data : "", f) < 0)
		rc = log_fail(-EIO, "corrupt volume settings in '%s'", red);
	else if (rc == -ENOENT)
		log_error("no volume in '%s' (run 'tessera format')", red);
	else if (rc == -EINPROGRESS)
		log_error("no volume in '%s': a `tessera load` into it did not "
			  "finish (or still runs)", red);
	else if (rc < 0)
		log_fail(rc, "cannot read the settings in '%s'", red);
	buf_release(&b);
	return rc;
}

static int open_engine(struct cli_vol *cv, struct meta_format *f)
{
	int rc = kv_open(cv->vol.meta_url, false, &cv->kv);

	if (rc < 0)
		return rc; /* the engine said why */
	rc = read_settings(cv, f);
	if (rc < 0) {
		kv_close(cv->kv);
		cv->kv = NULL;
	}
	return rc;
}

/*
 * Open the store of a replicated volume (the one given wins).  A store
 * that cannot be reached (obj_open_flags, OBJ_OPEN_OFFLINE) leaves the
 * lease out of reach: a writing command is refused with one line; a
 * reading one gets -EHOSTDOWN, no line (cv->store_why says why), and
 * uses the local copy as it is (a read-only mount says why in its own
 * warning, status in its report).
 */
static int open_store(struct cli_vol *cv, const struct meta_format *f)
{
	struct obj_state st;
	int rc;

	if (cv->store)
		return 0;
	if (!f->storage[0]) {
		log_error("volume '%s' has no storage URL", f->name);
		return -EINVAL;
	}
	snprintf(cv->store_url, sizeof(cv->store_url), "%s", f->storage);
	rc = obj_open_flags(cv->store_url, OBJ_OPEN_OFFLINE, &cv->store);
	if (rc < 0)
		return rc; /* logged: refused, no such bucket, bad URL */
	obj_state(cv->store, &st);
	if (!st.down)
		return 0;
	if (cv->o.write)
		log_error("cannot write volume '%s': its metadata is "
			  "replicated to '%s', which is unreachable (%s), so "
			  "its lease cannot be taken (--read-only mounts the "
			  "local copy)",
			  f->name, obj_describe(cv->store), st.why);
	snprintf(cv->store_why, sizeof(cv->store_why), "%s", st.why);
	obj_close(cv->store);
	cv->store = NULL;
	return cv->o.write ? -EIO : -EHOSTDOWN;
}

/* Step 4: bring the local copy up to date when the store is newer. */
static int check_current(struct cli_vol *cv, struct meta_format *f)
{
	struct repl_local st;
	char path[PATH_MAX];
	int rc = take_lease(cv, f->name);

	if (rc < 0)
		return rc;
	rc = repl_local_check(cv->kv, cv->store, f->name, &st);
	if (rc < 0) /* logged; a reader can still use the local copy */
		return !cv->o.write && !cv->vol.from_store ? 0 : rc;
	if (st.state != REPL_LOCAL_BEHIND)
		return 0;
	if (cv->o.no_restore || (!cv->o.write && !cv->vol.from_store)) {
		if (cv->o.quiet)
			return 0;
		log_warn("local metadata of volume '%s' is behind '%s' "
			 "(txn %llu of generation %s there, %llu here)",
			 f->name, obj_describe(cv->store),
			 (unsigned long long)st.store_seq, st.store_gen,
			 (unsigned long long)st.local_seq);
		return 0;
	}
	if (!sqlite_path(cv->vol.meta_url, path, sizeof(path)))
		return -EINVAL;
	if (!cv->o.quiet)
		fprintf(stderr,
			"tessera: local metadata of volume '%s' is behind the "
			"object store (generation %s txn %llu; here %s txn "
			"%llu): keeping it as '%s.stale'\n",
			f->name, st.store_gen, (unsigned long long)st.store_seq,
			st.local_gen[0] ? st.local_gen : "-",
			(unsigned long long)st.local_seq, path);
	kv_close(cv->kv);
	cv->kv = NULL;
	rc = move_aside(path);
	if (rc == 0)
		rc = restore(cv, f->name);
	if (rc == 0)
		rc = open_engine(cv, f);
	return rc;
}

/* Steps 1-2 for STORAGE-URL/NAME. */
static int open_from_store(struct cli_vol *cv)
{
	char path[PATH_MAX];
	int rc = make_dirs(&cv->vol);

	if (rc < 0)
		return rc;
	snprintf(cv->store_url, sizeof(cv->store_url), "%s",
		 cv->vol.storage_url);
	rc = obj_open(cv->store_url, false, &cv->store);
	if (rc < 0)
		return rc; /* logged by the store */
	if (!sqlite_path(cv->vol.meta_url, path, sizeof(path)))
		return -EINVAL;
	if (file_exists(path))
		return 0;
	return restore(cv, cv->vol.name);
}

int cli_vol_open(const char *arg, const struct cli_open_opts *o,
		 struct cli_vol *cv, struct meta_format *f)
{
	char path[PATH_MAX];
	int rc;

	memset(cv, 0, sizeof(*cv));
	cv->o = *o;
	repl_holder_init(&cv->holder);
	rc = cli_resolve_volume(arg, &cv->vol);
	if (rc < 0)
		return rc;
	if (cv->vol.from_store) {
		rc = open_from_store(cv);
	} else if (cv->vol.embedded &&
		   sqlite_path(cv->vol.meta_url, path, sizeof(path)) &&
		   !file_exists(path)) {
		log_error(
			"volume '%s' does not exist (run 'tessera format %s')",
			cv->vol.name, cv->vol.name);
		rc = -ENOENT;
	}
	if (rc == 0)
		rc = open_engine(cv, f);
	if (rc == 0 && cv->vol.from_store &&
	    (strcmp(f->name, cv->vol.name) != 0 ||
	     !same_url(f->storage, cv->vol.storage_url)))
		log_warn("local volume '%s' was stored in '%s' (now using "
			 "'%s')",
			 f->name, f->storage, cv->store_url);
	cv->replicated = rc == 0 && f->replicate &&
			 kv_url_is_file(cv->vol.meta_url);
	if (cv->replicated)
		rc = open_store(cv, f);
	if (cv->replicated && rc == -EHOSTDOWN && !cv->vol.from_store) {
		rc = 0; /* a reader uses the local copy; see open_store */
	} else if (cv->replicated && rc < 0 && !o->write &&
		   !cv->vol.from_store) {
		/* reading the local copy needs no store */
		log_warn("volume '%s': cannot compare with the object store",
			 f->name);
		rc = 0;
	} else if (cv->replicated && rc == 0) {
		rc = check_current(cv, f);
	}
	if (rc == 0)
		snprintf(cv->volname, sizeof(cv->volname), "%s", f->name);
	if (rc < 0)
		cli_vol_close(cv);
	return rc;
}

int cli_vol_wrap(struct cli_vol *cv)
{
	struct repl_conf conf;
	struct kv_engine *w;
	int rc;

	if (!cv->replicated || !cv->o.write || cv->wrapped)
		return 0;
	memset(&conf, 0, sizeof(conf));
	conf.force = cv->o.force;
	conf.holder = cv->holder;
	conf.own_store = true;
	conf.takeover = cv->takeover;
	rc = repl_wrap(cv->kv, cv->store, cv->volname, &conf, &w);
	if (rc < 0)
		return rc; /* logged */
	cv->kv = w;
	cv->store = NULL;
	cv->leased = false;
	cv->wrapped = true;
	return 0;
}

int cli_vol_meta(struct cli_vol *cv, struct meta **m)
{
	char red[1200];
	int rc;

	url_redact(cv->vol.meta_url, red, sizeof(red));
	rc = meta_open_kv(cv->kv, red, m);
	if (rc == 0)
		cv->kv = NULL;
	return rc;
}

void cli_vol_close(struct cli_vol *cv)
{
	if (cv->leased && cv->store)
		repl_lease_release(cv->store,
				   cv->volname[0] ? cv->volname : cv->vol.name,
				   &cv->holder);
	cv->leased = false;
	kv_close(cv->kv);
	cv->kv = NULL;
	obj_close(cv->store);
	cv->store = NULL;
}

const char *cli_vol_storage(const struct cli_vol *cv,
			    const struct meta_format *f)
{
	if (cv->vol.from_store)
		return cv->vol.storage_url;
	return f->storage;
}
