/*
 * cmd_format.c - `tessera format`: create a volume.
 *
 * Order matters for "no half-written state": every argument is checked
 * first, then the object store is opened (created when missing), then the
 * metadata is written in one go by meta_format.  If anything fails after we
 * created the embedded volume directory, that directory is removed again.
 *
 * Replication (SQLite metadata, on unless --replicate=off): a store that
 * already holds replicated metadata of a volume of this name is refused
 * without --force (it is another copy of that volume, or the volume
 * itself: mount it with STORAGE-URL/NAME).  After meta_format the new
 * volume is opened through the replication wrapper and synced, which
 * stores the base snapshot of a new generation: the formatted state is in
 * the object store before the command returns.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "meta/kv.h"
#include "object/crypt.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/log.h"
#include "util/url.h"

#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

struct format_args {
	struct cli_volume vol;
	const char *storage;
	const char *compress;
	const char *encrypt_key;
	uint64_t block_size;
	uint64_t trash_days;
	uint64_t capacity;
	uint64_t inodes;
	bool force;
	int replicate; /* -1: default (on for sqlite3), 0 off, 1 on */
};

enum { OPT_STORAGE = 256, OPT_BLOCK, OPT_COMPRESS, OPT_KEY, OPT_TRASH,
       OPT_CAPACITY, OPT_INODES, OPT_FORCE, OPT_REPLICATE };

static const struct option format_opts[] = {
	{ "storage", required_argument, NULL, OPT_STORAGE },
	{ "block-size", required_argument, NULL, OPT_BLOCK },
	{ "compress", required_argument, NULL, OPT_COMPRESS },
	{ "encrypt-key", required_argument, NULL, OPT_KEY },
	{ "trash-days", required_argument, NULL, OPT_TRASH },
	{ "capacity", required_argument, NULL, OPT_CAPACITY },
	{ "inodes", required_argument, NULL, OPT_INODES },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "replicate", required_argument, NULL, OPT_REPLICATE },
	{ NULL, 0, NULL, 0 },
};

static int parse_opt(int c, const char *arg, struct format_args *a)
{
	switch (c) {
	case OPT_STORAGE:
		a->storage = arg;
		return 0;
	case OPT_BLOCK:
		if (cli_parse_size(arg, &a->block_size) < 0 ||
		    a->block_size < 64 * KiB || a->block_size > 16 * MiB ||
		    (a->block_size & (a->block_size - 1)))
			return cli_usage_error("format", "invalid --block-size "
					       "'%s' (a power of two from 64K "
					       "to 16M)", arg);
		return 0;
	case OPT_COMPRESS:
		if (strcmp(arg, "lz4") && strcmp(arg, "zstd") &&
		    strcmp(arg, "none"))
			return cli_usage_error("format", "invalid --compress "
					       "'%s' (lz4, zstd or none)", arg);
		a->compress = arg;
		return 0;
	case OPT_KEY:
		a->encrypt_key = arg;
		return 0;
	case OPT_TRASH:
		if (cli_parse_uint(arg, &a->trash_days) < 0 ||
		    a->trash_days > 36500)
			return cli_usage_error("format", "invalid --trash-days "
					       "'%s'", arg);
		return 0;
	case OPT_CAPACITY:
		if (cli_parse_size(arg, &a->capacity) < 0)
			return cli_usage_error("format", "invalid --capacity "
					       "'%s'", arg);
		return 0;
	case OPT_INODES:
		if (cli_parse_uint(arg, &a->inodes) < 0)
			return cli_usage_error("format", "invalid --inodes "
					       "'%s'", arg);
		return 0;
	case OPT_FORCE:
		a->force = true;
		return 0;
	case OPT_REPLICATE:
		if (strcmp(arg, "on") && strcmp(arg, "off"))
			return cli_usage_error("format", "invalid --replicate "
					       "'%s' (on or off)", arg);
		a->replicate = strcmp(arg, "on") == 0;
		return 0;
	}
	return EXIT_USAGE;
}

static int format_opt(void *arg, int c, const char *optval)
{
	return parse_opt(c, optval, arg);
}

static int resolve(struct format_args *a, const char **pos, int npos,
		   struct meta_format *f)
{
	const char *why;

	if (npos == 0)
		return cli_usage_error("format", "missing volume NAME");
	if (cli_resolve_volume(pos[0], &a->vol) < 0)
		return EXIT_ERR;
	if (npos == 1 && !a->vol.embedded)
		return cli_usage_error("format", "missing volume NAME after "
				       "the metadata URL");
	if (npos == 2) {
		if (a->vol.embedded)
			return cli_usage_error("format", "too many arguments");
		if (cli_check_name(pos[1], &why) < 0) {
			log_error("invalid volume name '%s': %s", pos[1], why);
			return EXIT_ERR;
		}
		snprintf(f->name, sizeof(f->name), "%s", pos[1]);
		if (!a->storage)
			return cli_usage_error("format", "--storage URL is "
					       "required with a metadata URL");
	} else {
		snprintf(f->name, sizeof(f->name), "%s", a->vol.name);
	}
	if (!a->storage)
		a->storage = a->vol.storage_url;
	if (!kv_url_is_file(a->vol.meta_url)) {
		if (a->replicate == 1)
			return cli_usage_error("format", "--replicate=on needs "
					       "SQLite metadata (sqlite3:// or "
					       "an embedded NAME)");
		a->replicate = 0;
	}
	f->replicate = a->replicate != 0;
	if (snprintf(f->storage, sizeof(f->storage), "%s", a->storage) >=
	    (int)sizeof(f->storage)) {
		log_error("storage URL is too long (%zu bytes; at most %zu)",
			  strlen(a->storage), sizeof(f->storage) - 1);
		return EXIT_ERR;
	}
	f->block_size = (uint32_t)a->block_size;
	f->chunk_size = TESSERA_CHUNK_SIZE;
	snprintf(f->compress, sizeof(f->compress), "%s", a->compress);
	if (a->encrypt_key) {
		unsigned char key[FRAME_KEY_LEN];

		/* Only the wrapped key is kept; the mount unwraps it. */
		if (crypt_wrap_new_key(a->encrypt_key, 0, f->key_wrapped,
				       sizeof(f->key_wrapped), key) < 0)
			return EXIT_ERR;
		explicit_bzero(key, sizeof(key));
		snprintf(f->encrypt, sizeof(f->encrypt), "aes-256-gcm");
	} else {
		snprintf(f->encrypt, sizeof(f->encrypt), "none");
	}
	f->trash_days = (uint32_t)a->trash_days;
	f->capacity = a->capacity;
	f->inodes = a->inodes;
	f->version = 1;
	return 0;
}

