/*
 * cmd_clone.c - `tessera clone SRC DST [--preserve]`: copy a file or a
 * tree inside a mount by metadata only (meta_clone, DESIGN section 6).
 *
 * The command does not open the metadata itself: the mount is its one
 * writer (a replicated volume's lease is the mount's, and writes still in
 * the mount's buffers must be part of the copy).  It finds the mount root
 * from SRC and sends one request with the inode numbers of SRC and of
 * DST's parent (cli_mount.c); the mount runs it as one metadata
 * transaction with the caller's credentials and answers with what it
 * copied.  The kernel may show DST's parent with its old attributes for
 * the attribute timeout.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "util/log.h"

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct option clone_opts[] = {
	{"preserve", no_argument, NULL, 'p'},
	{NULL, 0, NULL, 0},
};

static int clone_opt(void *arg, int c, const char *optval)
{
	UNUSED(optval);
	if (c == 'p') {
		*(int *)arg |= META_CLONE_PRESERVE;
		return 0;
	}
	return EXIT_USAGE;
}

int cmd_clone(int argc, char **argv)
{
	char root[PATH_MAX], sdir[PATH_MAX], tmp[PATH_MAX], parent[PATH_MAX];
	char name[NAME_MAX + 1], req[NAME_MAX + 128], ans[1024];
	struct stat ss, ps;
	const char *pos[2];
	int flags = 0, npos, rc, n;

	rc = cli_getopt("clone", argc, argv, "p", clone_opts, clone_opt, &flags,
			pos, 2, &npos);
	if (rc)
		return rc;
	if (npos < 2)
		return cli_usage_error("clone", "%s",
				       npos ? "missing DST" : "missing SRC");
	if (lstat(pos[0], &ss) < 0) {
		log_error("cannot clone '%s': %s", pos[0], strerror(errno));
		return EXIT_ERR;
	}
	if (cli_split_path(pos[1], parent, sizeof(parent), name, sizeof(name)) <
	    0) {
		log_error("invalid destination '%s'", pos[1]);
		return EXIT_ERR;
	}
	if (stat(parent, &ps) < 0 || !S_ISDIR(ps.st_mode)) {
		log_error("cannot clone to '%s': %s", pos[1],
			  errno ? strerror(errno)
				: "parent is not a directory");
		return EXIT_ERR;
	}
	snprintf(tmp, sizeof(tmp), "%s", pos[0]);
	snprintf(sdir, sizeof(sdir), "%s",
		 S_ISDIR(ss.st_mode) ? pos[0] : dirname(tmp));
	if (cli_mount_root(sdir, ss.st_dev, root, sizeof(root)) < 0) {
		log_error("cannot clone '%s': not inside a tessera mount",
			  pos[0]);
		return EXIT_ERR;
	}
	if (ps.st_dev != ss.st_dev) {
		log_error("cannot clone '%s' to '%s': not in the same mount",
			  pos[0], pos[1]);
		return EXIT_ERR;
	}
	n = snprintf(req, sizeof(req), "clone %llu %llu %d %zu\n%s",
		     (unsigned long long)ss.st_ino,
		     (unsigned long long)ps.st_ino, flags, strlen(name), name);
	if (cli_mount_ask(root, req, (size_t)n, ans, sizeof(ans)) < 0)
		return EXIT_ERR;
	rc = atoi(ans);
	if (rc < 0) {
		const char *msg = strchr(ans, ' ');

		log_error("cannot clone '%s' to '%s': %s", pos[0], pos[1],
			  msg ? msg + 1 : strerror(-rc));
		return EXIT_ERR;
	}
	printf("cloned '%s' to '%s' (%s)\n", pos[0], pos[1], ans + 2);
	return EXIT_OK;
}
