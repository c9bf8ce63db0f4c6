/*
 * cmd_status.c - `tessera status VOLUME [--json]`: settings, usage,
 * sessions and, for a replicated volume, the replication state.
 *
 * Replication state comes from three places: the local database (its
 * generation and last txn, REPL_SEQ_COUNTER), the object store
 * (repl_local_check: newest generation and where its history ends; the
 * lease), and, when the volume is mounted on this host, the mount's own
 * ".stats" (found through the mount lock file "pid N mountpoint MP"),
 * whose repl_* lines are the live numbers of the wrapper: committed and
 * shipped txns, lag in ms.  STORAGE-URL/NAME without a local copy shows
 * what the store holds, without restoring anything.
 *
 * Sessions are listed as their records say, with "stale" for those silent
 * past their expiry; status only reads: cleaning them is the mounts' job.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/log.h"
#include "util/url.h"

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct option status_opts[] = {
	{"json", no_argument, NULL, 'j'},
	{NULL, 0, NULL, 0},
};

static int status_opt(void *arg, int c, const char *optval)
{
	UNUSED(optval);
	if (c == 'j')
		*(bool *)arg = true;
	return 0;
}

/* Replication state gathered for printing. */
struct repl_view {
	bool replicated;
	bool have_local, have_store, have_lease, live;
	struct repl_local local;
	struct repl_store_status store;
	struct repl_holder holder;
	int64_t lease_until_ms;
	char mountpoint[PATH_MAX];
	uint64_t live_committed, live_shipped, live_lag_ms;
	int live_lost;
	char store_url[1200];
	char unreachable[256]; /* the store was not reached: why; else "" */
};

/* Value of "KEY N" in a .stats text; false when absent. */
static bool stat_value(const char *text, const char *key, uint64_t *out)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p;
	     p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, key, n) == 0 && p[n] == ' ') {
			*out = strtoull(p + n + 1, NULL, 10);
			return true;
		}
	return false;
}

/* Live numbers from a mount of the volume on this host, if any. */
static void live_view(const struct cli_volume *vol, struct repl_view *rv)
{
	char lock[PATH_MAX + 300], text[8192], stats[PATH_MAX + 16];
	uint64_t v = 0;
	ssize_t n;
	FILE *f;
	int fd;

	if (!vol->embedded)
		return;
	snprintf(lock, sizeof(lock), "%s/%s/mount.lock", cli_home(), vol->name);
	f = fopen(lock, "r");
	if (!f)
		return;
	if (fscanf(f, "pid %*d mountpoint %4095s", rv->mountpoint) != 1)
		rv->mountpoint[0] = '\0';
	fclose(f);
	if (!rv->mountpoint[0])
		return;
	snprintf(stats, sizeof(stats), "%s/.stats", rv->mountpoint);
	fd = open(stats, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	if (!stat_value(text, "repl_committed_txn", &rv->live_committed))
		return;
	stat_value(text, "repl_shipped_txn", &rv->live_shipped);
	stat_value(text, "repl_lag_ms", &rv->live_lag_ms);
	if (stat_value(text, "repl_lease_lost", &v))
		rv->live_lost = (int)v;
	rv->live = true;
}

static void store_view(struct obj_store *os, const char *name,
		       struct repl_view *rv)
{
	snprintf(rv->store_url, sizeof(rv->store_url), "%s", obj_describe(os));
	rv->have_store = repl_store_status(os, name, &rv->store) == 0;
	rv->have_lease = repl_lease_read(os, name, &rv->holder,
					 &rv->lease_until_ms) == 0;
}

static void ms_time(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(out, n, "%F %T", &tm))
		snprintf(out, n, "?");
}

static void print_repl(const struct repl_view *rv)
{
	char when[64];

	if (!rv->replicated) {
		printf("replication: off\n");
		return;
	}
	printf("replication: on, into %s\n", rv->store_url);
	if (rv->unreachable[0]) {
		printf("  store:     unreachable (%s): local copy not "
		       "checked\n",
		       rv->unreachable);
		return;
	}
	if (rv->have_store)
		printf("  stored:    generation %s, txn %llu (snapshot at txn "
		       "%llu, %llu segments)\n",
		       rv->store.generation,
		       (unsigned long long)rv->local.store_seq
			       ? (unsigned long long)rv->local.store_seq
			       : (unsigned long long)rv->store.last_seq,
		       (unsigned long long)rv->store.snapshot_seq,
		       (unsigned long long)rv->store.nsegments);
	else
		printf("  stored:    nothing\n");
	if (rv->have_local)
		printf("  local:     generation %s, txn %llu (%s)\n",
		       rv->local.local_gen[0] ? rv->local.local_gen : "-",
		       (unsigned long long)rv->local.local_seq,
		       rv->local.state == REPL_LOCAL_CURRENT ? "in sync"
		       : rv->local.state == REPL_LOCAL_AHEAD
			       ? "ahead: not shipped yet"
		       : rv->local.state == REPL_LOCAL_BEHIND
			       ? "behind: the next mount restores"
			       : "not replicated yet");
	else
		printf("  local:     no copy in %s\n", cli_home());
	if (rv->live)
		printf("  mounted:   %s: txn %llu committed, %llu shipped, lag "
		       "%llu ms%s\n",
		       rv->mountpoint, (unsigned long long)rv->live_committed,
		       (unsigned long long)rv->live_shipped,
		       (unsigned long long)rv->live_lag_ms,
		       rv->live_lost ? ", LEASE LOST" : "");
	if (rv->have_lease) {
		ms_time(rv->lease_until_ms, when, sizeof(when));
		printf("  lease:     %s pid %ld until %s\n", rv->holder.proc.host,
		       rv->holder.proc.pid, when);
	} else {
		printf("  lease:     free\n");
	}
}

