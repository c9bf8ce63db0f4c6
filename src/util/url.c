/*
 * url.c - URL parser.  Grammar: scheme "://" [userinfo "@"] [host [":" port]]
 * [path] ["?" query].  Scheme rules (what is required) are checked after
 * the generic split, so every scheme reports the same kind of reason.
 */
#include "util/common.h"
#include "util/url.h"

#include <ctype.h>

int url_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decode %XX escapes of [p, p+n) into a new string; NULL on a bad escape. */
char *url_pct_decode(const char *p, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%') {
			int hi, lo;

			if (i + 2 >= n) {
				free(out);
				return NULL;
			}
			hi = url_hexval((unsigned char)p[i + 1]);
			lo = url_hexval((unsigned char)p[i + 2]);
			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = p[i];
		}
	}
	out[o] = '\0';
	return out;
}

int url_is_url(const char *s)
{
	const char *p = s;

	if (!isalpha((unsigned char)*p))
		return 0;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' ||
	       *p == '.')
		p++;
	return strncmp(p, "://", 3) == 0;
}

/* Object-store schemes come from the store registry (object/object.c),
 * metadata schemes from the engine registry (meta/kv_registry.c). */
static const struct url_rule *find_rule(const char *scheme)
{
	const struct url_rule *r = url_store_rule(scheme);

	return r ? r : url_meta_rule(scheme);
}

static int split_scheme(const char *s, struct url *u, const char **rest,
			const char **why)
{
	const char *p = strstr(s, "://");
	size_t n;

	if (!p || p == s) {
		*why = "missing scheme (expected scheme://...)";
		return -EINVAL;
	}
	n = (size_t)(p - s);
	if (n >= sizeof(u->scheme)) {
		*why = "unknown scheme";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		u->scheme[i] = (char)tolower((unsigned char)s[i]);
	u->scheme[n] = '\0';
	*rest = p + 3;
	return 0;
}

static int parse_userinfo(const char *p, size_t n, struct url *u,
			  const char **why)
{
	const char *colon = memchr(p, ':', n);
	size_t ulen = colon ? (size_t)(colon - p) : n;

	u->user = url_pct_decode(p, ulen);
	if (colon)
		u->pass = url_pct_decode(colon + 1, n - ulen - 1);
	if (!u->user || (colon && !u->pass)) {
		*why = "bad percent-escape in user or password";
		return -EINVAL;
	}
	if (!*u->user) {
		free(u->user);
		u->user = NULL;
	}
	return 0;
}

static int parse_port(const char *p, size_t n, struct url *u, const char **why)
{
	long v = 0;

	if (n == 0 || n > 5) {
		*why = "bad port";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i])) {
			*why = "bad port";
			return -EINVAL;
		}
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535) {
		*why = "port out of range";
		return -EINVAL;
	}
	u->port = (int)v;
	return 0;
}

static int parse_hostport(const char *p, size_t n, struct url *u,
			  const char **why)
{
	const char *colon;
	size_t hlen;

	if (n == 0)
		return 0;
	if (p[0] == '[') {
		const char *end = memchr(p, ']', n);

		if (!end) {
			*why = "unterminated IPv6 address";
			return -EINVAL;
		}
		if (end == p + 1 ||
		    strspn(p + 1, "0123456789abcdefABCDEF:.") !=
			    (size_t)(end - p - 1)) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
		u->host = strndup(p + 1, (size_t)(end - p - 1));
		if (!u->host)
			return -ENOMEM;
		hlen = (size_t)(end - p + 1);
		if (hlen < n && p[hlen] != ':') {
			*why = "bad host";
			return -EINVAL;
		}
		if (hlen < n)
			return parse_port(p + hlen + 1, n - hlen - 1, u, why);
		return 0;
	}
	colon = memchr(p, ':', n);
	hlen = colon ? (size_t)(colon - p) : n;
	for (size_t i = 0; i < hlen; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_') {
			*why = "bad character in host";
			return -EINVAL;
		}
	}
	if (hlen == 0) {
		*why = "missing host";
		return -EINVAL;
	}
	u->host = strndup(p, hlen);
	if (!u->host)
		return -ENOMEM;
	if (colon)
		return parse_port(colon + 1, n - hlen - 1, u, why);
	return 0;
}

/*
 * A host_list authority: each comma-separated element must be a valid
 * host[:port]; u->host gets the list as written.
 */
