/*
 * cmd_info.c - `tessera info PATH... [--json]`: what the metadata holds
 * about a file (inode, size, links, chunks -> slices -> object keys with
 * their lengths) or a directory (its totals), asked of the mount the path
 * is in ("info INO" to ".control", answer format in vfs/vfs_tools.c).
 *
 * The answer is lines: a header of "KEY VALUE" pairs, then "chunk",
 * "slice" and "object" lines, then "end".  Text output shows them
 * indented; --json one object per PATH on one line.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/buf.h"
#include "util/log.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct option info_opts[] = {
	{"json", no_argument, NULL, 'j'},
	{NULL, 0, NULL, 0},
};

static int info_opt(void *arg, int c, const char *optval)
{
	UNUSED(optval);
	if (c == 'j') {
		*(bool *)arg = true;
		return 0;
	}
	return EXIT_USAGE;
}

static bool is_text_key(const char *k)
{
	return !strcmp(k, "type") || !strcmp(k, "mode");
}

/* The header "0 K V K V ..." as text or into JSON object @o. */
static void show_head(char *line, json_t *o)
{
	char *save = NULL, *k, *val;

	strtok_r(line, " ", &save); /* "0" */
	while ((k = strtok_r(NULL, " ", &save)) &&
	       (val = strtok_r(NULL, " ", &save))) {
		if (!o)
			printf("  %s: %s\n", k, val);
		else if (!strcmp(k, "chunks"))
			continue; /* the length of the array "chunks" */
		else if (is_text_key(k))
			json_object_set_new(o, k, json_string(val));
		else
			json_object_set_new(
				o, k, json_integer(strtoll(val, NULL, 10)));
	}
}

/* One body line as text, or into @o's "chunks" (*sl, *objs: the slice
 * and object arrays being filled). */
static int show_line(const char *line, json_t *o, json_t **objs, json_t **sl)
{
	unsigned long long id, a[4], len;
	int used = 0;

	if (sscanf(line, "chunk %llu", &id) == 1) {
		json_t *c;

		if (!o)
			return printf("  chunk %llu:\n", id) < 0 ? -EIO : 0;
		c = json_object();
		*sl = json_array();
		json_object_set_new(c, "index", json_integer((json_int_t)id));
		json_object_set_new(c, "slices", *sl);
		json_array_append_new(json_object_get(o, "chunks"), c);
		return 0;
	}
	if (sscanf(line, "slice %llu %llu %llu %llu %llu", &id, &a[0], &a[1],
		   &a[2], &a[3]) == 5) {
		json_t *s;

		if (!o)
			return printf("    slice %llu: pos %llu size %llu off "
				      "%llu len %llu\n",
				      id, a[0], a[1], a[2], a[3]) < 0
				       ? -EIO
				       : 0;
		if (!*sl)
			return -EIO;
		s = json_object();
		*objs = json_array();
		json_object_set_new(s, "id", json_integer((json_int_t)id));
		json_object_set_new(s, "pos", json_integer((json_int_t)a[0]));
		json_object_set_new(s, "size", json_integer((json_int_t)a[1]));
		json_object_set_new(s, "off", json_integer((json_int_t)a[2]));
		json_object_set_new(s, "len", json_integer((json_int_t)a[3]));
		json_object_set_new(s, "objects", *objs);
		json_array_append_new(*sl, s);
		return 0;
	}
	if (sscanf(line, "object %llu %n", &len, &used) == 1 && used > 0) {
		json_t *ob;

		if (!o)
			return printf("      %10llu  %s\n", len, line + used) <
					       0
				       ? -EIO
				       : 0;
		if (!*objs)
			return -EIO;
		ob = json_object();
		json_object_set_new(ob, "key", json_string(line + used));
		json_object_set_new(ob, "length",
				    json_integer((json_int_t)len));
		json_array_append_new(*objs, ob);
		return 0;
	}
	return strcmp(line, "end") == 0 ? 0 : -EIO;
}

/* Print the answer @ans about @path. */
static int show(const char *path, char *ans, bool json)
{
	json_t *o = json ? json_object() : NULL;
	json_t *objs = NULL, *sl = NULL;
	char *save = NULL, *line = strtok_r(ans, "\n", &save);
	int rc = 0;

	if (o) {
		json_object_set_new(o, "path", json_string(path));
		json_object_set_new(o, "chunks", json_array());
	} else {
		printf("%s:\n", path);
	}
	show_head(line, o);
	while (rc == 0 && (line = strtok_r(NULL, "\n", &save)))
		rc = show_line(line, o, &objs, &sl);
	if (o && rc == 0) {
		char *s = json_dumps(o, JSON_COMPACT);

		rc = s ? 0 : -ENOMEM;
		if (s)
			printf("%s\n", s);
		free(s);
	}
	json_decref(o);
	if (rc < 0)
		log_error("cannot show '%s': malformed answer from the mount",
			  path);
	return rc;
}

static int info_one(const char *path, bool json)
{
	char root[PATH_MAX], req[64];
	struct buf ans = BUF_INIT;
	struct stat st;
	int fd, n, rc;

	rc = cli_mount_locate("show", path, &st, root, sizeof(root));
	if (rc < 0)
		return rc;
	n = snprintf(req, sizeof(req), "info %llu\n",
		     (unsigned long long)st.st_ino);
	rc = cli_mount_send(root, req, (size_t)n, &fd);
	if (rc < 0)
		return rc;
	rc = cli_mount_read_all(fd, root, &ans);
	close(fd);
	if (rc == 0 && ans.data[0] != '0') {
		const char *msg = strchr(ans.data, ' ');

		ans.data[strcspn(ans.data, "\n")] = '\0';
		log_error("cannot show '%s': %s", path, msg ? msg + 1 : "?");
		rc = -EIO;
	} else if (rc == 0) {
		rc = show(path, ans.data, json);
	}
	buf_release(&ans);
	return rc;
}

int cmd_info(int argc, char **argv)
{
	const char *pos[64];
	bool json = false;
	int npos, rc, status = EXIT_OK;

	rc = cli_getopt("info", argc, argv, "j", info_opts, info_opt, &json,
			pos, 64, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("info", "missing PATH");
	for (int i = 0; i < npos; i++) {
		if (info_one(pos[i], json) < 0)
			status = EXIT_ERR;
		fflush(stdout);
	}
	return status;
}
