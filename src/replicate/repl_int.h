/*
 * repl_int.h - private to src/replicate/: object names, the segment and
 * snapshot formats, and listing the generations of a volume.
 *
 * Segment object (all integers big-endian):
 *   header  "TSEG" u32 version=1, u64 generation, u64 first seq,
 *           u64 last seq, u32 txn count, u32 record count, u64 body length
 *   body    per txn: u64 seq, u32 record count, u32 byte length, records
 *           record: u8 op (1 put, 2 del), u8 group, u16 key length,
 *                   u32 value length (0 for del), key, value
 *   trailer u64 xxh3-64 of header + body
 * Snapshot object:
 *   header  "TSNP" u32 version=1, u64 generation, u64 seq, u64 records,
 *           u64 raw body length, u32 codec (0 none, 1 zstd), u32 0,
 *           u64 stored body length, u64 counter nextSlice, i64 time (ns),
 *           u64 counter txnSeq
 *   body    records u8 group, u16 key length, u32 value length, key, value
 *           (compressed with codec)
 *   trailer u64 xxh3-64 of header + stored body
 * A reader checks magic, version, lengths and checksum before using a byte,
 * so a truncated or altered object is refused, never half applied.
 */
#ifndef TESSERA_REPLICATE_REPL_INT_H
#define TESSERA_REPLICATE_REPL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta/kv.h"
#include "meta/meta_scan.h"
#include "object/object.h"
#include "replicate/repl.h"
#include "util/buf.h"

#define REPL_SEG_MAGIC "TSEG"
#define REPL_SNAP_MAGIC "TSNP"
#define REPL_FMT_VERSION 1
#define REPL_SEG_HDR 48
#define REPL_SNAP_HDR 80
#define REPL_TXN_HDR 16
#define REPL_REC_HDR 8	/* segment record: op, group, klen, vlen */
#define REPL_SREC_HDR 7 /* snapshot record: group, klen, vlen */
#define REPL_SUM_LEN 8

#define REPL_OP_PUT 1
#define REPL_OP_DEL 2

/* Records per transaction when loading a snapshot. */
#define REPL_LOAD_BATCH 4096

/* The KV_SETTING key naming the generation a local database ships to. */
#define REPL_GEN_SETTING "replGeneration"
/*
 * The KV_SETTING key naming the generation a database was restored from
 * (repl_restore), until a wrapper gives it a generation of its own.  Like
 * REPL_GEN_SETTING it is local: snapshots leave it out.
 */
#define REPL_FROM_SETTING "replRestoredFrom"

/** True for the local-only settings above (never in a snapshot). */
bool repl_is_local_setting(const void *key, size_t klen);

/* ---- names ---- */

/** "NAME/meta/" into @out (size >= OBJ_KEY_MAX + 1).  -EINVAL bad name. */
int repl_key_meta(char *out, size_t n, const char *vol);
int repl_key_seg(char *out, size_t n, const char *vol, const char *gen,
		 uint64_t first, uint64_t last);
int repl_key_snap(char *out, size_t n, const char *vol, const char *gen,
		  uint64_t seq);
int repl_key_lease(char *out, size_t n, const char *vol);
int repl_key_ckpt(char *out, size_t n, const char *vol, const char *name);
/** Check a volume name usable in object keys.  0 or -EINVAL. */
int repl_check_volname(const char *vol);
/** True when @s is exactly REPL_GEN_LEN lower-case hex digits. */
bool repl_is_gen(const char *s, size_t len);
uint64_t repl_gen_to_u64(const char *gen);
void repl_gen_from_u64(uint64_t v, char out[REPL_GEN_SIZE]);
int64_t repl_now_ms(void);  /* CLOCK_REALTIME */
int64_t repl_mono_ms(void); /* CLOCK_MONOTONIC */

/* ---- segments ---- */

/*
 * A segment being built: the body bytes of consecutive txns.  Owned by one
 * thread at a time (the engine guards it with its lock).
 */
struct repl_seg {
	struct buf body;
	uint64_t first, last; /* 0/0 when empty */
	uint32_t ntxn, nrec;
	int64_t started_ms; /* monotonic time of the first txn */
};

void repl_seg_init(struct repl_seg *s);
void repl_seg_release(struct repl_seg *s);
/** Empty the segment, keeping its memory. */
void repl_seg_reset(struct repl_seg *s);

/**
 * Encode one record into @txn (a txn body being built; begins with a
 * REPL_TXN_HDR placeholder written by repl_txn_start).
 */
int repl_txn_start(struct buf *txn);
int repl_txn_add(struct buf *txn, int op, int grp, const void *key, size_t klen,
		 const void *val, size_t vlen);
/**
 * Append the txn body @txn (with @nrec records) as txn @seq to @s: fills in
 * the txn header.  0 or -ENOMEM.
 */
int repl_seg_append(struct repl_seg *s, struct buf *txn, uint32_t nrec,
		    uint64_t seq);
