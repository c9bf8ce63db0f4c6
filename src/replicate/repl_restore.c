/*
 * repl_restore.c - rebuild a volume's metadata from its object store:
 * newest generation, newest readable snapshot, then every following
 * segment in order.
 *
 * Design: the database is built at "<path>.restore" and renamed to <path>
 * (RENAME_NOREPLACE) only at the end, so <path> is never a half-built
 * database.  Each segment is verified whole (repl_seg_decode) and then
 * applied in one transaction that also sets REPL_SEQ_COUNTER to its last
 * seq, so the database always holds exactly the txns up to some seq.  The
 * first segment that is missing (a gap), unreadable, truncated or corrupt
 * ends the roll-forward there: one ERROR line, and the result says
 * complete=false.  A damaged snapshot is skipped for the next older one of
 * the same generation (retention keeps the segments that roll it forward).
 * A store that fails to answer is not damage: the restore fails with its
 * error and puts nothing in place.
 *
 * One exception, the torn tail: the newest segment of the generation
 * (nothing follows it), shorter than its header says, is an upload that a
 * crash cut short on a store whose PUT is not atomic (s3rver and some
 * file systems keep what arrived).  Its txns were never acknowledged (no
 * kv_sync returns before the PUT did), so the restore ends before it and
 * counts as complete, with a WARN.  A full-length segment with a bad
 * checksum, or damage anywhere before the end, stays a stop.
 *
 * Any thread; no state.
 */
#include "util/common.h"
#include "replicate/repl_int.h"
#include "util/log.h"
#include "util/url.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct restore {
	struct obj_store *store;
	const char *vol;
	const struct repl_gen *g;
	struct kv_engine *e;
	struct repl_restore_info *info;
	repl_progress_fn progress;
	void *arg;
	char key[OBJ_KEY_MAX + 1];
};

static void rs_progress(struct restore *rs)
{
	if (rs->progress)
		rs->progress(rs->arg, rs->info);
}

