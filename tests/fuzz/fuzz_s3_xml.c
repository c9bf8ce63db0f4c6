/*
 * fuzz_s3_xml.c - libFuzzer target for the S3 response reader
 * (object/s3_xml.c): ListObjectsV2 pages, <Error> documents, entity
 * decoding and ISO 8601 times, all read from whatever the server sends.
 *
 * The first input byte picks the prefix to strip from listed keys; the
 * rest is the response body, passed with its exact length and no NUL
 * after it, as curl hands it over.  Every listed key must be a non-empty
 * C string of its own.
 */
#include "util/common.h"
#include "object/s3_int.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_list(const struct obj_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!l->items[i].key || !l->items[i].key[0] ||
		    l->items[i].size > INT64_MAX)
			abort(); /* S3 sizes are at most 5 TiB */
	if (l->next_token && !l->truncated)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const strips[] = {"", "vol/", "vol/chunks/", "a"};
	struct obj_list l;
	struct buf text = BUF_INIT;
	const char *body, *v, *end, *after;
	char *p;
	size_t n, len;
	int64_t ns;

	if (size < 1)
		return 0;
	n = size - 1;
	p = malloc(n ? n : 1);
	if (!p)
		return 0;
	if (n)
		memcpy(p, data + 1, n);
	body = p;
	end = p + n;
	memset(&l, 0, sizeof(l));
	if (s3_parse_list(body, n, strips[data[0] % 4], &l) == 0)
		check_list(&l);
	obj_list_release(&l);
	/* What err_code() and the callers do with an <Error> body. */
	v = s3_xml_find(body, end, "Code", &len, &after);
	if (v && (v < body || v + len > end || after > end))
		abort();
	if (v)
		(void)s3_xml_text(&text, v, len);
	buf_reset(&text);
	/* Every reference is longer than what it decodes to. */
	if (s3_xml_text(&text, body, n) == 0 && text.len > n)
		abort();
	(void)s3_parse_iso8601(body, n, &ns);
	buf_release(&text);
	free(p);
	return 0;
}
