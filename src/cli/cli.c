/*
 * cli.c - helpers shared by subcommands: usage errors, sizes, volume names.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "util/log.h"
#include "util/url.h"
#include "meta/meta.h"
#include "object/object.h"

#include <getopt.h>
#include <time.h>

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "tessera %s: %s (see 'tessera %s --help')\n",
			cmd, msg, cmd);
	else
		fprintf(stderr, "tessera: %s (see 'tessera --help')\n", msg);
	return EXIT_USAGE;
}

int cli_help(const char *cmd)
{
	for (unsigned i = 0; i < cli_ncmds; i++) {
		if (strcmp(cli_cmds[i].name, cmd) == 0) {
			fputs(cli_cmds[i].usage, stdout);
			return EXIT_OK;
		}
	}
	return EXIT_USAGE;
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return true;
	}
	return false;
}

int cli_parse_uint(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0)
		return -EINVAL;
	*out = v;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mul = 1;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || !isfinite(v) || v < 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mul = KiB;
		break;
	case 'M':
		mul = MiB;
		break;
	case 'G':
		mul = GiB;
		break;
	case 'T':
		mul = 1024 * GiB;
		break;
	case 'B':
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0 ||
		    *end == '\0')
			;
		else if (mul == 1 && *end == '\0')
			;
		else
			return -EINVAL;
	}
	if (v * (double)mul > 1.8e19)
		return -EINVAL;
	*out = (uint64_t)(v * (double)mul);
	return 0;
}

const char *cli_home(void)
{
	static char home[1024];
	const char *h = getenv("TESSERA_HOME");

	if (h && *h)
		return h;
	if (geteuid() == 0)
		return "/var/lib/tessera";
	h = getenv("HOME");
	snprintf(home, sizeof(home), "%s/.local/share/tessera", h ? h : "/tmp");
	return home;
}

int cli_check_name(const char *name, const char **why)
{
	size_t n = strlen(name);

	if (n == 0 || n > 63) {
		*why = "a volume name has 1 to 63 characters";
		return -EINVAL;
	}
	if (name[0] == '.' || name[0] == '-') {
		*why = "a volume name cannot start with '.' or '-'";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
			*why = "a volume name may use only letters, digits, "
			       "'.', '_' and '-'";
			return -EINVAL;
		}
	}
	return 0;
}

static bool is_storage_url(const char *arg)
{
	return obj_is_store_url(arg);
}

/* STORAGE-URL/NAME: split into the store's URL and the volume name. */
static int resolve_from_store(const char *arg, struct cli_volume *out)
{
	const char *q = strchr(arg, '?'), *why = NULL;
	size_t len = q ? (size_t)(q - arg) : strlen(arg), cut;
	char red[1200];
	struct url u;

	url_redact(arg, red, sizeof(red));
	while (len > 0 && arg[len - 1] == '/')
		len--;
	for (cut = len; cut > 0 && arg[cut - 1] != '/'; cut--)
		;
	if (cut == 0 || cut == len || len - cut >= sizeof(out->name) ||
	    strstr(arg, "://") + 3 >= arg + cut) {
		log_error("invalid volume '%s': expected STORAGE-URL/NAME", red);
		return -EINVAL;
	}
	memcpy(out->name, arg + cut, len - cut);
	out->name[len - cut] = '\0';
	if (cli_check_name(out->name, &why) < 0) {
		log_error("invalid volume name '%s' in '%s': %s", out->name, red,
			  why);
		return -EINVAL;
	}
	while (cut > 0 && arg[cut - 1] == '/')
		cut--;
	snprintf(out->storage_url, sizeof(out->storage_url), "%.*s%s",
		 (int)cut, arg, q ? q : "");
	if (url_parse(out->storage_url, &u, &why) < 0) {
		log_error("invalid storage URL in '%s': %s", red, why);
		return -EINVAL;
	}
	url_release(&u);
	snprintf(out->meta_url, sizeof(out->meta_url), "sqlite3://%s/%s/meta.db",
		 cli_home(), out->name);
	out->embedded = true;
	out->from_store = true;
	return 0;
}

int cli_resolve_volume(const char *arg, struct cli_volume *out)
{
	const char *why = NULL;
	char red[1200];

	memset(out, 0, sizeof(*out));
	if (url_is_url(arg) && is_storage_url(arg))
		return resolve_from_store(arg, out);
	if (url_is_url(arg) || strstr(arg, "://")) {
		struct url u;

		if (url_parse(arg, &u, &why) < 0) {
			log_error("invalid URL '%s': %s",
				  url_redact(arg, red, sizeof(red)), why);
			return -EINVAL;
		}
		url_release(&u);
		snprintf(out->meta_url, sizeof(out->meta_url), "%s", arg);
		return 0;
	}
	if (cli_check_name(arg, &why) < 0) {
		log_error("invalid volume name '%s': %s", arg, why);
		return -EINVAL;
	}
	snprintf(out->name, sizeof(out->name), "%s", arg);
	snprintf(out->meta_url, sizeof(out->meta_url), "sqlite3://%s/%s/meta.db",
		 cli_home(), arg);
	snprintf(out->storage_url, sizeof(out->storage_url),
		 "file://%s/%s/objects/", cli_home(), arg);
	out->embedded = true;
	return 0;
}

int cli_open_volume(const char *arg, struct cli_volume *vol, struct meta **m,
		    struct meta_format *f)
{
	struct cli_open_opts o = {.write = false};
	struct cli_vol cv;
	int rc = cli_vol_open(arg, &o, &cv, f);

	if (rc < 0)
		return rc;
	if (vol)
		*vol = cv.vol;
	rc = cli_vol_meta(&cv, m);
	cli_vol_close(&cv);
	return rc;
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const void *longopts,
	       int (*fn)(void *arg, int c, const char *optval), void *arg,
	       const char **pos, int max, int *npos)
{
	char spec[64];
	int c, rc;

	snprintf(spec, sizeof(spec), ":%s", shortopts ? shortopts : "");
	opterr = 0;
	optind = 1;
	*npos = 0;
	for (;;) {
		c = getopt_long(argc, argv, spec,
				(const struct option *)longopts, NULL);
		if (c == -1)
			break;
		if (c == '?')
			return cli_usage_error(cmd, "unknown option '%s'",
					       argv[optind - 1]);
		if (c == ':')
			return cli_usage_error(cmd, "option '%s' needs a value",
					       argv[optind - 1]);
		rc = fn(arg, c, optarg);
		if (rc)
			return rc;
	}
	for (int i = optind; i < argc; i++) {
		if (*npos == max)
			return cli_usage_error(cmd, "unexpected argument '%s'",
					       argv[i]);
		pos[(*npos)++] = argv[i];
	}
	return 0;
}

int cli_live_opt(const char *cmd, int c, const char *val, double *interval,
		 uint64_t *count)
{
	if (c == CLI_OPT_INTERVAL) {
		if (cli_parse_double(val, interval) < 0 ||
		    !(*interval >= 0.1 && *interval <= 3600))
			return cli_usage_error(
				cmd, "invalid --interval '%s' (0.1 to 3600 s)",
				val);
		return 0;
	}
	if (c == CLI_OPT_COUNT) {
		if (cli_parse_uint(val, count) < 0 || *count == 0)
			return cli_usage_error(cmd, "invalid --count '%s'",
					       val);
		return 0;
	}
	return -1;
}

double cli_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
