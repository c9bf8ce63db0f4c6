/*
 * s3_sign.c - AWS Signature Version 4 for S3 requests, and the RFC 3986
 * encoding its canonical form needs.
 *
 * A signature is HMAC-SHA256 over a "string to sign" that names the
 * algorithm, the request time, the scope (date/region/s3/aws4_request) and
 * the SHA-256 of the canonical request:
 *
 *   METHOD \n URI-ENCODED-PATH \n CANONICAL-QUERY \n
 *   name:value \n ... (lower-case names, sorted, values trimmed) \n
 *   signed;header;names \n PAYLOAD-HASH
 *
 * keyed by a signing key derived from the secret through the scope
 * (HMAC("AWS4" + secret, date) -> region -> "s3" -> "aws4_request").  The
 * payload hash is the real SHA-256 of the body (never UNSIGNED-PAYLOAD), so
 * the server also verifies the bytes it stored.  Paths are encoded once, as
 * S3 wants (no double encoding, no dot-segment normalisation).
 *
 * The secret never leaves this file except inside derived HMACs.
 */
#include "util/common.h"
#include "object/s3_int.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGN_MAX_HDRS 16
#define SIGN_HDR_MAX 2048

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[p[i] >> 4];
		out[2 * i + 1] = hexdig[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void s3_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	to_hex(md, 32, hex);
}

static void hmac256(const void *key, size_t keylen, const void *msg,
		    size_t n, unsigned char out[32])
{
	unsigned int outlen = 32;

	HMAC(EVP_sha256(), key, (int)keylen, msg, n, out, &outlen);
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int s3_uri_encode(struct buf *out, const char *s, size_t n, bool keep_slash)
{
	static const char up[] = "0123456789ABCDEF";
	int rc = buf_grow(out, n * 3);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* isalnum() is locale-dependent: restrict to ASCII. */
		if (c < 0x80 && (unreserved(c) || (keep_slash && c == '/'))) {
			out->data[out->len++] = (char)c;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = up[c >> 4];
			out->data[out->len++] = up[c & 15];
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

struct qitem {
	char *name;
	char *value;
};

static int qitem_cmp(const void *a, const void *b)
{
	const struct qitem *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s)
{
	struct buf b = BUF_INIT;

	if (s3_uri_encode(&b, s, strlen(s), false) < 0 ||
	    buf_append(&b, "", 0) < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

int s3_canon_query(struct buf *out, const struct s3_pair *params, size_t n)
{
	struct qitem *items;
	int rc = 0;

	if (n == 0)
		return buf_append(out, "", 0);
	items = calloc(n, sizeof(*items));
	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		items[i].name = encode_dup(params[i].name);
		items[i].value = encode_dup(params[i].value ? params[i].value
							    : "");
		if (!items[i].name || !items[i].value) {
			rc = -ENOMEM;
			goto out;
		}
	}
	qsort(items, n, sizeof(*items), qitem_cmp);
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = buf_appendf(out, "%s%s=%s", i ? "&" : "", items[i].name,
				 items[i].value);
out:
	for (size_t i = 0; i < n; i++) {
		free(items[i].name);
		free(items[i].value);
	}
	free(items);
	return rc;
}

struct shdr {
	char name[64];
	char value[SIGN_HDR_MAX];
};

static int shdr_cmp(const void *a, const void *b)
{
	const struct shdr *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Lower-case the name; trim the value and squeeze runs of blanks. */
static int shdr_fill(struct shdr *h, const struct s3_pair *p)
{
	size_t n = strlen(p->name), o = 0;
	const char *v = p->value;
	bool blank = false;

	if (n == 0 || n >= sizeof(h->name))
		return -EINVAL;
	for (size_t i = 0; i <= n; i++)
		h->name[i] = (char)tolower((unsigned char)p->name[i]);
	while (*v == ' ' || *v == '\t')
		v++;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = true;
			continue;
		}
		if (o + 2 >= sizeof(h->value))
			return -EINVAL;
		if (blank && o > 0)
			h->value[o++] = ' ';
		blank = false;
		h->value[o++] = *v;
	}
	h->value[o] = '\0';
	return 0;
}

static int canonical_request(const struct s3_sign_in *in, struct buf *creq,
			     struct buf *signed_names)
{
	struct shdr *h;
	int rc;

	if (in->nhdrs == 0 || in->nhdrs > SIGN_MAX_HDRS)
		return -EINVAL;
	h = calloc(in->nhdrs, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < in->nhdrs; i++) {
		rc = shdr_fill(&h[i], &in->hdrs[i]);
		if (rc < 0)
			goto out;
	}
	qsort(h, in->nhdrs, sizeof(*h), shdr_cmp);
	rc = buf_appendf(creq, "%s\n%s\n%s\n", in->method, in->canon_path,
			 in->canon_query ? in->canon_query : "");
	for (size_t i = 0; i < in->nhdrs && rc == 0; i++)
		rc = buf_appendf(creq, "%s:%s\n", h[i].name, h[i].value);
	for (size_t i = 0; i < in->nhdrs && rc == 0; i++)
		rc = buf_appendf(signed_names, "%s%s", i ? ";" : "",
				 h[i].name);
	if (rc == 0)
		rc = buf_appendf(creq, "\n%s\n%s", signed_names->data,
				 in->payload_hash);
out:
	free(h);
	return rc;
}

static bool valid_amz_date(const char *d)
{
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && !isdigit((unsigned char)d[i]))
			return false;
	return true;
}

static void signing_key(const struct s3_sign_in *in, unsigned char key[32])
{
	char k0[256];
	size_t n = strlen(in->secret_key);
	unsigned char k1[32], k2[32], k3[32];

	if (n > sizeof(k0) - 5)
		n = sizeof(k0) - 5;
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, in->secret_key, n);
	hmac256(k0, n + 4, in->amz_date, 8, k1);
	hmac256(k1, 32, in->region, strlen(in->region), k2);
	hmac256(k2, 32, "s3", 2, k3);
	hmac256(k3, 32, "aws4_request", 12, key);
	/* Scrub what the secret passed through. */
	memset(k0, 0, sizeof(k0));
}

int s3_sign(const struct s3_sign_in *in, struct buf *auth, char sig[65])
{
	struct buf creq = BUF_INIT, names = BUF_INIT, sts = BUF_INIT;
	char creq_hash[65];
	unsigned char key[32], mac[32];
	int rc;

	if (!valid_amz_date(in->amz_date))
		return -EINVAL;
	rc = canonical_request(in, &creq, &names);
	if (rc < 0)
		goto out;
	s3_sha256_hex(creq.data, creq.len, creq_hash);
	rc = buf_appendf(&sts,
			 "AWS4-HMAC-SHA256\n%s\n%.8s/%s/s3/aws4_request\n%s",
			 in->amz_date, in->amz_date, in->region, creq_hash);
	if (rc < 0)
		goto out;
	signing_key(in, key);
	hmac256(key, 32, sts.data, sts.len, mac);
	memset(key, 0, sizeof(key));
	to_hex(mac, 32, sig);
	rc = buf_appendf(auth,
			 "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/"
			 "aws4_request, SignedHeaders=%s, Signature=%s",
			 in->access_key, in->amz_date, in->region, names.data,
			 sig);
out:
	buf_release(&creq);
	buf_release(&names);
	buf_release(&sts);
	return rc;
}
