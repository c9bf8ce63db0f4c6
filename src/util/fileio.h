/*
 * fileio.h - whole writes to a file descriptor.
 *
 * fio_write_new writes a new file's bytes with O_DIRECT where it can: the
 * bytes then go from the caller's buffer to the device instead of being
 * copied into the page cache and written back later (in a 1 GiB
 * sequential write through a file-store mount that copy was ~45% of the
 * mount's samples).  Durability is unchanged: the callers' fsync/syncfs
 * still cover the data and the file's metadata.
 */
#ifndef TESSERA_UTIL_FILEIO_H
#define TESSERA_UTIL_FILEIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Alignment of buffers, lengths and offsets that O_DIRECT needs. */
#define FIO_DIRECT_ALIGN 4096
/* Below this, a buffered write is as cheap. */
#define FIO_DIRECT_MIN (64 * 1024)

/** write(2) all @n bytes at @p, retrying EINTR and short writes: 0, -errno. */
int fio_write_all(int fd, const void *p, size_t n);

/**
 * Write @n bytes at @p to @fd, a new empty file opened for writing: when @p
 * is FIO_DIRECT_ALIGN-aligned and @n >= FIO_DIRECT_MIN, the aligned bulk
 * with O_DIRECT and the tail buffered; otherwise all buffered.  A
 * filesystem that refuses O_DIRECT (EINVAL) sets *no_direct, and later
 * calls with it set write buffered.  0 or -errno.
 */
int fio_write_new(int fd, const void *p, size_t n, atomic_bool *no_direct);

/**
 * Ask the filesystem to spread the subdirectories of directory @path
 * (relative to @dir_fd) over the disk rather than keep them near it:
 * ext4's "top of hierarchy" flag (chattr +T).  Best effort: ignored where
 * the filesystem has no such flag.
 *
 * Why: ext4 puts a new file's inode in its directory's block group, and a
 * subdirectory near its parent.  Without a journal it then skips inodes
 * freed in the last ~35 s one by one, so a store that deletes many objects
 * and then creates new ones in directories next to them scans past every
 * deleted inode on each create (see store_file.c).
 */
void fio_spread_children(int dir_fd, const char *path);

/*
 * Unnamed files: a new file is written as an unnamed file (O_TMPFILE) in
 * its own directory and linked to its name once complete, so it is seen
 * whole or not at all, and a crash leaves nothing behind.  The link goes
 * through /proc/self/fd (linkat with AT_EMPTY_PATH needs a capability).
 */

/**
 * Whether unnamed files can be linked here (/proc is mounted).  The
 * environment variable TESSERA_FILE_NAMED_PUTS makes it false, for tests
 * of the callers' fallback (a temporary name and rename).
 */
bool fio_unnamed_usable(void);

/**
 * An unnamed write-only file in the directory of @path (relative to
 * @dir_fd; the directory itself when @path has no '/'), mode @mode: its
 * fd, -EOPNOTSUPP where the filesystem has no O_TMPFILE, or -errno
 * (-ENOENT: the directory is missing).
 */
int fio_open_unnamed(int dir_fd, const char *path, unsigned int mode);

/**
 * Give the unnamed file @fd the name @path (relative to @dir_fd): 0 or
 * -errno (-EEXIST: the name is taken; -ENOENT: its directory is missing).
 */
int fio_link_unnamed(int fd, int dir_fd, const char *path);

#endif