/* Stop the roll-forward: log and remember why.  Returns 1. */
static int rs_stop(struct restore *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int rs_stop(struct restore *rs, const char *fmt, ...)
{
	struct repl_restore_info *info = rs->info;
	va_list ap;
	int n;

	n = snprintf(
	    info->stop_reason, sizeof(info->stop_reason),
	    "restore stopped at txn %llu: ", (unsigned long long)info->seq);
	va_start(ap, fmt);
	vsnprintf(info->stop_reason + n, sizeof(info->stop_reason) - (size_t)n,
		  fmt, ap);
	va_end(ap);
	log_error("%s", info->stop_reason);
	return 1;
}

/* Load the newest readable snapshot of the generation. */
static int rs_snapshot(struct restore *rs)
{
	const struct repl_gen *g = rs->g;
	struct buf b = BUF_INIT;
	int rc = -EIO;

	for (size_t i = g->nsnaps; i > 0; i--) {
		struct repl_snap_info si;
		const char *why = NULL;
		uint64_t n = 0;

		repl_key_snap(rs->key, sizeof(rs->key), rs->vol, g->id,
			      g->snaps[i - 1].a);
		rc = obj_get(rs->store, rs->key, 0, OBJ_TO_END, &b);
		if (rc < 0 && rc != -ENOENT)
			break; /* the store failed: not damage */
		if (rc == 0)
			rc = repl_snap_check(b.data, b.len, &si, &why);
		if (rc == 0 && si.seq != g->snaps[i - 1].a) {
			why = "sequence does not match its name";
			rc = -EBADMSG;
		}
		if (rc == 0)
			rc = repl_snap_load(rs->e, b.data, b.len, &n, &why);
		if (rc == 0) {
			rs->info->snapshot_seq = si.seq;
			rs->info->seq = si.seq;
			rs->info->records = n;
			break;
		}
		log_warn("snapshot '%s' is %s: trying an older one", rs->key,
			 rc == -ENOENT ? "missing"
			 : why	       ? why
				       : strerror(-rc));
		if (n > 0 && kv_wipe(rs->e) < 0) {
			rc = -EIO;
			break;
		}
		rc = -EIO;
	}
	buf_release(&b);
	if (rc == -EIO)
		log_error("no readable snapshot of volume '%s' in generation "
			  "%s of '%s'",
			  rs->vol, g->id, obj_describe(rs->store));
	return rc;
}

struct apply {
	struct kv_txn *t;
	uint64_t from; /* first seq to apply */
	uint64_t records;
};

static int rs_apply_txn(void *arg, uint64_t seq, const unsigned char *recs,
			size_t len, uint32_t nrec)
{
	struct apply *a = arg;
	const unsigned char *p = recs, *end = recs + len;
	int rc = 0;

	if (seq < a->from)
		return 0;
	for (uint32_t i = 0; rc == 0 && i < nrec; i++) {
		struct repl_rec r;

		rc = repl_rec_next(&p, end, &r);
		if (rc < 0)
			break;
		if (r.op == REPL_OP_PUT)
			rc = kv_put(a->t, r.grp, r.key, r.klen, r.val, r.vlen);
		else
			rc = kv_del(a->t, r.grp, r.key, r.klen);
		a->records++;
	}
	return rc;
}

/* Apply a verified segment from seq @from on, in one txn. */
static int rs_apply(struct restore *rs, const struct repl_seg_view *v,
		    uint64_t from)
{
	struct apply a = {.from = from};
	int rc = kv_begin(rs->e, true, &a.t);

	if (rc < 0)
		return rc;
	rc = repl_seg_foreach(v, rs_apply_txn, &a);
	if (rc == 0)
		rc = meta_rec_counter_put(a.t, REPL_SEQ_COUNTER, v->last);
	if (rc < 0) {
		kv_rollback(a.t);
		return log_fail(rc, "cannot apply segment '%s'", rs->key);
	}
	rc = kv_commit(a.t);
	if (rc < 0)
		return log_fail(rc, "cannot apply segment '%s'", rs->key);
	rs->info->records += a.records;
	return 0;
}

/* Is @b (segment object @i of @g) a torn last upload?  See the top. */
static bool rs_torn_tail(const struct repl_gen *g, size_t i,
			 const struct buf *b)
{
	const unsigned char *p = (const unsigned char *)b->data;

	if (i + 1 != g->nsegs)
		return false;
	for (size_t k = 0; k < g->nsnaps; k++)
		if (g->snaps[k].a >= g->segs[i].a)
			return false;
	if (b->len < REPL_SEG_HDR + REPL_SUM_LEN)
		return true;
	return get_be64(p + 40) > b->len - REPL_SEG_HDR - REPL_SUM_LEN;
}

/*
 * Roll forward from the snapshot.  0 done (or stopped: info says so),
 * -errno when the store or the database failed.
 */
static int rs_segments(struct restore *rs)
{
	const struct repl_gen *g = rs->g;
	struct repl_restore_info *info = rs->info;
	struct buf b = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < g->nsegs; i++) {
		const struct repl_obj *o = &g->segs[i];
		struct repl_seg_view v;
		const char *why = NULL;

		if (o->b <= info->seq)
			continue;
		repl_key_seg(rs->key, sizeof(rs->key), rs->vol, g->id, o->a,
			     o->b);
		if (o->a > info->seq + 1) {
			rs_stop(rs, "no segment holds txn %llu (next is '%s')",
				(unsigned long long)info->seq + 1, rs->key);
			break;
		}
		rc = obj_get(rs->store, rs->key, 0, OBJ_TO_END, &b);
		if (rc == -ENOENT) {
			rc = rs_stop(rs, "segment '%s' is missing", rs->key);
			break;
		}
		if (rc < 0) {
			log_fail(rc, "cannot read segment '%s'", rs->key);
			break;
		}
		rc = repl_seg_decode(b.data, b.len, &v, &why);
		if (rc == 0 && (v.first != o->a || v.last != o->b ||
				v.gen != repl_gen_to_u64(g->id))) {
			why = "header does not match its name";
			rc = -EBADMSG;
		}
		if (rc < 0 && rs_torn_tail(g, i, &b)) {
			log_warn("ignoring segment '%s': cut short (%zu bytes), "
				 "an upload a crash interrupted; its txns were "
				 "never acknowledged",
				 rs->key, b.len);
			info->latest_seq = info->seq;
			rc = 0;
			break;
		}
		if (rc < 0) {
			rc = rs_stop(rs, "segment '%s' is corrupt (%s)",
				     rs->key, why);
			break;
		}
		rc = rs_apply(rs, &v, info->seq + 1);
		if (rc < 0)
			break;
		info->seq = v.last;
		info->segments++;
		rs_progress(rs);
	}
	buf_release(&b);
	return rc < 0 ? rc : 0;
}

