/*
 * t_url.c - URL parsing and redaction, including malformed input.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "object/object.h"
#include "util/url.h"

static void test_url_sqlite(void **state)
{
	struct url u;

	(void)state;
	assert_int_equal(url_parse("sqlite3:///var/lib/x/meta.db", &u, NULL), 0);
	assert_string_equal(u.scheme, "sqlite3");
	assert_null(u.host);
	assert_string_equal(u.path, "/var/lib/x/meta.db");
	url_release(&u);
}

static void test_url_redis(void **state)
{
	struct url u;

	(void)state;
	assert_int_equal(url_parse("redis://alice:s%40cret@h1:6380/3", &u, NULL), 0);
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.pass, "s@cret");
	assert_string_equal(u.host, "h1");
	assert_int_equal(u.port, 6380);
	assert_string_equal(u.path, "/3");
	url_release(&u);
	assert_int_equal(url_parse("redis://localhost", &u, NULL), 0);
	assert_int_equal(u.port, 0);
	url_release(&u);
	assert_int_equal(url_parse("redis://[::1]:6379/0", &u, NULL), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 6379);
	url_release(&u);
}

static void test_url_postgres(void **state)
{
	struct url u;

	(void)state;
	assert_int_equal(url_parse("postgres://bob:pw@db.local:5432/vol", &u, NULL), 0);
	assert_string_equal(u.user, "bob");
	assert_string_equal(u.pass, "pw");
	assert_string_equal(u.path, "/vol");
	url_release(&u);
}

static void test_url_storage(void **state)
{
	struct url u;

	(void)state;
	assert_int_equal(url_parse("file:///srv/objs/", &u, NULL), 0);
	url_release(&u);
	assert_int_equal(url_parse("s3://bucket/prefix", &u, NULL), 0);
	assert_string_equal(u.host, "bucket");
	url_release(&u);
	assert_int_equal(url_parse("http://127.0.0.1:4568/bkt", &u, NULL), 0);
	assert_int_equal(u.port, 4568);
	assert_string_equal(u.path, "/bkt");
	url_release(&u);
}

static void test_url_malformed(void **state)
{
	static const char *bad[] = {
		"", "sqlite3://", "sqlite3://host/x.db", "nosuch://x",
		"redis://", "redis://h:0/", "redis://h:99999/",
		"redis://h:12a/", "redis://h/abc", "postgres://host/db",
		"postgres://u@host", "file://relative/dir", "file://",
		"http://host", "http://host:80/", "just-a-name",
		"redis://h%zz:pw@x/", "redis://[::1/", "://x",
		"s3://", "redis://a b/", "http://u:p@host/bkt",
		"redis://u:%4@host/",
		/* empty or non-address brackets (fuzz_url) */
		"s3://[]/x", "redis://[]:6379", "https://[a b]/bkt",
	};
	struct url u;
	const char *why;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		why = NULL;
		if (url_parse(bad[i], &u, &why) == 0)
			fail_msg("accepted malformed URL '%s'", bad[i]);
		assert_non_null(why);
	}
}

static void test_url_redact(void **state)
{
	char out[256];

	(void)state;
	assert_string_equal(url_redact("redis://u:secret@h:1/2", out, sizeof(out)),
			    "redis://u:****@h:1/2");
	assert_string_equal(url_redact("postgres://u:p@w@h/db", out, sizeof(out)),
			    "postgres://u:****@h/db");
	assert_string_equal(url_redact("redis://h:1/2", out, sizeof(out)),
			    "redis://h:1/2");
	assert_string_equal(url_redact("not a url", out, sizeof(out)), "not a url");
	assert_null(strstr(url_redact("redis://:topsecret@h/", out, sizeof(out)),
			   "topsecret"));
}

/* The store registry is the one list of object-store schemes: the URL
 * parser, obj_open and the CLI agree on it. */
static void test_url_store_registry(void **state)
{
	const struct obj_scheme *c;
	struct url u;
	const char *why = NULL;

	(void)state;
	c = obj_scheme_find("S3");
	assert_non_null(c);
	assert_string_equal(c->name, "s3");
	assert_ptr_equal(url_store_rule("https"), &obj_scheme_find("https")->url);
	assert_null(obj_scheme_find("redis"));
	assert_null(url_store_rule("sqlite3"));
	assert_true(obj_is_store_url("s3://b/p/vol"));
	assert_true(obj_is_store_url("FILE:///tmp/x"));
	assert_true(obj_is_store_url("http://127.0.0.1:9/b"));
	assert_false(obj_is_store_url("redis://h/1"));
	assert_false(obj_is_store_url("sqlite3:///x.db"));
	assert_false(obj_is_store_url("s3:/b"));
	assert_false(obj_is_store_url("vol"));
	/* The rule comes from the registry: s3:// needs a host (the bucket). */
	assert_int_equal(url_parse("s3:///nobucket", &u, &why), -EINVAL);
	assert_int_equal(url_parse("ftp://h/x", &u, &why), -EINVAL);
	assert_string_equal(why, "unknown scheme");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_sqlite),
		cmocka_unit_test(test_url_redis),
		cmocka_unit_test(test_url_postgres),
		cmocka_unit_test(test_url_storage),
		cmocka_unit_test(test_url_malformed),
		cmocka_unit_test(test_url_redact),
		cmocka_unit_test(test_url_store_registry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
