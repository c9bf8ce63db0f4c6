/*
 * fileio.c - whole writes to a file descriptor (fileio.h).
 */
#include "util/common.h"
#include "util/fileio.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

bool fio_unnamed_usable(void)
{
	return access("/proc/self/fd", X_OK) == 0 &&
	       !getenv("TESSERA_FILE_NAMED_PUTS");
}

int fio_open_unnamed(int dir_fd, const char *path, unsigned int mode)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		snprintf(dir, sizeof(dir), ".");
	fd = openat(dir_fd, dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
	if (fd >= 0)
		return fd;
	if (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)
		return -EOPNOTSUPP;
	return -errno;
}

int fio_link_unnamed(int fd, int dir_fd, const char *path)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dir_fd, path, AT_SYMLINK_FOLLOW) < 0)
		return -errno;
	return 0;
}

void fio_spread_children(int dir_fd, const char *path)
{
	int fd = openat(dir_fd, path,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int flags;

	if (fd < 0)
		return;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 &&
	    !(flags & FS_TOPDIR_FL)) {
		flags |= FS_TOPDIR_FL;
		(void)ioctl(fd, FS_IOC_SETFLAGS, &flags);
	}
	close(fd);
}

int fio_write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int fio_write_new(int fd, const void *p, size_t n, atomic_bool *no_direct)
{
	size_t bulk = n & ~(size_t)(FIO_DIRECT_ALIGN - 1);
	const char *s = p;
	int fl, rc;

	if (n < FIO_DIRECT_MIN || (uintptr_t)s % FIO_DIRECT_ALIGN != 0 ||
	    atomic_load(no_direct))
		return fio_write_all(fd, s, n);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (fcntl(fd, F_SETFL, fl | O_DIRECT) < 0) {
		if (errno != EINVAL)
			return -errno;
		atomic_store(no_direct, true);
		return fio_write_all(fd, s, n);
	}
	rc = fio_write_all(fd, s, bulk);
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	if (rc == -EINVAL) {
		/* Refused after all (or a short write left the offset
		 * unaligned): start over, buffered. */
		atomic_store(no_direct, true);
		if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
		return fio_write_all(fd, s, n);
	}
	if (rc < 0)
		return rc;
	return fio_write_all(fd, s + bulk, n - bulk);
}
