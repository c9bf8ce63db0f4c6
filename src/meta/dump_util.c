/*
 * dump_util.c - what the dump writer (dump.c) and reader (dump_parse.c)
 * share: the names of inode types, which bytes go into the document as a
 * JSON string (valid UTF-8 without NUL), and base64 for the others.
 */
#include "util/common.h"
#include "meta/dump_int.h"

#include <sys/stat.h>

static const struct {
	uint32_t type;
	const char *name;
} type_names[] = {
	{S_IFDIR, "dir"},      {S_IFREG, "file"},    {S_IFLNK, "symlink"},
	{S_IFIFO, "fifo"},     {S_IFSOCK, "socket"}, {S_IFCHR, "chardev"},
	{S_IFBLK, "blockdev"},
};

const char *dump_type_name(uint32_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (type_names[i].type == type)
			return type_names[i].name;
	return NULL;
}

uint32_t dump_type_of(const char *s, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(type_names); i++)
		if (strlen(type_names[i].name) == n &&
		    !memcmp(type_names[i].name, s, n))
			return type_names[i].type;
	return 0;
}

bool dump_is_text(const void *v, size_t n)
{
	const unsigned char *p = v;
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i], cp, need;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07;
		else
			return false;
		if (i + need >= n)
			return false;
		for (unsigned j = 1; j <= need; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if ((need == 2 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) ||
		    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += need + 1;
	}
	return true;
}

static const char b64c[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int dump_b64_encode(struct buf *b, const void *v, size_t n)
{
	const unsigned char *p = v;
	char q[4];
	int rc = buf_grow(b, (n + 2) / 3 * 4 + 1);

	for (size_t i = 0; rc == 0 && i < n; i += 3) {
		uint32_t x = (uint32_t)p[i] << 16;

		if (i + 1 < n)
			x |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			x |= p[i + 2];
		q[0] = b64c[x >> 18];
		q[1] = b64c[(x >> 12) & 63];
		q[2] = i + 1 < n ? b64c[(x >> 6) & 63] : '=';
		q[3] = i + 2 < n ? b64c[x & 63] : '=';
		rc = buf_append(b, q, 4);
	}
	return rc;
}

static int b64_val(char c)
{
	const char *p = c ? strchr(b64c, c) : NULL;

	return p ? (int)(p - b64c) : -1;
}

int dump_b64_decode(struct buf *b, const char *s, size_t n)
{
	unsigned char out[3];
	int rc = 0;

	buf_reset(b);
	if (n % 4)
		return -EINVAL;
	for (size_t i = 0; rc == 0 && i < n; i += 4) {
		int v[4], pad = 0;

		for (int j = 0; j < 4; j++) {
			v[j] = b64_val(s[i + j]);
			if (s[i + j] == '=' && i + 4 == n && j >= 2) {
				v[j] = 0;
				pad++;
			} else if (v[j] < 0 || pad) {
				return -EINVAL;
			}
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];

		if ((pad == 1 && (x & 0xff)) || (pad == 2 && (x & 0xffff)))
			return -EINVAL; /* not canonical */
		out[0] = (unsigned char)(x >> 16);
		out[1] = (unsigned char)(x >> 8);
		out[2] = (unsigned char)x;
		rc = buf_append(b, out, (size_t)(3 - pad));
	}
	return rc;
}
