/*
 * cmd_quota.c - `tessera quota set|get|list|delete|check VOLUME ...`:
 * directory quotas (meta/quota.c has the rules).
 *
 *   set VOLUME --path P [--capacity SIZE] [--inodes N]
 *       create or change the quota on directory P (a path inside the
 *       volume); an option left out keeps its value (none for a new
 *       quota), 0 removes that limit
 *   get VOLUME --path P [--json]      limits and usage of one quota (O(1))
 *   list VOLUME [--json]              every quota
 *   delete VOLUME --path P            remove a quota ("del" too)
 *   check VOLUME [--path P] [--repair]
 *       count each quota's usage from its tree and compare; --repair
 *       stores the counted usage (exit 1 when a usage is wrong and not
 *       repaired)
 *
 * Design: reads (get, list, check without --repair, and resolving P)
 * open the metadata directly, read-only.  Changes go, when this host
 * mounts the volume, to that mount through its ".control" file (request
 * "quota", vfs/vfs_quota.c): a replicated volume is changed only by its
 * lease holder.  Otherwise the command opens the volume for writing
 * (Redis and PostgreSQL volumes directly even while mounted elsewhere:
 * every mount sees a quota in its next transaction).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "util/log.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>

#define QPATH_MAX 4096

enum { Q_SET, Q_GET, Q_LIST, Q_DELETE, Q_CHECK };

struct quota_args {
	const char *path;
	bool json, repair;
	bool set_space, set_inodes;
	uint64_t space, inodes;
};

enum { OPT_PATH = 256, OPT_CAPACITY, OPT_INODES, OPT_JSON, OPT_REPAIR };

static const struct option quota_opts[] = {
	{"path", required_argument, NULL, OPT_PATH},
	{"capacity", required_argument, NULL, OPT_CAPACITY},
	{"inodes", required_argument, NULL, OPT_INODES},
	{"json", no_argument, NULL, OPT_JSON},
	{"repair", no_argument, NULL, OPT_REPAIR},
	{NULL, 0, NULL, 0},
};

static int quota_opt(void *arg, int c, const char *optval)
{
	struct quota_args *a = arg;

	switch (c) {
	case OPT_PATH:
		a->path = optval;
		return 0;
	case OPT_CAPACITY:
		a->set_space = true;
		if (cli_parse_size(optval, &a->space) < 0 ||
		    a->space > INT64_MAX)
			return cli_usage_error("quota",
					       "invalid --capacity "
					       "'%s'",
					       optval);
		return 0;
	case OPT_INODES:
		a->set_inodes = true;
		if (cli_parse_uint(optval, &a->inodes) < 0 ||
		    a->inodes > INT64_MAX)
			return cli_usage_error("quota", "invalid --inodes '%s'",
					       optval);
		return 0;
	case OPT_JSON:
		a->json = true;
		return 0;
	case OPT_REPAIR:
		a->repair = true;
		return 0;
	}
	return EXIT_USAGE;
}

/* ---- the directory of --path ---- */

/* Inode of directory @path inside the volume; logs. */
static int resolve_dir(struct meta *m, const char *path, uint64_t *ino)
{
	char comp[TESSERA_NAME_MAX + 1];
	const char *p = path;
	uint64_t cur = TESSERA_ROOT_INO;
	struct meta_attr a;
	int rc;

	while (*p) {
		size_t n = strcspn(p, "/");

		if (n > TESSERA_NAME_MAX) {
			log_error("invalid path '%s': a name is too long",
				  path);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n + (p[n] == '/');
		if (n == 0 || strcmp(comp, ".") == 0)
			continue;
		rc = meta_lookup(m, NULL, cur, comp, &a);
		if (rc == 0 && !S_ISDIR(a.mode))
			rc = -ENOTDIR;
		if (rc < 0) {
			log_error("cannot find directory '%s' in the volume: "
				  "%s",
				  path, strerror(-rc));
			return rc;
		}
		cur = a.ino;
	}
	*ino = cur;
	return 0;
}

static void quota_path(struct meta *m, uint64_t ino, char *out, size_t n)
{
	if (meta_dir_path(m, ino, out, n) < 0)
		snprintf(out, n, "?(inode %" PRIu64 ")", ino);
}

/* ---- output ---- */

static void limit_text(uint64_t v, char *out, size_t n)
{
	if (v)
		snprintf(out, n, "%" PRIu64, v);
	else
		snprintf(out, n, "unlimited");
}

static void print_text(const char *path, const struct meta_quota *q)
{
	char sl[32], il[32];

	limit_text(q->space_limit, sl, sizeof(sl));
	limit_text(q->inodes_limit, il, sizeof(il));
	printf("%s space %" PRId64 "/%s inodes %" PRId64 "/%s\n", path,
	       q->used_space, sl, q->used_inodes, il);
}

static json_t *quota_json(const char *path, const struct meta_quota *q)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "inode", json_integer((json_int_t)q->ino));
	json_object_set_new(o, "space_limit",
			    json_integer((json_int_t)q->space_limit));
	json_object_set_new(o, "inodes_limit",
			    json_integer((json_int_t)q->inodes_limit));
	json_object_set_new(o, "used_space", json_integer(q->used_space));
	json_object_set_new(o, "used_inodes", json_integer(q->used_inodes));
	return o;
}

