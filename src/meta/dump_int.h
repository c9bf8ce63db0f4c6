/*
 * dump_int.h - private to dump.c, dump_parse.c and load.c: the items the
 * parser hands to a sink, and the helpers the writer and the parser share
 * (type names, base64, which bytes go as a JSON string).
 *
 * Pointers in an item live until the sink callback returns.
 */
#ifndef TESSERA_META_DUMP_INT_H
#define TESSERA_META_DUMP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/dump.h"
#include "meta/meta.h"
#include "meta/meta_scan.h"
#include "util/buf.h"
#include "util/slice.h"

/* One inode item. */
struct dump_inode {
	struct meta_attr a;
	bool alloc_known; /* a.alloc was in the dump */
	uint64_t next_cookie;
	const char *target; /* symlinks */
	size_t target_len;
	/* xattrs, packed: name length (1 byte), name, value length (4,
	 * big-endian), value; nxattrs of them */
	const unsigned char *xattrs;
	size_t xattrs_len, nxattrs;
};

struct dump_entry {
	uint64_t parent;
	const char *name;
	size_t name_len;
	uint64_t ino;
	uint32_t type; /* S_IFMT bits */
	uint64_t cookie;
};

/* What a parser delivers; any member may be NULL.  0 goes on, -errno
 * stops the parse (returned; err->msg says "cannot write"). */
struct dump_sink {
	int (*volume)(void *arg, const struct meta_format *f);
	int (*counter)(void *arg, const char *name, uint64_t v);
	/* a quota's directory and limits (0: none), by directory */
	int (*quota)(void *arg, uint64_t ino, uint64_t space_limit,
		     uint64_t inodes_limit);
	int (*inode)(void *arg, const struct dump_inode *i);
	int (*deleted)(void *arg, uint64_t ino, uint64_t length);
	int (*entry)(void *arg, const struct dump_entry *e);
	int (*chunk)(void *arg, uint64_t ino, uint32_t index,
		     const struct slice *s, size_t n);
	int (*sliceref)(void *arg, uint64_t id, uint64_t refs);
	int (*pending)(void *arg, uint64_t id, uint32_t size,
		       uint64_t deleted_at);
	int (*checkpoint)(void *arg, const struct meta_ckpt *c);
	void *arg;
};

/** Parse and check a document, handing items to @s (NULL: check only). */
int dump_parse(meta_dump_read_fn r, void *rarg, const struct dump_sink *s,
	       struct meta_dump_stats *st, struct meta_dump_error *err);

/** "dir", "file"... for S_IFMT bits @type; NULL when not one. */
const char *dump_type_name(uint32_t type);
/** S_IFMT bits of type name @s (@n bytes); 0 when unknown. */
uint32_t dump_type_of(const char *s, size_t n);
/** True when @p (@n bytes) is valid UTF-8 without NUL: it goes into the
 *  document as a string; other bytes go as base64 ("NAME_b64"). */
bool dump_is_text(const void *p, size_t n);
/** Append the base64 (RFC 4648, padded) of @p to @b. */
int dump_b64_encode(struct buf *b, const void *p, size_t n);
/** Decode base64 @s (@n chars) into @b (reset first); -EINVAL. */
int dump_b64_decode(struct buf *b, const char *s, size_t n);

#endif
