/*
 * url.h - parsing and redaction of the URLs Tessera accepts (DESIGN section 2).
 *
 *   file:///abs/dir/   s3://bucket[/prefix]   http[s]://host[:port]/bucket[/prefix]
 *   and the metadata schemes of the engine registry (meta/kv_registry.c):
 *   sqlite3:///abs/path.db, redis://, postgres://, mysql://...
 *
 * Percent-escapes in user and password are decoded.  Every string in a parsed
 * url is owned by it and freed by url_release().  Nothing here touches the
 * network.  Any thread.
 */
#ifndef TESSERA_UTIL_URL_H
#define TESSERA_UTIL_URL_H

#include <stddef.h>

/* What a scheme requires of a URL (checked after the generic split). */
struct url_rule {
	const char *name;
	unsigned need_host : 1;
	unsigned no_host : 1;
	unsigned need_user : 1;
	unsigned need_path : 1;   /* non-empty path beyond "/" */
	unsigned db_number : 1;   /* path is "/N" or empty */
	unsigned no_userinfo : 1;
	unsigned host_list : 1;   /* host:port[,host:port...]: host holds
				   * the list as written, port is 0 */
};

/**
 * The rule of metadata scheme @scheme, NULL when no engine has it.  Defined
 * by the engine registry (meta/kv_registry.c), so the schemes are listed
 * once.
 */
const struct url_rule *url_meta_rule(const char *scheme);

/**
 * The rule of object-store scheme @scheme, NULL when no store has it.
 * Defined by the store registry (object/object.c).
 */
const struct url_rule *url_store_rule(const char *scheme);

struct url {
	char scheme[16];  /* lower-case, e.g. "sqlite3" */
	char *user;       /* NULL when absent */
	char *pass;       /* NULL when absent; never print it */
	char *host;       /* NULL when absent; IPv6 without brackets; a
			   * host_list scheme's "h1:p1,h2:p2" list */
	int port;         /* 0 when absent */
	char *path;       /* "" when absent; starts with '/' otherwise */
	char *query;      /* NULL when absent; text after '?' */
};

/**
 * Parse and validate @s for its scheme.  On success fills *out (release with
 * url_release) and returns 0.  On failure returns -EINVAL and, when @why is
 * not NULL, points it at a static reason ("missing host", "unknown scheme").
 */
int url_parse(const char *s, struct url *out, const char **why);

void url_release(struct url *u);

/**
 * Copy @in to @out (size @n) with any password replaced by "****".  Works on
 * malformed input too (best effort), so error messages can always use it.
 * Returns @out.
 */
char *url_redact(const char *in, char *out, size_t n);

/** Value of hex digit @c, or -1. */
int url_hexval(int c);

/** Decode %XX escapes of [p, p+n) into a new string (caller frees); NULL
 *  on a bad escape or ENOMEM. */
char *url_pct_decode(const char *p, size_t n);

/** True when @s looks like a URL ("scheme://"). */
int url_is_url(const char *s);

#endif
