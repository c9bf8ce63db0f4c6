/*
 * cmd_umount.c - `tessera umount MOUNTPOINT [--force]`.
 *
 * 1. Check MOUNTPOINT is a tessera mount (/proc/self/mountinfo, type
 *    fuse.tessera).
 * 2. Read "pid N" from MOUNTPOINT/.stats (a virtual file the mount serves)
 *    and open a pidfd on that process before unmounting, so a recycled
 *    pid can never be mistaken for it.  A dead mount (the process was
 *    killed) has no pid: it is just unmounted.
 * 3. Unmount: umount2() as root, fusermount3 -u otherwise; --force makes it
 *    lazy (MNT_DETACH / -z).  The kernel then ends the session; the mount
 *    process commits what is buffered, syncs objects and metadata, exits.
 * 4. Wait (bounded) for that exit: when umount returns 0 the data is
 *    durable.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_EXIT_MS (600 * 1000)
#define WAIT_EXIT_FORCE_MS (10 * 1000)

/* Undo the octal escapes of /proc/self/mountinfo ("\040" = space). */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] &&
		    s[3]) {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/* 1: a tessera mount, 0: some other or no mount, -errno. */
static int find_mount(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	int found = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *fields[6], *save = NULL, *p = line, *sep;
		int n = 0;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		*sep = '\0';
		while (n < 6 && (fields[n] = strtok_r(p, " ", &save))) {
			p = NULL;
			n++;
		}
		if (n < 5)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], path) != 0)
			continue;
		found = strncmp(sep + 3, "fuse.tessera ", 13) == 0 ? 1 : 0;
	}
	fclose(f);
	return found;
}

static pid_t mount_pid(const char *path)
{
	char fn[PATH_MAX + 16], buf[256];
	ssize_t n;
	int fd, pid = 0;

	snprintf(fn, sizeof(fn), "%s/.stats", path);
	fd = open(fn, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "pid %d", &pid) != 1 || pid <= 0)
		return 0;
	return pid;
}

static int run_fusermount(const char *path, bool lazy)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", "--",
			       path, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", "--", path,
			       (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EBUSY;
}

static int do_unmount(const char *path, bool lazy)
{
	if (geteuid() != 0)
		return run_fusermount(path, lazy);
	if (umount2(path, lazy ? MNT_DETACH : 0) < 0)
		return -errno;
	return 0;
}

/* Wait until the process behind @pidfd exits; 0, or -ETIMEDOUT. */
static int wait_exit(int pidfd, int timeout_ms)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	for (;;) {
		int r = poll(&p, 1, timeout_ms);

		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Absolute form of @arg even when the mount behind it is dead. */
static int abs_path(const char *arg, char *out, size_t n)
{
	char cwd[PATH_MAX];

	if (realpath(arg, out))
		return 0;
	if (arg[0] == '/') {
		snprintf(out, n, "%s", arg);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return -errno;
		if (strlen(cwd) + strlen(arg) + 2 > n)
			return -ENAMETOOLONG;
		memcpy(out, cwd, strlen(cwd));
		out[strlen(cwd)] = '/';
		strcpy(out + strlen(cwd) + 1, arg);
	}
	/* no trailing slash: mountinfo has none */
	for (size_t len = strlen(out); len > 1 && out[len - 1] == '/'; len--)
		out[len - 1] = '\0';
	return 0;
}

int cmd_umount(int argc, char **argv)
{
	const char *arg = NULL;
	char path[PATH_MAX];
	bool force = false;
	pid_t pid;
	int pidfd = -1, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0 ||
		    strcmp(argv[i], "-f") == 0)
			force = true;
		else if (argv[i][0] == '-' && argv[i][1])
			return cli_usage_error("umount", "unknown option '%s'",
					       argv[i]);
		else if (!arg)
			arg = argv[i];
		else
			return cli_usage_error(
				"umount", "unexpected argument '%s'", argv[i]);
	}
	if (!arg)
		return cli_usage_error("umount", "missing mountpoint");
	if (abs_path(arg, path, sizeof(path)) < 0) {
		log_error("cannot resolve '%s': %s", arg, strerror(errno));
		return EXIT_ERR;
	}
	rc = find_mount(path);
	if (rc <= 0) {
		log_error("'%s' is not a tessera mount", arg);
		return EXIT_ERR;
	}
	pid = mount_pid(path);
	if (pid > 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	rc = do_unmount(path, force);
	if (rc < 0) {
		if (pidfd >= 0)
			close(pidfd);
		if (rc == -EBUSY)
			log_error(
				"cannot unmount '%s': it is busy (files open; "
				"'--force' detaches it)",
				arg);
		else
			log_error("cannot unmount '%s': %s", arg,
				  strerror(-rc));
		return EXIT_ERR;
	}
	if (pidfd < 0)
		return EXIT_OK;
	rc = wait_exit(pidfd, force ? WAIT_EXIT_FORCE_MS : WAIT_EXIT_MS);
	close(pidfd);
	if (rc == -ETIMEDOUT && force)
		return EXIT_OK; /* still busy: it exits at the last close */
	if (rc < 0) {
		log_error("mount process %d of '%s' did not exit: %s", (int)pid,
			  arg, strerror(-rc));
		return EXIT_ERR;
	}
	return EXIT_OK;
}