static int print_json(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	if (!s) {
		log_error("cannot encode the answer as JSON");
		return EXIT_ERR;
	}
	printf("%s\n", s);
	free(s);
	return EXIT_OK;
}

/* ---- reads ---- */

static int quota_get_cmd(struct meta *m, const struct quota_args *a)
{
	struct meta_quota q;
	char path[QPATH_MAX];
	uint64_t ino;
	int rc;

	if (resolve_dir(m, a->path, &ino) < 0)
		return EXIT_ERR;
	rc = meta_quota_get(m, ino, &q);
	if (rc == -ENOENT) {
		log_error("no quota on '%s'", a->path);
		return EXIT_ERR;
	}
	if (rc < 0) {
		log_fail(rc, "cannot read the quota on '%s'", a->path);
		return EXIT_ERR;
	}
	quota_path(m, ino, path, sizeof(path));
	if (a->json)
		return print_json(quota_json(path, &q));
	print_text(path, &q);
	return EXIT_OK;
}

static int quota_list_cmd(struct meta *m, const struct quota_args *a)
{
	struct meta_quota *v = NULL;
	char path[QPATH_MAX];
	json_t *arr = NULL;
	size_t n = 0;
	int rc = meta_quota_list(m, &v, &n);

	if (rc < 0) {
		log_fail(rc, "cannot list quotas");
		return EXIT_ERR;
	}
	if (a->json)
		arr = json_array();
	for (size_t i = 0; i < n; i++) {
		quota_path(m, v[i].ino, path, sizeof(path));
		if (arr)
			json_array_append_new(arr, quota_json(path, &v[i]));
		else if (!a->json)
			print_text(path, &v[i]);
	}
	free(v);
	return a->json ? print_json(arr) : EXIT_OK;
}

/* ---- changes ---- */

/* Where changes go: a mount of this host, or an engine opened to write. */
struct quota_writer {
	char mp[PATH_MAX]; /* "" unless through a mount */
	struct meta *m;	   /* opened for writing when no mount */
};

static int writer_open(const char *arg, struct quota_writer *w)
{
	struct cli_open_opts o = {.write = true};
	struct meta_format f;
	struct cli_volume vol;
	struct cli_vol cv;
	int rc;

	memset(w, 0, sizeof(*w));
	if (cli_resolve_volume(arg, &vol) == 0)
		cli_local_mount(&vol, w->mp, sizeof(w->mp));
	if (w->mp[0])
		return 0;
	rc = cli_vol_open(arg, &o, &cv, &f);
	if (rc < 0)
		return rc;
	rc = cli_vol_wrap(&cv);
	if (rc == 0)
		rc = cli_vol_meta(&cv, &w->m);
	cli_vol_close(&cv);
	return rc;
}

static void writer_close(struct quota_writer *w)
{
	if (w->m) {
		meta_sync(w->m); /* replicated: in the object store now */
		meta_close(w->m);
	}
	w->m = NULL;
}

/* Send "quota @req" to the mount; the answer line into @ans.  Returns
 * the answer's code (<= 0), or -errno when unreachable (logged). */
static int ask_mount(const struct quota_writer *w, const char *req, char *ans,
		     size_t n)
{
	char line[512];
	int rc = cli_mount_ask(w->mp, req, strlen(req), line, sizeof(line));

	if (rc < 0)
		return rc;
	rc = atoi(line);
	snprintf(ans, n, "%s", strchr(line, ' ') ? strchr(line, ' ') + 1 : "");
	return rc > 0 ? -EIO : rc;
}

