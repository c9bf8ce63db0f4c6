/*
 * cmd_status.c - `tessera status VOLUME [--json]`: settings, usage, sessions.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "util/log.h"
#include "util/url.h"

#include <getopt.h>
#include <jansson.h>

static const struct option status_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};

static int status_opt(void *arg, int c, const char *optarg)
{
	UNUSED(optarg);
	if (c == 'j')
		*(bool *)arg = true;
	return 0;
}

static json_t *status_json(const struct meta_format *f,
			   const struct meta_statfs *st)
{
	char *js = meta_format_to_json(f);
	json_t *root, *usage;

	if (!js)
		return NULL;
	root = json_loads(js, 0, NULL);
	free(js);
	if (!root)
		return NULL;
	usage = json_pack("{s:I, s:I, s:I, s:I}",
			  "used_space", (json_int_t)(st->total_space - st->avail_space),
			  "avail_space", (json_int_t)st->avail_space,
			  "used_inodes", (json_int_t)st->used_inodes,
			  "avail_inodes", (json_int_t)st->avail_inodes);
	json_object_set_new(root, "usage", usage);
	json_object_set_new(root, "sessions", json_array());
	return root;
}

static void print_text(const struct meta_format *f,
		       const struct meta_statfs *st)
{
	printf("name:        %s\n", f->name);
	printf("uuid:        %s\n", f->uuid);
	printf("storage:     %s\n", f->storage);
	printf("block size:  %u KiB\n", f->block_size / 1024);
	printf("chunk size:  %llu MiB\n", (unsigned long long)(f->chunk_size / MiB));
	printf("compress:    %s\n", f->compress);
	printf("encrypt:     %s\n", f->encrypt);
	printf("trash days:  %u\n", f->trash_days);
	if (f->capacity)
		printf("capacity:    %llu bytes\n", (unsigned long long)f->capacity);
	else
		printf("capacity:    unlimited\n");
	if (f->inodes)
		printf("inodes:      %llu\n", (unsigned long long)f->inodes);
	else
		printf("inodes:      unlimited\n");
	printf("used space:  %llu bytes\n",
	       (unsigned long long)(st->total_space - st->avail_space));
	printf("used inodes: %llu\n", (unsigned long long)st->used_inodes);
	printf("sessions:    none\n");
}

int cmd_status(int argc, char **argv)
{
	struct meta_format f;
	struct meta_statfs st;
	struct meta *m = NULL;
	const char *pos[1];
	bool json = false;
	json_t *j;
	int npos, rc;

	rc = cli_getopt("status", argc, argv, NULL, status_opts, status_opt,
			&json, pos, 1, &npos);
	if (rc)
		return rc;
	if (npos != 1)
		return cli_usage_error("status", "missing volume");
	if (cli_open_volume(pos[0], NULL, &m, &f) < 0)
		return EXIT_ERR;
	rc = meta_statfs(m, &st);
	meta_close(m);
	if (rc < 0) {
		log_fail(rc, "cannot read usage of volume '%s'", f.name);
		return EXIT_ERR;
	}
	if (!json) {
		print_text(&f, &st);
		return EXIT_OK;
	}
	j = status_json(&f, &st);
	if (!j) {
		log_error("cannot encode status as JSON");
		return EXIT_ERR;
	}
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	return EXIT_OK;
}