static int parse_hostlist(const char *p, size_t n, struct url *u,
			  const char **why)
{
	const char *end = p + n;

	for (const char *q = p; q <= end;) {
		const char *c = memchr(q, ',', (size_t)(end - q));
		size_t len = c ? (size_t)(c - q) : (size_t)(end - q);
		struct url one;
		int rc;

		memset(&one, 0, sizeof(one));
		if (len == 0) {
			*why = "empty host in the list";
			return -EINVAL;
		}
		rc = parse_hostport(q, len, &one, why);
		free(one.host);
		if (rc < 0)
			return rc;
		q += len + 1;
	}
	u->host = strndup(p, n);
	return u->host ? 0 : -ENOMEM;
}

static int check_rule(const struct url *u, const struct url_rule *r,
		      const char **why)
{
	if (r->no_userinfo && (u->user || u->pass)) {
		*why = "credentials are not allowed in this URL (use the environment)";
		return -EINVAL;
	}
	if (r->need_host && !u->host) {
		*why = "missing host";
		return -EINVAL;
	}
	if (r->no_host && u->host) {
		*why = "expected an absolute path after '://' (three slashes)";
		return -EINVAL;
	}
	if (r->need_user && !u->user) {
		*why = "missing user";
		return -EINVAL;
	}
	if (r->need_path && (u->path[0] != '/' || u->path[1] == '\0')) {
		*why = strcmp(r->name, "http") == 0 ||
				       strcmp(r->name, "https") == 0
			       ? "missing bucket in path"
			       : "missing path";
		return -EINVAL;
	}
	if (r->db_number && u->path[0]) {
		const char *d = u->path + 1;

		if (*d == '\0' && u->path[0] == '/')
			return 0;
		for (; *d; d++) {
			if (!isdigit((unsigned char)*d)) {
				*why = "database must be a number";
				return -EINVAL;
			}
		}
		if (strlen(u->path + 1) > 5) {
			*why = "database must be a number";
			return -EINVAL;
		}
	}
	return 0;
}

int url_parse(const char *s, struct url *out, const char **why)
{
	const char *dummy;
	const char *rest, *auth_end, *at, *q;
	const struct url_rule *r;
	struct url u;
	int rc;

	if (!why)
		why = &dummy;
	memset(&u, 0, sizeof(u));
	if (!s || !*s) {
		*why = "empty URL";
		return -EINVAL;
	}
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f) {
			*why = "control character in URL";
			return -EINVAL;
		}
	}
	rc = split_scheme(s, &u, &rest, why);
	if (rc < 0)
		return rc;
	r = find_rule(u.scheme);
	if (!r) {
		*why = "unknown scheme";
		return -EINVAL;
	}
	auth_end = rest + strcspn(rest, "/?");
	at = NULL;
	for (const char *c = rest; c < auth_end; c++)
		if (*c == '@')
			at = c;
	if (at) {
		rc = parse_userinfo(rest, (size_t)(at - rest), &u, why);
		if (rc < 0)
			goto fail;
		rest = at + 1;
	}
	if (r->host_list && memchr(rest, ',', (size_t)(auth_end - rest)))
		rc = parse_hostlist(rest, (size_t)(auth_end - rest), &u, why);
	else
		rc = parse_hostport(rest, (size_t)(auth_end - rest), &u, why);
	if (rc < 0)
		goto fail;
	q = strchr(auth_end, '?');
	u.path = q ? strndup(auth_end, (size_t)(q - auth_end))
		   : strdup(auth_end);
	if (q)
		u.query = strdup(q + 1);
	if (!u.path || (q && !u.query)) {
		rc = -ENOMEM;
		*why = "out of memory";
		goto fail;
	}
	rc = check_rule(&u, r, why);
	if (rc < 0)
		goto fail;
	*out = u;
	return 0;
fail:
	if (rc == -ENOMEM)
		*why = "out of memory";
	url_release(&u);
	return rc;
}

void url_release(struct url *u)
{
	free(u->user);
	free(u->pass);
	free(u->host);
	free(u->path);
	free(u->query);
	memset(u, 0, sizeof(*u));
}

char *url_redact(const char *in, char *out, size_t n)
{
	const char *p, *auth_end, *at = NULL, *colon;
	size_t len;

	if (n == 0)
		return out;
	p = in ? strstr(in, "://") : NULL;
	if (!p) {
		snprintf(out, n, "%s", in ? in : "");
		return out;
	}
	p += 3;
	auth_end = p + strcspn(p, "/?");
	for (const char *c = p; c < auth_end; c++)
		if (*c == '@')
			at = c;
	colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
	if (!colon) {
		snprintf(out, n, "%s", in);
		return out;
	}
	len = (size_t)(colon - in) + 1;
	snprintf(out, n, "%.*s****%s", (int)len, in, at);
	return out;
}
