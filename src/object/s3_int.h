/*
 * s3_int.h - private pieces of the S3 store, shared by store_s3.c and
 * s3_sign.c and exposed to the unit tests: AWS Signature Version 4, the
 * RFC 3986 encoding its canonical requests use, and the minimal XML reading
 * of S3 responses.  Nothing here touches the network; every function is a
 * pure computation over its arguments.  Any thread.
 */
#ifndef TESSERA_OBJECT_S3_INT_H
#define TESSERA_OBJECT_S3_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "object/object.h"
#include "util/buf.h"

/* Hex SHA-256 of the empty string: the payload hash of bodiless requests. */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* One header or query parameter (borrowed strings). */
struct s3_pair {
	const char *name;
	const char *value;
};

/* What SigV4 signs.  Every string is borrowed for the call. */
struct s3_sign_in {
	const char *method;          /* "GET", "PUT", ... */
	const char *canon_path;      /* URI-encoded path, e.g. "/b/a%20b" */
	const char *canon_query;     /* from s3_canon_query(), "" if none */
	const struct s3_pair *hdrs;  /* headers to sign, any case, any order;
				      * must include host, x-amz-date and
				      * x-amz-content-sha256 */
	size_t nhdrs;
	const char *payload_hash;    /* hex SHA-256 of the body */
	const char *amz_date;        /* "YYYYMMDDTHHMMSSZ" (UTC) */
	const char *region;          /* e.g. "us-east-1" */
	const char *access_key;
	const char *secret_key;
};

/**
 * Compute the SigV4 signature of @in.  Appends the value of the
 * Authorization header ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=...") to @auth and writes the hex signature (64 chars + NUL)
 * to @sig.  Returns 0, -EINVAL (malformed date, too many headers) or
 * -ENOMEM.
 */
int s3_sign(const struct s3_sign_in *in, struct buf *auth, char sig[65]);

/** Hex SHA-256 of @len bytes at @data into @hex (64 chars + NUL). */
void s3_sha256_hex(const void *data, size_t len, char hex[65]);

/**
 * Append @s (@n bytes) to @out percent-encoded per RFC 3986 as SigV4 wants:
 * A-Z a-z 0-9 - . _ ~ stay, every other byte becomes %XX (upper-case hex);
 * '/' stays when @keep_slash (object paths) and is encoded otherwise (query
 * names and values).  Returns 0 or -ENOMEM.
 */
int s3_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash);

/**
 * Append the canonical query string of @params to @out: names and values
 * encoded with s3_uri_encode, sorted by encoded name (then value), joined
 * as "n1=v1&n2=v2" ("n=" for an empty value).  The same string serves as
 * the query of the request URL.  Returns 0 or -ENOMEM.
 */
int s3_canon_query(struct buf *out, const struct s3_pair *params, size_t n);

/**
 * Find the first element <@tag>...</@tag> in [@p, @end).  Returns a pointer
 * to its raw content and its length in *@len, or NULL.  With @after, also
 * the position just past the closing tag (for iteration).
 */
const char *s3_xml_find(const char *p, const char *end, const char *tag,
			size_t *len, const char **after);

/**
 * Append the XML text [@p, @p + @n) to @out with the five named entities
 * (&amp; &lt; &gt; &quot; &apos;) and numeric references (&#N; &#xH;,
 * written as UTF-8) decoded.  Returns 0, -EINVAL for a malformed reference
 * or -ENOMEM.
 */
int s3_xml_text(struct buf *out, const char *p, size_t n);

/**
 * Parse an ISO 8601 UTC time like "2013-09-17T18:07:53.000Z" into
 * nanoseconds since the epoch.  Returns 0 or -EINVAL (malformed, or out
 * of int64 nanoseconds: before 1677-09-21 or after 2262-04-11).
 */
int s3_parse_iso8601(const char *p, size_t n, int64_t *out_ns);

/**
 * Parse a ListObjectsV2 result (@xml, @n bytes) into @out (which is reset
 * first): keys that start with @strip are added without it, others are
 * skipped; IsTruncated and NextContinuationToken fill truncated and
 * next_token (which stays NULL when a truncated page carries no token: the
 * caller then continues after the last key).  Returns 0, -EIO for a
 * document that is not a listing, or
 * -ENOMEM.
 */
int s3_parse_list(const char *xml, size_t n, const char *strip,
		  struct obj_list *out);

/* Credentials of a store; every member may be NULL (anonymous). */
struct s3_creds {
	char *access_key;
	char *secret_key;
	char *token; /* session token */
};

/**
 * Fill @c (zeroed by the caller) from TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY,
 * else the 0600 file named by TESSERA_S3_CREDENTIALS_FILE, else
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN), else leave
 * it empty.  Returns 0; -EACCES for a file other users can access; -EINVAL
 * for a malformed file or half a pair in the environment; -ENOENT etc. when
 * the file cannot be read; -ENOMEM.  Each error is logged once, without any
 * secret.  Release with s3_creds_release() in every case.  Startup only
 * (reads the environment).
 */
int s3_creds_load(struct s3_creds *c);

/** Free @c, wiping the secret. */
void s3_creds_release(struct s3_creds *c);

#endif
