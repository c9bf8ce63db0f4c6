/*
 * cmd_mount_helper.c - the tessera binary run as mount(8)'s and umount(8)'s
 * helpers: /sbin/mount.tessera (and mount.fuse.tessera) and
 * /sbin/umount.fuse.tessera are links to it, and main() dispatches on the
 * name it was run by.
 *
 * mount(8) runs "mount.tessera SPEC DIR [-sfnv] [-N NS] [-o OPTS] [-t TYPE]".
 * The helper turns OPTS into `tessera mount` arguments:
 *   - generic options of mount(8) and fstab (defaults, auto, noauto,
 *     _netdev, nofail, user, users, nouser, owner, group, rw, comment=...,
 *     x-...) are for mount(8) and systemd: dropped;
 *   - ro is --read-only;
 *   - home=DIR sets TESSERA_HOME, env=FILE names the environment file
 *     (default /etc/default/tessera: KEY=VALUE lines, for TESSERA_HOME,
 *     TESSERA_ACCESS_KEY, ...; variables already set win);
 *   - a `tessera mount` long option is written NAME or NAME=VALUE
 *     (cache-size=10G, writeback; '_' may stand for '-');
 *   - anything else (allow_other, noatime, dev, ...) goes to -o, where an
 *     unknown option is refused by the mount with one line.
 * Then it runs cmd_mount(), which returns once the mount is up.
 *
 * umount(8) runs "umount.fuse.tessera DIR [-flnrv] [-N NS] [-t TYPE]" for a
 * mount of type fuse.tessera: cmd_umount(), which flushes and waits for
 * the mount process like `tessera umount`; -l (lazy) is --force.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/log.h"

#include <getopt.h>

#define ENV_FILE "/etc/default/tessera"
#define MAX_ARGS 128

static const char *const generic_opts[] = {
	"defaults", "auto",  "noauto", "_netdev", "nofail", "user",
	"users",    "nouser", "owner", "group",	  "rw",	    "async",
};

/* Read KEY=VALUE lines of @path into the environment (set keys win). */
static int read_env_file(const char *path, bool must_exist)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0;

	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		log_error("cannot read environment file '%s': %s", path,
			  strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *eq, *v;
		size_t n;

		lineno++;
		n = strlen(p);
		while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' ||
				 p[n - 1] == ' ' || p[n - 1] == '\t'))
			p[--n] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (strncmp(p, "export ", 7) == 0)
			p += 7;
		eq = strchr(p, '=');
		if (!eq || eq == p) {
			log_error("%s:%d: not KEY=VALUE: '%s'", path, lineno,
				  p);
			fclose(f);
			return -1;
		}
		*eq = '\0';
		v = eq + 1;
		n = strlen(v);
		if (n >= 2 && (v[0] == '"' || v[0] == '\'') &&
		    v[n - 1] == v[0]) {
			v[n - 1] = '\0';
			v++;
		}
		setenv(p, v, 0);
	}
	fclose(f);
	return 0;
}

/* The long option of `tessera mount` named @name ('_' for '-'), or NULL. */
static const struct option *mount_long_opt(const char *name, size_t len)
{
	char want[64];

	if (len == 0 || len >= sizeof(want))
		return NULL;
	for (size_t i = 0; i < len; i++)
		want[i] = name[i] == '_' ? '-' : name[i];
	want[len] = '\0';
	for (const struct option *o = cmd_mount_longopts; o->name; o++)
		if (strcmp(o->name, want) == 0)
			return o;
	return NULL;
}

struct helper_args {
	char *argv[MAX_ARGS];
	int argc;
	char fuse_opts[4096];
	size_t fuse_len;
	const char *env_file;
	bool env_file_set;
};

static int push(struct helper_args *h, const char *s)
{
	if (h->argc >= MAX_ARGS - 1) {
		log_error("mount.tessera: too many options");
		return -1;
	}
	h->argv[h->argc] = strdup(s);
	if (!h->argv[h->argc]) {
		log_error("mount.tessera: out of memory");
		return -1;
	}
	h->argc++;
	return 0;
}