/* Embedded volumes: create $TESSERA_HOME/NAME; *created says we made it. */
static int make_volume_dir(const struct format_args *a, char *dir, size_t n,
			   bool *created)
{
	const char *home = cli_home();
	struct stat st;

	*created = false;
	if (!a->vol.embedded)
		return 0;
	if (home[0] != '/') {
		log_error("TESSERA_HOME '%s' must be an absolute path", home);
		return -EINVAL;
	}
	if (mkdir(home, 0755) < 0 && errno != EEXIST)
		return log_fail(-errno, "cannot create '%s'", home);
	snprintf(dir, n, "%s/%s", home, a->vol.name);
	if (stat(dir, &st) == 0)
		return 0;
	if (mkdir(dir, 0700) < 0)
		return log_fail(-errno, "cannot create '%s'", dir);
	*created = true;
	return 0;
}

static void remove_tree(const char *dir)
{
	char cmd[1400];

	/* Only ever a directory this command created a moment ago. */
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	if (system(cmd) != 0)
		log_warn("cannot remove '%s'", dir);
}

/* Refuse a store that already holds replicated metadata of @name. */
static int check_store_free(struct obj_store *os, const char *name,
			    bool force)
{
	struct repl_store_status st;
	int rc = repl_store_status(os, name, &st);

	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return log_fail(rc, "cannot read '%s'", obj_describe(os));
	if (force) {
		log_warn("replacing the replicated metadata of volume '%s' in "
			 "'%s' (generation %s)",
			 name, obj_describe(os), st.generation);
		return 0;
	}
	log_error("'%s' already holds the metadata of a volume '%s' "
		  "(generation %s, txn %llu): mount it as STORAGE-URL/%s, or "
		  "use --force to replace it",
		  obj_describe(os), name, st.generation,
		  (unsigned long long)st.last_seq, name);
	return -EEXIST;
}

/* Store the formatted state: a base snapshot of a new generation. */
static int ship_initial(const char *arg, bool force, char *gen, size_t n)
{
	struct cli_open_opts o = {.write = true, .force = force, .quiet = true};
	struct repl_status st;
	struct meta_format f;
	struct cli_vol cv;
	int rc = cli_vol_open(arg, &o, &cv, &f);

	if (rc < 0)
		return rc;
	rc = cli_vol_wrap(&cv);
	if (rc == 0)
		rc = kv_sync(cv.kv);
	if (rc == 0 && repl_status(cv.kv, &st) == 0)
		snprintf(gen, n, "%s", st.generation);
	cli_vol_close(&cv);
	return rc;
}

int cmd_format(int argc, char **argv)
{
	struct format_args a = { .compress = "none", .block_size = 4 * MiB,
				 .trash_days = 1, .replicate = -1 };
	char gen[REPL_GEN_SIZE] = "";
	struct meta_format f;
	struct obj_store *os = NULL;
	const char *pos[2];
	char dir[1200] = "";
	char red[1200];
	bool created = false;
	int npos, rc;

	memset(&f, 0, sizeof(f));
	rc = cli_getopt("format", argc, argv, NULL, format_opts, format_opt,
			&a, pos, 2, &npos);
	if (rc)
		return rc;
	rc = resolve(&a, pos, npos, &f);
	if (rc)
		return rc;
	if (make_volume_dir(&a, dir, sizeof(dir), &created) < 0)
		return EXIT_ERR;
	rc = obj_open(f.storage, true, &os);
	if (rc < 0)
		goto fail;
	if (f.replicate) {
		rc = check_store_free(os, f.name, a.force);
		if (rc < 0)
			goto fail;
	}
	rc = meta_format(a.vol.meta_url, &f, a.force);
	/* meta_format logged why (e.g. "already holds a volume") */
	if (rc < 0)
		goto fail;
	if (f.replicate) {
		rc = ship_initial(pos[0], a.force, gen, sizeof(gen));
		if (rc < 0)
			goto fail;
	}
	printf("formatted volume '%s' (uuid %s)\n  metadata: %s\n  storage:  %s\n",
	       f.name, f.uuid, url_redact(a.vol.meta_url, red, sizeof(red)),
	       obj_describe(os));
	if (a.encrypt_key)
		printf("  encrypt:  aes-256-gcm with the key in '%s' (without "
		       "that file the data cannot be read)\n", a.encrypt_key);
	if (f.replicate) {
		int n = (int)strcspn(f.storage, "?");

		while (n > 0 && f.storage[n - 1] == '/')
			n--;
		printf("  replicated into the storage (generation %s): mount "
		       "it anywhere as %.*s/%s\n",
		       gen, n, f.storage, f.name);
	}
	obj_close(os);
	return EXIT_OK;
fail:
	obj_close(os);
	if (created)
		remove_tree(dir);
	return EXIT_ERR;
}