static void rs_unlink_db(const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[PATH_MAX + 16];

	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

static int rs_fsync(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Move the finished database into place, never over an existing file. */
static int rs_install(const char *tmp, const char *path)
{
	char wal[PATH_MAX + 16], dir[PATH_MAX];
	struct stat sb;
	int rc;

	snprintf(wal, sizeof(wal), "%s-wal", tmp);
	if (stat(wal, &sb) == 0 && sb.st_size > 0)
		return log_fail(-EIO,
				"cannot finish '%s': its WAL was not "
				"checkpointed",
				tmp);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", tmp);
	unlink(wal);
	rc = rs_fsync(tmp, false);
	if (rc == 0 &&
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0)
		rc = -errno;
	if (rc < 0)
		return log_fail(rc,
				"cannot move the restored database to "
				"'%s'",
				path);
	snprintf(dir, sizeof(dir), "%s", path);
	rs_fsync(dirname(dir), true);
	return 0;
}

/* Remember the generation restored from (REPL_FROM_SETTING). */
static int rs_mark(struct restore *rs)
{
	struct kv_txn *t;
	int rc = kv_begin(rs->e, true, &t);

	if (rc < 0)
		return rc;
	rc = kv_put(t, KV_SETTING, REPL_FROM_SETTING,
		    strlen(REPL_FROM_SETTING), rs->g->id, REPL_GEN_LEN);
	if (rc < 0) {
		kv_rollback(t);
		return rc;
	}
	return kv_commit(t);
}

static int rs_run(struct restore *rs, const char *tmp)
{
	char url[PATH_MAX + 16];
	int rc;

	snprintf(url, sizeof(url), "sqlite3://%s", tmp);
	rc = kv_open(url, true, &rs->e);
	if (rc < 0)
		return rc;
	rc = rs_snapshot(rs);
	if (rc == 0) {
		rs_progress(rs);
		rc = rs_segments(rs);
	}
	if (rc == 0)
		rc = rs_mark(rs);
	kv_close(rs->e);
	rs->e = NULL;
	return rc;
}

/* Check @db_url and derive the temp path.  Logs. */
static int rs_paths(const char *db_url, char *path, char *tmp)
{
	char red[1200];
	const char *why = NULL;
	struct url u;
	struct stat sb;
	int rc = url_parse(db_url, &u, &why);

	url_redact(db_url, red, sizeof(red));
	if (rc < 0 || strcmp(u.scheme, "sqlite3") != 0 || u.path[0] != '/' ||
	    strlen(u.path) + 16 > PATH_MAX) {
		if (rc == 0)
			url_release(&u);
		log_error("cannot restore into '%s': not sqlite3:///path", red);
		return -EINVAL;
	}
	snprintf(path, PATH_MAX, "%s", u.path);
	snprintf(tmp, PATH_MAX, "%s.restore", u.path);
	url_release(&u);
	if (stat(path, &sb) == 0) {
		log_error("cannot restore into '%s': the file exists", red);
		return -EEXIST;
	}
	return 0;
}

int repl_restore(struct obj_store *store, const char *volname,
		 const char *db_url, struct repl_restore_info *out,
		 repl_progress_fn progress, void *arg)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct repl_restore_info info;
	struct restore rs = {.store = store,
			     .vol = volname,
			     .info = &info,
			     .progress = progress,
			     .arg = arg};
	struct repl_listing l;
	int rc;

	memset(&info, 0, sizeof(info));
	if (repl_check_volname(volname) < 0) {
		log_error("cannot restore volume '%s': invalid name", volname);
		return -EINVAL;
	}
	rc = rs_paths(db_url, path, tmp);
	if (rc < 0)
		return rc;
	rc = repl_list(store, volname, &l);
	if (rc < 0)
		return log_fail(rc,
				"cannot list the metadata of volume '%s' "
				"in '%s'",
				volname, obj_describe(store));
	rs.g = repl_listing_latest(&l);
	if (!rs.g) {
		log_error("no replicated metadata of volume '%s' in '%s'",
			  volname, obj_describe(store));
		rc = -ENOENT;
		goto out;
	}
	memcpy(info.generation, rs.g->id, REPL_GEN_SIZE);
	info.latest_seq = repl_gen_last_seq(rs.g);
	rs_unlink_db(tmp);
	rc = rs_run(&rs, tmp);
	if (rc == 0)
		rc = rs_install(tmp, path);
	if (rc < 0) {
		rs_unlink_db(tmp);
		goto out;
	}
	info.complete = !info.stop_reason[0] && info.seq == info.latest_seq;
	log_info(
	    "restored volume '%s' from generation %s: snapshot at txn "
	    "%llu, %llu segments, now at txn %llu",
	    volname, info.generation, (unsigned long long)info.snapshot_seq,
	    (unsigned long long)info.segments, (unsigned long long)info.seq);
out:
	repl_listing_release(&l);
	if (out)
		*out = info;
	return rc;
}

int repl_store_status(struct obj_store *store, const char *volname,
		      struct repl_store_status *out)
{
	struct repl_listing l;
	const struct repl_gen *g;
	int rc = repl_list(store, volname, &l);

	memset(out, 0, sizeof(*out));
	if (rc < 0)
		return rc;
	out->ngenerations = l.ngens;
	g = repl_listing_latest(&l);
	if (!g) {
		repl_listing_release(&l);
		return -ENOENT;
	}
	memcpy(out->generation, g->id, REPL_GEN_SIZE);
	out->snapshot_seq = g->snaps[g->nsnaps - 1].a;
	out->last_seq = repl_gen_last_seq(g);
	out->nsnapshots = g->nsnaps;
	out->nsegments = g->nsegs;
	repl_listing_release(&l);
	return 0;
}