/* One option of -o: translated into @h, or -1 after a one-line error. */
static int one_opt(struct helper_args *h, char *w)
{
	const char *eq = strchr(w, '=');
	size_t nlen = eq ? (size_t)(eq - w) : strlen(w);
	const struct option *lo;
	char arg[4200];

	if (!*w)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(generic_opts); i++)
		if (strcmp(w, generic_opts[i]) == 0)
			return 0;
	if (strncmp(w, "x-", 2) == 0 || strncmp(w, "comment=", 8) == 0)
		return 0;
	if (strcmp(w, "ro") == 0)
		return push(h, "--read-only");
	if (strncmp(w, "home=", 5) == 0) {
		if (!w[5]) {
			log_error("mount.tessera: empty home=");
			return -1;
		}
		return setenv("TESSERA_HOME", w + 5, 1) < 0 ? -1 : 0;
	}
	if (strncmp(w, "env=", 4) == 0) {
		h->env_file = w + 4;
		h->env_file_set = true;
		return 0;
	}
	lo = mount_long_opt(w, nlen);
	if (lo) {
		if (lo->has_arg == no_argument && eq) {
			log_error("mount.tessera: option '%.*s' takes no value",
				  (int)nlen, w);
			return -1;
		}
		if (lo->has_arg == required_argument && !eq) {
			log_error("mount.tessera: option '%s' needs a value "
				  "(%s=VALUE)",
				  w, w);
			return -1;
		}
		snprintf(arg, sizeof(arg), "--%s%s%s", lo->name, eq ? "=" : "",
			 eq ? eq + 1 : "");
		return push(h, arg);
	}
	if (h->fuse_len + strlen(w) + 2 > sizeof(h->fuse_opts)) {
		log_error("mount.tessera: options too long");
		return -1;
	}
	h->fuse_len += (size_t)sprintf(h->fuse_opts + h->fuse_len, "%s%s",
				       h->fuse_len ? "," : "", w);
	return 0;
}

static int parse_opts(struct helper_args *h, const char *opts)
{
	char *copy = strdup(opts), *save = NULL;
	int rc = 0;

	if (!copy)
		return -1;
	for (char *w = strtok_r(copy, ",", &save); w && rc == 0;
	     w = strtok_r(NULL, ",", &save))
		rc = one_opt(h, w);
	free(copy);
	return rc;
}

int mount_helper_main(int argc, char **argv)
{
	struct helper_args h;
	const char *pos[2] = {NULL, NULL};
	bool fake = false, verbose = false;
	int npos = 0, rc = EXIT_USAGE;

	memset(&h, 0, sizeof(h));
	h.env_file = ENV_FILE;
	if (push(&h, "mount") < 0)
		return EXIT_ERR;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-o") == 0 || strcmp(a, "-t") == 0 ||
		    strcmp(a, "-N") == 0) {
			if (i + 1 >= argc) {
				log_error("mount.tessera: %s needs a value", a);
				goto out;
			}
			if (a[1] == 'o' && parse_opts(&h, argv[i + 1]) < 0) {
				rc = EXIT_ERR;
				goto out;
			}
			i++;
		} else if (strncmp(a, "-o", 2) == 0) {
			if (parse_opts(&h, a + 2) < 0) {
				rc = EXIT_ERR;
				goto out;
			}
		} else if (a[0] == '-' && a[1] && strspn(a + 1, "sfnvi") ==
							strlen(a + 1)) {
			fake |= strchr(a, 'f') != NULL;
			verbose |= strchr(a, 'v') != NULL;
		} else if (a[0] == '-' && a[1]) {
			log_error("mount.tessera: unknown option '%s'", a);
			goto out;
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			log_error("mount.tessera: unexpected argument '%s'", a);
			goto out;
		}
	}
	if (npos < 2) {
		log_error("usage: mount.tessera VOLUME MOUNTPOINT [-o OPTIONS]");
		goto out;
	}
	if (read_env_file(h.env_file, h.env_file_set) < 0) {
		rc = EXIT_ERR;
		goto out;
	}
	if (push(&h, pos[0]) < 0 || push(&h, pos[1]) < 0 ||
	    (h.fuse_len && (push(&h, "-o") < 0 || push(&h, h.fuse_opts) < 0))) {
		rc = EXIT_ERR;
		goto out;
	}
	if (verbose || fake) {
		fprintf(stderr, "mount.tessera: tessera");
		for (int i = 0; i < h.argc; i++)
			fprintf(stderr, " %s", h.argv[i]);
		fputc('\n', stderr);
	}
	rc = fake ? EXIT_OK : cmd_mount(h.argc, h.argv);
out:
	for (int i = 0; i < h.argc; i++)
		free(h.argv[i]);
	return rc;
}

int umount_helper_main(int argc, char **argv)
{
	char *args[4];
	int n = 0;
	const char *dir = NULL;
	bool lazy = false;

	args[n++] = (char *)"umount";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-t") == 0 || strcmp(a, "-N") == 0) {
			i++;
		} else if (a[0] == '-' && a[1]) {
			lazy |= strchr(a, 'l') != NULL;
		} else if (!dir) {
			dir = a;
		} else {
			log_error("umount.tessera: unexpected argument '%s'",
				  a);
			return EXIT_USAGE;
		}
	}
	if (!dir) {
		log_error("usage: umount.fuse.tessera MOUNTPOINT [-l]");
		return EXIT_USAGE;
	}
	args[n++] = (char *)dir;
	if (lazy)
		args[n++] = (char *)"--force";
	args[n] = NULL;
	return cmd_umount(n, args);
}
