/*
 * cmd_load.c - `tessera load META-URL FILE|- [--force] [--quiet]`
 * (DESIGN section 8; meta/load.c does the writing).
 *
 * Two passes over the dump: meta_dump_check reads all of it first, and
 * only a complete, consistent document reaches meta_load, which reads it
 * again and writes.  Standard input (or any input that cannot be read
 * twice) is copied to an unlinked temporary file during the first pass.
 * A refused dump is one line: the file, the byte offset, the item, why.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/dump.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/url.h"

#include <getopt.h>
#include <sys/stat.h>

struct load_args {
	bool force, quiet;
};

enum { OPT_FORCE = 256, OPT_QUIET };

static const struct option load_opts[] = {
	{"force", no_argument, NULL, OPT_FORCE},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{NULL, 0, NULL, 0},
};

static int load_opt(void *arg, int c, const char *optval)
{
	struct load_args *a = arg;

	UNUSED(optval);
	if (c == OPT_FORCE)
		a->force = true;
	else if (c == OPT_QUIET)
		a->quiet = true;
	else
		return EXIT_USAGE;
	return 0;
}

struct input {
	FILE *f;
	FILE *spool; /* first pass: a copy of what was read (or NULL) */
	struct progress *pg;
};

static ssize_t in_read(void *arg, void *p, size_t n)
{
	struct input *in = arg;
	size_t got = fread(p, 1, n, in->f);

	if (got == 0 && ferror(in->f))
		return -(errno ? errno : EIO);
	if (got && in->spool && fwrite(p, 1, got, in->spool) != got)
		return log_fail(-(errno ? errno : EIO),
				"cannot write a temporary copy of the dump");
	if (in->pg)
		progress_add(in->pg, got);
	return (ssize_t)got;
}

static void on_items(void *arg, uint64_t items)
{
	struct progress *pg = arg;

	progress_add(pg, items - pg->done);
}

static bool is_meta_url(const char *s)
{
	return !strncmp(s, "sqlite3://", 10) || !strncmp(s, "redis://", 8) ||
	       !strncmp(s, "postgres://", 11) ||
	       !strncmp(s, "postgresql://", 13);
}

/* Pass 1.  Prints the refusal.  *in ready for pass 2 on success. */
static int check_pass(const char *name, struct input *in, bool quiet,
		      struct meta_dump_stats *st)
{
	struct meta_dump_error err;
	struct progress pg;
	struct stat sb;
	int rc;

	if (fstat(fileno(in->f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
		in->spool = tmpfile();
		if (!in->spool)
			return log_fail(-errno, "cannot create a temporary "
						"file for the dump");
	}
	progress_init(&pg, "check", NULL,
		      S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0, quiet);
	in->pg = &pg;
	rc = meta_dump_check(in_read, in, st, &err);
	progress_end(&pg);
	in->pg = NULL;
	if (rc < 0) {
		log_error("cannot load '%s': %s", name, err.msg);
		return rc;
	}
	if (in->spool) {
		if (fflush(in->spool) != 0)
			return log_fail(-errno, "cannot write a temporary "
						"copy of the dump");
		in->f = in->spool;
		in->spool = NULL;
	}
	if (fseek(in->f, 0, SEEK_SET) < 0)
		return log_fail(-errno, "cannot read '%s' again", name);
	return 0;
}

int cmd_load(int argc, char **argv)
{
	struct load_args a = {false, false};
	struct meta_load_opts lo;
	struct meta_dump_error err;
	struct meta_dump_stats st;
	struct input in = {NULL, NULL, NULL};
	struct progress pg;
	const char *pos[2], *name;
	char red[1200];
	FILE *opened = NULL;
	int npos, rc;

	rc = cli_getopt("load", argc, argv, NULL, load_opts, load_opt, &a, pos,
			2, &npos);
	if (rc)
		return rc;
	if (npos < 2)
		return cli_usage_error(
			"load", "missing %s",
			npos ? "dump FILE (or - for standard input)"
			     : "META-URL");
	if (!is_meta_url(pos[0]))
		return cli_usage_error("load",
				       "'%s' is not a metadata URL "
				       "(sqlite3://, redis://, postgres://)",
				       url_redact(pos[0], red, sizeof(red)));
	url_redact(pos[0], red, sizeof(red));
	name = strcmp(pos[1], "-") ? pos[1] : "standard input";
	in.f = stdin;
	if (strcmp(pos[1], "-")) {
		in.f = opened = fopen(pos[1], "r");
		if (!opened) {
			log_error("cannot open '%s': %s", pos[1],
				  strerror(errno));
			return EXIT_ERR;
		}
	}
	rc = check_pass(name, &in, a.quiet, &st);
	if (rc == 0) {
		memset(&lo, 0, sizeof(lo));
		lo.force = a.force;
		lo.progress = on_items;
		lo.progress_arg = &pg;
		progress_init(&pg, "load", "items", 0, a.quiet);
		rc = meta_load(pos[0], &lo, in_read, &in, &st, &err);
		progress_end(&pg);
		if (rc == -EINVAL && err.msg[0])
			log_error("cannot load '%s' (it changed since it was "
				  "checked?): %s; '%s' is left empty",
				  name, err.msg, red);
	}
	if (in.f != stdin && in.f != opened)
		fclose(in.f); /* the spooled copy */
	if (in.spool)
		fclose(in.spool);
	if (opened)
		fclose(opened);
	if (rc < 0)
		return EXIT_ERR;
	if (!a.quiet)
		printf("loaded '%s' into '%s': %llu inodes, %llu entries, %llu "
		       "chunks (%llu slices), %llu xattrs, %llu deleted "
		       "files\n",
		       name, red, (unsigned long long)st.inodes,
		       (unsigned long long)st.entries,
		       (unsigned long long)st.chunks,
		       (unsigned long long)st.slices,
		       (unsigned long long)st.xattrs,
		       (unsigned long long)st.deleted);
	return EXIT_OK;
}
