/*
 * cmd_summary.c - `tessera summary PATH [--depth N] [--json]`: files,
 * directories and bytes of the tree at PATH and of its subdirectories down
 * to N levels, counted by the mount from metadata (meta_summary; request
 * "summary INO DEPTH", answer format in vfs/vfs_tools.c).
 *
 * Text: one line per directory, "BYTES FILES DIRS PATH", parents first.
 * JSON: one object {path, files, dirs, bytes, entries, children: [...]}
 * nested as the tree (children only down to --depth).  Files count once
 * per name (hard links too), bytes are the sum of their lengths, dirs
 * include the directory itself.
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

#define SUM_DEPTH_MAX 64

struct sum_opts {
	bool json;
	uint64_t depth;
};

static const struct option sum_opts[] = {
	{"json", no_argument, NULL, 'j'},
	{"depth", required_argument, NULL, 'd'},
	{NULL, 0, NULL, 0},
};

static int sum_opt(void *arg, int c, const char *optval)
{
	struct sum_opts *o = arg;

	if (c == 'j') {
		o->json = true;
		return 0;
	}
	if (c == 'd') {
		if (cli_parse_uint(optval, &o->depth) < 0 ||
		    o->depth > SUM_DEPTH_MAX)
			return cli_usage_error("summary",
					       "bad --depth '%s' (0-%d)",
					       optval, SUM_DEPTH_MAX);
		return 0;
	}
	return EXIT_USAGE;
}

/* One answer line "DEPTH ENTRIES FILES DIRS BYTES PATHLEN PATH". */
struct sum_line {
	unsigned long long depth, entries, files, dirs, bytes;
	const char *rel;
	size_t rlen;
};

static int parse_line(char **p, struct sum_line *l)
{
	unsigned long long plen;
	int used = 0;

	if (sscanf(*p, "%llu %llu %llu %llu %llu %llu%n", &l->depth,
		   &l->entries, &l->files, &l->dirs, &l->bytes, &plen,
		   &used) != 6 ||
	    (*p)[used] != ' ' || strlen(*p + used + 1) < plen + 1 ||
	    (*p)[used + 1 + plen] != '\n')
		return -EIO;
	l->rel = *p + used + 1;
	l->rlen = (size_t)plen;
	(*p)[used + 1 + plen] = '\0';
	*p += used + plen + 2;
	return 0;
}

static json_t *line_json(const char *path, const struct sum_line *l)
{
	json_t *o = json_object();

	json_object_set_new(o, "path", json_string(path));
	json_object_set_new(o, "files", json_integer((json_int_t)l->files));
	json_object_set_new(o, "dirs", json_integer((json_int_t)l->dirs));
	json_object_set_new(o, "bytes", json_integer((json_int_t)l->bytes));
	json_object_set_new(o, "entries", json_integer((json_int_t)l->entries));
	json_object_set_new(o, "children", json_array());
	return o;
}

/* Show the answer body @p (@n lines) about @path. */
static int show(const char *path, char *p, unsigned long long n, bool json)
{
	json_t *stack[SUM_DEPTH_MAX + 1] = {NULL};
	char full[PATH_MAX * 2];
	struct sum_line l;
	long long prev = -1;

	if (!json)
		printf("%15s %10s %8s  %s\n", "BYTES", "FILES", "DIRS", "PATH");
	for (unsigned long long i = 0; i < n; i++) {
		if (parse_line(&p, &l) < 0 || l.depth > SUM_DEPTH_MAX ||
		    (long long)l.depth > prev + 1 ||
		    (l.depth == 0) != (i == 0)) {
			json_decref(stack[0]);
			return log_fail(-EIO,
					"malformed answer from the mount");
		}
		snprintf(full, sizeof(full), "%s%s%s", path,
			 l.rlen && path[strlen(path) - 1] != '/' ? "/" : "",
			 l.rel);
		if (!json)
			printf("%15llu %10llu %8llu  %s\n", l.bytes, l.files,
			       l.dirs, full);
		prev = (long long)l.depth;
		if (!json)
			continue;
		stack[l.depth] = line_json(full, &l);
		if (l.depth > 0)
			json_array_append_new(
				json_object_get(stack[l.depth - 1], "children"),
				stack[l.depth]);
	}
	if (json && stack[0]) {
		char *s = json_dumps(stack[0], JSON_COMPACT);

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(stack[0]);
	}
	return 0;
}

int cmd_summary(int argc, char **argv)
{
	struct sum_opts o = {false, 0};
	char root[PATH_MAX], req[96];
	struct buf ans = BUF_INIT;
	unsigned long long n = 0;
	const char *pos[1];
	struct stat st;
	int npos, rc, fd, len;
	char *body;

	rc = cli_getopt("summary", argc, argv, "jd:", sum_opts, sum_opt, &o,
			pos, 1, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("summary", "missing PATH");
	if (cli_mount_locate("summarize", pos[0], &st, root, sizeof(root)) < 0)
		return EXIT_ERR;
	len = snprintf(req, sizeof(req), "summary %llu %llu\n",
		       (unsigned long long)st.st_ino,
		       (unsigned long long)o.depth);
	if (cli_mount_send(root, req, (size_t)len, &fd) < 0)
		return EXIT_ERR;
	rc = cli_mount_read_all(fd, root, &ans);
	close(fd);
	if (rc == 0 && ans.data[0] != '0') {
		const char *msg = strchr(ans.data, ' ');

		ans.data[strcspn(ans.data, "\n")] = '\0';
		log_error("cannot summarize '%s': %s", pos[0],
			  msg ? msg + 1 : "?");
		rc = -EIO;
	} else if (rc == 0) {
		body = strchr(ans.data, '\n');
		if (sscanf(ans.data, "0 %llu", &n) != 1 || !body)
			rc = log_fail(-EIO, "malformed answer from the mount");
		else
			rc = show(pos[0], body + 1, n, o.json);
	}
	buf_release(&ans);
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}
