/*
 * cli.h - shared pieces of the `tessera` subcommands.
 *
 * Each subcommand lives in src/cli/cmd_<sub>.c as
 * `int cmd_<sub>(int argc, char **argv)` (argv[0] is the subcommand name)
 * and returns the process exit status: 0 ok, 1 error, 2 usage.
 * Errors are printed as one line on stderr ("tessera: ..."), via log_error
 * or cli_usage_error.
 */
#ifndef TESSERA_CLI_CLI_H
#define TESSERA_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "replicate/repl.h"

#define EXIT_OK 0
#define EXIT_ERR 1
#define EXIT_USAGE 2

struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	const char *usage; /* full --help text */
};

/* The table (main.c). */
extern const struct cli_cmd cli_cmds[];
extern const unsigned cli_ncmds;

/** Print "tessera CMD: MESSAGE" and a hint to use --help; returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** Print the --help text of @cmd to stdout; returns 0. */
int cli_help(const char *cmd);
/** True when argv has -h/--help anywhere before "--". */
bool cli_wants_help(int argc, char **argv);

/**
 * Parse a size like "4M", "300MiB", "1G", "4096", "0" into bytes.  Binary
 * units (K/M/G/T = 1024^n).  Returns 0 or -EINVAL.
 */
int cli_parse_size(const char *s, uint64_t *out);
/** Parse a non-negative integer/real number of seconds etc. */
int cli_parse_uint(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double *out);

/*
 * --interval S (0.1 to 3600) and --count N (> 0) of the live views (stats,
 * profile): OPT_INTERVAL/OPT_COUNT are their option codes.  Returns 0,
 * a usage exit status after one line, or -1 when @c is neither.
 */
enum { CLI_OPT_INTERVAL = 0x1000, CLI_OPT_COUNT };
int cli_live_opt(const char *cmd, int c, const char *val, double *interval,
		 uint64_t *count);
/* Monotonic seconds. */
double cli_mono_s(void);

/* Where a volume argument points (DESIGN section 2). */
struct cli_volume {
	char meta_url[1200];
	char storage_url[1200]; /* default storage for embedded volumes; the
				 * store given with STORAGE-URL/NAME */
	char name[256];          /* embedded name, or "" for a URL */
	bool embedded;
	bool from_store; /* STORAGE-URL/NAME: the metadata is replicated in
			  * storage_url; the local copy is the embedded one,
			  * $TESSERA_HOME/NAME/meta.db, restored when needed */
};

/** TESSERA_HOME, or the default for this user. */
const char *cli_home(void);
/** Check a volume name: 1-63 chars of [A-Za-z0-9._-], not starting with
 *  '.' or '-'.  Returns 0 or -EINVAL and a static reason. */
int cli_check_name(const char *name, const char **why);
/**
 * Resolve NAME (embedded), a metadata URL (sqlite3://, redis://,
 * postgres://) or STORAGE-URL/NAME (file://, s3://, http[s]://: the last
 * path element is the volume name).  Invalid names or URLs print one clear
 * line and return -EINVAL.
 */
int cli_resolve_volume(const char *arg, struct cli_volume *out);

struct meta;
struct meta_format;

/**
 * Resolve @arg, open its metadata and load the volume settings.  Prints one
 * clear line and returns -errno when the volume is missing or unreachable.
 * On success *m is open (meta_close it) and *f filled; @vol may be NULL.
 */
int cli_open_volume(const char *arg, struct cli_volume *vol, struct meta **m,
		    struct meta_format *f);

/*
 * ---- opening a volume for a command (cli_volume.c) ----
 *
 * A replicated volume (SQLite metadata, settings "replicate": true) is
 * changed only through the replication wrapper (repl.h), which holds the
 * volume's lease.  cli_vol_open finds the local database, compares it with
 * what the object store holds, restores it when the store is newer (or when
 * there is no local copy of a STORAGE-URL/NAME), and for a command that
 * writes takes the lease first.  cli_vol_wrap then puts the wrapper in
 * front, and cli_vol_meta makes a struct meta of it.
 */
struct obj_store;
struct kv_engine;

struct cli_open_opts {
	bool write;	     /* the command changes metadata */
	bool force;	     /* take the lease from a live holder */
	bool accept_partial; /* use a restore that stopped early */
	bool quiet;	     /* no restore progress on stderr */
	bool no_restore;     /* report a stale local copy, keep it (status) */
};

struct cli_vol {
	struct cli_volume vol;
	char volname[256];	/* the volume's name (settings) */
	struct kv_engine *kv;	/* plain engine, or the wrapper */
	struct obj_store *store; /* replicated: the store of the metadata */
	char store_url[1200];	/* its URL ("" when not replicated) */
	char store_why[256];	/* a reader's store was unreachable: why */
	bool replicated;
	bool leased;	/* we hold the lease (until cli_vol_wrap) */
	bool takeover;	/* the lease was taken from a possibly live holder */
	bool restored;	/* the local copy was restored now */
	bool wrapped;
	struct cli_open_opts o;
	struct repl_holder holder; /* of the lease */
};

/**
 * Resolve @arg and open its metadata engine as @o asks (see above); *f
 * gets the settings.  Prints one clear line and returns -errno on failure
 * (missing volume, lease held, partial restore refused...).  On success
 * release @cv with cli_vol_close.
 */
int cli_vol_open(const char *arg, const struct cli_open_opts *o,
		 struct cli_vol *cv, struct meta_format *f);
/** Replicated volumes opened for writing: put the wrapper in front (it
 *  owns the lease and the store from now on).  No-op otherwise. */
