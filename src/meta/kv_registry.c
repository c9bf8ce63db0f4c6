/*
 * kv_registry.c - the metadata engines by URL scheme: the one list that
 * kv_open, url_parse and the CLI consult (kv.h).
 */
#include "util/common.h"
#include "meta/kv.h"

#include <ctype.h>

static const struct kv_engine_class engines[] = {
	{
		/* name, need_host, no_host, need_user, need_path, db_number,
		 * no_userinfo */
		.url = {"sqlite3", 0, 1, 0, 1, 0, 1, 0},
		.form = "sqlite3:///abs/path.db",
		.flags = KV_ENG_FILE,
		.open = kv_sqlite_open,
	},
	{
		.url = {"redis", 1, 0, 0, 0, 1, 0, 0},
		.form = "redis://[user:pass@]host[:port][/db]",
		.open = kv_redis_open,
	},
	{
		.url = {"postgres", 1, 0, 1, 1, 0, 0, 0},
		.form = "postgres://user[:pass]@host[:port]/db",
		.open = kv_pg_open,
	},
	{
		.url = {"postgresql", 1, 0, 1, 1, 0, 0, 0},
		.form = "postgresql://user[:pass]@host[:port]/db",
		.open = kv_pg_open,
	},
	{
		.url = {"mysql", 1, 0, 1, 1, 0, 0, 0},
		.form = "mysql://user[:pass]@host[:port]/db",
		.open = kv_mysql_open,
	},
	{
		/* ..., host_list: host:port[,host:port...] */
		.url = {"etcd", 1, 0, 0, 0, 0, 0, 1},
		.form = "etcd://[user:pass@]host:port[,host:port...][/prefix]",
		.open = kv_etcd_open,
	},
	{
		.url = {"etcds", 1, 0, 0, 0, 0, 0, 1},
		.form = "etcds://[user:pass@]host:port[,host:port...][/prefix]",
		.open = kv_etcd_open,
	},
};

const struct kv_engine_class *kv_engines(size_t *n)
{
	*n = ARRAY_SIZE(engines);
	return engines;
}

const struct kv_engine_class *kv_engine_find(const char *scheme)
{
	for (size_t i = 0; i < ARRAY_SIZE(engines); i++)
		if (strcmp(engines[i].url.name, scheme) == 0)
			return &engines[i];
	return NULL;
}

const struct kv_engine_class *kv_engine_for_url(const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL;
	char scheme[16];
	size_t n;

	if (!p || p == url || (size_t)(p - url) >= sizeof(scheme))
		return NULL;
	n = (size_t)(p - url);
	for (size_t i = 0; i < n; i++)
		scheme[i] = (char)tolower((unsigned char)url[i]);
	scheme[n] = '\0';
	return kv_engine_find(scheme);
}

bool kv_url_is_file(const char *url)
{
	const struct kv_engine_class *c = kv_engine_for_url(url);

	return c && (c->flags & KV_ENG_FILE);
}

const struct url_rule *url_meta_rule(const char *scheme)
{
	const struct kv_engine_class *c = kv_engine_find(scheme);

	return c ? &c->url : NULL;
}
