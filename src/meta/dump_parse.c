/*
 * dump_parse.c - read and check a dump document (dump.h, docs/dump.md)
 * as a stream, handing each item to a sink (load.c) or to nobody (the
 * check before a load, the fuzzer).
 *
 * A tokenizer over a 64 KiB window of the input, and a reader that knows
 * the grammar: the top-level members in their fixed order, then the
 * fields of each kind of item.  No recursion: the grammar nests at most
 * five levels.  Every error stops the parse with one message naming the
 * byte offset and the item ("inodes[41] (ino 57)").
 *
 * What is checked beyond the grammar: every number in its field's range;
 * items of a section strictly in key order (so no duplicates); entries
 * name inodes that exist, with the type they have, in directories;
 * chunks belong to regular files or deleted files and their slices fit
 * in their chunk and their slice; the root and the trash are directories;
 * counters nextInode and nextSlice are above every inode and slice id;
 * quotas sit on directories of the dump (not root or trash), as many as
 * counter "quotas" says;
 * the summary counts what came; the checksum (when present: hand-edited
 * dumps may drop it) is the xxh3-64 of every byte before its key.
 * The inode set is one word per inode (ino << 4 | type code), appended
 * in order, searched by bisection.
 */
#include "util/common.h"
#include "meta/dump_int.h"
#include "meta/meta_int.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <xxhash.h>

#define DP_WINDOW (64 * 1024)
#define DP_STR_MAX (1024 * 1024)
#define DP_KEY_MAX 64
#define DP_SLICES_MAX (1u << 20)
#define DP_XATTRS_MAX (16u << 20) /* packed bytes per inode */
#define DP_INO_MAX (1ULL << 59)
#define DP_TYPE_DELETED 15

struct dp {
	meta_dump_read_fn rd;
	void *rarg;
	const struct dump_sink *s;
	struct meta_dump_error *err;
	unsigned char *win;
	size_t pos, len, hashed;
	uint64_t base; /* offset of win[0] */
	bool eof;
	XXH3_state_t *hs;
	/* where we are, for messages */
	const char *sec;
	uint64_t item;
	uint64_t item_ino;
	bool in_item;
	/* checks */
	uint64_t *set; /* ino << 4 | type code, ascending */
	size_t nset, cset;
	size_t ninodes; /* set[0..ninodes) are inodes; the rest deleted */
	uint64_t next_inode, next_slice, max_slice;
	bool have_next_inode, have_next_slice;
	uint64_t quota_counter; /* counter "quotas" (0 when missing) */
	uint64_t *qino;		/* the quotas' directories, ascending */
	size_t nq;
	struct meta_dump_stats st;
	/* scratch */
	struct buf str, str2, xat;
	struct buf kb;	/* keys */
	struct buf tgt; /* the symlink target of the inode item */
	struct slice *sl;
	size_t csl;
	char key[DP_KEY_MAX + 1];
};

/* ---- errors ---- */

