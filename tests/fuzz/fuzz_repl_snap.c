/*
 * fuzz_repl_snap.c - libFuzzer target for the replication snapshot decoder
 * (repl_snap_header, repl_snap_check, repl_snap_foreach): a restore loads
 * a snapshot read from the store.
 *
 * The first input byte picks a mode, the rest is the input:
 *   0  the snapshot object as it is
 *   1  a header (REPL_SNAP_HDR bytes) then a zstd body: magic, version,
 *      codec, stored length and checksum are repaired, so the fuzzer
 *      reaches the streaming decompressor
 *   2  a header then the raw records: the body is compressed here and
 *      the header repaired, so the fuzzer reaches the record parser
 * Every record handed out is read end to end (ASan checks it); a snapshot
 * that verifies must hand out exactly the records its header counts.
 */
#include "util/common.h"
#include "replicate/repl_int.h"

#include <stdint.h>
#include <xxhash.h>
#include <zstd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct count {
	uint64_t n;
	unsigned sum;
};

static int on_rec(void *arg, int grp, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	struct count *c = arg;
	const unsigned char *k = key, *v = val;

	if (grp <= 0 || grp >= KV_GROUP_MAX || klen > KV_KEY_MAX ||
	    vlen > KV_VAL_MAX)
		abort();
	if (klen)
		c->sum += k[0] + k[klen - 1];
	if (vlen)
		c->sum += v[0] + v[vlen - 1];
	c->n++;
	return 0;
}

/* Header from @data (zero-padded), then @body, then the checksum. */
static unsigned char *wrap(const uint8_t *data, size_t size, const void *body,
			   size_t blen, size_t *len)
{
	size_t n = REPL_SNAP_HDR + blen;
	unsigned char *p = calloc(1, n + REPL_SUM_LEN);

	if (!p)
		return NULL;
	memcpy(p, data, MIN(size, (size_t)REPL_SNAP_HDR));
	memcpy(p, REPL_SNAP_MAGIC, 4);
	put_be32(p + 4, REPL_FMT_VERSION);
	put_be32(p + 40, 1); /* zstd */
	put_be64(p + 48, blen);
	if (blen)
		memcpy(p + REPL_SNAP_HDR, body, blen);
	put_be64(p + n, XXH3_64bits(p, n));
	*len = n + REPL_SUM_LEN;
	return p;
}

static unsigned char *build(uint8_t mode, const uint8_t *data, size_t size,
			    size_t *len)
{
	const uint8_t *body = data + MIN(size, (size_t)REPL_SNAP_HDR);
	size_t blen = size - MIN(size, (size_t)REPL_SNAP_HDR);
	unsigned char *p, *z;
	size_t zn;

	if (mode == 1)
		return wrap(data, size, body, blen, len);
	if (mode == 2) {
		static ZSTD_CCtx *cc; /* one per process: creating is slow */

		if (!cc && !(cc = ZSTD_createCCtx()))
			return NULL;
		z = malloc(ZSTD_compressBound(blen));
		if (!z)
			return NULL;
		zn = ZSTD_compressCCtx(cc, z, ZSTD_compressBound(blen), body,
				       blen, 1);
		p = ZSTD_isError(zn) ? NULL : wrap(data, size, z, zn, len);
		free(z);
		return p;
	}
	*len = size;
	p = malloc(size ? size : 1); /* exact size: ASan sees overreads */
	if (p && size)
		memcpy(p, data, size);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct repl_snap_info info;
	struct count c = {0, 0};
	const char *why = NULL;
	unsigned char *p;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	p = build(data[0] % 3, data + 1, size - 1, &len);
	if (!p)
		return 0;
	(void)repl_snap_header(p, len, &info);
	if (repl_snap_check(p, len, &info, &why) == 0) {
		rc = repl_snap_foreach(p, len, on_rec, &c, &why);
		if (rc == 0 && c.n != info.records)
			abort();
		if (rc != 0 && !why)
			abort();
	} else if (!why) {
		abort();
	}
	free(p);
	return 0;
}
