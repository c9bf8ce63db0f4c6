/*
 * cmd_config.c - `tessera config VOLUME [--capacity S] [--inodes N]
 * [--trash-days N]`: print the settings, or change those that may change
 * after format.  A change to a replicated volume goes through the
 * replication wrapper (it takes the volume's lease: a mount elsewhere makes
 * it fail, naming that mount) and is in the object store when the command
 * returns.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "util/log.h"

#include <getopt.h>

struct config_args {
	bool set_capacity, set_inodes, set_trash;
	uint64_t capacity, inodes, trash_days;
};

enum { OPT_CAPACITY = 256, OPT_INODES, OPT_TRASH };

static const struct option config_opts[] = {
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "inodes", required_argument, NULL, OPT_INODES },
	{ "trash-days", required_argument, NULL, OPT_TRASH },
	{ NULL, 0, NULL, 0 },
};

static int config_opt(void *arg, int c, const char *optval)
{
	struct config_args *a = arg;

	switch (c) {
	case OPT_CAPACITY:
		a->set_capacity = true;
		if (cli_parse_size(optval, &a->capacity) < 0)
			return cli_usage_error("config", "invalid --capacity "
					       "'%s'", optval);
		return 0;
	case OPT_INODES:
		a->set_inodes = true;
		if (cli_parse_uint(optval, &a->inodes) < 0)
			return cli_usage_error("config", "invalid --inodes "
					       "'%s'", optval);
		return 0;
	case OPT_TRASH:
		a->set_trash = true;
		if (cli_parse_uint(optval, &a->trash_days) < 0 ||
		    a->trash_days > 36500)
			return cli_usage_error("config", "invalid --trash-days "
					       "'%s'", optval);
		return 0;
	}
	return EXIT_USAGE;
}

/* Change the settings; on a replicated volume through the wrapper. */
static int config_store(const char *arg, const struct config_args *a,
			struct meta_format *f)
{
	struct cli_open_opts o = {.write = true};
	struct meta *m = NULL;
	struct cli_vol cv;
	int rc = cli_vol_open(arg, &o, &cv, f);

	if (rc < 0)
		return rc;
	rc = cli_vol_wrap(&cv);
	if (rc == 0)
		rc = cli_vol_meta(&cv, &m);
	cli_vol_close(&cv);
	if (rc < 0)
		return rc;
	rc = meta_load_format(m, f);
	if (a->set_capacity)
		f->capacity = a->capacity;
	if (a->set_inodes)
		f->inodes = a->inodes;
	if (a->set_trash)
		f->trash_days = (uint32_t)a->trash_days;
	if (rc == 0)
		rc = meta_store_format(m, f);
	if (rc == 0)
		rc = meta_sync(m); /* replicated: in the object store now */
	if (rc < 0)
		log_fail(rc, "cannot change settings of volume '%s'", f->name);
	meta_close(m);
	return rc;
}

int cmd_config(int argc, char **argv)
{
	struct config_args a = { 0 };
	struct meta_format f;
	struct meta *m = NULL;
	const char *pos[1];
	char *js;
	int npos, rc;

	rc = cli_getopt("config", argc, argv, NULL, config_opts, config_opt,
			&a, pos, 1, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return cli_usage_error("config", "missing volume");
	if (a.set_capacity || a.set_inodes || a.set_trash) {
		if (config_store(pos[0], &a, &f) < 0)
			return EXIT_ERR;
	} else {
		if (cli_open_volume(pos[0], NULL, &m, &f) < 0)
			return EXIT_ERR;
		meta_close(m);
	}
	js = meta_format_to_json(&f);
	if (!js) {
		log_error("cannot encode settings as JSON");
		return EXIT_ERR;
	}
	printf("%s\n", js);
	free(js);
	return EXIT_OK;
}
