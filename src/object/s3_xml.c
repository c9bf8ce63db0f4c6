/*
 * s3_xml.c - just enough XML to read S3 responses: ListObjectsV2 results
 * and <Error> documents.
 *
 * S3 responses are flat, machine-written documents: elements without
 * attributes (except the root's xmlns), no CDATA, no comments inside the
 * parts we read.  So an element is found by its literal open tag and the
 * next matching close tag, and its text is entity-decoded.  Tags are matched
 * exactly (<Key> never matches <KeyCount>), and a self-closed <Tag/> counts
 * as empty content.  Anything malformed yields an error, never a guess.
 */
#include "util/common.h"
#include "object/s3_int.h"

#include <time.h>

static const char *mem_find(const char *p, const char *end, const char *s,
			    size_t n)
{
	if (p >= end)
		return NULL;
	return memmem(p, (size_t)(end - p), s, n);
}

const char *s3_xml_find(const char *p, const char *end, const char *tag,
			size_t *len, const char **after)
{
	char open[80], close[80], empty[80];
	int no, nc, ne;
	const char *a, *e, *b;

	no = snprintf(open, sizeof(open), "<%s>", tag);
	nc = snprintf(close, sizeof(close), "</%s>", tag);
	ne = snprintf(empty, sizeof(empty), "<%s/>", tag);
	if (no <= 0 || no >= (int)sizeof(open) || nc >= (int)sizeof(close) ||
	    ne >= (int)sizeof(empty))
		return NULL;
	a = mem_find(p, end, open, (size_t)no);
	e = mem_find(p, end, empty, (size_t)ne);
	if (e && (!a || e < a)) {
		*len = 0;
		if (after)
			*after = e + ne;
		return e + ne;
	}
	if (!a)
		return NULL;
	a += no;
	b = mem_find(a, end, close, (size_t)nc);
	if (!b)
		return NULL;
	*len = (size_t)(b - a);
	if (after)
		*after = b + nc;
	return a;
}

static int put_utf8(struct buf *out, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -EINVAL;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return buf_append(out, u, n);
}

/* Decode the reference [p, p+n) (between '&' and ';'). */
static int decode_ref(struct buf *out, const char *p, size_t n)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "amp", '&' },
		      { "lt", '<' },
		      { "gt", '>' },
		      { "quot", '"' },
		      { "apos", '\'' } };
	unsigned long cp = 0;
	size_t i = 1;
	int base = 10;

	for (size_t k = 0; k < ARRAY_SIZE(named); k++)
		if (strlen(named[k].name) == n &&
		    memcmp(named[k].name, p, n) == 0)
			return buf_append(out, &named[k].c, 1);
	if (n < 2 || p[0] != '#')
		return -EINVAL;
	if (p[1] == 'x' || p[1] == 'X') {
		base = 16;
		i = 2;
	}
	if (i >= n || n - i > 8)
		return -EINVAL;
	for (; i < n; i++) {
		int d;
		char c = p[i];

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -EINVAL;
		cp = cp * (unsigned long)base + (unsigned long)d;
	}
	return put_utf8(out, cp);
}

int s3_xml_text(struct buf *out, const char *p, size_t n)
{
	const char *end = p + n;
	int rc = buf_grow(out, n);

	while (rc == 0 && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *semi;

		if (!amp)
			return buf_append(out, p, (size_t)(end - p));
		rc = buf_append(out, p, (size_t)(amp - p));
		if (rc < 0)
			break;
		semi = memchr(amp, ';', (size_t)(end - amp));
		if (!semi || semi - amp > 12)
			return -EINVAL;
		rc = decode_ref(out, amp + 1, (size_t)(semi - amp - 1));
		p = semi + 1;
	}
	return rc;
}

static int digits(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return 0;
}

