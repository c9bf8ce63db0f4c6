/*
 * t_meta_session.c - sessions and locks of meta.h: fcntl ranges (split,
 * merge, getlk), flock (conversion drops first), both across two sessions
 * of one volume (two struct meta on one URL, as two mounts are), session
 * listing, and the cleaning of a stale session: its locks go, its
 * sustained inodes are deleted, a live session is never touched.  A
 * session of a dead process of this host is cleaned by the next session
 * start at once; one of another host, or an old record without the
 * process's start time, only once silent.  The usage deltas a dead
 * session never flushed are recounted by that start when it is alone.
 *
 * Engine: TESSERA_TEST_META (URL) or a fresh SQLite file per test.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meta/meta_scan.h"
#include "unit/meta_fixture.h"

/* A second client of the volume of @x, with a session. */
static struct meta *second(struct fx *x, uint32_t heartbeat_ms)
{
	struct meta_session_conf c = {"/mnt/b", heartbeat_ms};
	struct meta *m;

	assert_int_equal(meta_open(x->url, &m), 0);
	assert_int_equal(meta_session_start(m, &c), 0);
	return m;
}

static int setup(void **state)
{
	struct meta_session_conf c = {"/mnt/a", 60000};

	if (fx_setup(state) < 0)
		return -1;
	return meta_session_start(FX_M(state), &c);
}

static struct meta_plock lk(int type, uint64_t start, uint64_t end)
{
	struct meta_plock l = {type, start, end, 42, 0};

	return l;
}

static void test_meta_lock_posix(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_plock l;

	l = lk(F_WRLCK, 0, 99);
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	l = lk(F_RDLCK, 200, UINT64_MAX);
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	/* owner 11 conflicts, the same owner never */
	l = lk(F_RDLCK, 50, 50);
	assert_int_equal(meta_setlk(m, 1, 11, &l), -EAGAIN);
	l = lk(F_WRLCK, 0, 1000);
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	l = lk(F_UNLCK, 0, 1000);
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	/* now [1001, EOF) read-locked by 10 only */
	l = lk(F_WRLCK, 0, 1000);
	assert_int_equal(meta_getlk(m, 1, 11, &l), 0);
	assert_int_equal(l.type, F_UNLCK);
	l = lk(F_WRLCK, 5000, 5000);
	assert_int_equal(meta_getlk(m, 1, 11, &l), 0);
	assert_int_equal(l.type, F_RDLCK);
	assert_int_equal(l.start, 1001);
	assert_true(l.end == UINT64_MAX);
	assert_int_equal(l.pid, 42);
	l = lk(F_RDLCK, 5000, 5000);
	assert_int_equal(meta_setlk(m, 1, 11, &l), 0);
	/* another inode; dropping owners */
	l = lk(F_WRLCK, 5000, 5000);
	assert_int_equal(meta_setlk(m, 2, 11, &l), 0);
	assert_int_equal(meta_setlk(m, 1, 12, &l), -EAGAIN);
	assert_int_equal(meta_unlock_owner(m, 1, 10, true, false), 0);
	assert_int_equal(meta_unlock_owner(m, 1, 11, true, false), 0);
	assert_int_equal(meta_setlk(m, 1, 12, &l), 0);
	l = lk(F_WRLCK, 10, 5);
	assert_int_equal(meta_setlk(m, 1, 12, &l), -EINVAL);
	l = lk(F_UNLCK, 0, 5);
	assert_int_equal(meta_getlk(m, 1, 12, &l), -EINVAL);
}

static void test_meta_lock_split(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_plock l;

	l = lk(F_WRLCK, 0, 99);
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	l = lk(F_RDLCK, 40, 59); /* downgrade the middle */
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	l = lk(F_RDLCK, 40, 59);
	assert_int_equal(meta_setlk(m, 1, 11, &l), 0);
	l = lk(F_RDLCK, 39, 39);
	assert_int_equal(meta_setlk(m, 1, 11, &l), -EAGAIN);
	l = lk(F_RDLCK, 60, 60);
	assert_int_equal(meta_setlk(m, 1, 11, &l), -EAGAIN);
	/* merging: adjacent write ranges become one */
	assert_int_equal(meta_unlock_owner(m, 1, 11, true, false), 0);
	l = lk(F_WRLCK, 40, 59);
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	l = lk(F_WRLCK, 0, 0);
	assert_int_equal(meta_getlk(m, 1, 11, &l), 0);
	assert_int_equal(l.start, 0);
	assert_int_equal(l.end, 99);
}

