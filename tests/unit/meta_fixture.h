/*
 * meta_fixture.h - shared fixture of the t_meta_*.c suites (header-only).
 *
 * Each test gets a freshly formatted volume: the URL in TESSERA_TEST_META
 * (formatted with force, which wipes it), or a new SQLite file in a temp
 * dir removed afterwards.  The same suites thus run on every engine.
 * Credentials: ROOT (uid 0), ALICE (1000:1000, also in group 3000) and BOB
 * (1001:1001); all with umask 0 unless a test sets one.
 */
#ifndef TESSERA_TESTS_META_FIXTURE_H
#define TESSERA_TESTS_META_FIXTURE_H

#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "meta/kv.h"
#include "meta/meta.h"

struct fx {
	char dir[64];
	char url[1200];
	struct meta *m;
	struct meta_format f;
};

#define FX_UNUSED __attribute__((unused))
static const uint32_t fx_alice_groups[] FX_UNUSED = {3000};
static const struct meta_cred fx_root FX_UNUSED = {0, 0, 0, NULL, 0, 1};
static const struct meta_cred fx_alice FX_UNUSED = {
    1000, 1000, 1, fx_alice_groups, 0, 2};
static const struct meta_cred fx_bob FX_UNUSED = {1001, 1001, 0, NULL, 0, 3};
#define ROOT (&fx_root)
#define ALICE (&fx_alice)
#define BOB (&fx_bob)
#define R1 TESSERA_ROOT_INO

static inline int fx_rm_cb(const char *p, const struct stat *sb, int flag,
			   struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline int fx_open(struct fx *x, uint32_t trash_days, uint64_t capacity,
			  uint64_t inodes)
{
	const char *env = getenv("TESSERA_TEST_META");
	bool force = env && *env;

	snprintf(x->dir, sizeof(x->dir), "/tmp/t_meta.XXXXXX");
	if (!mkdtemp(x->dir))
		return -1;
	if (force)
		snprintf(x->url, sizeof(x->url), "%s", env);
	else
		snprintf(x->url, sizeof(x->url), "sqlite3://%s/meta.db",
			 x->dir);
	memset(&x->f, 0, sizeof(x->f));
	snprintf(x->f.name, sizeof(x->f.name), "test");
	snprintf(x->f.storage, sizeof(x->f.storage), "file://%s/obj/", x->dir);
	x->f.trash_days = trash_days;
	x->f.capacity = capacity;
	x->f.inodes = inodes;
	if (meta_format(x->url, &x->f, force) < 0)
		return -1;
	return meta_open(x->url, &x->m) < 0 ? -1 : 0;
}

static inline int fx_setup_with(void **state, uint32_t trash_days,
				uint64_t capacity, uint64_t inodes)
{
	struct fx *x = calloc(1, sizeof(*x));

	if (!x)
		return -1;
	if (fx_open(x, trash_days, capacity, inodes) < 0) {
		if (x->dir[0])
			nftw(x->dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
		free(x);
		return -1;
	}
	*state = x;
	return 0;
}

static inline int fx_setup(void **state)
{
	return fx_setup_with(state, 0, 0, 0);
}

static inline int fx_setup_trash(void **state)
{
	return fx_setup_with(state, 1, 0, 0);
}

static inline int fx_teardown(void **state)
{
	struct fx *x = *state;

	meta_close(x->m);
	nftw(x->dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	free(x);
	return 0;
}

#define FX_M(state) (((struct fx *)*(state))->m)

/* Create a regular file (mode 0644 unless given) as @c; returns its ino. */
static inline uint64_t fx_file(struct meta *m, const struct meta_cred *c,
			       uint64_t parent, const char *name, uint32_t mode)
{
	struct meta_attr a;

	assert_int_equal(meta_mknod(m, c, parent, name, S_IFREG | mode, 0, &a),
			 0);
	return a.ino;
}

static inline uint64_t fx_dir(struct meta *m, const struct meta_cred *c,
			      uint64_t parent, const char *name, uint32_t mode)
{
	struct meta_attr a;

	assert_int_equal(meta_mkdir(m, c, parent, name, mode, &a), 0);
	return a.ino;
}

static inline struct meta_attr fx_get(struct meta *m, uint64_t ino)
{
	struct meta_attr a;

	assert_int_equal(meta_getattr(m, ino, &a), 0);
	return a;
}

/* Sleep a little so a later timestamp is strictly larger. */
static inline void fx_tick(void)
{
	struct timespec ts = {0, 2000000};

	nanosleep(&ts, NULL);
}

#endif