static int dp_fail(struct dp *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int dp_fail(struct dp *p, const char *fmt, ...)
{
	struct meta_dump_error *e = p->err;
	char what[384], where[96] = "";
	va_list ap;

	if (e->msg[0])
		return -EINVAL; /* the first error wins */
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (p->in_item && p->item_ino)
		snprintf(where, sizeof(where), " in %s[%llu] (ino %llu)",
			 p->sec, (unsigned long long)p->item,
			 (unsigned long long)p->item_ino);
	else if (p->in_item)
		snprintf(where, sizeof(where), " in %s[%llu]", p->sec,
			 (unsigned long long)p->item);
	else if (p->sec)
		snprintf(where, sizeof(where), " in \"%s\"", p->sec);
	e->offset = p->base + p->pos;
	snprintf(e->msg, sizeof(e->msg), "byte %llu%s: %s",
		 (unsigned long long)e->offset, where, what);
	return -EINVAL;
}

/* ---- input window ---- */

static int dp_fill(struct dp *p)
{
	ssize_t n;

	if (p->pos < p->len || p->eof)
		return 0;
	XXH3_64bits_update(p->hs, p->win + p->hashed, p->len - p->hashed);
	p->base += p->len;
	p->pos = p->len = p->hashed = 0;
	do
		n = p->rd(p->rarg, p->win, DP_WINDOW);
	while (n == -EINTR);
	if (n < 0) {
		dp_fail(p, "cannot read the dump: %s", strerror((int)-n));
		return (int)n;
	}
	p->len = (size_t)n;
	p->eof = n == 0;
	return 0;
}

/* Next byte without taking it: -1 at the end, < -1 on a read error. */
static int dp_peek(struct dp *p)
{
	int rc = dp_fill(p);

	if (rc < 0)
		return rc - 1;
	return p->pos < p->len ? p->win[p->pos] : -1;
}

static int dp_ws(struct dp *p)
{
	int c;

	for (;;) {
		c = dp_peek(p);
		if (c != ' ' && c != '\n' && c != '\t' && c != '\r')
			return c;
		p->pos++;
	}
}

static int dp_eof_or(struct dp *p, int c, const char *what)
{
	if (c < -1)
		return -EIO; /* read error: reported */
	if (c == -1)
		return dp_fail(p,
			       "unexpected end of the dump (truncated?): "
			       "expected %s",
			       what);
	if (c >= 0x20 && c < 0x7f)
		return dp_fail(p, "expected %s, found '%c'", what, c);
	return dp_fail(p, "expected %s, found byte 0x%02x", what, c);
}

static int dp_expect(struct dp *p, char want, const char *what)
{
	int c = dp_ws(p);

	if (c != want)
		return dp_eof_or(p, c, what);
	p->pos++;
	return 0;
}

/* ---- strings ---- */

static int hex4(struct dp *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		int c = dp_peek(p);

		if (c >= '0' && c <= '9')
			v = v * 16 + (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (unsigned)(c - 'A' + 10);
		else
			return dp_eof_or(p, c, "4 hex digits after \\u");
		p->pos++;
	}
	*out = v;
	return 0;
}

static int put_utf8(struct buf *b, unsigned cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(b, u, n);
}

static int dp_escape(struct dp *p, struct buf *b)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned cp, lo;
	const char *e;
	int c = dp_peek(p);
	int rc;

	if (c < 0)
		return dp_eof_or(p, c, "an escape");
	p->pos++;
	e = c ? strchr(from, c) : NULL;
	if (e && c != 'u')
		return buf_append(b, &to[e - from], 1);
	if (c != 'u')
		return dp_fail(p, "bad escape '\\%c'", c);
	rc = hex4(p, &cp);
	if (rc == 0 && cp >= 0xdc00 && cp < 0xe000)
		return dp_fail(p, "lone low surrogate \\u%04x", cp);
	if (rc == 0 && cp >= 0xd800 && cp < 0xdc00) {
		if (dp_peek(p) != '\\')
			return dp_fail(p, "lone high surrogate \\u%04x", cp);
		p->pos++;
		if (dp_peek(p) != 'u')
			return dp_fail(p, "lone high surrogate \\u%04x", cp);
		p->pos++;
		rc = hex4(p, &lo);
		if (rc == 0 && (lo < 0xdc00 || lo >= 0xe000))
			return dp_fail(p, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return rc ? rc : put_utf8(b, cp);
}

/* A JSON string into @b (reset first), at most @max bytes decoded. */
static int dp_string(struct dp *p, struct buf *b, size_t max)
{
	int rc = dp_expect(p, '"', "a string");

	buf_reset(b);
	while (rc == 0) {
		size_t run = p->pos;

		while (p->pos < p->len && p->win[p->pos] != '"' &&
		       p->win[p->pos] != '\\' && p->win[p->pos] >= 0x20)
			p->pos++;
		rc = buf_append(b, p->win + run, p->pos - run);
		if (rc == 0 && b->len > max)
			return dp_fail(p, "string longer than %zu bytes", max);
		if (rc < 0)
			return rc;
		int c = dp_peek(p);

		if (c == '"') {
			p->pos++;
			return 0;
		}
		if (c == '\\') {
			p->pos++;
			rc = dp_escape(p, b);
		} else if (c >= 0 && c < 0x20) {
			return dp_fail(p, "control byte 0x%02x in a string", c);
		} else if (c < 0) {
			return dp_eof_or(p, c, "the end of the string");
		}
	}
	return rc;
}

/* ---- numbers ---- */

/* An integer in [-max_neg, max]; *neg set for a negative one. */
static int dp_int(struct dp *p, uint64_t max, uint64_t max_neg, bool *neg,
		  uint64_t *out)
{
	uint64_t v = 0;
	int c = dp_ws(p), digits = 0;

	*neg = false;
	if (c == '-') {
		*neg = true;
		p->pos++;
		c = dp_peek(p);
	}
	if (c < '0' || c > '9')
		return dp_eof_or(p, c, "an integer");
	while (c >= '0' && c <= '9') {
		if (digits == 1 && v == 0)
			return dp_fail(p, "a number with a leading zero");
		if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
			return dp_fail(p, "number out of range");
		v = v * 10 + (uint64_t)(c - '0');
		digits++;
		p->pos++;
		c = dp_peek(p);
	}
	if (c == '.' || c == 'e' || c == 'E')
		return dp_fail(p, "not an integer");
	if (c < -1)
		return -EIO;
	if ((*neg && v > max_neg) || (!*neg && v > max))
		return dp_fail(p, "number out of range");
	*out = v;
	return 0;
}

static int dp_u64(struct dp *p, uint64_t max, uint64_t *out)
{
	bool neg;

	return dp_int(p, max, 0, &neg, out);
}

static int dp_i64(struct dp *p, int64_t *out)
{
	uint64_t v;
	bool neg;
	int rc = dp_int(p, INT64_MAX, (uint64_t)INT64_MAX + 1, &neg, &v);

	if (rc == 0)
		*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return rc;
}

static int dp_u32(struct dp *p, uint32_t *out)
{
	uint64_t v;
	int rc = dp_u64(p, UINT32_MAX, &v);

	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

static int dp_bool(struct dp *p, bool *out)
{
	static const char *const w[] = {"false", "true"};
	int c = dp_ws(p);

	for (int i = 0; i < 2; i++) {
		if (c != w[i][0])
			continue;
		for (const char *s = w[i]; *s; s++, p->pos++)
			if (dp_peek(p) != *s)
				return dp_fail(p, "expected true or false");
		*out = i;
		return 0;
	}
	return dp_eof_or(p, c, "true or false");
}

/* ---- containers ---- */

/* The hash of every byte before the next token. */
static uint64_t dp_hash_here(struct dp *p)
{
	XXH3_64bits_update(p->hs, p->win + p->hashed, p->pos - p->hashed);
	p->hashed = p->pos;
	return XXH3_64bits_digest(p->hs);
}

/*
 * Next member of an object: 1 with its key in p->key (':' taken), 0 at
 * its end ('}' taken).  *first: no member read yet.
 */
static int dp_member(struct dp *p, bool *first, uint64_t *sum)
{
	int c = dp_ws(p);
	int rc;

	if (c == '}') {
		p->pos++;
		return 0;
	}
	if (!*first) {
		if (c != ',')
			return dp_eof_or(p, c, "',' or '}'");
		p->pos++;
	}
	*first = false;
	if (sum) {
		dp_ws(p);
		*sum = dp_hash_here(p);
	}
	rc = dp_string(p, &p->kb, DP_KEY_MAX);
	if (rc < 0)
		return rc;
	memcpy(p->key, p->kb.data, p->kb.len);
	p->key[p->kb.len] = '\0';
	if (strlen(p->key) != p->kb.len)
		return dp_fail(p, "a key with a NUL byte");
	rc = dp_expect(p, ':', "':'");
	return rc < 0 ? rc : 1;
}

/* Next element of an array: 1 (an element follows), 0 at ']'. */
static int dp_element(struct dp *p, bool *first)
{
	int c = dp_ws(p);

	if (c == ']') {
		p->pos++;
		return 0;
	}
	if (!*first) {
		if (c != ',')
			return dp_eof_or(p, c, "',' or ']'");
		p->pos++;
	}
	*first = false;
	return 1;
}

static int dp_unknown(struct dp *p)
{
	return dp_fail(p, "unknown member \"%s\"", p->key);
}

/* Once-only members: bit @bit of *seen. */
static int dp_once(struct dp *p, uint32_t *seen, int bit)
{
	if (*seen & (1u << bit))
		return dp_fail(p, "\"%s\" given twice", p->key);
	*seen |= 1u << bit;
	return 0;
}

/* ---- the inode set ---- */

static int type_code(uint32_t type)
{
	return (int)(type >> 12); /* S_IFMT bits: 1..14 */
}

static int set_add(struct dp *p, uint64_t ino, int code)
{
	if (p->nset == p->cset) {
		size_t c = p->cset ? p->cset * 2 : 1024;
		uint64_t *n = realloc(p->set, c * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->set = n;
		p->cset = c;
	}
	p->set[p->nset++] = ino << 4 | (uint64_t)code;
	return 0;
}

/* Type code of @ino in set[lo, hi): -1 when absent. */
static int set_find(const struct dp *p, size_t lo, size_t hi, uint64_t ino)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = p->set[mid] >> 4;

		if (v == ino)
			return (int)(p->set[mid] & 15);
		if (v < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int ino_type(const struct dp *p, uint64_t ino)
{
	int c = set_find(p, 0, p->ninodes, ino);

	return c >= 0 ? c : set_find(p, p->ninodes, p->nset, ino);
}

/* ---- the volume and the counters ---- */

static int vol_member(struct dp *p, struct meta_format *f, uint32_t *seen)
{
	static const char *const k[] = {
		"name",	      "uuid",	     "storage",	   "compress",
		"encrypt",    "key_wrapped", "block_size", "chunk_size",
		"trash_days", "capacity",    "inodes",	   "version",
		"created",    "replicate"};
	char *str[] = {f->name,	    f->uuid,	f->storage,
		       f->compress, f->encrypt, f->key_wrapped};
	size_t len[] = {sizeof(f->name),    sizeof(f->uuid),
			sizeof(f->storage), sizeof(f->compress),
			sizeof(f->encrypt), sizeof(f->key_wrapped)};
	uint64_t v;
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(k) && strcmp(k[i], p->key); i++)
		;
	if (i == ARRAY_SIZE(k))
		return dp_unknown(p);
	rc = dp_once(p, seen, (int)i);
	if (rc == 0 && i < ARRAY_SIZE(str)) {
		rc = dp_string(p, &p->str, len[i] - 1);
		if (rc == 0 &&
		    strlen(p->str.data ? p->str.data : "") != p->str.len)
			rc = dp_fail(p, "a NUL byte in \"%s\"", k[i]);
		if (rc == 0)
			memcpy(str[i], p->str.data ? p->str.data : "",
			       p->str.len + 1);
		return rc;
	}
	if (rc == 0 && i == 12)
		return dp_i64(p, &f->created_ns);
	if (rc == 0 && i == 13)
		return dp_bool(p, &f->replicate);
	if (rc == 0)
		rc = dp_u64(p, INT64_MAX, &v);
	if (rc == 0 && (i == 6 || i == 8 || i == 11) && v > UINT32_MAX)
		rc = dp_fail(p, "\"%s\" out of range", k[i]);
	if (rc < 0)
		return rc;
	if (i == 6)
		f->block_size = (uint32_t)v;
	else if (i == 7)
		f->chunk_size = v;
	else if (i == 8)
		f->trash_days = (uint32_t)v;
	else if (i == 9)
		f->capacity = v;
	else if (i == 10)
		f->inodes = v;
	else
		f->version = (uint32_t)v;
	return 0;
}

static int dp_volume(struct dp *p)
{
	struct meta_format f, chk;
	uint32_t seen = 0;
	bool first = true;
	char *json;
	int rc;

	memset(&f, 0, sizeof(f));
	p->sec = "volume";
	rc = dp_expect(p, '{', "'{'");
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1)
		rc = vol_member(p, &f, &seen);
	if (rc < 0)
		return rc;
	if ((seen & 0x8c3) != 0x8c3) /* name uuid block/chunk size version */
		return dp_fail(p, "the volume lacks a name, uuid, block_size, "
				  "chunk_size or version");
	/* the same checks as the settings of a volume in a database */
	json = meta_format_to_json(&f);
	if (!json)
		return -ENOMEM;
	rc = meta_format_from_json(json, &chk);
	free(json);
	if (rc < 0 || f.version != 1)
		return dp_fail(p,
			       "invalid volume settings (version %u, block "
			       "size %u, compress '%s', encrypt '%s')",
			       f.version, f.block_size, f.compress, f.encrypt);
	if (strcmp(f.encrypt, "none") && !f.key_wrapped[0])
		return dp_fail(p,
			       "an encrypted volume without its wrapped key");
	return p->s && p->s->volume ? p->s->volume(p->s->arg, &f) : 0;
}

static int dp_counters(struct dp *p)
{
	bool first = true;
	char prev[DP_KEY_MAX + 1] = "";
	int64_t v;
	int rc;

	p->sec = "counters";
	rc = dp_expect(p, '{', "'{'");
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		if (!p->key[0] || (prev[0] && strcmp(prev, p->key) >= 0))
			return dp_fail(p, "counter \"%s\" out of order",
				       p->key);
		snprintf(prev, sizeof(prev), "%s", p->key);
		rc = dp_i64(p, &v);
		if (rc == 0 && !strcmp(p->key, "nextInode")) {
			p->next_inode = (uint64_t)v;
			p->have_next_inode = true;
		} else if (rc == 0 && !strcmp(p->key, "quotas")) {
			p->quota_counter = (uint64_t)v;
		} else if (rc == 0 && !strcmp(p->key, "nextSlice")) {
			p->next_slice = (uint64_t)v;
			p->have_next_slice = true;
		}
		if (rc == 0 && p->s && p->s->counter)
			rc = p->s->counter(p->s->arg, p->key, (uint64_t)v);
	}
	if (rc == 0 && (!p->have_next_inode || !p->have_next_slice))
		rc = dp_fail(p, "counters nextInode and nextSlice are "
				"required");
	return rc;
}

/* One quota: {"ino":N,"space":BYTES,"inodes":N}, limits 0 = none. */
static int quota_item(struct dp *p)
{
	static const char *const k[] = {"ino", "space", "inodes"};
	uint64_t v[3] = {0, 0, 0}, *q;
	uint32_t seen = 0;
	bool first = true;
	int rc = dp_expect(p, '{', "'{'"), i;

	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		for (i = 0; i < 3 && strcmp(k[i], p->key); i++)
			;
		if (i == 3)
			return dp_unknown(p);
		rc = dp_once(p, &seen, i);
		if (rc == 0)
			rc = dp_u64(p, i ? INT64_MAX : DP_INO_MAX, &v[i]);
		if (i == 0)
			p->item_ino = v[0];
	}
	if (rc < 0)
		return rc;
	if (seen != 7)
		return dp_fail(p, "a quota needs ino, space and inodes");
	if (v[0] == TESSERA_ROOT_INO || v[0] == META_TRASH_INO || v[0] == 0)
		return dp_fail(p, "the root and the trash take no quota");
	if (p->nq && v[0] <= p->qino[p->nq - 1])
		return dp_fail(p, "quota of %llu out of order",
			       (unsigned long long)v[0]);
	q = realloc(p->qino, (p->nq + 1) * sizeof(*q));
	if (!q)
		return -ENOMEM;
	p->qino = q;
	p->qino[p->nq++] = v[0];
	p->st.quotas++;
	return p->s && p->s->quota ? p->s->quota(p->s->arg, v[0], v[1], v[2])
				   : 0;
}

static int dp_quotas(struct dp *p)
{
	bool first = true;
	int rc;

	p->sec = "quotas";
	p->item = 0;
	rc = dp_expect(p, '[', "'['");
	while (rc == 0 && (rc = dp_element(p, &first)) == 1) {
		p->in_item = true;
		p->item_ino = 0;
		rc = quota_item(p);
		if (rc == 0) {
			p->in_item = false;
			p->item++;
		}
	}
	if (rc == 0 && p->quota_counter != p->nq)
		rc = dp_fail(p,
			     "counter quotas is %llu, the dump has %zu "
			     "quotas",
			     (unsigned long long)p->quota_counter, p->nq);
	return rc;
}

/* After the inodes: every quota is on a directory of the dump. */
static int quotas_check(struct dp *p)
{
	for (size_t i = 0; i < p->nq; i++)
		if (ino_type(p, p->qino[i]) != type_code(S_IFDIR)) {
			p->sec = "quotas";
			p->item = i;
			p->in_item = true;
			p->item_ino = p->qino[i];
			return dp_fail(p,
				       "a quota on %llu, which is not a "
				       "directory of the dump",
				       (unsigned long long)p->qino[i]);
		}
	return 0;
}

/* ---- inodes ---- */

static int xattr_item(struct dp *p)
{
	unsigned char hdr[4];
	bool first = true;
	uint32_t seen = 0;
	size_t nlen = 0;
	int rc = dp_expect(p, '{', "'{'");

	/* name first into p->xat, then the value */
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		bool b64 = !strcmp(p->key, "name_b64") ||
			   !strcmp(p->key, "value_b64");
		bool name = !strncmp(p->key, "name", 4);

		if (strcmp(p->key, "name") && strcmp(p->key, "value") && !b64)
			return dp_unknown(p);
		rc = dp_once(p, &seen, name);
		if (rc == 0 && !name && !(seen & 2))
			rc = dp_fail(p, "an xattr value before its name");
		if (rc == 0)
			rc = dp_string(p, &p->str, DP_STR_MAX);
		if (rc == 0 && b64)
			rc = dump_b64_decode(&p->str2, p->str.data, p->str.len);
		if (rc == -EINVAL)
			return dp_fail(p, "bad base64 in \"%s\"", p->key);
		if (rc < 0)
			return rc;
		const struct buf *v = b64 ? &p->str2 : &p->str;

		if (name && (v->len == 0 || v->len > META_XATTR_NAME_MAX ||
			     memchr(v->data, 0, v->len)))
			return dp_fail(p, "bad xattr name");
		if (!name && v->len > META_XATTR_SIZE_MAX)
			return dp_fail(p, "xattr value longer than %d bytes",
				       META_XATTR_SIZE_MAX);
		if (name) {
			nlen = v->len;
			hdr[0] = (unsigned char)nlen;
			rc = buf_append(&p->xat, hdr, 1);
		} else {
			put_be32(hdr, (uint32_t)v->len);
			rc = buf_append(&p->xat, hdr, 4);
		}
		if (rc == 0)
			rc = buf_append(&p->xat, v->data, v->len);
		if (rc == 0 && p->xat.len > DP_XATTRS_MAX)
			rc = dp_fail(p, "too many xattrs");
	}
	if (rc == 0 && seen != 3)
		rc = dp_fail(p, "an xattr needs a name and a value");
	(void)nlen;
	return rc;
}