static void test_meta_lock_flock(void **state)
{
	struct meta *m = FX_M(state);
	struct meta_plock l = lk(F_WRLCK, 0, UINT64_MAX);

	assert_int_equal(meta_flock(m, 1, 10, F_RDLCK, NULL), 0);
	assert_int_equal(meta_flock(m, 1, 11, F_RDLCK, NULL), 0);
	assert_int_equal(meta_flock(m, 1, 12, F_WRLCK, NULL), -EAGAIN);
	/* a failed upgrade drops the shared lock, as Linux does */
	assert_int_equal(meta_flock(m, 1, 10, F_WRLCK, NULL), -EAGAIN);
	assert_int_equal(meta_flock(m, 1, 11, F_WRLCK, NULL), 0);
	assert_int_equal(meta_flock(m, 1, 10, F_RDLCK, NULL), -EAGAIN);
	/* fcntl locks never conflict with flock locks */
	assert_int_equal(meta_setlk(m, 1, 10, &l), 0);
	assert_int_equal(meta_unlock_owner(m, 1, 11, false, true), 0);
	assert_int_equal(meta_flock(m, 1, 10, F_WRLCK, NULL), 0);
	assert_int_equal(meta_flock(m, 1, 10, F_UNLCK, NULL), 0);
	assert_int_equal(meta_flock(m, 1, 10, 77, NULL), -EINVAL);
}

/* The same owner number in two sessions is two owners. */
static void test_meta_lock_two_sessions(void **state)
{
	struct fx *x = *state;
	struct meta *a = x->m, *b = second(x, 60000);
	struct meta_plock l;
	bool own = true;


	assert_int_not_equal(meta_session_id(a), meta_session_id(b));
	assert_int_equal(meta_flock(a, 7, 10, F_WRLCK, NULL), 0);
	assert_int_equal(meta_flock(b, 7, 10, F_RDLCK, &own), -EAGAIN);
	assert_false(own);
	assert_int_equal(meta_flock(a, 7, 11, F_RDLCK, &own), -EAGAIN);
	assert_true(own);
	assert_int_equal(meta_flock(a, 7, 10, F_UNLCK, NULL), 0);
	assert_int_equal(meta_flock(b, 7, 10, F_RDLCK, NULL), 0);
	assert_int_equal(meta_flock(a, 7, 10, F_RDLCK, NULL), 0);

	l = lk(F_WRLCK, 100, 199);
	assert_int_equal(meta_setlk(a, 7, 10, &l), 0);
	l = lk(F_WRLCK, 150, 150);
	assert_int_equal(meta_setlk(b, 7, 10, &l), -EAGAIN);
	assert_int_equal(meta_getlk(b, 7, 10, &l), 0);
	assert_int_equal(l.type, F_WRLCK);
	assert_int_equal(l.start, 100);
	assert_int_equal(l.end, 199);
	assert_true(l.sid == meta_session_id(a));
	l = lk(F_WRLCK, 200, 300); /* adjacent, not overlapping */
	assert_int_equal(meta_setlk(b, 7, 10, &l), 0);
	/* the end of session b releases its locks */
	meta_close(b);
	l = lk(F_WRLCK, 200, 300);
	assert_int_equal(meta_setlk(a, 7, 11, &l), 0);
	assert_int_equal(meta_flock(a, 7, 11, F_WRLCK, NULL), -EAGAIN); /* a's own */
}

static void test_meta_session_list(void **state)
{
	struct fx *x = *state;
	struct meta *b = second(x, 60000);
	struct meta_session *s;
	size_t n;

	assert_int_equal(meta_flock(b, 9, 1, F_WRLCK, NULL), 0);
	assert_int_equal(meta_sessions(x->m, &s, &n), 0);
	assert_int_equal(n, 2);
	assert_true(s[0].sid < s[1].sid);
	assert_string_equal(s[0].mountpoint, "/mnt/a");
	assert_string_equal(s[1].mountpoint, "/mnt/b");
	assert_int_equal(s[1].proc.pid, (long)getpid());
	assert_true(s[1].proc.pid_start != 0);
	assert_false(s[1].dead);
	assert_int_equal(s[1].heartbeat_ms, 60000);
	assert_int_equal(s[1].expiry_ms, 60000 * META_SESSION_EXPIRY);
	assert_string_equal(s[1].version, TESSERA_VERSION);
	assert_false(s[0].stale);
	assert_int_equal(s[0].locks, 0);
	assert_int_equal(s[1].locks, 1);
	free(s);
	meta_close(b);
	assert_int_equal(meta_sessions(x->m, &s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].sid, meta_session_id(x->m));
	free(s);
}

