/*
 * fuzz_repl_seg.c - libFuzzer target for the replication segment decoder
 * (repl_seg_decode, repl_seg_foreach, repl_rec_next): a restore or a
 * follower applies segments read from the store.
 *
 * The first input byte picks a mode, the rest is the object:
 *   0 (bit 0 clear)  decode the bytes as they are
 *   1 (bit 0 set)    repair magic, version, body length and the trailing
 *                    checksum first, so the fuzzer reaches the txn and
 *                    record checks behind the checksum
 * A segment that decodes is walked as an applier walks it; the walk must
 * find exactly the txns and records the header announces, in order.
 */
#include "util/common.h"
#include "replicate/repl_int.h"

#include <stdint.h>
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walk {
	uint64_t next_seq;
	uint32_t ntxn, nrec;
	unsigned sum;
};

static int walk_txn(void *arg, uint64_t seq, const unsigned char *recs,
		    size_t len, uint32_t nrec)
{
	struct walk *w = arg;
	const unsigned char *p = recs, *end = recs + len;

	if (seq != w->next_seq)
		abort();
	for (uint32_t i = 0; i < nrec; i++) {
		struct repl_rec r;

		if (repl_rec_next(&p, end, &r) < 0)
			abort(); /* decode said every record is well formed */
		/* Read both ends of key and value: ASan checks them. */
		if (r.klen)
			w->sum += r.key[0] + r.key[r.klen - 1];
		if (r.vlen)
			w->sum += r.val[0] + r.val[r.vlen - 1];
	}
	if (p != end)
		abort();
	w->next_seq++;
	w->ntxn++;
	w->nrec += nrec;
	return 0;
}

static unsigned char *repaired(const uint8_t *data, size_t size, size_t *len)
{
	size_t n = MAX(size, (size_t)REPL_SEG_HDR);
	unsigned char *p = calloc(1, n + REPL_SUM_LEN);

	if (!p)
		return NULL;
	memcpy(p, data, size);
	memcpy(p, REPL_SEG_MAGIC, 4);
	put_be32(p + 4, REPL_FMT_VERSION);
	put_be64(p + 40, n - REPL_SEG_HDR);
	put_be64(p + n, XXH3_64bits(p, n));
	*len = n + REPL_SUM_LEN;
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct repl_seg_view v;
	const char *why = NULL;
	unsigned char *p;
	size_t len;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		p = repaired(data + 1, size - 1, &len);
	} else {
		len = size - 1;
		p = malloc(len ? len : 1); /* exact size: ASan sees overreads */
		if (p && len)
			memcpy(p, data + 1, len);
	}
	if (!p)
		return 0;
	if (repl_seg_decode(p, len, &v, &why) == 0) {
		struct walk w = {.next_seq = v.first};

		if (repl_seg_foreach(&v, walk_txn, &w) != 0 ||
		    w.ntxn != v.ntxn || w.nrec != v.nrec ||
		    (w.ntxn && w.next_seq - 1 != v.last))
			abort();
	} else if (!why) {
		abort();
	}
	free(p);
	return 0;
}