static int dp_xattrs(struct dp *p, struct dump_inode *i)
{
	bool first = true;
	int rc = dp_expect(p, '[', "'['");

	while (rc == 0 && (rc = dp_element(p, &first)) == 1) {
		rc = xattr_item(p);
		i->nxattrs++;
	}
	return rc;
}

enum {
	IN_INO,
	IN_TYPE,
	IN_MODE,
	IN_UID,
	IN_GID,
	IN_NLINK,
	IN_LENGTH,
	IN_ALLOC,
	IN_RDEV,
	IN_FLAGS,
	IN_ATIME,
	IN_MTIME,
	IN_CTIME,
	IN_PARENT,
	IN_COOKIE,
	IN_TARGET,
	IN_XATTRS,
	IN_N
};
static const char *const inode_keys[IN_N] = {
	"ino",	  "type",   "mode",	   "uid",    "gid",   "nlink",
	"length", "alloc",  "rdev",	   "flags",  "atime", "mtime",
	"ctime",  "parent", "next_cookie", "target", "xattrs"};

static int parse_mode(struct dp *p, uint32_t *mode)
{
	unsigned long v;
	char *end;
	int rc = dp_string(p, &p->str, 8);

	if (rc < 0)
		return rc;
	if (p->str.len == 0 || p->str.data[0] == '-' || p->str.data[0] == '+')
		return dp_fail(p, "bad mode \"%s\"", p->str.data);
	v = strtoul(p->str.data, &end, 8);
	if (*end || v > 07777)
		return dp_fail(p, "bad mode \"%s\" (octal, at most 07777)",
			       p->str.data);
	*mode = (uint32_t)v;
	return 0;
}

