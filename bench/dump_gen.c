/*
 * dump_gen.c - fill a formatted volume with N files straight through
 * meta/ (no mount, no objects), for measuring `tessera dump` / `load` at
 * scale (bench/dump-scale).  Not a test.
 *
 *   dump_gen META-URL N
 *
 * Directories of 1000 files; each file has one 4 KiB slice (its objects
 * are never written: dump and load do not read data), every 10th an
 * xattr, every 50th a second name, every 100th a symlink beside it.
 */
#include "util/common.h"
#include "meta/meta.h"

#include <sys/stat.h>

int main(int argc, char **argv)
{
	struct meta_attr dir, a;
	struct meta_slice_write w;
	struct meta *m;
	char name[64];
	long n;
	int rc;

	if (argc != 3 || (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: dump_gen META-URL N\n");
		return 2;
	}
	if (meta_open(argv[1], &m) < 0)
		return 1;
	memset(&dir, 0, sizeof(dir));
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "d%05ld", i / 1000);
			rc = meta_mkdir(m, NULL, TESSERA_ROOT_INO, name, 0755,
					&dir);
			if (rc < 0)
				goto fail;
		}
		snprintf(name, sizeof(name), "file-%07ld", i);
		rc = meta_mknod(m, NULL, dir.ino, name, S_IFREG | 0644, 0, &a);
		if (rc < 0)
			goto fail;
		memset(&w, 0, sizeof(w));
		rc = meta_new_slice_id(m, &w.s.id);
		w.s.size = w.s.len = 4096;
		if (rc == 0)
			rc = meta_write(m, a.ino, &w, 1, 4096, NULL);
		if (rc == 0 && i % 10 == 0)
			rc = meta_setxattr(m, NULL, a.ino, "user.gen", name,
					   strlen(name), 0);
		if (rc == 0 && i % 50 == 0) {
			snprintf(name, sizeof(name), "link-%07ld", i);
			rc = meta_link(m, NULL, a.ino, dir.ino, name, NULL);
		}
		if (rc == 0 && i % 100 == 0) {
			snprintf(name, sizeof(name), "sym-%07ld", i);
			rc = meta_symlink(m, NULL, dir.ino, name, "file", NULL);
		}
		if (rc < 0)
			goto fail;
	}
	meta_close(m);
	return 0;
fail:
	fprintf(stderr, "dump_gen: %s\n", strerror(-rc));
	meta_close(m);
	return 1;
}
