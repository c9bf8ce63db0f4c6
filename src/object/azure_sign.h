/*
 * azure_sign.h - Azure Blob Shared Key signature (building block of the
 * Azure store of issue #22; the store itself is not written yet).
 *
 * The caller builds the string-to-sign (verb, the eleven standard headers,
 * Range, canonicalized x-ms-* headers, canonicalized resource); this turns
 * it into the signature: base64(HMAC-SHA256(base64-decoded key, sts)).
 * Pure computation, any thread.
 */
#ifndef TESSERA_OBJECT_AZURE_SIGN_H
#define TESSERA_OBJECT_AZURE_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/** Base64 length of a 32-byte HMAC plus NUL. */
#define AZURE_SIG_LEN 45

/**
 * Sign @sts with the account key @key_b64 (base64, as the portal and
 * connection strings give it) into @sig.  0, or -EINVAL when the key is
 * not valid base64 or decodes to nothing.
 */
int azure_shared_key_sign(const char *key_b64, const char *sts,
			  char sig[AZURE_SIG_LEN]);

/* A header or query parameter of a request to sign. */
struct azure_pair {
	const char *name;
	const char *value;
};

/* What of a request the string-to-sign covers (NULL = header absent). */
struct azure_req {
	const char *verb;            /* "GET", "PUT", ... */
	uint64_t content_length;     /* 0 signs as an empty line */
	const char *content_type;
	const char *range;           /* e.g. "bytes=0-99" */
	const struct azure_pair *xms; /* x-ms-* headers, any order/case */
	size_t n_xms;
	const char *account;
	const char *path;            /* "/container[/blob]" as sent */
	const struct azure_pair *query; /* any order; names lower-cased */
	size_t n_query;
};

/**
 * Append the Shared Key string-to-sign of @r to @out: verb, the eleven
 * standard header lines (only Content-Length, Content-Type and Range
 * used), x-ms-* headers lower-cased and sorted, then /account/path and
 * the query parameters lower-cased and sorted ("\nname:value").
 * 0 or -ENOMEM.
 */
int azure_string_to_sign(struct buf *out, const struct azure_req *r);

#endif