static json_t *repl_json(const struct repl_view *rv)
{
	json_t *o = json_object();

	json_object_set_new(o, "replicated", json_boolean(rv->replicated));
	if (!rv->replicated)
		return o;
	json_object_set_new(o, "store", json_string(rv->store_url));
	if (rv->unreachable[0]) {
		json_object_set_new(o, "unreachable",
				    json_string(rv->unreachable));
		return o;
	}
	if (rv->have_store)
		json_object_set_new(
			o, "stored",
			json_pack("{s:s, s:I, s:I, s:I}", "generation",
				  rv->store.generation, "txn",
				  (json_int_t)(rv->local.store_seq
						       ? rv->local.store_seq
						       : rv->store.last_seq),
				  "snapshot_txn",
				  (json_int_t)rv->store.snapshot_seq,
				  "segments", (json_int_t)rv->store.nsegments));
	if (rv->have_local)
		json_object_set_new(
			o, "local",
			json_pack("{s:s, s:I, s:b}", "generation",
				  rv->local.local_gen, "txn",
				  (json_int_t)rv->local.local_seq, "current",
				  rv->local.state == REPL_LOCAL_CURRENT));
	if (rv->live)
		json_object_set_new(
			o, "mount",
			json_pack("{s:s, s:I, s:I, s:I, s:b}", "mountpoint",
				  rv->mountpoint, "committed_txn",
				  (json_int_t)rv->live_committed, "shipped_txn",
				  (json_int_t)rv->live_shipped, "lag_ms",
				  (json_int_t)rv->live_lag_ms, "lease_lost",
				  rv->live_lost != 0));
	if (rv->have_lease)
		json_object_set_new(o, "lease",
				    json_pack("{s:s, s:I, s:I}", "host",
					      rv->holder.proc.host, "pid",
					      (json_int_t)rv->holder.proc.pid,
					      "expires_ms",
					      (json_int_t)rv->lease_until_ms));
	return o;
}

