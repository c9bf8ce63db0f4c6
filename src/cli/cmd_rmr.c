/*
 * cmd_rmr.c - `tessera rmr PATH... [--quiet]`: remove trees inside a mount
 * by metadata transactions in batches (meta_rmtree), without a kernel
 * round trip per name.
 *
 * For a directory the command asks the mount to empty it ("rmr PARENT
 * NAMELEN\nNAME" to ".control", vfs/vfs_tools.c): the mount removes
 * the tree below bottom-up, a few hundred names per transaction, with the
 * caller's credentials and the rules of unlink and rmdir (files go to the
 * trash when the volume keeps one; files open in the mount stay readable
 * until closed).  Each read of the answer runs the removal for about
 * 100 ms and returns a progress line, drawn on a terminal.  The emptied
 * directory itself is then removed with rmdir(2), so the kernel forgets
 * its entry at once (it would otherwise show the name for the entry
 * timeout); names below it are unreachable through it from then on.  A
 * non-directory is simply unlink(2)ed.  The first error stops a PATH
 * (what went before stays removed); the other PATHs are still tried.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"
#include "util/progress.h"

#include <getopt.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct option rmr_opts[] = {
	{"quiet", no_argument, NULL, 'q'},
	{NULL, 0, NULL, 0},
};

static int rmr_opt(void *arg, int c, const char *optval)
{
	UNUSED(optval);
	if (c == 'q') {
		*(bool *)arg = true;
		return 0;
	}
	return EXIT_USAGE;
}

/* Read progress lines until the final one; 0 or the mount's -errno. */
static int follow(int fd, const char *path, bool quiet,
		  unsigned long long *files, unsigned long long *dirs)
{
	struct progress p;
	char line[512];
	int rc = -EIO, used = 0;

	progress_init(&p, "rmr", "files", 0, quiet);
	for (;;) {
		ssize_t got = read(fd, line, sizeof(line) - 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = log_fail(got < 0 ? -errno : -EIO,
				      "cannot remove '%s': no answer from the "
				      "mount",
				      path);
			break;
		}
		line[got] = '\0';
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "progress %llu %llu", files, dirs) == 2) {
			progress_add(&p, *files - p.done);
			continue;
		}
		if (sscanf(line, "%d files %llu dirs %llu%n", &rc, files, dirs,
			   &used) != 3) {
			rc = log_fail(-EIO,
				      "cannot remove '%s': malformed "
				      "answer from the mount",
				      path);
			break;
		}
		if (rc < 0)
			log_error("cannot remove '%s': %s", path,
				  line[used] ? line + used + 1 : "?");
		break;
	}
	progress_end(&p);
	return rc;
}

static int rmr_dir(const char *path, const char *root, bool quiet)
{
	char parent[PATH_MAX], name[NAME_MAX + 1], req[NAME_MAX + 64];
	unsigned long long files = 0, dirs = 0;
	struct stat ps;
	int fd, n, rc;

	if (cli_split_path(path, parent, sizeof(parent), name, sizeof(name))) {
		log_error("cannot remove '%s': invalid path", path);
		return -EINVAL;
	}
	if (stat(parent, &ps) < 0) {
		rc = -errno;
		log_error("cannot remove '%s': %s", path, strerror(-rc));
		return rc;
	}
	n = snprintf(req, sizeof(req), "rmr %llu %zu\n%s",
		     (unsigned long long)ps.st_ino, strlen(name), name);
	rc = cli_mount_send(root, req, (size_t)n, &fd);
	if (rc < 0)
		return rc;
	rc = follow(fd, path, quiet, &files, &dirs);
	close(fd);
	if (rc == 0 && rmdir(path) < 0) {
		rc = -errno;
		log_error("cannot remove '%s': %s", path, strerror(-rc));
	}
	if (rc == 0 && !quiet)
		printf("removed '%s': %llu files, %llu directories\n", path,
		       files, dirs + 1);
	return rc;
}

static int rmr_one(const char *path, bool quiet)
{
	char root[PATH_MAX], real[PATH_MAX];
	struct stat st;

	if (cli_mount_locate("remove", path, &st, root, sizeof(root)) < 0)
		return -ENOENT;
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) == 0)
			return 0;
		log_error("cannot remove '%s': %s", path, strerror(errno));
		return -errno;
	}
	if (realpath(path, real) && strcmp(real, root) == 0) {
		log_error("cannot remove '%s': the root of the mount", path);
		return -EBUSY;
	}
	return rmr_dir(path, root, quiet);
}

int cmd_rmr(int argc, char **argv)
{
	const char *pos[256];
	bool quiet = false;
	int npos, rc, status = EXIT_OK;

	rc = cli_getopt("rmr", argc, argv, "q", rmr_opts, rmr_opt, &quiet, pos,
			256, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("rmr", "missing PATH");
	for (int i = 0; i < npos; i++) {
		if (rmr_one(pos[i], quiet) < 0)
			status = EXIT_ERR;
		fflush(stdout);
	}
	return status;
}