/** Drop the txns with seq <= @upto from the front of @s. */
void repl_seg_drop_upto(struct repl_seg *s, uint64_t upto);
/** Encode @s as a segment object of generation @gen into @out. */
int repl_seg_encode(const struct repl_seg *s, const char *gen, struct buf *out);

/* A decoded segment header plus a pointer to the verified body. */
struct repl_seg_view {
	uint64_t gen, first, last;
	uint32_t ntxn, nrec;
	const unsigned char *body;
	size_t body_len;
};

/**
 * Check the segment object @data: magic, version, lengths, checksum, and
 * that every txn and record is well formed and in order.  -EBADMSG with a
 * short reason in *why when not.
 */
int repl_seg_decode(const void *data, size_t len, struct repl_seg_view *v,
		    const char **why);

/*
 * Visit the txns of a verified segment: fn(arg, seq, records, len, nrec)
 * for each, in order.  Then repl_rec_next walks the records of one txn.
 */
typedef int (*repl_txn_fn)(void *arg, uint64_t seq, const unsigned char *recs,
			   size_t len, uint32_t nrec);
int repl_seg_foreach(const struct repl_seg_view *v, repl_txn_fn fn, void *arg);

struct repl_rec {
	int op, grp;
	const unsigned char *key, *val;
	size_t klen, vlen;
};
/** Parse the record at *p (advanced past it); -EBADMSG when malformed. */
int repl_rec_next(const unsigned char **p, const unsigned char *end,
		  struct repl_rec *r);

/* ---- snapshots ---- */

struct repl_snap_info {
	uint64_t gen, seq, records, raw_len, stored_len;
	uint64_t next_slice; /* counter nextSlice, 0 if absent */
	uint64_t txn_seq;    /* counter txnSeq (meta's), 0 if absent */
	int64_t time_ns;     /* when the dump was taken */
};

/** Parse just a snapshot header (e.g. from a ranged GET).  -EBADMSG. */
int repl_snap_header(const void *data, size_t len, struct repl_snap_info *info);

/**
 * Dump every record of @e (groups 1..KV_GROUP_MAX-1, in one read-only
 * txn) into a snapshot object in @out, tagged with generation @gen (may be
 * NULL: 0).  The KV_SETTING REPL_GEN_SETTING is left out: a database
 * rebuilt from a snapshot belongs to no generation yet.  @info gets the seq
 * (REPL_SEQ_COUNTER) it contains.
 */
int repl_snap_dump(struct kv_engine *e, const char *gen, struct buf *out,
		   struct repl_snap_info *info);
/** The same inside the caller's txn @t (read-only or read-write). */
int repl_snap_dump_txn(struct kv_txn *t, const char *gen, struct buf *out,
		       struct repl_snap_info *info);

/**
 * Verify snapshot object @data (magic, lengths, checksum) and call @fn for
 * each record, streaming the decompression.  -EBADMSG with *why when bad.
 */
typedef int (*repl_srec_fn)(void *arg, int grp, const void *key, size_t klen,
			    const void *val, size_t vlen);
int repl_snap_check(const void *data, size_t len, struct repl_snap_info *info,
		    const char **why);
int repl_snap_foreach(const void *data, size_t len, repl_srec_fn fn, void *arg,
		      const char **why);

/**
 * Load snapshot object @data into the empty engine @e, in txns of
 * REPL_LOAD_BATCH records.  *nrec gets the count.  -EBADMSG with *why when
 * the object is damaged (checked before the first write).
 */
int repl_snap_load(struct kv_engine *e, const void *data, size_t len,
		   uint64_t *nrec, const char **why);

/* ---- store listing ---- */

struct repl_obj {
	uint64_t a, b; /* snapshot: seq, 0; segment: first, last */
	uint64_t size;
};

struct repl_gen {
	char id[REPL_GEN_SIZE];
	struct repl_obj *snaps; /* sorted by seq */
	size_t nsnaps;
	struct repl_obj *segs; /* sorted by first, then last */
	size_t nsegs;
};

struct repl_listing {
	struct repl_gen *gens; /* sorted by id, oldest first */
	size_t ngens;
};

/** List every generation of @vol with its snapshots and segments. */
int repl_list(struct obj_store *s, const char *vol, struct repl_listing *out);
void repl_listing_release(struct repl_listing *l);
/** The newest generation with a snapshot, or NULL. */
const struct repl_gen *repl_listing_latest(const struct repl_listing *l);
/** Last txn seq a generation holds (newest of snapshots and segments). */
uint64_t repl_gen_last_seq(const struct repl_gen *g);

/**
 * Delete every record of every group of @t except the groups for which
 * @keep (may be NULL: none) is true.  Keys are collected per group before
 * deleting (an engine need not support changing a group while scanning
 * it).
 */
int repl_clear_txn(struct kv_txn *t, bool (*keep)(int grp));

/** Put @data under @key, then obj_sync: 0 or -errno (not logged). */
int repl_put_durable(struct obj_store *s, const char *key, const void *data,
		     size_t len);

#endif
