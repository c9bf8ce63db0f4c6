/*
 * cmd_trash.c - `tessera trash list VOLUME [--json]`, `tessera trash
 * restore VOLUME ENTRY...|--all` and `tessera trash empty VOLUME`.
 *
 * Design: list reads the metadata directly in every case (cli_vol_open
 * without write: no lease, no session).  restore and empty change it:
 * when this host mounts the volume (its mount lock is held) the request
 * goes to that mount through its ".control" file (vfs_trash.c), since a
 * replicated volume may only be changed by its lease holder and the mount
 * holds the lease; otherwise the command opens the volume for writing
 * (cli_vol_open takes the lease of a replicated volume; Redis and
 * PostgreSQL volumes are multi-client and are changed directly even while
 * mounted elsewhere: mounts see it after their 1 s entry/attr cache).
 * Each entry is restored by its own transaction (meta_trash_restore);
 * --all restores what the list showed, in order, and goes on past
 * failures (each one line on stderr, exit 1 at the end).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "util/buf.h"
#include "util/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TRASH_PATH_LEN (META_TRASH_PATH_MAX + TESSERA_NAME_MAX + 2)

struct trash_args {
	bool json;
	bool all;
};

static const struct option trash_opts[] = {
	{"json", no_argument, NULL, 'j'},
	{"all", no_argument, NULL, 'a'},
	{NULL, 0, NULL, 0},
};

static int trash_opt(void *arg, int c, const char *optval)
{
	struct trash_args *a = arg;

	UNUSED(optval);
	if (c == 'j')
		a->json = true;
	else if (c == 'a')
		a->all = true;
	else
		return EXIT_USAGE;
	return 0;
}

/* A volume opened for the command (read, or write). */
struct trash_vol {
	struct cli_vol cv;
	struct meta_format f;
	struct meta *m;
};

static int trash_open(const char *arg, bool write, struct trash_vol *v)
{
	struct cli_open_opts o = {.write = write, .quiet = !write};
	int rc;

	memset(v, 0, sizeof(*v));
	rc = cli_vol_open(arg, &o, &v->cv, &v->f);
	if (rc < 0)
		return rc;
	rc = cli_vol_wrap(&v->cv);
	if (rc == 0)
		rc = cli_vol_meta(&v->cv, &v->m);
	cli_vol_close(&v->cv);
	return rc;
}

/*
 * Send "trash @req" to the mount at @mp; the answer's code into *code and
 * the rest of its line into @ans.  -errno when the mount cannot be
 * reached (logged).
 */
static int via_mount(const char *mp, const char *req, size_t len, int *code,
		     char *ans, size_t n)
{
	char line[TRASH_PATH_LEN + 64];
	struct buf b = BUF_INIT;
	char *sp;
	int rc = buf_appendf(&b, "trash %.*s", (int)len, req);

	if (rc == 0)
		rc = cli_mount_ask(mp, b.data, b.len, line, sizeof(line));
	buf_release(&b);
	if (rc < 0)
		return rc;
	*code = atoi(line);
	sp = strchr(line, ' ');
	snprintf(ans, n, "%s", sp ? sp + 1 : "");
	return 0;
}

/* ---- list ---- */

static void fmt_time(int64_t s, char *out, size_t n)
{
	time_t t = (time_t)s;
	struct tm tm;

	if (s < 0 || !localtime_r(&t, &tm) || !strftime(out, n, "%F %T", &tm))
		snprintf(out, n, "-");
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	case S_IFCHR:
	case S_IFBLK:
		return "device";
	case 0:
		return "missing";
	}
	return "other";
}

struct list_out {
	json_t *arr; /* --json */
	uint64_t n;
};

static int list_one(void *arg, const struct meta_trash_entry *e)
{
	struct list_out *o = arg;
	char when[64];
	json_t *j;

	o->n++;
	fmt_time(e->deleted_s, when, sizeof(when));
	if (!o->arr) {
		if (o->n == 1)
			printf("%-40s %-40s %12s %s\n", "ENTRY", "PATH", "SIZE",
			       "DELETED");
		printf("%-40s %-40s %12llu %s\n", e->entry, e->path,
		       (unsigned long long)e->length, when);
		return 0;
	}
	j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I, s:I, s:s, s:b}", "entry",
		      e->entry, "path", e->path, "ino", (json_int_t)e->ino,
		      "parent", (json_int_t)e->parent, "type",
		      type_name(e->mode), "size", (json_int_t)e->length,
		      "deleted", (json_int_t)e->deleted_s, "deleted_at", when,
		      "parent_gone", e->parent_gone);
	if (!j || json_array_append_new(o->arr, j) < 0)
		return -ENOMEM;
	return 0;
}