int s3_parse_iso8601(const char *p, size_t n, int64_t *out_ns)
{
	struct tm tm;
	int y, mo, d, h, mi, s;
	int64_t ns = 0;
	size_t i = 19;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (n < 20 || p[4] != '-' || p[7] != '-' || p[10] != 'T' ||
	    p[13] != ':' || p[16] != ':')
		return -EINVAL;
	if (digits(p, 4, &y) || digits(p + 5, 2, &mo) ||
	    digits(p + 8, 2, &d) || digits(p + 11, 2, &h) ||
	    digits(p + 14, 2, &mi) || digits(p + 17, 2, &s))
		return -EINVAL;
	if (p[i] == '.') {
		int64_t scale = 100000000;

		for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
			ns += (p[i] - '0') * scale;
			scale /= 10;
		}
	}
	if (i + 1 != n || p[i] != 'Z' || mo < 1 || mo > 12 || d < 1 ||
	    d > 31 || h > 23 || mi > 59 || s > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	t = timegm(&tm);
	/* Beyond 1677-09-21 .. 2262-04-11: not an int64 of nanoseconds. */
	if (t > INT64_MAX / 1000000000 - 1 || t < INT64_MIN / 1000000000 + 1)
		return -EINVAL;
	*out_ns = (int64_t)t * 1000000000 + ns;
	return 0;
}

/* Decode the text of <tag> inside [p, end) into @out; -ENOENT if absent. */
static int xml_field(const char *p, const char *end, const char *tag,
		     struct buf *out)
{
	size_t n;
	const char *v = s3_xml_find(p, end, tag, &n, NULL);

	buf_reset(out);
	if (!v)
		return -ENOENT;
	return s3_xml_text(out, v, n);
}

static int parse_entry(const char *p, const char *end, const char *strip,
		       struct obj_list *out, struct buf *tmp)
{
	size_t slen = strlen(strip);
	uint64_t size = 0;
	int64_t mtime = 0;
	char *key;
	int rc;

	rc = xml_field(p, end, "Size", tmp);
	if (rc == 0) {
		char *e;

		/* Digits only: strtoull would take " +1" and wrap "-1". */
		if (tmp->data[0] < '0' || tmp->data[0] > '9')
			return -EIO;
		errno = 0;
		size = strtoull(tmp->data, &e, 10);
		/* S3 objects are at most 5 TiB; more is not a size we trust. */
		if (errno || *e || size > INT64_MAX)
			return -EIO;
	}
	if (xml_field(p, end, "LastModified", tmp) == 0 &&
	    s3_parse_iso8601(tmp->data, tmp->len, &mtime) < 0)
		mtime = 0;
	rc = xml_field(p, end, "Key", tmp);
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	key = tmp->data;
	if (tmp->len != strlen(key) || strncmp(key, strip, slen) != 0 ||
	    !key[slen])
		return 0; /* outside our prefix, or a NUL we cannot store */
	return obj_list_add(out, key + slen, size, mtime);
}

int s3_parse_list(const char *xml, size_t n, const char *strip,
		  struct obj_list *out)
{
	const char *end = xml + n, *p = xml, *c, *after;
	struct buf tmp = BUF_INIT;
	size_t len;
	int rc = 0;

	obj_list_reset(out);
	if (!memmem(xml, n, "<ListBucketResult", 17))
		return -EIO;
	while ((c = s3_xml_find(p, end, "Contents", &len, &after)) != NULL) {
		rc = parse_entry(c, c + len, strip, out, &tmp);
		if (rc < 0)
			goto out;
		p = after;
	}
	rc = xml_field(xml, end, "IsTruncated", &tmp);
	out->truncated = rc == 0 && strcmp(tmp.data, "true") == 0;
	rc = xml_field(xml, end, "NextContinuationToken", &tmp);
	if (rc == 0 && out->truncated && tmp.len) {
		out->next_token = buf_detach(&tmp, NULL);
		if (!out->next_token)
			rc = -ENOMEM;
	} else if (rc == -ENOENT || rc == 0) {
		rc = 0; /* the caller decides how to continue without one */
	}
out:
	buf_release(&tmp);
	if (rc == -EINVAL)
		rc = -EIO;
	return rc;
}
