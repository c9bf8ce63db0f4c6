/*
 * cmd_status.c - `tessera status VOLUME [--json]`: settings, usage, sessions.
 *
 * Sessions are listed as their records say, with "stale" for those silent
 * past their expiry; status only reads: cleaning them is the mounts' job.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "meta/meta.h"
#include "util/log.h"
#include "util/url.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>

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

static json_t *sessions_json(const struct meta_session *s, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_pack(
			"{s:I, s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:b, "
			"s:I, s:I}",
			"id", (json_int_t)s[i].sid, "host", s[i].host, "pid",
			(json_int_t)s[i].pid, "mountpoint", s[i].mountpoint,
			"version", s[i].version, "start",
			(json_int_t)s[i].start_ns, "heartbeat",
			(json_int_t)s[i].heartbeat_ns, "heartbeat_ms",
			(json_int_t)s[i].heartbeat_ms, "expiry_ms",
			(json_int_t)s[i].expiry_ms, "stale", (int)s[i].stale,
			"sustained", (json_int_t)s[i].sustained, "locks",
			(json_int_t)s[i].locks);

		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *status_json(const struct meta_format *f,
			   const struct meta_statfs *st,
			   const struct meta_session *s, size_t ns)
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
	json_object_set_new(root, "sessions", sessions_json(s, ns));
	return root;
}

static void print_sessions(const struct meta_session *s, size_t n)
{
	int64_t now = 0;
	struct timespec ts;
	char when[64];

	if (n == 0) {
		printf("sessions:    none\n");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
	printf("sessions:    %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		time_t start = (time_t)(s[i].start_ns / 1000000000LL);
		struct tm tm;

		localtime_r(&start, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		printf("  %llu: %s pid %u '%s' (v%s), since %s, heartbeat "
		       "%lld s ago%s, %llu locks, %llu unlinked open\n",
		       (unsigned long long)s[i].sid, s[i].host, s[i].pid,
		       s[i].mountpoint, s[i].version, when,
		       (long long)((now - s[i].heartbeat_ns) / 1000000000LL),
		       s[i].stale ? " (stale)" : "",
		       (unsigned long long)s[i].locks,
		       (unsigned long long)s[i].sustained);
	}
}

static void print_text(const struct meta_format *f,
		       const struct meta_statfs *st,
		       const struct meta_session *s, size_t ns)
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
	print_sessions(s, ns);
}

int cmd_status(int argc, char **argv)
{
	struct meta_format f;
	struct meta_statfs st;
	struct meta *m = NULL;
	struct meta_session *sess = NULL;
	size_t nsess = 0;
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
	if (rc < 0) {
		meta_close(m);
		log_fail(rc, "cannot read usage of volume '%s'", f.name);
		return EXIT_ERR;
	}
	rc = meta_sessions(m, &sess, &nsess);
	meta_close(m);
	if (rc < 0) {
		log_fail(rc, "cannot list the sessions of volume '%s'", f.name);
		return EXIT_ERR;
	}
	if (!json) {
		print_text(&f, &st, sess, nsess);
		free(sess);
		return EXIT_OK;
	}
	j = status_json(&f, &st, sess, nsess);
	free(sess);
	if (!j) {
		log_error("cannot encode status as JSON");
		return EXIT_ERR;
	}
	json_dumpf(j, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(j);
	return EXIT_OK;
}