static json_t *sessions_json(const struct meta_session *s, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_pack(
			"{s:I, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:b, "
			"s:I, s:I}",
			"id", (json_int_t)s[i].sid, "host", s[i].proc.host, "pid",
			(json_int_t)s[i].proc.pid, "mountpoint", s[i].mountpoint,
			"version", s[i].version, "start",
			(json_int_t)s[i].start_ns, "heartbeat",
			(json_int_t)s[i].heartbeat_ns, "heartbeat_ms",
			(json_int_t)s[i].heartbeat_ms, "expiry_ms",
			(json_int_t)s[i].expiry_ms, "stale", (int)s[i].stale,
			"sustained", (json_int_t)s[i].sustained, "locks",
			(json_int_t)s[i].locks);

		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *status_json(const char *name, const struct meta_format *f,
			   const struct meta_statfs *st,
			   const struct meta_session *s, size_t ns,
			   const struct repl_view *rv)
{
	char *js = f ? meta_format_to_json(f) : NULL;
	json_t *root, *usage;

	root = js ? json_loads(js, 0, NULL) : json_object();
	free(js);
	if (!root)
		return NULL;
	if (!f)
		json_object_set_new(root, "name", json_string(name));
	if (st) {
		usage = json_pack(
			"{s:I, s:I, s:I, s:I}", "used_space",
			(json_int_t)(st->total_space - st->avail_space),
			"avail_space", (json_int_t)st->avail_space,
			"used_inodes", (json_int_t)st->used_inodes,
			"avail_inodes", (json_int_t)st->avail_inodes);
		json_object_set_new(root, "usage", usage);
		json_object_set_new(root, "sessions", sessions_json(s, ns));
	}
	json_object_set_new(root, "replication", repl_json(rv));
	return root;
}

static void print_sessions(const struct meta_session *s, size_t n)
{
	int64_t now = 0;
	struct timespec ts;
	char when[64];

	if (n == 0) {
		printf("sessions:    none\n");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	printf("sessions:    %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		time_t start = (time_t)(s[i].start_ns / 1000000000LL);
		struct tm tm;

		localtime_r(&start, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("  %llu: %s pid %ld '%s' (v%s), since %s, heartbeat "
		       "%lld s ago%s, %llu locks, %llu unlinked open\n",
		       (unsigned long long)s[i].sid, s[i].proc.host, s[i].proc.pid,
		       s[i].mountpoint, s[i].version, when,
		       (long long)((now - s[i].heartbeat_ns) / 1000000000LL),
		       s[i].dead ? " (dead)" : s[i].stale ? " (stale)" : "",
		       (unsigned long long)s[i].locks,
		       (unsigned long long)s[i].sustained);
	}
}

static void print_text(const struct meta_format *f,
		       const struct meta_statfs *st,
		       const struct meta_session *s, size_t ns)
{
	printf("name:        %s\n", f->name);
	printf("uuid:        %s\n", f->uuid);
	printf("storage:     %s\n", f->storage);
	printf("block size:  %u KiB\n", f->block_size / 1024);
	printf("chunk size:  %llu MiB\n",
	       (unsigned long long)(f->chunk_size / MiB));
	printf("compress:    %s\n", f->compress);
	printf("encrypt:     %s\n", f->encrypt);
	printf("trash days:  %u\n", f->trash_days);
	if (f->capacity)
		printf("capacity:    %llu bytes\n",
		       (unsigned long long)f->capacity);
	else
		printf("capacity:    unlimited\n");
	if (f->inodes)
		printf("inodes:      %llu\n", (unsigned long long)f->inodes);
	else
		printf("inodes:      unlimited\n");
	printf("used space:  %llu bytes\n",
	       (unsigned long long)(st->total_space - st->avail_space));
	printf("used inodes: %llu\n", (unsigned long long)st->used_inodes);
	print_sessions(s, ns);
}

static int print_all(const char *name, const struct meta_format *f,
		     const struct meta_statfs *st, const struct meta_session *s,
		     size_t ns, const struct repl_view *rv, bool json)
{
	json_t *j;

	if (!json) {
		if (f)
			print_text(f, st, s, ns);
		print_repl(rv);
		return EXIT_OK;
	}
	j = status_json(name, f, st, s, ns, rv);
	if (!j) {
		log_error("cannot encode status as JSON");
		return EXIT_ERR;
	}
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	return EXIT_OK;
}

/* STORAGE-URL/NAME with no local copy: what the store holds. */
static int store_only(const struct cli_volume *vol, bool json)
{
	struct repl_view rv;
	struct obj_store *os;

	memset(&rv, 0, sizeof(rv));
	if (obj_open(vol->storage_url, false, &os) < 0)
		return EXIT_ERR;
	rv.replicated = true;
	store_view(os, vol->name, &rv);
	obj_close(os);
	if (!rv.have_store) {
		log_error("no replicated metadata of volume '%s' in '%s'",
			  vol->name, rv.store_url);
		return EXIT_ERR;
	}
	if (!json)
		printf("name:        %s\n", vol->name);
	return print_all(vol->name, NULL, NULL, NULL, 0, &rv, json);
}

int cmd_status(int argc, char **argv)
{
	struct cli_open_opts o = {.quiet = true, .no_restore = true};
	struct cli_volume vol;
	struct meta_format f;
	struct meta_statfs st;
	struct repl_view rv;
	struct meta *m = NULL;
	struct meta_session *sess = NULL;
	size_t nsess = 0;
	struct cli_vol cv;
	const char *pos[1];
	char db[PATH_MAX + 300];
	bool json = false;
	int npos, rc;

	rc = cli_getopt("status", argc, argv, NULL, status_opts, status_opt,
			&json, pos, 1, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return cli_usage_error("status", "missing volume");
	if (cli_resolve_volume(pos[0], &vol) < 0)
		return EXIT_ERR;
	snprintf(db, sizeof(db), "%s/%s/meta.db", cli_home(), vol.name);
	if (vol.from_store && access(db, F_OK) < 0)
		return store_only(&vol, json);
	if (cli_vol_open(pos[0], &o, &cv, &f) < 0)
		return EXIT_ERR;
	memset(&rv, 0, sizeof(rv));
	rv.replicated = cv.replicated;
	if (cv.replicated && cv.store) {
		rv.have_local = repl_local_check(cv.kv, cv.store, f.name,
						 &rv.local) == 0;
		store_view(cv.store, f.name, &rv);
		live_view(&cv.vol, &rv);
	} else if (cv.replicated) {
		url_redact(f.storage, rv.store_url, sizeof(rv.store_url));
		snprintf(rv.unreachable, sizeof(rv.unreachable), "%s",
			 cv.store_why[0] ? cv.store_why : "cannot open it");
	}
	rc = cli_vol_meta(&cv, &m);
	cli_vol_close(&cv);
	if (rc == 0)
		rc = meta_statfs(m, &st);
	if (rc < 0) {
		meta_close(m);
		log_fail(rc, "cannot read usage of volume '%s'", f.name);
		return EXIT_ERR;
	}
	rc = meta_sessions(m, &sess, &nsess);
	meta_close(m);
	if (rc < 0) {
		log_fail(rc, "cannot list the sessions of volume '%s'", f.name);
		return EXIT_ERR;
	}
	rc = print_all(f.name, &f, &st, sess, nsess, &rv, json);
	free(sess);
	return rc;
}