static void put_session(struct meta *m, uint64_t sid, const char *json)
{
	struct kv_txn *t;
	unsigned char k[8];

	put_be64(k, sid);
	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(kv_put(t, KV_SESSION, k, 8, json, strlen(json)), 0);
	assert_int_equal(kv_commit(t), 0);
}

/* Make session @sid look silent since the epoch (as after kill -9). */
static void age_session(struct meta *m, uint64_t sid)
{
	struct kv_txn *t;
	unsigned char k[8];
	char json[256];

	put_be64(k, sid);
	snprintf(json, sizeof(json),
		 "{\"host\":\"h\",\"pid\":1,\"mountpoint\":\"/dead\","
		 "\"version\":\"0\",\"start\":1,\"heartbeat\":1,"
		 "\"heartbeat_ms\":100,\"expiry_ms\":500}");
	assert_int_equal(kv_begin(meta_engine(m), true, &t), 0);
	assert_int_equal(kv_put(t, KV_SESSION, k, 8, json, strlen(json)), 0);
	assert_int_equal(kv_commit(t), 0);
}

static void test_meta_session_clean_stale(void **state)
{
	struct fx *x = *state;
	struct meta *a = x->m, *b = second(x, 3600 * 1000);
	struct meta_plock l = lk(F_WRLCK, 0, UINT64_MAX);
	struct meta_session *s;
	struct meta_attr at;
	uint64_t keep, gone, bsid = meta_session_id(b);
	size_t n;

	/* b: locks, and a file unlinked while open */
	gone = fx_file(b, ROOT, R1, "open-unlinked", 0644);
	keep = fx_file(b, ROOT, R1, "kept", 0644);
	meta_open_file(b, gone);
	assert_int_equal(meta_unlink(b, ROOT, R1, "open-unlinked"), 0);
	assert_int_equal(meta_getattr(a, gone, &at), 0);
	assert_int_equal(at.nlink, 0);
	assert_int_equal(meta_setlk(b, keep, 5, &l), 0);
	assert_int_equal(meta_flock(b, keep, 5, F_WRLCK, NULL), 0);
	assert_int_equal(meta_setlk(a, keep, 5, &l), -EAGAIN);

	/* alive: nothing is cleaned */
	assert_int_equal(meta_clean_sessions(a, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_setlk(a, keep, 5, &l), -EAGAIN);
	assert_int_equal(meta_sessions(a, &s, &n), 0);
	assert_int_equal(n, 2);
	assert_false(s[1].stale);
	assert_int_equal(s[1].sustained, 1);
	assert_int_equal(s[1].locks, 2);
	free(s);

	/* b goes silent (from here on a heartbeat thread of a or b may
	 * clean it at any moment, so only the end state is certain) */
	age_session(a, bsid);
	assert_int_equal(meta_sessions(a, &s, &n), 0);
	assert_true(n == 1 || (n == 2 && s[1].stale));
	free(s);
	assert_int_equal(meta_clean_sessions(a, &n), 0);
	assert_true(n <= 1);
	assert_int_equal(meta_sessions(a, &s, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].sid, meta_session_id(a));
	free(s);
	assert_int_equal(meta_setlk(a, keep, 5, &l), 0);
	assert_int_equal(meta_flock(a, keep, 5, F_WRLCK, NULL), 0);
	assert_int_equal(meta_getattr(a, gone, &at), -ENOENT);
	assert_int_equal(meta_getattr(a, keep, &at), 0);
	/* cleaning again finds nothing */
	assert_int_equal(meta_clean_sessions(a, &n), 0);
	assert_int_equal(n, 0);
	meta_close_file(b, gone); /* already deleted: harmless */
	meta_close(b);
	assert_int_equal(meta_getattr(a, keep, &at), 0);
}

/* A pid of this host that is gone (a child, exited and reaped). */
static long dead_pid(void)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return (long)pid;
}

/*
 * Rewrite the record of @sid as a fresh one (heartbeat now) of process
 * @pid: of this host, or of @host with @host set; without pid_start when
 * @old (a record of an older version).
 */
static void fake_session(struct meta *m, uint64_t sid, long pid,
			 const char *host, bool old)
{
	struct procid p;
	struct timespec ts;
	json_t *o = json_object();
	char *js;

	procid_self(&p);
	p.pid = pid;
	p.pid_start = old ? 0 : 12345;
	if (host)
		snprintf(p.host, sizeof(p.host), "%s", host);
	assert_int_equal(procid_to_json(&p, o), 0);
	json_object_set_new(o, "mountpoint", json_string("/crashed"));
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_set_new(o, "heartbeat",
			    json_integer((json_int_t)ts.tv_sec * 1000000000 +
					 ts.tv_nsec));
	json_object_set_new(o, "heartbeat_ms", json_integer(3600000));
	json_object_set_new(o, "expiry_ms", json_integer(3600000));
	js = json_dumps(o, JSON_COMPACT);
	put_session(m, sid, js);
	free(js);
	json_decref(o);
}

