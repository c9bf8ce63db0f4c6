/*
 * fuzz_dump.c - libFuzzer target for the dump parser (meta/dump_parse.c):
 * `tessera load` reads a dump file a user gives it.
 *
 * The first input byte sets how many bytes each read hands the parser
 * (0: all at once; otherwise 1 to 255), so the fuzzer also crosses the
 * window refills at every place; the rest is the document.  Every item
 * the parser delivers is read end to end (ASan checks it) and checked
 * against what the parser promises: names and targets within their
 * limits, packed xattrs exactly filling their buffer, slices inside their
 * chunk.  A document that parses must have delivered what its stats say.
 * Seeds: tests/fuzz/corpus/dump/ (real dumps, with and without checksum,
 * compact and indented).
 */
#include "util/common.h"
#include "meta/dump_int.h"
#include "meta/meta_int.h"

#include <stdint.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct src {
	const uint8_t *p;
	size_t n, off, step;
};

static ssize_t rd(void *arg, void *p, size_t n)
{
	struct src *s = arg;
	size_t k = MIN(n, s->n - s->off);

	if (s->step)
		k = MIN(k, s->step);
	memcpy(p, s->p + s->off, k);
	s->off += k;
	return (ssize_t)k;
}

struct seen {
	struct meta_dump_stats st;
	unsigned sum;
};

static unsigned touch(const void *p, size_t n)
{
	const unsigned char *c = p;
	unsigned s = 0;

	for (size_t i = 0; i < n; i++)
		s += c[i];
	return s;
}

static int on_volume(void *arg, const struct meta_format *f)
{
	struct seen *s = arg;

	if (!memchr(f->name, 0, sizeof(f->name)) || f->version != 1)
		abort();
	s->sum += touch(f, sizeof(*f));
	return 0;
}

static int on_counter(void *arg, const char *name, uint64_t v)
{
	struct seen *s = arg;

	s->sum += touch(name, strlen(name)) + (unsigned)v;
	return 0;
}

static int on_inode(void *arg, const struct dump_inode *i)
{
	struct seen *s = arg;
	const unsigned char *p = i->xattrs, *end = p;
	size_t n = 0;

	if (p)
		end = p + i->xattrs_len;
	else if (i->xattrs_len || i->nxattrs)
		abort();

	if (i->a.ino == 0 || !dump_type_name(i->a.mode & S_IFMT))
		abort();
	if ((i->a.mode & S_IFMT) == S_IFLNK &&
	    (!i->target || i->target_len == 0 ||
	     i->target_len > META_SYMLINK_MAX))
		abort();
	if (i->target)
		s->sum += touch(i->target, i->target_len);
	while (p < end) {
		size_t nlen = p[0], vlen;

		if (nlen == 0 || (size_t)(end - p) < 1 + nlen + 4)
			abort();
		vlen = get_be32(p + 1 + nlen);
		if ((size_t)(end - p) < 1 + nlen + 4 + vlen ||
		    vlen > META_XATTR_SIZE_MAX)
			abort();
		s->sum += touch(p, 1 + nlen + 4 + vlen);
		p += 1 + nlen + 4 + vlen;
		n++;
	}
	if (n != i->nxattrs)
		abort();
	s->st.inodes++;
	return 0;
}

static int on_deleted(void *arg, uint64_t ino, uint64_t length)
{
	struct seen *s = arg;

	s->sum += (unsigned)(ino + length);
	s->st.deleted++;
	return 0;
}

static int on_entry(void *arg, const struct dump_entry *e)
{
	struct seen *s = arg;

	if (e->name_len == 0 || e->name_len > TESSERA_NAME_MAX ||
	    memchr(e->name, '/', e->name_len))
		abort();
	s->sum += touch(e->name, e->name_len);
	s->st.entries++;
	return 0;
}

static int on_chunk(void *arg, uint64_t ino, uint32_t index,
		    const struct slice *sl, size_t n)
{
	struct seen *s = arg;

	for (size_t i = 0; i < n; i++)
		if ((uint64_t)sl[i].pos + sl[i].len > TESSERA_CHUNK_SIZE)
			abort();
	s->sum += touch(sl, n * sizeof(*sl)) + (unsigned)(ino + index);
	s->st.chunks++;
	return 0;
}

static int on_ckpt(void *arg, const struct meta_ckpt *c)
{
	struct seen *s = arg;

	if (!memchr(c->name, 0, sizeof(c->name)))
		abort();
	s->st.checkpoints++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen seen;
	struct dump_sink sink = {
	    .volume = on_volume, .counter = on_counter, .inode = on_inode,
	    .deleted = on_deleted, .entry = on_entry, .chunk = on_chunk,
	    .checkpoint = on_ckpt, .arg = &seen,
	};
	struct meta_dump_stats st;
	struct meta_dump_error err;
	struct src s;
	int rc;

	if (size < 1)
		return 0;
	memset(&seen, 0, sizeof(seen));
	s.p = data + 1;
	s.n = size - 1;
	s.off = 0;
	s.step = data[0];
	rc = dump_parse(rd, &s, &sink, &st, &err);
	if (rc < 0 && (!err.msg[0] || err.offset > s.n))
		abort(); /* a refusal names where */
	if (rc == 0 && (st.inodes != seen.st.inodes ||
			st.entries != seen.st.entries ||
			st.chunks != seen.st.chunks ||
			st.deleted != seen.st.deleted ||
			st.checkpoints != seen.st.checkpoints))
		abort();
	if (rc == 0 && s.off != s.n)
		abort(); /* nothing may trail an accepted document */
	return 0;
}