static int inode_member(struct dp *p, struct dump_inode *i, uint32_t *seen,
			bool *target_b64)
{
	struct meta_attr *a = &i->a;
	size_t k;
	int rc;

	*target_b64 = !strcmp(p->key, "target_b64");
	for (k = 0; k < IN_N && strcmp(inode_keys[k], p->key); k++)
		;
	if (*target_b64)
		k = IN_TARGET;
	if (k == IN_N)
		return dp_unknown(p);
	rc = dp_once(p, seen, (int)k);
	if (rc < 0)
		return rc;
	switch (k) {
	case IN_INO:
		rc = dp_u64(p, DP_INO_MAX, &a->ino);
		p->item_ino = a->ino;
		return rc;
	case IN_TYPE:
		rc = dp_string(p, &p->str, 16);
		if (rc == 0 &&
		    !(a->mode |= dump_type_of(p->str.data, p->str.len)))
			rc = dp_fail(p, "unknown type \"%s\"", p->str.data);
		return rc;
	case IN_MODE: {
		uint32_t m = 0;

		rc = parse_mode(p, &m);
		a->mode |= m;
		return rc;
	}
	case IN_UID:
		return dp_u32(p, &a->uid);
	case IN_GID:
		return dp_u32(p, &a->gid);
	case IN_NLINK:
		return dp_u32(p, &a->nlink);
	case IN_LENGTH:
		return dp_u64(p, META_MAX_LENGTH, &a->length);
	case IN_ALLOC:
		i->alloc_known = true;
		return dp_u64(p, INT64_MAX, &a->alloc);
	case IN_RDEV:
		return dp_u64(p, UINT64_MAX, &a->rdev);
	case IN_FLAGS:
		rc = dp_u32(p, &a->flags);
		if (rc == 0 && (a->flags & ~META_FL_USER))
			rc = dp_fail(p, "unknown inode flags 0x%x", a->flags);
		return rc;
	case IN_ATIME:
		return dp_i64(p, &a->atime_ns);
	case IN_MTIME:
		return dp_i64(p, &a->mtime_ns);
	case IN_CTIME:
		return dp_i64(p, &a->ctime_ns);
	case IN_PARENT:
		return dp_u64(p, DP_INO_MAX, &a->parent);
	case IN_COOKIE:
		return dp_u64(p, UINT64_MAX, &i->next_cookie);
	case IN_TARGET:
		rc = dp_string(p, &p->str, 2 * META_SYMLINK_MAX);
		if (rc < 0)
			return rc;
		if (*target_b64)
			return dump_b64_decode(&p->tgt, p->str.data,
					       p->str.len) < 0
				       ? dp_fail(p,
						 "bad base64 in \"target_b64\"")
				       : 0;
		buf_reset(&p->tgt);
		return buf_append(&p->tgt, p->str.data, p->str.len);
	default: /* IN_XATTRS */
		return dp_xattrs(p, i);
	}
}