static int do_set(struct quota_writer *w, uint64_t ino, uint32_t which,
		  const struct quota_args *a, struct meta_quota *q)
{
	char req[160], ans[256];
	int rc;

	if (w->m)
		return meta_quota_set(w->m, ino, which, a->space, a->inodes, q);
	snprintf(req, sizeof(req),
		 "quota set %" PRIu64 " %u %" PRIu64 " %" PRIu64, ino, which,
		 a->space, a->inodes);
	rc = ask_mount(w, req, ans, sizeof(ans));
	q->ino = ino;
	if (rc == 0 &&
	    sscanf(ans, "%" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNd64,
		   &q->space_limit, &q->inodes_limit, &q->used_space,
		   &q->used_inodes) != 4)
		rc = -EIO;
	return rc;
}

static int do_check(struct quota_writer *w, struct meta *rd, uint64_t ino,
		    bool repair, struct meta_quota_check *c)
{
	char req[96], ans[256];
	int fixed = 0, rc;

	if (!repair || w->m)
		return meta_quota_check(repair ? w->m : rd, ino, repair, c);
	memset(c, 0, sizeof(*c));
	snprintf(req, sizeof(req), "quota check %" PRIu64 " 1", ino);
	rc = ask_mount(w, req, ans, sizeof(ans));
	if (rc == 0 &&
	    sscanf(ans,
		   "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64
		   " %d %" SCNd64,
		   &c->q.used_space, &c->q.used_inodes, &c->real_space,
		   &c->real_inodes, &fixed, &c->adopted) != 6)
		rc = -EIO;
	c->fixed = fixed;
	return rc;
}

static int quota_set_cmd(const char *arg, struct meta *rd,
			 const struct quota_args *a)
{
	uint32_t which = (a->set_space ? META_QUOTA_SPACE : 0) |
			 (a->set_inodes ? META_QUOTA_INODES : 0);
	struct quota_writer w;
	struct meta_quota q;
	char path[QPATH_MAX];
	uint64_t ino;
	int rc;

	if (resolve_dir(rd, a->path, &ino) < 0)
		return EXIT_ERR;
	quota_path(rd, ino, path, sizeof(path));
	if (writer_open(arg, &w) < 0)
		return EXIT_ERR;
	rc = do_set(&w, ino, which, a, &q);
	writer_close(&w);
	if (rc == -EINVAL)
		log_error("cannot set a quota on '%s': the root takes none "
			  "(use the volume's --capacity and --inodes)",
			  a->path);
	else if (rc < 0)
		log_fail(rc, "cannot set the quota on '%s'", a->path);
	if (rc < 0)
		return EXIT_ERR;
	print_text(path, &q);
	return EXIT_OK;
}

static int quota_delete_cmd(const char *arg, struct meta *rd,
			    const struct quota_args *a)
{
	struct quota_writer w;
	char req[96], ans[256];
	uint64_t ino;
	int rc;

	if (resolve_dir(rd, a->path, &ino) < 0)
		return EXIT_ERR;
	if (writer_open(arg, &w) < 0)
		return EXIT_ERR;
	snprintf(req, sizeof(req), "quota delete %" PRIu64, ino);
	rc = w.m ? meta_quota_delete(w.m, ino)
		 : ask_mount(&w, req, ans, sizeof(ans));
	writer_close(&w);
	if (rc == -ENOENT)
		log_error("no quota on '%s'", a->path);
	else if (rc < 0)
		log_fail(rc, "cannot delete the quota on '%s'", a->path);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}

/* Check one quota; 0 consistent or repaired, 1 wrong, -errno. */
static int check_one(struct quota_writer *w, struct meta *rd, uint64_t ino,
		     bool repair)
{
	struct meta_quota_check c;
	char path[QPATH_MAX];
	bool ok;
	int rc;

	quota_path(rd, ino, path, sizeof(path));
	rc = do_check(w, rd, ino, repair, &c);
	if (rc < 0)
		return log_fail(rc, "cannot check the quota on '%s'", path);
	ok = c.q.used_space == c.real_space && c.q.used_inodes == c.real_inodes;
	if (c.fixed || (ok && !c.adopted)) {
		printf("%s: %s (space %" PRId64 ", inodes %" PRId64 ")\n", path,
		       c.fixed ? "repaired" : "ok", c.real_space,
		       c.real_inodes);
		return 0;
	}
	printf("%s: usage space %" PRId64 " inodes %" PRId64
	       ", counted space %" PRId64 " inodes %" PRId64
	       " (use --repair)\n",
	       path, c.q.used_space, c.q.used_inodes, c.real_space,
	       c.real_inodes);
	return 1;
}