static void test_meta_session_clean_dead(void **state)
{
	struct fx *x = *state;
	struct meta *a = x->m, *b = second(x, 3600 * 1000), *c;
	struct meta_plock l = lk(F_WRLCK, 0, UINT64_MAX);
	struct meta_session *s;
	struct meta_attr at;
	uint64_t keep, gone, bsid = meta_session_id(b);
	long pid = dead_pid();
	size_t n;

	gone = fx_file(b, ROOT, R1, "open-unlinked", 0644);
	keep = fx_file(b, ROOT, R1, "kept", 0644);
	meta_open_file(b, gone);
	assert_int_equal(meta_unlink(b, ROOT, R1, "open-unlinked"), 0);
	assert_int_equal(meta_setlk(b, keep, 5, &l), 0);
	assert_int_equal(meta_flock(b, keep, 5, F_WRLCK, NULL), 0);

	/* another host's session with that pid, fresh: kept */
	fake_session(a, bsid, pid, "elsewhere.example", false);
	c = second(x, 3600 * 1000);
	meta_close(c);
	assert_int_equal(meta_clean_sessions(a, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_setlk(a, keep, 5, &l), -EAGAIN);
	/* an old record (no pid_start) of this host: kept until silent */
	fake_session(a, bsid, pid, NULL, true);
	assert_int_equal(meta_clean_sessions(a, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(meta_sessions(a, &s, &n), 0);
	assert_int_equal(n, 2);
	assert_false(s[1].stale);
	free(s);

	/* a dead process of this host: listed dead, and the next session
	 * start frees its locks and unlinked inodes before it returns */
	fake_session(a, bsid, pid, NULL, false);
	assert_int_equal(meta_sessions(a, &s, &n), 0);
	assert_int_equal(n, 2);
	assert_true(s[1].dead);
	assert_true(s[1].stale);
	assert_false(s[0].dead);
	free(s);
	c = second(x, 3600 * 1000);
	assert_int_equal(meta_setlk(c, keep, 5, &l), 0);
	assert_int_equal(meta_flock(c, keep, 5, F_WRLCK, NULL), 0);
	assert_int_equal(meta_getattr(a, gone, &at), -ENOENT);
	assert_int_equal(meta_sessions(a, &s, &n), 0);
	assert_int_equal(n, 2); /* a and c */
	assert_true(s[1].sid != bsid);
	free(s);
	meta_close(c);
	meta_close_file(b, gone);
	meta_close(b);
	assert_int_equal(meta_getattr(a, keep, &at), 0);
}

static uint64_t used_inodes(struct meta *m)
{
	struct meta_view *v;
	uint64_t n = 0;

	assert_int_equal(meta_view_begin(m, &v), 0);
	assert_int_equal(meta_view_counter(v, "usedInodes", &n), 0);
	assert_int_equal(meta_view_end(v), 0);
	return n;
}

/*
 * Session b creates 3 files (deltas flushed at most once a second) and
 * dies; the next session start recounts usedInodes when no other session
 * is registered (@alone: x->m has none), and leaves it alone otherwise.
 */
static void recount_case(struct fx *x, bool alone)
{
	struct meta *b = second(x, 3600 * 1000), *c;
	uint64_t bsid = meta_session_id(b), before;

	fx_file(b, ROOT, R1, "u1", 0644);
	fx_file(b, ROOT, R1, "u2", 0644);
	fx_file(b, ROOT, R1, "u3", 0644);
	before = used_inodes(x->m);
	fake_session(x->m, bsid, dead_pid(), NULL, false);
	c = second(x, 3600 * 1000);
	assert_int_equal(used_inodes(x->m), alone ? 3 : before);
	meta_close(c);
	meta_close(b); /* the "dead" one: its late flush is no concern */
}

static void test_meta_session_recount_alone(void **state)
{
	recount_case(*state, true);
}

static void test_meta_session_recount_others(void **state)
{
	recount_case(*state, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_meta_lock_posix, setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_lock_split, setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_lock_flock, setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_lock_two_sessions,
						setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_session_list, setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_session_clean_stale,
						setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_session_clean_dead,
						setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_meta_session_recount_alone,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_meta_session_recount_others, setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