/* The checks of one inode item once all its members are read. */
static int inode_check(struct dp *p, struct dump_inode *i, uint32_t seen)
{
	struct meta_attr *a = &i->a;
	uint32_t type = a->mode & S_IFMT;
	const uint32_t need = 1u << IN_INO | 1u << IN_TYPE | 1u << IN_MODE |
			      1u << IN_UID | 1u << IN_GID | 1u << IN_NLINK |
			      1u << IN_ATIME | 1u << IN_MTIME | 1u << IN_CTIME;

	if ((seen & need) != need)
		return dp_fail(p, "an inode needs ino, type, mode, uid, gid, "
				  "nlink, atime, mtime and ctime");
	if (a->ino == 0)
		return dp_fail(p, "inode number 0");
	if (p->ninodes && a->ino <= p->set[p->ninodes - 1] >> 4)
		return dp_fail(p, "inode %llu out of order",
			       (unsigned long long)a->ino);
	if ((a->ino == TESSERA_ROOT_INO || a->ino == META_TRASH_INO) &&
	    type != S_IFDIR)
		return dp_fail(p, "the root and the trash must be "
				  "directories");
	if (type == S_IFDIR && !(seen & (1u << IN_PARENT)))
		return dp_fail(p, "a directory needs its parent");
	if (type == S_IFDIR && a->length)
		return dp_fail(p, "a directory with a length");
	if (!(seen & (1u << IN_COOKIE)))
		i->next_cookie = type == S_IFDIR ? META_COOKIE_FIRST : 0;
	if (type == S_IFLNK) {
		if (!(seen & (1u << IN_TARGET)) || p->tgt.len == 0 ||
		    p->tgt.len > META_SYMLINK_MAX ||
		    memchr(p->tgt.data, 0, p->tgt.len))
			return dp_fail(p,
				       "a symlink needs a target (1 to %d "
				       "bytes, no NUL)",
				       META_SYMLINK_MAX);
		i->target = p->tgt.data;
		i->target_len = p->tgt.len;
	} else if (seen & (1u << IN_TARGET)) {
		return dp_fail(p, "only symlinks have a target");
	}
	if (i->alloc_known && type != S_IFREG)
		return dp_fail(p, "only regular files have \"alloc\"");
	return set_add(p, a->ino, type_code(type));
}

static int inode_item(struct dp *p)
{
	struct dump_inode i;
	uint32_t seen = 0;
	bool first = true, b64 = false;
	int rc;

	memset(&i, 0, sizeof(i));
	buf_reset(&p->xat);
	buf_reset(&p->tgt);
	rc = dp_expect(p, '{', "'{'");
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1)
		rc = inode_member(p, &i, &seen, &b64);
	if (rc < 0)
		return rc;
	rc = inode_check(p, &i, seen);
	if (rc < 0)
		return rc;
	i.xattrs = (const unsigned char *)p->xat.data;
	i.xattrs_len = p->xat.len;
	p->st.inodes++;
	p->st.xattrs += i.nxattrs;
	return p->s && p->s->inode ? p->s->inode(p->s->arg, &i) : 0;
}

/* ---- deleted files, entries ---- */

static int deleted_item(struct dp *p)
{
	uint64_t ino = 0, length = 0;
	uint32_t seen = 0;
	bool first = true;
	int rc = dp_expect(p, '{', "'{'");

	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		if (!strcmp(p->key, "ino")) {
			rc = dp_once(p, &seen, 0);
			if (rc == 0)
				rc = dp_u64(p, DP_INO_MAX, &ino);
			p->item_ino = ino;
		} else if (!strcmp(p->key, "length")) {
			rc = dp_once(p, &seen, 1);
			if (rc == 0)
				rc = dp_u64(p, META_MAX_LENGTH, &length);
		} else {
			rc = dp_unknown(p);
		}
	}
	if (rc < 0)
		return rc;
	if (seen != 3 || ino == 0)
		return dp_fail(p, "a deleted file needs ino and length");
	if (p->nset > p->ninodes && ino <= p->set[p->nset - 1] >> 4)
		return dp_fail(p, "deleted file %llu out of order",
			       (unsigned long long)ino);
	if (set_find(p, 0, p->ninodes, ino) >= 0)
		return dp_fail(p, "deleted file %llu is also an inode",
			       (unsigned long long)ino);
	rc = set_add(p, ino, DP_TYPE_DELETED);
	p->st.deleted++;
	if (rc == 0 && p->s && p->s->deleted)
		rc = p->s->deleted(p->s->arg, ino, length);
	return rc;
}

