/*
 * cli_mount.c - commands that work through a running mount (clone, info,
 * summary, rmr): find the mount a path is in, send a request to its
 * ".control" file and read the answer.
 *
 * The commands do not open the metadata themselves: the mount is its one
 * writer (a replicated volume's lease is the mount's, and writes still in
 * the mount's buffers must be seen).  The mount root is the directory
 * that serves ".control" (the virtual file's inode number identifies it);
 * stat(2) inside the mount shows the mount's own inode numbers, which go
 * into the request.  The mount runs requests with the credentials of the
 * process that opened ".control".
 */
#include "util/common.h"
#include "cli/cli.h"
#include "util/buf.h"
#include "util/log.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* vfs_int.h: the inode number of ".control" */
#define CLI_CONTROL_INO 0x7FFFFFFF00000003ULL

int cli_mount_root(const char *dir, dev_t dev, char *root, size_t n)
{
	char cur[PATH_MAX], probe[PATH_MAX + 16];
	struct stat st;

	if (!realpath(dir, cur)) {
		log_error("cannot resolve '%s': %s", dir, strerror(errno));
		return -errno;
	}
	for (;;) {
		snprintf(probe, sizeof(probe), "%s%s.control", cur,
			 strcmp(cur, "/") ? "/" : "");
		if (lstat(probe, &st) == 0 && st.st_dev == dev &&
		    (uint64_t)st.st_ino == CLI_CONTROL_INO) {
			snprintf(root, n, "%s", cur);
			return 0;
		}
		if (strcmp(cur, "/") == 0)
			break;
		snprintf(probe, sizeof(probe), "%s", cur);
		snprintf(cur, sizeof(cur), "%s", dirname(probe));
	}
	return -ENOENT;
}

int cli_mount_locate(const char *cmd, const char *path, struct stat *st,
		     char *root, size_t n)
{
	char tmp[PATH_MAX];
	const char *dir = path;

	if (lstat(path, st) < 0) {
		int e = errno;

		log_error("cannot %s '%s': %s", cmd, path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st->st_mode)) {
		snprintf(tmp, sizeof(tmp), "%s", path);
		dir = dirname(tmp);
	}
	if (cli_mount_root(dir, st->st_dev, root, n) < 0) {
		log_error("cannot %s '%s': not inside a tessera mount", cmd,
			  path);
		return -ENOENT;
	}
	return 0;
}

int cli_split_path(const char *path, char *parent, size_t pn, char *name,
		   size_t nn)
{
	char a[PATH_MAX], b[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(a))
		return -EINVAL;
	snprintf(a, sizeof(a), "%s", path);
	while (len > 1 && a[len - 1] == '/')
		a[--len] = '\0';
	snprintf(b, sizeof(b), "%s", a);
	snprintf(parent, pn, "%s", dirname(a));
	snprintf(name, nn, "%s", basename(b));
	if (!strcmp(name, "/") || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

int cli_mount_send(const char *root, const char *req, size_t len, int *fd)
{
	char path[PATH_MAX + 16];
	int f;

	snprintf(path, sizeof(path), "%s/.control", root);
	f = open(path, O_RDWR | O_CLOEXEC);
	if (f < 0)
		return log_fail(-errno, "cannot open '%s'", path);
	if (write(f, req, len) != (ssize_t)len) {
		int e = errno ? errno : EIO;

		close(f);
		return log_fail(-e, "request to the mount at '%s' failed",
				root);
	}
	*fd = f;
	return 0;
}

int cli_mount_read_all(int fd, const char *root, struct buf *out)
{
	for (;;) {
		ssize_t got;
		int rc = buf_grow(out, 1 << 20);

		if (rc < 0)
			return rc;
		got = read(fd, out->data + out->len, 1 << 20);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return log_fail(-errno,
					"cannot read the answer of the "
					"mount at '%s'",
					root);
		if (got == 0)
			break;
		out->len += (size_t)got;
	}
	if (out->len == 0)
		return log_fail(-EIO, "no answer from the mount at '%s'", root);
	if (buf_append(out, "", 1) < 0) /* NUL-terminated for parsing */
		return -ENOMEM;
	out->len--;
	return 0;
}

int cli_mount_ask(const char *root, const char *req, size_t len, char *ans,
		  size_t n)
{
	struct buf b = BUF_INIT;
	int fd, rc = cli_mount_send(root, req, len, &fd);

	if (rc < 0)
		return rc;
	rc = cli_mount_read_all(fd, root, &b);
	close(fd);
	if (rc == 0) {
		snprintf(ans, n, "%s", b.data);
		ans[strcspn(ans, "\n")] = '\0';
	}
	buf_release(&b);
	return rc;
}

void cli_local_mount(const struct cli_volume *vol, char *mp, size_t n)
{
	char path[PATH_MAX + 300], line[PATH_MAX + 64], tgt[PATH_MAX];
	FILE *f;
	int fd;

	mp[0] = '\0';
	if (!vol->embedded)
		return;
	snprintf(path, sizeof(path), "%s/%s/mount.lock", cli_home(), vol->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) { /* nobody holds it */
		close(fd);
		return;
	}
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return;
	}
	if (fgets(line, sizeof(line), f) &&
	    sscanf(line, "pid %*d mountpoint %4095s", tgt) == 1)
		snprintf(mp, n, "%s", tgt);
	fclose(f);
}