static int trash_list(const char *arg, bool json)
{
	struct list_out o = {NULL, 0};
	struct trash_vol v;
	char *s = NULL;
	int rc;

	if (trash_open(arg, false, &v) < 0)
		return EXIT_ERR;
	if (json)
		o.arr = json_array();
	rc = json && !o.arr ? -ENOMEM : meta_trash_list(v.m, list_one, &o);
	if (rc < 0)
		log_fail(rc, "cannot list the trash of volume '%s'", v.f.name);
	else if (json)
		s = json_dumps(o.arr, JSON_INDENT(2));
	if (s)
		printf("%s\n", s);
	else if (rc == 0 && !json && o.n == 0)
		printf("the trash of volume '%s' is empty\n", v.f.name);
	free(s);
	json_decref(o.arr);
	meta_close(v.m);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}

/* ---- restore ---- */

/* Where restores go: the mount at mp, or the metadata m. */
struct restorer {
	const char *vol; /* for messages */
	char mp[PATH_MAX];
	struct meta *m;
};

static void restore_error(const char *entry, int rc, const char *path)
{
	unsigned long long parent;

	if (rc == -ENOENT)
		log_error("no trash entry '%s'", entry);
	else if (rc == -EEXIST)
		log_error("cannot restore '%s': '%s' exists", entry, path);
	else if (rc == -ESTALE && sscanf(entry, "%llu-", &parent) == 1)
		log_error("cannot restore '%s': its directory (inode %llu) "
			  "is gone",
			  entry, parent);
	else if (rc == -EINVAL)
		log_error("cannot restore '%s': not a trash entry name", entry);
	else
		log_error("cannot restore '%s': %s", entry, strerror(-rc));
}

/* Restore one entry; 0 or -errno (reported). */
static int restore_one(struct restorer *r, const char *entry)
{
	char path[TRASH_PATH_LEN], req[TESSERA_NAME_MAX + 32];
	int rc, n;

	if (!r->mp[0]) {
		rc = meta_trash_restore(r->m, NULL, entry, path, sizeof(path));
	} else if (strlen(entry) > TESSERA_NAME_MAX || !entry[0]) {
		rc = -ENOENT;
	} else {
		n = snprintf(req, sizeof(req), "restore %zu\n%s", strlen(entry),
			     entry);
		rc = via_mount(r->mp, req, (size_t)n, &n, path, sizeof(path));
		if (rc < 0)
			return rc;
		rc = n;
	}
	if (rc < 0) {
		restore_error(entry, rc, path);
		return rc;
	}
	printf("restored '%s' to '%s'\n", entry, path);
	return 0;
}

struct names {
	char **v;
	size_t n, cap;
};

static int name_add(void *arg, const struct meta_trash_entry *e)
{
	struct names *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		char **p = realloc(l->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n] = strdup(e->entry);
	return l->v[l->n++] ? 0 : -ENOMEM;
}