static int entry_member(struct dp *p, struct dump_entry *e, uint32_t *seen)
{
	static const char *const k[] = {"parent", "name", "name_b64",
					"ino",	  "type", "cookie"};
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(k) && strcmp(k[i], p->key); i++)
		;
	if (i == ARRAY_SIZE(k))
		return dp_unknown(p);
	rc = dp_once(p, seen, i == 2 ? 1 : (int)i);
	if (rc < 0)
		return rc;
	switch (i) {
	case 0:
		return dp_u64(p, DP_INO_MAX, &e->parent);
	case 1:
		return dp_string(p, &p->str2, 4 * TESSERA_NAME_MAX);
	case 2:
		rc = dp_string(p, &p->str, 4 * TESSERA_NAME_MAX);
		if (rc == 0 &&
		    dump_b64_decode(&p->str2, p->str.data, p->str.len) < 0)
			rc = dp_fail(p, "bad base64 in \"name_b64\"");
		return rc;
	case 3:
		rc = dp_u64(p, DP_INO_MAX, &e->ino);
		p->item_ino = e->ino;
		return rc;
	case 4:
		rc = dp_string(p, &p->str, 16);
		if (rc == 0 &&
		    !(e->type = dump_type_of(p->str.data, p->str.len)))
			rc = dp_fail(p, "unknown type \"%s\"", p->str.data);
		return rc;
	default:
		return dp_u64(p, UINT64_MAX, &e->cookie);
	}
}

static int entry_check(struct dp *p, struct dump_entry *e, struct buf *prev,
		       uint64_t *prev_parent)
{
	const char *n = p->str2.data;
	size_t len = p->str2.len;
	int pt, ct;

	e->name = n;
	e->name_len = len;
	if (len == 0 || len > TESSERA_NAME_MAX || memchr(n, '/', len) ||
	    memchr(n, 0, len) || name_is_dot(n, len))
		return dp_fail(p, "bad entry name");
	if (*prev_parent > e->parent ||
	    (*prev_parent == e->parent && prev->len &&
	     kv_key_cmp(prev->data, prev->len, n, len) >= 0))
		return dp_fail(p, "entry out of order (by parent, then "
				  "name)");
	pt = ino_type(p, e->parent);
	ct = set_find(p, 0, p->ninodes, e->ino);
	if (pt != type_code(S_IFDIR))
		return dp_fail(p, "entry in %llu, which is not a directory",
			       (unsigned long long)e->parent);
	if (ct < 0)
		return dp_fail(p,
			       "entry names inode %llu, which is not in "
			       "the dump",
			       (unsigned long long)e->ino);
	if (ct != type_code(e->type))
		return dp_fail(p, "entry type differs from inode %llu's",
			       (unsigned long long)e->ino);
	if (e->ino == TESSERA_ROOT_INO || e->ino == META_TRASH_INO)
		return dp_fail(p, "an entry names the root or the trash");
	if (e->cookie < META_COOKIE_FIRST)
		return dp_fail(p, "cookie below %d", META_COOKIE_FIRST);
	*prev_parent = e->parent;
	buf_reset(prev);
	return buf_append(prev, n, len);
}

static int entry_item(struct dp *p, struct buf *prev, uint64_t *prev_parent)
{
	struct dump_entry e;
	uint32_t seen = 0;
	bool first = true;
	int rc = dp_expect(p, '{', "'{'");

	memset(&e, 0, sizeof(e));
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1)
		rc = entry_member(p, &e, &seen);
	if (rc < 0)
		return rc;
	if (seen != 0x3b)
		return dp_fail(p, "an entry needs parent, name, ino, type and "
				  "cookie");
	rc = entry_check(p, &e, prev, prev_parent);
	p->st.entries++;
	if (rc == 0 && p->s && p->s->entry)
		rc = p->s->entry(p->s->arg, &e);
	return rc;
}

/* ---- chunks and the rest ---- */

static int slice_item(struct dp *p, struct slice *s)
{
	uint64_t v[5];
	bool first = true;
	int rc = dp_expect(p, '[', "'['");

	for (int i = 0; rc == 0 && i < 5; i++) {
		rc = dp_element(p, &first);
		if (rc == 0)
			return dp_fail(p, "a slice is [pos, id, size, off, "
					  "len]");
		if (rc == 1)
			rc = dp_u64(p, i == 1 ? UINT64_MAX : UINT32_MAX, &v[i]);
	}
	if (rc == 0 && dp_element(p, &first) != 0)
		return dp_fail(p, "a slice is [pos, id, size, off, len]");
	if (rc < 0)
		return rc;
	s->pos = (uint32_t)v[0];
	s->id = v[1];
	s->size = (uint32_t)v[2];
	s->off = (uint32_t)v[3];
	s->len = (uint32_t)v[4];
	if (v[0] + v[4] > TESSERA_CHUNK_SIZE || s->len == 0 ||
	    (s->id && v[3] + v[4] > v[2]))
		return dp_fail(p,
			       "slice %llu does not fit its chunk or "
			       "itself",
			       (unsigned long long)s->id);
	if (s->id > p->max_slice)
		p->max_slice = s->id;
	return 0;
}

static int dp_slices(struct dp *p, size_t *n)
{
	bool first = true;
	int rc = dp_expect(p, '[', "'['");

	*n = 0;
	while (rc == 0 && (rc = dp_element(p, &first)) == 1) {
		if (*n == DP_SLICES_MAX)
			return dp_fail(p, "more than %u slices in a chunk",
				       DP_SLICES_MAX);
		if (*n == p->csl) {
			size_t c = p->csl ? p->csl * 2 : 64;
			struct slice *s = realloc(p->sl, c * sizeof(*s));

			if (!s)
				return -ENOMEM;
			p->sl = s;
			p->csl = c;
		}
		rc = slice_item(p, &p->sl[(*n)++]);
	}
	return rc;
}

