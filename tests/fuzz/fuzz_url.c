/*
 * fuzz_url.c - libFuzzer target for util/url.c: url_parse, url_redact,
 * url_is_url and url_pct_decode on arbitrary bytes.
 *
 * Besides memory errors it checks what url.h promises of a parsed URL: a
 * known lower-case scheme, a path that is empty or starts with '/', a host
 * that is absent or not empty, a port in 0..65535 and only with a host, a
 * redaction that always fits its buffer and masks any password.
 */
#include "util/common.h"
#include "util/url.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_parsed(const struct url *u)
{
	if (!u->scheme[0] || !u->path || (u->path[0] && u->path[0] != '/') ||
	    u->port < 0 || u->port > 65535 || (u->host && !u->host[0]) ||
	    (u->port && !u->host))
		abort();
	for (const char *c = u->scheme; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			abort();
}

static void check_redact(const char *s)
{
	static const size_t sizes[] = {1, 2, 9, 64, 4096};
	char out[4096];

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(out, 'x', sizeof(out));
		url_redact(s, out, sizes[i]);
		if (strnlen(out, sizes[i]) >= sizes[i])
			abort(); /* not terminated inside the buffer */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	char *dec;
	struct url u;
	const char *why = NULL;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (url_parse(s, &u, &why) == 0) {
		char red[4096];

		check_parsed(&u);
		/* A password never reaches a message unmasked. */
		url_redact(s, red, sizeof(red));
		if (u.pass && size < 2048 && !strstr(red, "****"))
			abort();
		url_release(&u);
	} else if (!why) {
		abort(); /* every failure names its reason */
	}
	check_redact(s);
	(void)url_is_url(s);
	/* The raw bytes, NULs included: the decoder takes a length. */
	dec = url_pct_decode((const char *)data, size);
	free(dec);
	free(s);
	return 0;
}