static void names_free(struct names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* --all: every entry the trash holds now (read directly). */
static int all_entries(const char *arg, struct meta *m, struct names *l)
{
	struct trash_vol v;
	int rc;

	if (m)
		return meta_trash_list(m, name_add, l);
	if (trash_open(arg, false, &v) < 0)
		return -EIO;
	rc = meta_trash_list(v.m, name_add, l);
	meta_close(v.m);
	return rc;
}

static int trash_restore(const char *arg, const struct cli_volume *vol,
			 const char **entries, int n, bool all)
{
	struct names l = {NULL, 0, 0};
	struct restorer r = {.vol = arg};
	struct trash_vol v;
	int rc = 0, failed = 0;

	cli_local_mount(vol, r.mp, sizeof(r.mp));
	if (!r.mp[0]) {
		if (trash_open(arg, true, &v) < 0)
			return EXIT_ERR;
		r.m = v.m;
	}
	if (all) {
		rc = all_entries(arg, r.m, &l);
		if (rc < 0)
			log_fail(rc, "cannot list the trash of volume '%s'",
				 arg);
		else if (l.n == 0)
			printf("the trash of volume '%s' is empty\n", arg);
	}
	for (size_t i = 0; rc == 0 && i < (all ? l.n : (size_t)n); i++) {
		int r1 = restore_one(&r, all ? l.v[i] : entries[i]);

		failed += r1 < 0;
	}
	names_free(&l);
	if (r.m) {
		int rs = meta_sync(r.m);

		if (rs < 0)
			rc = log_fail(rs, "cannot sync volume '%s'", arg);
		meta_close(r.m);
	}
	return rc < 0 || failed ? EXIT_ERR : EXIT_OK;
}

/* ---- empty ---- */

static int trash_empty(const char *arg, const struct cli_volume *vol)
{
	char mp[PATH_MAX], ans[TRASH_PATH_LEN];
	uint64_t removed = 0;
	struct trash_vol v;
	int rc, code;

	cli_local_mount(vol, mp, sizeof(mp));
	if (mp[0]) {
		rc = via_mount(mp, "empty", 5, &code, ans, sizeof(ans));
		if (rc < 0)
			return EXIT_ERR;
		if (code < 0) {
			log_error("cannot empty the trash of volume '%s': %s",
				  arg, ans);
			return EXIT_ERR;
		}
		printf("emptied the trash of volume '%s' through the mount at "
		       "'%s' (%s)\n",
		       arg, mp, ans);
		return EXIT_OK;
	}
	if (trash_open(arg, true, &v) < 0)
		return EXIT_ERR;
	rc = meta_trash_empty(v.m, NULL, &removed, NULL);
	if (rc == 0)
		rc = meta_sync(v.m);
	if (rc < 0)
		log_fail(rc, "cannot empty the trash of volume '%s'", v.f.name);
	else
		printf("emptied the trash of volume '%s' (removed %llu)\n",
		       v.f.name, (unsigned long long)removed);
	meta_close(v.m);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}

/* Usage errors of the positional arguments: an exit status, or 0. */
static int trash_usage(const struct trash_args *a, const char **pos, int npos,
		       int sub)
{
	if (npos == 0)
		return cli_usage_error("trash", "missing action");
	if (sub < 0)
		return cli_usage_error("trash", "unknown action '%s'", pos[0]);
	if (npos < 2)
		return cli_usage_error("trash", "missing volume");
	if (a->json && sub != 0)
		return cli_usage_error("trash", "--json is for list only");
	if (a->all && sub != 1)
		return cli_usage_error("trash", "--all is for restore only");
	if (sub != 1 && npos > 2)
		return cli_usage_error("trash", "unexpected argument '%s'",
				       pos[2]);
	if (sub == 1 && a->all && npos > 2)
		return cli_usage_error("trash", "give entries or --all, not "
						"both");
	if (sub == 1 && !a->all && npos < 3)
		return cli_usage_error("trash",
				       "missing trash entry (or --all)");
	return 0;
}

int cmd_trash(int argc, char **argv)
{
	static const char *const subs[] = {"list", "restore", "empty"};
	struct trash_args a = {false, false};
	struct cli_volume vol;
	const char **pos;
	int npos, rc, sub = -1;

	pos = calloc((size_t)argc + 1, sizeof(*pos));
	if (!pos)
		return EXIT_ERR;
	rc = cli_getopt("trash", argc, argv, NULL, trash_opts, trash_opt, &a,
			pos, argc, &npos);
	for (int i = 0; rc == 0 && npos > 0 && i < (int)ARRAY_SIZE(subs); i++)
		if (strcmp(pos[0], subs[i]) == 0)
			sub = i;
	if (rc == 0)
		rc = trash_usage(&a, pos, npos, sub);
	if (rc == 0 && cli_resolve_volume(pos[1], &vol) < 0)
		rc = EXIT_ERR;
	if (rc == 0 && sub == 0)
		rc = trash_list(pos[1], a.json);
	else if (rc == 0 && sub == 1)
		rc = trash_restore(pos[1], &vol, pos + 2, npos - 2, a.all);
	else if (rc == 0)
		rc = trash_empty(pos[1], &vol);
	free(pos);
	return rc;
}