static int chunk_item(struct dp *p, uint64_t *prev_ino, int64_t *prev_idx)
{
	uint64_t ino = 0, idx = 0;
	uint32_t seen = 0;
	bool first = true;
	size_t n = 0;
	int rc = dp_expect(p, '{', "'{'"), t;

	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		if (!strcmp(p->key, "ino")) {
			rc = dp_once(p, &seen, 0);
			if (rc == 0)
				rc = dp_u64(p, DP_INO_MAX, &ino);
			p->item_ino = ino;
		} else if (!strcmp(p->key, "index")) {
			rc = dp_once(p, &seen, 1);
			if (rc == 0)
				rc = dp_u64(
					p, META_MAX_LENGTH / TESSERA_CHUNK_SIZE,
					&idx);
		} else if (!strcmp(p->key, "slices")) {
			rc = dp_once(p, &seen, 2);
			if (rc == 0)
				rc = dp_slices(p, &n);
		} else {
			rc = dp_unknown(p);
		}
	}
	if (rc < 0)
		return rc;
	if (seen != 7)
		return dp_fail(p, "a chunk needs ino, index and slices");
	if (ino < *prev_ino || (ino == *prev_ino && (int64_t)idx <= *prev_idx))
		return dp_fail(p, "chunk out of order (by ino, then index)");
	*prev_ino = ino;
	*prev_idx = (int64_t)idx;
	t = ino_type(p, ino);
	if (t != type_code(S_IFREG) && t != DP_TYPE_DELETED)
		return dp_fail(p,
			       "a chunk of inode %llu, which is neither a "
			       "regular file nor a deleted file",
			       (unsigned long long)ino);
	p->st.chunks++;
	p->st.slices += n;
	if (p->s && p->s->chunk)
		return p->s->chunk(p->s->arg, ino, (uint32_t)idx, p->sl, n);
	return 0;
}

/* An item of two or three numbers (slicerefs, pending). */
static int numbers_item(struct dp *p, const char *const *k, int n, uint64_t *v,
			uint64_t *prev)
{
	uint32_t seen = 0;
	bool first = true;
	int rc = dp_expect(p, '{', "'{'"), i;

	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		for (i = 0; i < n && strcmp(k[i], p->key); i++)
			;
		if (i == n)
			return dp_unknown(p);
		rc = dp_once(p, &seen, i);
		if (rc == 0)
			rc = dp_u64(p,
				    i == 1 && n == 3 ? UINT32_MAX : UINT64_MAX,
				    &v[i]);
	}
	if (rc < 0)
		return rc;
	if (seen != (1u << n) - 1)
		return dp_fail(p, "an item needs %s",
			       n == 3 ? "id, size and deleted_at"
				      : "id and refs");
	if (v[0] == 0 || v[0] <= *prev)
		return dp_fail(p, "slice id %llu out of order",
			       (unsigned long long)v[0]);
	*prev = v[0];
	if (v[0] > p->max_slice)
		p->max_slice = v[0];
	return 0;
}

static int ckpt_item(struct dp *p, struct buf *prev)
{
	static const char *const k[] = {"name", "txn_seq", "next_slice", "time",
					"repl_seq"};
	struct meta_ckpt c;
	uint32_t seen = 0;
	bool first = true;
	int rc = dp_expect(p, '{', "'{'"), i;

	memset(&c, 0, sizeof(c));
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		for (i = 0; i < 5 && strcmp(k[i], p->key); i++)
			;
		if (i == 5)
			return dp_unknown(p);
		rc = dp_once(p, &seen, i);
		if (rc == 0 && i == 0)
			rc = dp_string(p, &p->str, sizeof(c.name) - 1);
		if (rc == 0 && i == 0)
			memcpy(c.name, p->str.data, p->str.len + 1);
		if (rc == 0 && i == 1)
			rc = dp_u64(p, UINT64_MAX, &c.txn_seq);
		if (rc == 0 && i == 2)
			rc = dp_u64(p, UINT64_MAX, &c.next_slice);
		if (rc == 0 && i == 3)
			rc = dp_i64(p, &c.time_ns);
		if (rc == 0 && i == 4)
			rc = dp_u64(p, UINT64_MAX, &c.repl_seq);
	}
	if (rc < 0)
		return rc;
	if (seen != 31 || !c.name[0] || strlen(c.name) != p->str.len)
		return dp_fail(p, "a checkpoint needs a name (no NUL), "
				  "txn_seq, next_slice, time and repl_seq");
	if (prev->len &&
	    kv_key_cmp(prev->data, prev->len, c.name, strlen(c.name)) >= 0)
		return dp_fail(p, "checkpoint out of order");
	buf_reset(prev);
	rc = buf_append(prev, c.name, strlen(c.name));
	p->st.checkpoints++;
	if (rc == 0 && p->s && p->s->checkpoint)
		rc = p->s->checkpoint(p->s->arg, &c);
	return rc;
}

/* ---- sections ---- */

enum { S_INODES, S_DELETED, S_ENTRIES, S_CHUNKS, S_REFS, S_PENDING, S_CKPTS };

struct sec_state {
	struct buf prev;
	uint64_t prev_ino, prev_id;
	int64_t prev_idx;
};

static int section_item(struct dp *p, int sec, struct sec_state *ss)
{
	static const char *const refk[] = {"id", "refs"};
	static const char *const pendk[] = {"id", "size", "deleted_at"};
	uint64_t v[3] = {0, 0, 0};
	int rc;

	switch (sec) {
	case S_INODES:
		return inode_item(p);
	case S_DELETED:
		return deleted_item(p);
	case S_ENTRIES:
		return entry_item(p, &ss->prev, &ss->prev_ino);
	case S_CHUNKS:
		return chunk_item(p, &ss->prev_ino, &ss->prev_idx);
	case S_REFS:
		rc = numbers_item(p, refk, 2, v, &ss->prev_id);
		p->st.slicerefs++;
		if (rc == 0 && p->s && p->s->sliceref)
			rc = p->s->sliceref(p->s->arg, v[0], v[1]);
		return rc;
	case S_PENDING:
		rc = numbers_item(p, pendk, 3, v, &ss->prev_id);
		p->st.pending++;
		if (rc == 0 && p->s && p->s->pending)
			rc = p->s->pending(p->s->arg, v[0], (uint32_t)v[1],
					   v[2]);
		return rc;
	default:
		return ckpt_item(p, &ss->prev);
	}
}

static int dp_section(struct dp *p, int sec)
{
	struct sec_state ss = {BUF_INIT, 0, 0, -1};
	bool first = true;
	int rc = dp_expect(p, '[', "'['");

	p->item = 0;
	while (rc == 0 && (rc = dp_element(p, &first)) == 1) {
		p->in_item = true;
		p->item_ino = 0;
		rc = section_item(p, sec, &ss);
		if (rc == 0) {
			p->in_item = false;
			p->item++;
		}
	}
	buf_release(&ss.prev);
	if (rc == 0 && sec == S_INODES) {
		p->ninodes = p->nset;
		if (ino_type(p, TESSERA_ROOT_INO) < 0 ||
		    ino_type(p, META_TRASH_INO) < 0)
			rc = dp_fail(p, "the root (1) or the trash (2) is "
					"missing");
		else if (p->next_inode <= p->set[p->nset - 1] >> 4)
			rc = dp_fail(p,
				     "counter nextInode %llu is not above "
				     "every inode",
				     (unsigned long long)p->next_inode);
		else
			rc = quotas_check(p);
	}
	return rc;
}

