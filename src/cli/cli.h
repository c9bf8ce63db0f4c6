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

/* Where a volume argument points (DESIGN section 2). */
struct cli_volume {
	char meta_url[1200];
	char storage_url[1200]; /* default storage for embedded volumes */
	char name[256];          /* embedded name, or "" for a URL */
	bool embedded;
};

/** TESSERA_HOME, or the default for this user. */
const char *cli_home(void);
/** Check a volume name: 1-63 chars of [A-Za-z0-9._-], not starting with
 *  '.' or '-'.  Returns 0 or -EINVAL and a static reason. */
int cli_check_name(const char *name, const char **why);
/**
 * Resolve NAME (embedded) or a metadata URL.  Invalid names or URLs print
 * one clear line and return -EINVAL.
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
					       const char *optarg),
	       void *arg, const char **pos, int max, int *npos);

#endif
