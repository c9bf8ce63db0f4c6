/*
 * azure_sign.c - Azure Blob Shared Key signature (see azure_sign.h).
 */
#include "util/common.h"
#include "object/azure_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <ctype.h>

static int pair_cmp(const void *a, const void *b)
{
	const struct azure_pair *x = a, *y = b;

	return strcasecmp(x->name, y->name);
}

/* Append @n pairs sorted by lower-cased name as "\n" "name:value"
 * (or "name:value\n" when @trailing). */
static int put_sorted(struct buf *out, const struct azure_pair *p, size_t n,
		      bool trailing)
{
	struct azure_pair *s;
	int rc = 0;

	if (n == 0)
		return 0;
	s = malloc(n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s, p, n * sizeof(*s));
	qsort(s, n, sizeof(*s), pair_cmp);
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!trailing)
			rc = buf_append(out, "\n", 1);
		for (const char *c = s[i].name; *c && rc == 0; c++) {
			char l = (char)tolower((unsigned char)*c);

			rc = buf_append(out, &l, 1);
		}
		if (rc == 0)
			rc = buf_appendf(out, ":%s%s", s[i].value,
					 trailing ? "\n" : "");
	}
	free(s);
	return rc;
}

int azure_string_to_sign(struct buf *out, const struct azure_req *r)
{
	char len[24] = "";
	int rc;

	if (r->content_length)
		snprintf(len, sizeof(len), "%llu",
			 (unsigned long long)r->content_length);
	/* verb, Content-Encoding, -Language, -Length, -MD5, -Type, Date,
	 * If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since,
	 * Range. */
	rc = buf_appendf(out, "%s\n\n\n%s\n\n%s\n\n\n\n\n\n%s\n", r->verb,
			 len, r->content_type ? r->content_type : "",
			 r->range ? r->range : "");
	if (rc == 0)
		rc = put_sorted(out, r->xms, r->n_xms, true);
	if (rc == 0)
		rc = buf_appendf(out, "/%s%s", r->account, r->path);
	if (rc == 0)
		rc = put_sorted(out, r->query, r->n_query, false);
	return rc;
}

int azure_shared_key_sign(const char *key_b64, const char *sts,
			  char sig[AZURE_SIG_LEN])
{
	size_t klen = strlen(key_b64), pad = 0;
	unsigned char key[256], mac[32];
	unsigned int maclen = 0;
	int n;

	if (klen == 0 || klen % 4 != 0 || klen / 4 * 3 > sizeof(key))
		return -EINVAL;
	n = EVP_DecodeBlock(key, (const unsigned char *)key_b64, (int)klen);
	if (n <= 0)
		return -EINVAL;
	while (pad < 2 && key_b64[klen - 1 - pad] == '=')
		pad++;
	n -= (int)pad;
	if (n <= 0 ||
	    !HMAC(EVP_sha256(), key, n, (const unsigned char *)sts,
		  strlen(sts), mac, &maclen) || maclen != sizeof(mac)) {
		OPENSSL_cleanse(key, sizeof(key));
		return -EINVAL;
	}
	OPENSSL_cleanse(key, sizeof(key));
	EVP_EncodeBlock((unsigned char *)sig, mac, (int)sizeof(mac));
	return 0;
}