static int quota_check_cmd(const char *arg, struct meta *rd,
			   const struct quota_args *a)
{
	struct quota_writer w = {0};
	struct meta_quota *v = NULL;
	size_t n = 0;
	uint64_t one;
	int rc, bad = 0;

	if (a->path) {
		if (resolve_dir(rd, a->path, &one) < 0)
			return EXIT_ERR;
		v = malloc(sizeof(*v));
		if (!v)
			return EXIT_ERR;
		v->ino = one;
		n = 1;
	} else if ((rc = meta_quota_list(rd, &v, &n)) < 0) {
		log_fail(rc, "cannot list quotas");
		return EXIT_ERR;
	}
	if (a->repair && writer_open(arg, &w) < 0) {
		free(v);
		return EXIT_ERR;
	}
	/* newer (mostly inner) quotas first: a repair may adopt files */
	for (size_t i = n; i-- > 0;) {
		rc = check_one(&w, rd, v[i].ino, a->repair);
		if (rc == -ENOENT && a->path)
			log_error("no quota on '%s'", a->path);
		if (rc != 0)
			bad = 1;
	}
	writer_close(&w);
	free(v);
	return bad ? EXIT_ERR : EXIT_OK;
}

/* ---- entry ---- */

static int quota_sub(const char *s)
{
	static const char *const subs[] = {"set", "get", "list", "delete",
					   "check"};

	if (strcmp(s, "del") == 0)
		return Q_DELETE;
	for (int i = 0; i < (int)ARRAY_SIZE(subs); i++)
		if (strcmp(s, subs[i]) == 0)
			return i;
	return -1;
}

static int quota_usage(int sub, const struct quota_args *a)
{
	if ((sub == Q_SET || sub == Q_GET || sub == Q_DELETE) && !a->path)
		return cli_usage_error("quota", "missing --path");
	if (sub == Q_LIST && a->path)
		return cli_usage_error("quota", "list takes no --path");
	if (sub == Q_SET && !a->set_space && !a->set_inodes)
		return cli_usage_error("quota", "set needs --capacity or "
						"--inodes");
	if (sub != Q_SET && (a->set_space || a->set_inodes))
		return cli_usage_error("quota", "--capacity and --inodes are "
						"for set");
	if (a->repair && sub != Q_CHECK)
		return cli_usage_error("quota", "--repair is for check");
	if (a->json && sub != Q_GET && sub != Q_LIST)
		return cli_usage_error("quota", "--json is for get and list");
	return 0;
}

int cmd_quota(int argc, char **argv)
{
	struct quota_args a = {0};
	struct meta_format f;
	struct meta *m = NULL;
	const char *pos[2];
	int npos, rc, sub;

	rc = cli_getopt("quota", argc, argv, NULL, quota_opts, quota_opt, &a,
			pos, 2, &npos);
	if (rc)
		return rc;
	if (npos == 0)
		return cli_usage_error("quota", "missing action");
	sub = quota_sub(pos[0]);
	if (sub < 0)
		return cli_usage_error("quota", "unknown action '%s'", pos[0]);
	if (npos < 2)
		return cli_usage_error("quota", "missing volume");
	rc = quota_usage(sub, &a);
	if (rc)
		return rc;
	if (cli_open_volume(pos[1], NULL, &m, &f) < 0)
		return EXIT_ERR;
	switch (sub) {
	case Q_SET:
		rc = quota_set_cmd(pos[1], m, &a);
		break;
	case Q_GET:
		rc = quota_get_cmd(m, &a);
		break;
	case Q_LIST:
		rc = quota_list_cmd(m, &a);
		break;
	case Q_DELETE:
		rc = quota_delete_cmd(pos[1], m, &a);
		break;
	default:
		rc = quota_check_cmd(pos[1], m, &a);
		break;
	}
	meta_close(m);
	return rc;
}
