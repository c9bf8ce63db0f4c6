/*
 * cmd_destroy.c - `tessera destroy VOLUME UUID [--quiet]`: delete every
 * object of a volume and its metadata.
 *
 * Guards, all before anything is deleted: UUID must be the volume's (a
 * typo names another volume, or none); the volume must not be mounted on
 * this host (its mount lock, held until the end so no mount starts
 * meanwhile); a replicated volume is opened for writing, which takes its
 * lease (a live holder elsewhere refuses); no session may be alive
 * (meta_sessions, stale ones do not count).
 *
 * Then: every object under "NAME/" in the store (blocks, replicated
 * metadata segments and snapshots, checkpoints, the lease: the lease
 * is ours, so releasing it at close finds nothing), listed whole first
 * and deleted on a few threads; then the metadata (kv_wipe); then, for an
 * embedded volume, its directory $TESSERA_HOME/NAME.  A failure stops at
 * that step with one line; running destroy again finishes the job as long
 * as the metadata is there (it is wiped only after every object went).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/kv.h"
#include "meta/meta.h"
#include "object/object.h"
#include "util/log.h"

#include <ctype.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <unistd.h>

#define DESTROY_THREADS 8

struct destroy {
	const char *name;
	bool quiet;
	struct obj_store *store;
	char **keys;
	size_t n, cap;
};

static const struct option destroy_opts[] = {
	{"quiet", no_argument, NULL, 'q'},
	{NULL, 0, NULL, 0},
};

static int destroy_opt(void *arg, int c, const char *optval)
{
	UNUSED(optval);
	if (c == 'q') {
		*(bool *)arg = true;
		return 0;
	}
	return EXIT_USAGE;
}

static int collect(void *arg, const struct obj_entry *e)
{
	struct destroy *d = arg;

	if (d->n == d->cap) {
		size_t c = d->cap ? d->cap * 2 : 1024;
		char **k = reallocarray(d->keys, c, sizeof(*k));

		if (!k)
			return -ENOMEM;
		d->keys = k;
		d->cap = c;
	}
	d->keys[d->n] = strdup(e->key);
	if (!d->keys[d->n])
		return -ENOMEM;
	d->n++;
	return 0;
}

static int key_at(void *arg, size_t i, char *out, size_t n)
{
	struct destroy *d = arg;

	snprintf(out, n, "%s", d->keys[i]);
	return 0;
}

static int delete_objects(struct destroy *d, uint64_t *deleted)
{
	char prefix[300];
	struct cli_del del = {
		.store = d->store, .key = key_at, .arg = d,
		.threads = DESTROY_THREADS, .what = "deleting objects",
		.quiet = d->quiet,
	};
	int rc;

	snprintf(prefix, sizeof(prefix), "%s/", d->name);
	rc = cli_obj_list_all(d->store, prefix, d->quiet, collect, d);
	if (rc < 0)
		return rc; /* logged */
	del.n = d->n;
	rc = cli_obj_delete(&del);
	*deleted = del.deleted;
	if (rc < 0)
		log_error("cannot delete %llu of the %zu objects of volume "
			  "'%s': run destroy again",
			  (unsigned long long)del.failed, d->n, d->name);
	return rc;
}

/* Refuse while any session is alive; -EBUSY (logged). */
static int no_sessions(struct meta *m, const char *name)
{
	struct meta_session *s;
	size_t n, live = 0;
	int rc = meta_sessions(m, &s, &n);

	if (rc < 0)
		return log_fail(rc, "cannot read the sessions of volume '%s'",
				name);
	for (size_t i = 0; i < n; i++)
		live += !s[i].stale;
	if (live) {
		log_error("volume '%s' has %zu live sessions (%s:%s): unmount "
			  "it first",
			  name, live, s[0].proc.host, s[0].mountpoint);
		rc = -EBUSY;
	}
	free(s);
	return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	UNUSED(st);
	UNUSED(flag);
	UNUSED(ftw);
	if (remove(path) < 0 && errno != ENOENT)
		return log_fail(-errno, "cannot remove '%s'", path);
	return 0;
}

static int remove_home(const char *name)
{
	char path[PATH_MAX];
	int rc;

	if (snprintf(path, sizeof(path), "%s/%s", cli_home(), name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if (access(path, F_OK) < 0)
		return 0;
	rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc < 0 ? -EIO : rc;
}

static bool uuid_form(const char *u)
{
	static const char form[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(u) != sizeof(form) - 1)
		return false;
	for (size_t i = 0; form[i]; i++) {
		bool ok = form[i] == '-' ? u[i] == '-'
					 : isxdigit((unsigned char)u[i]) != 0;

		if (!ok)
			return false;
	}
	return true;
}

static int destroy_run(const char *arg, const char *uuid, struct destroy *d)
{
	struct cli_open_opts o = {.write = true, .quiet = d->quiet};
	struct meta_format f;
	struct cli_vol cv;
	struct meta *m = NULL;
	uint64_t deleted = 0;
	int rc = cli_vol_open(arg, &o, &cv, &f);

	if (rc < 0)
		return rc;
	d->name = f.name;
	if (!uuid_form(uuid) || strcasecmp(uuid, f.uuid) != 0) {
		log_error("wrong UUID '%s' for volume '%s': give its UUID "
			  "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, shown by "
			  "'tessera status %s')",
			  uuid, f.name, arg);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = cli_vol_meta(&cv, &m);
	if (rc == 0)
		rc = no_sessions(m, f.name);
	if (rc == 0)
		rc = obj_open(cli_vol_storage(&cv, &f), false, &d->store);
	if (rc == 0)
		rc = delete_objects(d, &deleted);
	if (rc == 0) {
		rc = kv_wipe(meta_engine(m));
		if (rc < 0)
			log_fail(rc, "cannot wipe the metadata of volume '%s'",
				 f.name);
	}
	meta_close(m);
	cli_vol_close(&cv);
	if (rc == 0 && cv.vol.embedded)
		rc = remove_home(cv.vol.name);
	if (rc == 0)
		printf("destroyed volume '%s': %llu objects deleted\n", f.name,
		       (unsigned long long)deleted);
	return rc;
}

int cmd_destroy(int argc, char **argv)
{
	struct destroy d = {0};
	struct cli_volume vol;
	const char *pos[2];
	int npos, rc, fd = -1;

	rc = cli_getopt("destroy", argc, argv, NULL, destroy_opts, destroy_opt,
			&d.quiet, pos, 2, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("destroy", "missing volume");
	if (npos < 2)
		return cli_usage_error("destroy", "missing UUID (see 'tessera "
						  "status %s')",
				       pos[0]);
	if (cli_resolve_volume(pos[0], &vol) < 0)
		return EXIT_ERR;
	if (vol.embedded) {
		rc = cli_mount_lock(vol.name, &fd);
		if (rc == -EBUSY)
			log_error("volume '%s' is mounted on this host: "
				  "unmount it first",
				  vol.name);
		if (rc < 0)
			return EXIT_ERR;
	}
	rc = destroy_run(pos[0], pos[1], &d);
	for (size_t i = 0; i < d.n; i++)
		free(d.keys[i]);
	free(d.keys);
	obj_close(d.store);
	if (fd >= 0)
		close(fd);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}