int cli_vol_wrap(struct cli_vol *cv);
/** A struct meta over cv->kv (which it then owns). */
int cli_vol_meta(struct cli_vol *cv, struct meta **m);
/** Close what is left: engine, store; release a lease not handed on. */
void cli_vol_close(struct cli_vol *cv);
/** Storage URL the data of @cv is in: the one given, else @f's. */
const char *cli_vol_storage(const struct cli_vol *cv,
			    const struct meta_format *f);

struct frame_conf;

/**
 * How the blocks of volume @f are encoded: its codec, and for an encrypted
 * volume its data key, unwrapped with the key file @key_path (NULL: the
 * file named by $TESSERA_ENCRYPT_KEY_FILE, if any).  Every failure prints
 * one clear line naming the volume: -ENOKEY "volume 'x' is encrypted: give
 * --encrypt-key FILE", -EKEYREJECTED "wrong encryption key for volume 'x'",
 * -EINVAL (unknown codec or cipher, malformed settings), or the key file's
 * error (-ENOENT, -EPERM: crypt_read_secret).  A key file given for a
 * volume that is not encrypted is ignored with a warning.  @out is zeroed
 * on failure; wipe out->key (explicit_bzero) when done with it.
 */
int cli_frame_conf(const struct meta_format *f, const char *key_path,
		   struct frame_conf *out);

/**
 * Parse options with getopt_long (options may follow arguments; our own
 * messages): calls
 * @fn for each option; unknown options are usage errors.  Positional
 * arguments are collected into @pos (at most @max; more is a usage error).
 * Returns 0 or an exit status.
 */
int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const void *longopts, int (*fn)(void *arg, int c,
					       const char *optval),
	       void *arg, const char **pos, int max, int *npos);

/*
 * ---- object store chores of gc and destroy (cli_objects.c) ----
 */
struct obj_entry;

/* Called per listed key; 0 goes on, -errno stops the listing (returned). */
typedef int (*cli_obj_fn)(void *arg, const struct obj_entry *e);
/**
 * List every key under @prefix of @s, all pages, in key order, calling
 * @fn for each (the entry lives until @fn returns).  A progress line on a
 * TTY unless @quiet.  A failed page fails the whole listing: one ERROR
 * line naming the prefix and the store, and its -errno.
 */
int cli_obj_list_all(struct obj_store *s, const char *prefix, bool quiet,
		     cli_obj_fn fn, void *arg);

/* A batch of deletes for cli_obj_delete. */
struct cli_del {
	struct obj_store *store;
	/* key number @i into @out (@n bytes); 0 or -errno.  Any thread. */
	int (*key)(void *arg, size_t i, char *out, size_t n);
	void *arg;
	size_t n;	  /* keys */
	int threads;	  /* parallel deletes (1..64) */
	const char *what; /* progress label */
	bool quiet;
	uint64_t deleted; /* out: deletes that succeeded */
	uint64_t failed;  /* out: that failed */
};
/**
 * Delete keys 0..n-1 of @d on @d->threads threads (the caller's is one),
 * with a progress line.  Every key is tried; returns 0, or the first
 * failure's -errno (that key logged at WARN, the others only counted).
 */
int cli_obj_delete(struct cli_del *d);

/**
 * Take the mount lock of embedded volume @name on this host (a mount
 * holds it while live).  0: *fd_out holds it (close to release), or -1
 * when the volume was never mounted here.  -EBUSY: mounted here now (not
 * logged).  Other -errno: logged.
 */
int cli_mount_lock(const char *name, int *fd_out);

/*
 * ---- requests to a running mount (cli_mount.c) ----
 *
 * clone, info, summary and rmr work through the mount's ".control" file
 * (vfs_control.c), with inode numbers from stat(2).  Failures print one
 * line and return -errno.
 */
#include <sys/types.h>

struct stat;
struct buf;

/** The root of the mount on @dev that holds directory @dir, into @root.
 *  -ENOENT when @dir is not inside a tessera mount (nothing printed). */
int cli_mount_root(const char *dir, dev_t dev, char *root, size_t n);
/** lstat @path into *st and find its mount root; one line "cannot CMD
 *  'PATH': ..." on failure (missing, not inside a mount). */
int cli_mount_locate(const char *cmd, const char *path, struct stat *st,
		     char *root, size_t n);
/** Split @path into its parent directory and final name; -EINVAL for
 *  "", "/", "." and ".." as the name (nothing printed). */
int cli_split_path(const char *path, char *parent, size_t pn, char *name,
		   size_t nn);
/** Open ".control" of the mount at @root and write request @req; *fd
 *  gets the open file to read the answer from (close it). */
int cli_mount_send(const char *root, const char *req, size_t len, int *fd);
/** Read the whole answer from @fd (until 0 bytes) into @out,
 *  NUL-terminated. */
int cli_mount_read_all(int fd, const char *root, struct buf *out);
/**
 * The mountpoint of embedded volume @vol when this host mounts it (its
 * mount lock is held; the lock file says "pid N mountpoint MP"); ""
 * otherwise, and for volumes given by URL.
 */
void cli_local_mount(const struct cli_volume *vol, char *mp, size_t n);
/** Send @req, read the answer's first line into @ans (no newline). */
int cli_mount_ask(const char *root, const char *req, size_t len, char *ans,
		  size_t n);

/*
 * ---- a mount's Prometheus page (cli_metrics.c) ----
 */
struct vfs;
/* Append the /metrics text of mount @v of volume @volume to @b. */
int cli_metrics_render(struct vfs *v, const char *volume, struct buf *b);

#endif
