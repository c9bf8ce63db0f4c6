/*
 * cli_objects.c - object store chores shared by gc and destroy: listing a
 * whole prefix page by page, deleting many keys on a few threads, and the
 * mount lock of a volume on this host (cli.h).
 *
 * Listing follows next_token until the store says it is done; any failed
 * page fails the whole listing (the caller then must not act on a partial
 * view: JuiceFS #6479 deleted live data after a listing error).
 *
 * Deleting: workers take key numbers from one atomic counter, so each key
 * is deleted once; the calling thread is worker 0 and the only one that
 * draws the progress line (a struct progress belongs to one thread).  A
 * failed delete is counted; the first one is logged with its key, the
 * rest only counted, and the first error is returned after every key was
 * tried.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "object/object.h"
#include "util/log.h"
#include "util/progress.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <unistd.h>

#define CLI_DEL_MAX_THREADS 64

int cli_obj_list_all(struct obj_store *s, const char *prefix, bool quiet,
		     cli_obj_fn fn, void *arg)
{
	struct progress p;
	struct obj_list l;
	char *token = NULL;
	int rc;

	obj_list_init(&l);
	progress_init(&p, "listing objects", "objects", 0, quiet);
	for (;;) {
		rc = obj_list(s, prefix, NULL, token, 1000, &l);
		free(token);
		token = NULL;
		if (rc < 0) {
			log_fail(rc, "cannot list '%s' in '%s'", prefix,
				 obj_describe(s));
			break;
		}
		for (size_t i = 0; rc == 0 && i < l.n; i++)
			rc = fn(arg, &l.items[i]);
		if (rc < 0)
			break;
		progress_add(&p, l.n);
		if (!l.truncated || !l.next_token)
			break;
		token = strdup(l.next_token);
		if (!token) {
			rc = -ENOMEM;
			break;
		}
	}
	progress_end(&p);
	obj_list_release(&l);
	return rc;
}

struct del_run {
	struct cli_del *d;
	_Atomic size_t next;
	_Atomic uint64_t done;
	_Atomic uint64_t failed;
	_Atomic int first_err;
	struct progress *p; /* worker 0 only */
};

static void *del_worker(void *arg)
{
	struct del_run *r = arg;
	struct cli_del *d = r->d;
	char key[OBJ_KEY_MAX + 1];

	for (;;) {
		size_t i = atomic_fetch_add(&r->next, 1);
		int rc, zero = 0;

		if (i >= d->n)
			break;
		rc = d->key(d->arg, i, key, sizeof(key));
		if (rc == 0)
			rc = obj_del(d->store, key);
		if (rc < 0) {
			atomic_fetch_add(&r->failed, 1);
			if (atomic_compare_exchange_strong(&r->first_err, &zero,
							   rc))
				log_warn("cannot delete '%s': %s", key,
					 strerror(-rc));
		} else {
			atomic_fetch_add(&r->done, 1);
		}
		if (r->p) {
			uint64_t now = atomic_load(&r->done) +
				       atomic_load(&r->failed);

			progress_add(r->p, now - r->p->done);
		}
	}
	return NULL;
}

int cli_obj_delete(struct cli_del *d)
{
	pthread_t th[CLI_DEL_MAX_THREADS];
	struct del_run r = {.d = d};
	struct progress p;
	int nth = d->threads, started = 0;

	d->deleted = d->failed = 0;
	if (d->n == 0)
		return 0;
	if (nth < 1)
		nth = 1;
	if (nth > CLI_DEL_MAX_THREADS)
		nth = CLI_DEL_MAX_THREADS;
	if ((size_t)nth > d->n)
		nth = (int)d->n;
	progress_init(&p, d->what, "objects", d->n, d->quiet);
	for (int i = 1; i < nth; i++)
		if (pthread_create(&th[started], NULL, del_worker, &r) == 0)
			started++;
	r.p = &p;
	del_worker(&r); /* fewer threads than asked is still correct */
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	progress_end(&p);
	d->deleted = atomic_load(&r.done);
	d->failed = atomic_load(&r.failed);
	return atomic_load(&r.first_err);
}

int cli_mount_lock(const char *name, int *fd_out)
{
	char path[PATH_MAX + 300];
	int fd;

	*fd_out = -1;
	snprintf(path, sizeof(path), "%s/%s/mount.lock", cli_home(), name);
	if (access(path, F_OK) < 0)
		return 0; /* never mounted here */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return log_fail(-errno, "cannot open mount lock '%s'", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -EBUSY;
	}
	*fd_out = fd;
	return 0;
}
