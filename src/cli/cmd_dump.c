/*
 * cmd_dump.c - `tessera dump VOLUME [FILE|-] [--json-indent] [--quiet]`
 * (DESIGN section 8; the format is docs/dump.md, the writer meta/dump.c).
 *
 * The volume is opened read-only (a replicated volume's local copy is
 * used as it is; a stale one is reported, not restored).  A FILE is
 * written under a temporary name in its directory and renamed when the
 * dump is complete, so a failed dump never leaves a file that looks like
 * one.  Redis has no snapshots: when the volume changed during the dump
 * (meta_dump -EAGAIN) it is written again, up to DUMP_TRIES times; for
 * standard output the document then goes through a temporary file first.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/dump.h"
#include "meta/meta.h"
#include "util/log.h"
#include "util/progress.h"

#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#define DUMP_TRIES 5

struct dump_args {
	bool indent, quiet;
};

enum { OPT_INDENT = 256, OPT_QUIET };

static const struct option dump_opts[] = {
	{"json-indent", no_argument, NULL, OPT_INDENT},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{NULL, 0, NULL, 0},
};

static int dump_opt(void *arg, int c, const char *optval)
{
	struct dump_args *a = arg;

	UNUSED(optval);
	if (c == OPT_INDENT)
		a->indent = true;
	else if (c == OPT_QUIET)
		a->quiet = true;
	else
		return EXIT_USAGE;
	return 0;
}

static int write_file(void *arg, const void *p, size_t n)
{
	FILE *f = arg;

	if (fwrite(p, 1, n, f) != n)
		return -(errno ? errno : EIO);
	return 0;
}

static void on_progress(void *arg, uint64_t items)
{
	struct progress *pg = arg;

	progress_add(pg, items - pg->done);
}

/* Dump into @f (a file we may rewind), again while Redis says -EAGAIN. */
static int dump_into(struct meta *m, const struct dump_args *a, FILE *f,
		     const char *name, struct meta_dump_stats *st)
{
	struct progress pg;
	struct meta_dump_opts o = {a->indent, on_progress, &pg};
	int rc = -EAGAIN;

	for (int i = 0; i < DUMP_TRIES && rc == -EAGAIN; i++) {
		if (i && (fflush(f) || ftruncate(fileno(f), 0) < 0 ||
			  fseek(f, 0, SEEK_SET) < 0))
			return log_fail(-errno, "cannot rewrite '%s'", name);
		progress_init(&pg, "dump", "items", 0, a->quiet);
		rc = meta_dump(m, &o, write_file, f, st);
		progress_end(&pg);
		if (rc == -EAGAIN)
			log_warn("the volume changed during the dump (Redis "
				 "has no snapshots): dumping again");
	}
	if (rc == -EAGAIN)
		log_error("the volume kept changing during %d dumps: unmount "
			  "it or dump at a quieter time",
			  DUMP_TRIES);
	else if (rc < 0 && rc != -EIO) /* -EIO: meta/ said which record */
		log_fail(rc, "cannot dump to %s%s%s", f == stdout ? "" : "'",
			 name, f == stdout ? "" : "'");
	if (rc == 0 && fflush(f) != 0)
		rc = log_fail(-errno, "cannot write '%s'", name);
	return rc;
}

static int copy_out(FILE *from, FILE *to)
{
	char b[65536];
	size_t n;

	if (fseek(from, 0, SEEK_SET) < 0)
		return -errno;
	while ((n = fread(b, 1, sizeof(b), from)) > 0)
		if (fwrite(b, 1, n, to) != n)
			return -(errno ? errno : EIO);
	if (ferror(from))
		return -EIO;
	return fflush(to) ? -errno : 0;
}

/* Standard output: straight there, unless a retry may be needed. */
static int dump_stdout(struct meta *m, const struct dump_args *a, bool redis,
		       struct meta_dump_stats *st)
{
	struct stat sb;
	FILE *tmp;
	int rc;

	if (!redis || (fstat(1, &sb) == 0 && S_ISREG(sb.st_mode)))
		return dump_into(m, a, stdout, "standard output", st);
	tmp = tmpfile();
	if (!tmp)
		return log_fail(-errno, "cannot create a temporary file");
	rc = dump_into(m, a, tmp, "a temporary file", st);
	if (rc == 0 && (rc = copy_out(tmp, stdout)) < 0)
		log_fail(rc, "cannot write the dump to standard output");
	fclose(tmp);
	return rc;
}

static int dump_to_file(struct meta *m, const struct dump_args *a,
			const char *path, struct meta_dump_stats *st)
{
	char tmp[4200];
	FILE *f;
	int rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return log_fail(-ENAMETOOLONG, "cannot write '%s'", path);
	f = fopen(tmp, "w");
	if (!f)
		return log_fail(-errno, "cannot create '%s'", tmp);
	rc = dump_into(m, a, f, path, st);
	if (rc == 0 && fsync(fileno(f)) < 0)
		rc = log_fail(-errno, "cannot write '%s'", path);
	if (fclose(f) != 0 && rc == 0)
		rc = log_fail(-errno, "cannot write '%s'", path);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = log_fail(-errno, "cannot rename '%s' to '%s'", tmp, path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int cmd_dump(int argc, char **argv)
{
	struct cli_open_opts oo = {.quiet = true};
	struct dump_args a = {false, false};
	struct meta_dump_stats st;
	struct meta_format f;
	struct meta *m = NULL;
	struct cli_vol cv;
	const char *pos[2];
	bool to_stdout, redis;
	int npos, rc;

	rc = cli_getopt("dump", argc, argv, NULL, dump_opts, dump_opt, &a, pos,
			2, &npos);
	if (rc)
		return rc;
	if (npos < 1)
		return cli_usage_error("dump", "missing volume");
	to_stdout = npos < 2 || strcmp(pos[1], "-") == 0;
	rc = cli_vol_open(pos[0], &oo, &cv, &f);
	if (rc < 0)
		return EXIT_ERR;
	redis = strncmp(cv.vol.meta_url, "redis", 5) == 0;
	rc = cli_vol_meta(&cv, &m);
	cli_vol_close(&cv);
	if (rc < 0)
		return EXIT_ERR;
	memset(&st, 0, sizeof(st));
	if (to_stdout)
		rc = dump_stdout(m, &a, redis, &st);
	else
		rc = dump_to_file(m, &a, pos[1], &st);
	meta_close(m);
	if (rc < 0)
		return EXIT_ERR;
	if (!a.quiet && !to_stdout)
		printf("dumped volume '%s' to '%s': %llu inodes, %llu entries, "
		       "%llu chunks (%llu slices), %llu xattrs, %llu deleted "
		       "files, %llu bytes\n",
		       f.name, pos[1], (unsigned long long)st.inodes,
		       (unsigned long long)st.entries,
		       (unsigned long long)st.chunks,
		       (unsigned long long)st.slices,
		       (unsigned long long)st.xattrs,
		       (unsigned long long)st.deleted,
		       (unsigned long long)st.bytes);
	return EXIT_OK;
}