static int dp_summary(struct dp *p)
{
	/* "quotas" is optional: dumps from before quota records lack it */
	static const char *const k[] = {"inodes",      "deleted",   "entries",
					"chunks",      "slicerefs", "pending",
					"checkpoints", "quotas"};
	const uint64_t got[] = {p->st.inodes,	   p->st.deleted,
				p->st.entries,	   p->st.chunks,
				p->st.slicerefs,   p->st.pending,
				p->st.checkpoints, p->st.quotas};
	uint32_t seen = 0;
	bool first = true;
	uint64_t v;
	int rc = dp_expect(p, '{', "'{'"), i;

	p->sec = "summary";
	while (rc == 0 && (rc = dp_member(p, &first, NULL)) == 1) {
		for (i = 0; i < 8 && strcmp(k[i], p->key); i++)
			;
		if (i == 8)
			return dp_unknown(p);
		rc = dp_once(p, &seen, i);
		if (rc == 0)
			rc = dp_u64(p, UINT64_MAX, &v);
		if (rc == 0 && v != got[i])
			rc = dp_fail(p,
				     "the summary counts %llu %s, the dump "
				     "has %llu",
				     (unsigned long long)v, k[i],
				     (unsigned long long)got[i]);
	}
	if (rc == 0 && ((seen & 127) != 127 || (!(seen & 128) && p->st.quotas)))
		rc = dp_fail(p, "the summary lacks a count");
	if (rc == 0 && p->max_slice >= p->next_slice)
		rc = dp_fail(p,
			     "counter nextSlice %llu is not above slice "
			     "%llu",
			     (unsigned long long)p->next_slice,
			     (unsigned long long)p->max_slice);
	return rc;
}

static int dp_checksum(struct dp *p, uint64_t sum)
{
	char want[32];
	int rc = dp_string(p, &p->str, 64);

	snprintf(want, sizeof(want), "xxh3:%016llx", (unsigned long long)sum);
	if (rc == 0 && strcmp(p->str.data, want))
		rc = dp_fail(p,
			     "checksum mismatch: the dump says %s, its "
			     "bytes give %s (corrupt?)",
			     p->str.data, want);
	return rc;
}

static const char *const top_keys[] = {
	"format",    "version", "dumped",      "volume",  "counters",
	"quotas",    "inodes",	"deleted",     "entries", "chunks",
	"slicerefs", "pending", "checkpoints", "summary", "checksum"};

static int dp_header(struct dp *p, int k)
{
	uint64_t v;
	int64_t t;
	int rc;

	if (k == 0) {
		rc = dp_string(p, &p->str, 64);
		if (rc == 0 && strcmp(p->str.data, META_DUMP_FORMAT))
			rc = dp_fail(p, "not a tessera dump (format \"%s\")",
				     p->str.data);
		return rc;
	}
	if (k == 1) {
		rc = dp_u64(p, UINT32_MAX, &v);
		if (rc == 0 && v != META_DUMP_VERSION)
			rc = dp_fail(p,
				     "dump version %llu; this tessera reads "
				     "version %d",
				     (unsigned long long)v, META_DUMP_VERSION);
		return rc;
	}
	return dp_i64(p, &t);
}

static int dp_top_member(struct dp *p, int k, uint64_t sum)
{
	p->sec = top_keys[k];
	switch (k) {
	case 0:
	case 1:
	case 2:
		return dp_header(p, k);
	case 3:
		return dp_volume(p);
	case 4:
		return dp_counters(p);
	case 5:
		return dp_quotas(p);
	case 13:
		return dp_summary(p);
	case 14:
		return dp_checksum(p, sum);
	default:
		return dp_section(p, k - 6 + S_INODES);
	}
}

static int dp_document(struct dp *p)
{
	const int n = (int)ARRAY_SIZE(top_keys);
	bool first = true;
	int next = 0, rc, c;
	uint64_t sum;

	rc = dp_expect(p, '{', "'{' (a tessera dump)");
	while (rc == 0) {
		rc = dp_member(p, &first, &sum);
		if (rc <= 0)
			break;
		p->sec = NULL;
		int k = next;

		while (k < n && strcmp(top_keys[k], p->key))
			k++;
		if (k == n)
			return dp_fail(p, "unknown or misplaced member \"%s\"",
				       p->key);
		if (k != next && k != n - 1)
			return dp_fail(p, "\"%s\" is missing before \"%s\"",
				       top_keys[next], p->key);
		if (k == n - 1 && next < n - 1)
			return dp_fail(p,
				       "\"%s\" is missing before "
				       "\"checksum\"",
				       top_keys[next]);
		rc = dp_top_member(p, k, sum);
		next = k + 1;
	}
	if (rc < 0)
		return rc;
	p->sec = NULL;
	if (next < n - 1)
		return dp_fail(p, "the dump ends before \"%s\" (truncated?)",
			       top_keys[next]);
	c = dp_ws(p);
	if (c != -1)
		return c < -1 ? -EIO
			      : dp_fail(p, "bytes after the end of the dump");
	return 0;
}

int dump_parse(meta_dump_read_fn r, void *rarg, const struct dump_sink *s,
	       struct meta_dump_stats *st, struct meta_dump_error *err)
{
	struct dp p;
	int rc;

	memset(&p, 0, sizeof(p));
	memset(err, 0, sizeof(*err));
	p.rd = r;
	p.rarg = rarg;
	p.s = s;
	p.err = err;
	p.win = malloc(DP_WINDOW);
	p.hs = XXH3_createState();
	if (!p.win || !p.hs) {
		rc = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(p.hs);
	rc = dp_document(&p);
	p.st.bytes = p.base + p.pos;
	if (rc == 0 && st)
		*st = p.st;
	if (rc < 0 && !err->msg[0]) {
		err->offset = p.base + p.pos;
		snprintf(err->msg, sizeof(err->msg), "byte %llu: %s",
			 (unsigned long long)err->offset, strerror(-rc));
	}
out:
	XXH3_freeState(p.hs);
	free(p.win);
	free(p.set);
	free(p.qino);
	free(p.sl);
	buf_release(&p.str);
	buf_release(&p.str2);
	buf_release(&p.xat);
	buf_release(&p.kb);
	buf_release(&p.tgt);
	return rc;
}

int meta_dump_check(meta_dump_read_fn r, void *arg, struct meta_dump_stats *st,
		    struct meta_dump_error *err)
{
	return dump_parse(r, arg, NULL, st, err);
}
