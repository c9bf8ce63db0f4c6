/*
 * dump.h - a volume's metadata as one JSON document (`tessera dump`,
 * `tessera load`; DESIGN section 8, docs/dump.md for the format).
 *
 * The document is written and read as a stream: the tree is a sequence
 * of small objects (one per inode, entry, chunk...), so memory does not
 * grow with the volume.  Writing reads everything through one meta_view
 * (a consistent snapshot, also of a mounted volume).  Reading is a
 * hand-written tokenizer over a byte stream: every error names the byte
 * offset and the item ("inodes[41]") and stops at once.
 *
 * Loading validates before it writes: meta_dump_check reads the whole
 * document and proves it complete (the summary counts, the checksum) and
 * consistent (entries name inodes of the right type, ids below their
 * counters); meta_load then writes it into an empty target in batches of
 * transactions under a "load" marker that a mount refuses, and the
 * volume settings go last.  A load that fails half-way wipes the target.
 *
 * Memory: the checker keeps one 8-byte word per inode (entries and
 * chunks are checked against that set); nothing else grows with the
 * volume.
 */
#ifndef TESSERA_META_DUMP_H
#define TESSERA_META_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct meta;

#define META_DUMP_FORMAT "tessera-dump"
#define META_DUMP_VERSION 1

/* What a dump holds (meta_dump, meta_dump_check, meta_load). */
struct meta_dump_stats {
	uint64_t inodes, deleted, entries, chunks, slices;
	uint64_t slicerefs, pending, checkpoints, xattrs, quotas;
	uint64_t bytes; /* of the document */
};

/*
 * Write @n bytes of the document.  0 or -errno (stops the dump).
 */
typedef int (*meta_dump_write_fn)(void *arg, const void *p, size_t n);
/*
 * Read up to @n bytes into @p: the number read, 0 at the end, -errno.
 */
typedef ssize_t (*meta_dump_read_fn)(void *arg, void *p, size_t n);
/* Progress: called now and then with the items done so far. */
typedef void (*meta_dump_progress_fn)(void *arg, uint64_t items);

struct meta_dump_opts {
	bool indent; /* one member per line, indented (--json-indent) */
	meta_dump_progress_fn progress; /* may be NULL */
	void *progress_arg;
};

/**
 * Write the document of @m's volume through @w, from one meta_view.
 * Secrets are not in the metadata (the encryption key file never is; the
 * wrapped data key is kept).  *st (may be NULL): what was written.
 * Errors: -EAGAIN (Redis: the volume changed during the dump; what was
 * written mixes two states: discard it and dump again), -EIO (a record
 * that does not decode: logged with its inode; fsck first), -ENOMEM,
 * or @w's error.
 */
int meta_dump(struct meta *m, const struct meta_dump_opts *o,
	      meta_dump_write_fn w, void *arg, struct meta_dump_stats *st);

/* Why a document was refused. */
struct meta_dump_error {
	uint64_t offset; /* byte offset where the problem was found */
	char msg[512];	 /* "inodes[41] (ino 57): bad 'mode' ...", with the
			  * offset: one line */
};

/**
 * Read a whole document from @r and check it (no metadata is touched).
 * 0: complete and consistent, *st (may be NULL) says what it holds.
 * -EINVAL: refused, @err says where and why (not logged).  A read
 * error of @r: its -errno (err->msg says so).  -ENOMEM.
 */
int meta_dump_check(meta_dump_read_fn r, void *arg, struct meta_dump_stats *st,
		    struct meta_dump_error *err);

struct meta_load_opts {
	bool force; /* wipe a target that holds only an unfinished load */
	meta_dump_progress_fn progress; /* may be NULL */
	void *progress_arg;
};

/**
 * Load a document (already checked by meta_dump_check: run it on the
 * same bytes first) into the metadata at @url, which is created when
 * missing and must be empty.  Inode numbers, slice ids and counters stay
 * as dumped; the data objects are shared with the dumped volume (nothing
 * is copied), so the loaded volume has "replicate" off.  On any failure
 * after the first write the target is wiped again.
 * Errors (one line logged each): -EEXIST (the target is not empty, or
 * holds an unfinished load and !force), -EINVAL (@r's document is
 * refused: @err), -EIO, -ENOMEM, the engine's open errors.
 */
int meta_load(const char *url, const struct meta_load_opts *o,
	      meta_dump_read_fn r, void *arg, struct meta_dump_stats *st,
	      struct meta_dump_error *err);

#endif
