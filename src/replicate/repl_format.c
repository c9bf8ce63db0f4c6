/*
 * repl_format.c - object names, the segment and snapshot encodings, and the
 * listing of a volume's generations (formats: repl_int.h).
 *
 * Design: every object is verified whole before any byte of it is used: the
 * checksum (xxh3-64) covers header and body, and the header states the body
 * length, so a truncated object fails the length check and an altered one
 * the checksum.  Decoders then still walk every txn and record with bounds
 * checks, because a checksum proves integrity, not that the writer was
 * right.  Snapshots are compressed with zstd while the records are scanned
 * (streaming, so only the compressed dump is held in memory) and
 * decompressed the same way on load.
 *
 * Nothing here has state or threads; every function is any-thread.
 */
#include "util/common.h"
#include "replicate/repl_int.h"
#include "util/log.h"

#include <stdarg.h>
#include <time.h>
#include <xxhash.h>
#include <zstd.h>

#define SNAP_STAGE_BYTES (1024 * 1024)
#define SNAP_ZSTD_LEVEL 3
#define SNAP_CODEC_ZSTD 1

/* ---- names ---- */

int repl_check_volname(const char *vol)
{
	size_t n = vol ? strlen(vol) : 0;

	if (n == 0 || n > TESSERA_NAME_MAX || vol[0] == '.' || vol[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = vol[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-')
			return -EINVAL;
	}
	return 0;
}

static int key_fmt(char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int key_fmt(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(out, n, fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= n || len > OBJ_KEY_MAX)
		return -EINVAL;
	return 0;
}

int repl_key_meta(char *out, size_t n, const char *vol)
{
	if (repl_check_volname(vol) < 0)
		return -EINVAL;
	return key_fmt(out, n, "%s/meta/", vol);
}

int repl_key_seg(char *out, size_t n, const char *vol, const char *gen,
		 uint64_t first, uint64_t last)
{
	if (repl_check_volname(vol) < 0)
		return -EINVAL;
	return key_fmt(out, n, "%s/meta/%s/seg/%016llx-%016llx", vol, gen,
		       (unsigned long long)first, (unsigned long long)last);
}

int repl_key_snap(char *out, size_t n, const char *vol, const char *gen,
		  uint64_t seq)
{
	if (repl_check_volname(vol) < 0)
		return -EINVAL;
	return key_fmt(out, n, "%s/meta/%s/snap/%016llx", vol, gen,
		       (unsigned long long)seq);
}

int repl_key_lease(char *out, size_t n, const char *vol)
{
	if (repl_check_volname(vol) < 0)
		return -EINVAL;
	return key_fmt(out, n, "%s/meta/lease", vol);
}

int repl_key_ckpt(char *out, size_t n, const char *vol, const char *name)
{
	if (repl_check_volname(vol) < 0 || repl_check_volname(name) < 0)
		return -EINVAL;
	return key_fmt(out, n, "%s/meta/ckpt/%s", vol, name);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool repl_is_gen(const char *s, size_t len)
{
	if (len != REPL_GEN_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

/* Parse exactly 16 lower-case hex digits. */
static bool parse_hex16(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 16; i++) {
		int d = hexval(s[i]);

		if (d < 0)
			return false;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return true;
}

uint64_t repl_gen_to_u64(const char *gen)
{
	uint64_t v = 0;

	if (!gen || !repl_is_gen(gen, strlen(gen)) || !parse_hex16(gen, &v))
		return 0;
	return v;
}

void repl_gen_from_u64(uint64_t v, char out[REPL_GEN_SIZE])
{
	snprintf(out, REPL_GEN_SIZE, "%016llx", (unsigned long long)v);
}

int64_t repl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t repl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- segments ---- */

void repl_seg_init(struct repl_seg *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->body);
}

void repl_seg_release(struct repl_seg *s)
{
	buf_release(&s->body);
	repl_seg_init(s);
}

void repl_seg_reset(struct repl_seg *s)
{
	buf_reset(&s->body);
	s->first = s->last = 0;
	s->ntxn = s->nrec = 0;
	s->started_ms = 0;
}

int repl_txn_start(struct buf *txn)
{
	static const unsigned char zero[REPL_TXN_HDR];

	buf_reset(txn);
	return buf_append(txn, zero, sizeof(zero));
}

int repl_txn_add(struct buf *txn, int op, int grp, const void *key, size_t klen,
		 const void *val, size_t vlen)
{
	unsigned char h[REPL_REC_HDR];
	int rc;

	if (grp <= 0 || grp >= KV_GROUP_MAX || klen > KV_KEY_MAX ||
	    vlen > KV_VAL_MAX)
		return -EINVAL;
	h[0] = (unsigned char)op;
	h[1] = (unsigned char)grp;
	h[2] = (unsigned char)(klen >> 8);
	h[3] = (unsigned char)klen;
	put_be32(h + 4, (uint32_t)vlen);
	rc = buf_grow(txn, sizeof(h) + klen + vlen);
	if (rc < 0)
		return rc;
	buf_append(txn, h, sizeof(h));
	buf_append(txn, key, klen);
	buf_append(txn, val, vlen);
	return 0;
}

int repl_seg_append(struct repl_seg *s, struct buf *txn, uint32_t nrec,
		    uint64_t seq)
{
	unsigned char *h = (unsigned char *)txn->data;
	int rc;

	if (txn->len < REPL_TXN_HDR || (s->ntxn && seq != s->last + 1))
		return -EINVAL;
	if (txn->len - REPL_TXN_HDR > UINT32_MAX)
		return -EFBIG; /* the txn header holds a 32-bit length */
	put_be64(h, seq);
	put_be32(h + 8, nrec);
	put_be32(h + 12, (uint32_t)(txn->len - REPL_TXN_HDR));
	rc = buf_append(&s->body, txn->data, txn->len);
	if (rc < 0)
		return rc;
	if (s->ntxn == 0) {
		s->first = seq;
		s->started_ms = repl_mono_ms();
	}
	s->last = seq;
	s->ntxn++;
	s->nrec += nrec;
	return 0;
}

void repl_seg_drop_upto(struct repl_seg *s, uint64_t upto)
{
	const unsigned char *p = (const unsigned char *)s->body.data;
	size_t off = 0;

	if (s->ntxn == 0 || s->first > upto)
		return;
	while (s->ntxn > 0 && off + REPL_TXN_HDR <= s->body.len) {
		uint64_t seq = get_be64(p + off);

		if (seq > upto) {
			s->first = seq;
			break;
		}
		s->nrec -= get_be32(p + off + 8);
		off += REPL_TXN_HDR + get_be32(p + off + 12);
		s->ntxn--;
	}
	if (s->ntxn == 0) {
		repl_seg_reset(s);
		return;
	}
	memmove(s->body.data, s->body.data + off, s->body.len - off);
	s->body.len -= off;
	s->body.data[s->body.len] = '\0';
}

int repl_seg_encode(const struct repl_seg *s, const char *gen, struct buf *out)
{
	unsigned char h[REPL_SEG_HDR];
	unsigned char sum[REPL_SUM_LEN];
	int rc;

	memcpy(h, REPL_SEG_MAGIC, 4);
	put_be32(h + 4, REPL_FMT_VERSION);
	put_be64(h + 8, repl_gen_to_u64(gen));
	put_be64(h + 16, s->first);
	put_be64(h + 24, s->last);
	put_be32(h + 32, s->ntxn);
	put_be32(h + 36, s->nrec);
	put_be64(h + 40, s->body.len);
	buf_reset(out);
	rc = buf_grow(out, sizeof(h) + s->body.len + sizeof(sum));
	if (rc < 0)
		return rc;
	buf_append(out, h, sizeof(h));
	buf_append(out, s->body.data, s->body.len);
	put_be64(sum, XXH3_64bits(out->data, out->len));
	buf_append(out, sum, sizeof(sum));
	return 0;
}

int repl_rec_next(const unsigned char **pp, const unsigned char *end,
		  struct repl_rec *r)
{
	const unsigned char *p = *pp;
	size_t avail = (size_t)(end - p);

	if (avail < REPL_REC_HDR)
		return -EBADMSG;
	r->op = p[0];
	r->grp = p[1];
	r->klen = ((size_t)p[2] << 8) | p[3];
	r->vlen = get_be32(p + 4);
	if ((r->op != REPL_OP_PUT && r->op != REPL_OP_DEL) || r->grp <= 0 ||
	    r->grp >= KV_GROUP_MAX || r->klen > KV_KEY_MAX ||
	    r->vlen > KV_VAL_MAX || (r->op == REPL_OP_DEL && r->vlen) ||
	    avail - REPL_REC_HDR < r->klen + r->vlen)
		return -EBADMSG;
	r->key = p + REPL_REC_HDR;
	r->val = r->key + r->klen;
	*pp = r->val + r->vlen;
	return 0;
}

/* Check the txns of a segment body: order, counts, well-formed records. */
static int seg_check_body(const struct repl_seg_view *v, const char **why)
{
	const unsigned char *p = v->body, *end = v->body + v->body_len;
	uint64_t expect = v->first;
	uint32_t ntxn = 0, nrec = 0;

	while (p < end) {
		const unsigned char *r, *rend;
		uint32_t n, len;

		if ((size_t)(end - p) < REPL_TXN_HDR) {
			*why = "truncated txn header";
			return -EBADMSG;
		}
		n = get_be32(p + 8);
		len = get_be32(p + 12);
		if (get_be64(p) != expect) {
			*why = "txns out of order";
			return -EBADMSG;
		}
		if ((size_t)(end - p) - REPL_TXN_HDR < len) {
			*why = "truncated txn";
			return -EBADMSG;
		}
		r = p + REPL_TXN_HDR;
		rend = r + len;
		for (uint32_t i = 0; i < n; i++) {
			struct repl_rec rec;

			if (repl_rec_next(&r, rend, &rec) < 0) {
				*why = "malformed record";
				return -EBADMSG;
			}
		}
		if (r != rend) {
			*why = "txn length mismatch";
			return -EBADMSG;
		}
		p = rend;
		expect++;
		ntxn++;
		nrec += n;
	}
	if (ntxn != v->ntxn || nrec != v->nrec || expect - 1 != v->last) {
		*why = "counts do not match the header";
		return -EBADMSG;
	}
	return 0;
}

int repl_seg_decode(const void *data, size_t len, struct repl_seg_view *v,
		    const char **why)
{
	const unsigned char *p = data;
	uint64_t body_len;

	*why = NULL;
	if (len < REPL_SEG_HDR + REPL_SUM_LEN) {
		*why = "too short";
		return -EBADMSG;
	}
	if (memcmp(p, REPL_SEG_MAGIC, 4) != 0) {
		*why = "bad magic";
		return -EBADMSG;
	}
	if (get_be32(p + 4) != REPL_FMT_VERSION) {
		*why = "unknown format version";
		return -EBADMSG;
	}
	body_len = get_be64(p + 40);
	if (body_len != len - REPL_SEG_HDR - REPL_SUM_LEN) {
		*why = "length mismatch (truncated?)";
		return -EBADMSG;
	}
	if (XXH3_64bits(p, len - REPL_SUM_LEN) !=
	    get_be64(p + len - REPL_SUM_LEN)) {
		*why = "checksum mismatch";
		return -EBADMSG;
	}
	v->gen = get_be64(p + 8);
	v->first = get_be64(p + 16);
	v->last = get_be64(p + 24);
	v->ntxn = get_be32(p + 32);
	v->nrec = get_be32(p + 36);
	v->body = p + REPL_SEG_HDR;
	v->body_len = (size_t)body_len;
	if (v->first == 0 || v->last < v->first) {
		*why = "bad sequence range";
		return -EBADMSG;
	}
	return seg_check_body(v, why);
}

int repl_seg_foreach(const struct repl_seg_view *v, repl_txn_fn fn, void *arg)
{
	const unsigned char *p = v->body, *end = v->body + v->body_len;

	while (p + REPL_TXN_HDR <= end) {
		uint32_t len = get_be32(p + 12);
		int rc = fn(arg, get_be64(p), p + REPL_TXN_HDR, len,
			    get_be32(p + 8));

		if (rc != 0)
			return rc;
		p += REPL_TXN_HDR + len;
	}
	return 0;
}

/* ---- snapshots ---- */

struct snap_writer {
	ZSTD_CCtx *cc;
	struct buf *out;
	struct buf stage; /* raw records waiting for the compressor */
	uint64_t records, raw_len;
};

/* Feed the staged records to zstd; @end finishes the frame. */
static int sw_flush(struct snap_writer *w, bool end)
{
	ZSTD_inBuffer in = {w->stage.data, w->stage.len, 0};
	ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;

	for (;;) {
		ZSTD_outBuffer ob;
		size_t r;
		int rc = buf_grow(w->out, ZSTD_CStreamOutSize());

		if (rc < 0)
			return rc;
		ob.dst = w->out->data + w->out->len;
		ob.size = w->out->cap - w->out->len - 1;
		ob.pos = 0;
		r = ZSTD_compressStream2(w->cc, &ob, &in, mode);
		if (ZSTD_isError(r)) {
			log_error("cannot compress a snapshot: %s",
				  ZSTD_getErrorName(r));
			return -EIO;
		}
		w->out->len += ob.pos;
		w->out->data[w->out->len] = '\0';
		if (end ? r == 0 : in.pos == in.size)
			break;
	}
	buf_reset(&w->stage);
	return 0;
}

static int sw_record(struct snap_writer *w, int grp, const void *key,
		     size_t klen, const void *val, size_t vlen)
{
	unsigned char h[REPL_SREC_HDR];
	int rc;

	h[0] = (unsigned char)grp;
	h[1] = (unsigned char)(klen >> 8);
	h[2] = (unsigned char)klen;
	put_be32(h + 3, (uint32_t)vlen);
	rc = buf_grow(&w->stage, sizeof(h) + klen + vlen);
	if (rc < 0)
		return rc;
	buf_append(&w->stage, h, sizeof(h));
	buf_append(&w->stage, key, klen);
	buf_append(&w->stage, val, vlen);
	w->records++;
	w->raw_len += sizeof(h) + klen + vlen;
	if (w->stage.len >= SNAP_STAGE_BYTES)
		return sw_flush(w, false);
	return 0;
}

struct dump_scan {
	struct snap_writer *w;
	int grp;
};

static int dump_one(void *arg, const void *key, size_t klen, const void *val,
		    size_t vlen)
{
	struct dump_scan *d = arg;

	if (d->grp == KV_SETTING && repl_is_local_setting(key, klen))
		return 0;
	return sw_record(d->w, d->grp, key, klen, val, vlen);
}

bool repl_is_local_setting(const void *key, size_t klen)
{
	return (klen == strlen(REPL_GEN_SETTING) &&
		memcmp(key, REPL_GEN_SETTING, klen) == 0) ||
	       (klen == strlen(REPL_FROM_SETTING) &&
		memcmp(key, REPL_FROM_SETTING, klen) == 0);
}

/* Scan every group of @t into @w, and read the counters into @info. */
static int dump_txn(struct kv_txn *t, struct snap_writer *w,
		    struct repl_snap_info *info)
{
	struct meta_ckpt now;
	int rc = meta_rec_counter_get(t, REPL_SEQ_COUNTER, &info->seq);

	memset(&now, 0, sizeof(now));
	if (rc == 0)
		rc = meta_rec_ckpt_now(t, &now);
	info->next_slice = now.next_slice;
	info->txn_seq = now.txn_seq;
	for (int g = 1; rc == 0 && g < KV_GROUP_MAX; g++) {
		struct dump_scan d = {w, g};

		rc = kv_scan(t, g, NULL, 0, NULL, 0, 0, dump_one, &d);
	}
	if (rc == 0)
		rc = sw_flush(w, true);
	return rc;
}

static void snap_header(unsigned char *h, const struct repl_snap_info *info)
{
	memset(h, 0, REPL_SNAP_HDR);
	memcpy(h, REPL_SNAP_MAGIC, 4);
	put_be32(h + 4, REPL_FMT_VERSION);
	put_be64(h + 8, info->gen);
	put_be64(h + 16, info->seq);
	put_be64(h + 24, info->records);
	put_be64(h + 32, info->raw_len);
	put_be32(h + 40, SNAP_CODEC_ZSTD);
	put_be64(h + 48, info->stored_len);
	put_be64(h + 56, info->next_slice);
	put_be64(h + 64, (uint64_t)info->time_ns);
	put_be64(h + 72, info->txn_seq);
}

int repl_snap_dump_txn(struct kv_txn *t, const char *gen, struct buf *out,
		       struct repl_snap_info *info)
{
	unsigned char h[REPL_SNAP_HDR], sum[REPL_SUM_LEN];
	struct snap_writer w = {.out = out};
	int rc;

	memset(info, 0, sizeof(*info));
	info->gen = repl_gen_to_u64(gen);
	info->time_ns = repl_now_ms() * 1000000;
	buf_init(&w.stage);
	buf_reset(out);
	w.cc = ZSTD_createCCtx();
	if (!w.cc)
		return -ENOMEM;
	ZSTD_CCtx_setParameter(w.cc, ZSTD_c_compressionLevel, SNAP_ZSTD_LEVEL);
	/* Room for the header, filled in once the counts are known. */
	memset(h, 0, sizeof(h));
	rc = buf_append(out, h, sizeof(h));
	if (rc < 0)
		goto out;
	rc = dump_txn(t, &w, info);
	if (rc < 0)
		goto out;
	info->records = w.records;
	info->raw_len = w.raw_len;
	info->stored_len = out->len - REPL_SNAP_HDR;
	snap_header(h, info);
	memcpy(out->data, h, REPL_SNAP_HDR);
	put_be64(sum, XXH3_64bits(out->data, out->len));
	rc = buf_append(out, sum, sizeof(sum));
out:
	ZSTD_freeCCtx(w.cc);
	buf_release(&w.stage);
	return rc;
}

int repl_snap_dump(struct kv_engine *e, const char *gen, struct buf *out,
		   struct repl_snap_info *info)
{
	struct kv_txn *t;
	int rc = kv_begin(e, false, &t);

	if (rc < 0)
		return rc;
	rc = repl_snap_dump_txn(t, gen, out, info);
	kv_rollback(t);
	return rc;
}

int repl_snap_header(const void *data, size_t len, struct repl_snap_info *info)
{
	const unsigned char *p = data;

	if (len < REPL_SNAP_HDR || memcmp(p, REPL_SNAP_MAGIC, 4) != 0 ||
	    get_be32(p + 4) != REPL_FMT_VERSION ||
	    get_be32(p + 40) != SNAP_CODEC_ZSTD)
		return -EBADMSG;
	info->gen = get_be64(p + 8);
	info->seq = get_be64(p + 16);
	info->records = get_be64(p + 24);
	info->raw_len = get_be64(p + 32);
	info->stored_len = get_be64(p + 48);
	info->next_slice = get_be64(p + 56);
	info->time_ns = (int64_t)get_be64(p + 64);
	info->txn_seq = get_be64(p + 72);
	return 0;
}

int repl_snap_check(const void *data, size_t len, struct repl_snap_info *info,
		    const char **why)
{
	const unsigned char *p = data;

	*why = NULL;
	if (repl_snap_header(data, len, info) < 0) {
		*why = len < REPL_SNAP_HDR ? "too short" : "bad header";
		return -EBADMSG;
	}
	if (len < REPL_SNAP_HDR + REPL_SUM_LEN ||
	    info->stored_len != len - REPL_SNAP_HDR - REPL_SUM_LEN) {
		*why = "length mismatch (truncated?)";
		return -EBADMSG;
	}
	if (XXH3_64bits(p, len - REPL_SUM_LEN) !=
	    get_be64(p + len - REPL_SUM_LEN)) {
		*why = "checksum mismatch";
		return -EBADMSG;
	}
	return 0;
}

/* Parse and hand out the complete records at the front of @raw. */
static int snap_emit(struct buf *raw, uint64_t *left, repl_srec_fn fn,
		     void *arg, const char **why)
{
	const unsigned char *p = (const unsigned char *)raw->data;
	size_t off = 0;
	int rc = 0;

	while (raw->len - off >= REPL_SREC_HDR) {
		int grp = p[off];
		size_t klen = ((size_t)p[off + 1] << 8) | p[off + 2];
		size_t vlen = get_be32(p + off + 3);

		if (grp <= 0 || grp >= KV_GROUP_MAX || klen > KV_KEY_MAX ||
		    vlen > KV_VAL_MAX || *left == 0) {
			*why = "malformed record";
			return -EBADMSG;
		}
		if (raw->len - off - REPL_SREC_HDR < klen + vlen)
			break;
		off += REPL_SREC_HDR;
		rc = fn(arg, grp, p + off, klen, p + off + klen, vlen);
		if (rc != 0)
			return rc;
		off += klen + vlen;
		(*left)--;
	}
	memmove(raw->data, raw->data + off, raw->len - off);
	raw->len -= off;
	return 0;
}

static int snap_stream(ZSTD_DCtx *dc, const void *body, size_t blen,
		       uint64_t *left, repl_srec_fn fn, void *arg,
		       const char **why)
{
	ZSTD_inBuffer in = {body, blen, 0};
	struct buf raw = BUF_INIT;
	size_t r = 1;
	int rc = 0;

	while (rc == 0 && (in.pos < in.size || r != 0)) {
		ZSTD_outBuffer ob;

		rc = buf_grow(&raw, ZSTD_DStreamOutSize());
		if (rc < 0)
			break;
		ob.dst = raw.data + raw.len;
		ob.size = raw.cap - raw.len - 1;
		ob.pos = 0;
		r = ZSTD_decompressStream(dc, &ob, &in);
		if (ZSTD_isError(r) ||
		    (ob.pos == 0 && in.pos == in.size && r != 0)) {
			*why = "cannot decompress";
			rc = -EBADMSG;
			break;
		}
		raw.len += ob.pos;
		rc = snap_emit(&raw, left, fn, arg, why);
	}
	if (rc == 0 && (raw.len != 0 || *left != 0)) {
		*why = "record count mismatch";
		rc = -EBADMSG;
	}
	buf_release(&raw);
	return rc;
}

int repl_snap_foreach(const void *data, size_t len, repl_srec_fn fn, void *arg,
		      const char **why)
{
	struct repl_snap_info info;
	ZSTD_DCtx *dc;
	uint64_t left;
	int rc = repl_snap_check(data, len, &info, why);

	if (rc < 0)
		return rc;
	dc = ZSTD_createDCtx();
	if (!dc)
		return -ENOMEM;
	left = info.records;
	rc = snap_stream(dc, (const unsigned char *)data + REPL_SNAP_HDR,
			 (size_t)info.stored_len, &left, fn, arg, why);
	ZSTD_freeDCtx(dc);
	return rc;
}

struct snap_loader {
	struct kv_engine *e;
	struct kv_txn *t;
	uint64_t in_txn, total;
};

static int load_one(void *arg, int grp, const void *key, size_t klen,
		    const void *val, size_t vlen)
{
	struct snap_loader *l = arg;
	int rc;

	if (!l->t) {
		rc = kv_begin(l->e, true, &l->t);
		if (rc < 0)
			return rc;
	}
	rc = kv_put(l->t, grp, key, klen, val, vlen);
	if (rc < 0)
		return rc;
	l->total++;
	if (++l->in_txn >= REPL_LOAD_BATCH) {
		rc = kv_commit(l->t);
		l->t = NULL;
		l->in_txn = 0;
	}
	return rc;
}

int repl_snap_load(struct kv_engine *e, const void *data, size_t len,
		   uint64_t *nrec, const char **why)
{
	struct snap_loader l = {.e = e};
	struct repl_snap_info info;
	int rc;

	*why = NULL;
	/* Check the whole object first: nothing is written from a bad one. */
	rc = repl_snap_check(data, len, &info, why);
	if (rc == 0)
		rc = repl_snap_foreach(data, len, load_one, &l, why);
	if (l.t && rc == 0)
		rc = kv_commit(l.t);
	else if (l.t)
		kv_rollback(l.t);
	*nrec = l.total;
	return rc;
}

/* Keys of one group, collected before deleting them. */
struct keyset {
	struct buf b; /* u16 length, key bytes, ... */
};

static int keyset_add(void *arg, const void *key, size_t klen, const void *val,
		      size_t vlen)
{
	struct keyset *ks = arg;
	unsigned char h[2] = {(unsigned char)(klen >> 8), (unsigned char)klen};
	int rc = buf_append(&ks->b, h, 2);

	(void)val;
	(void)vlen;
	return rc ? rc : buf_append(&ks->b, key, klen);
}

int repl_clear_txn(struct kv_txn *t, bool (*keep)(int grp))
{
	struct keyset ks = {BUF_INIT};
	int rc = 0;

	for (int g = 1; rc == 0 && g < KV_GROUP_MAX; g++) {
		const unsigned char *p;
		size_t off = 0;

		if (keep && keep(g))
			continue;
		buf_reset(&ks.b);
		rc = kv_scan(t, g, NULL, 0, NULL, 0, 0, keyset_add, &ks);
		p = (const unsigned char *)ks.b.data;
		while (rc == 0 && off + 2 <= ks.b.len) {
			size_t klen = ((size_t)p[off] << 8) | p[off + 1];

			rc = kv_del(t, g, p + off + 2, klen);
			off += 2 + klen;
		}
	}
	buf_release(&ks.b);
	return rc;
}

/* ---- listing ---- */

static struct repl_gen *listing_gen(struct repl_listing *l, const char *id)
{
	struct repl_gen *g;

	for (size_t i = 0; i < l->ngens; i++)
		if (strcmp(l->gens[i].id, id) == 0)
			return &l->gens[i];
	g = realloc(l->gens, (l->ngens + 1) * sizeof(*g));
	if (!g)
		return NULL;
	l->gens = g;
	g = &l->gens[l->ngens++];
	memset(g, 0, sizeof(*g));
	memcpy(g->id, id, REPL_GEN_LEN);
	return g;
}

static int obj_push(struct repl_obj **arr, size_t *n, uint64_t a, uint64_t b,
		    uint64_t size)
{
	struct repl_obj *p = realloc(*arr, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	p[*n].a = a;
	p[*n].b = b;
	p[*n].size = size;
	*arr = p;
	(*n)++;
	return 0;
}

/* Sort one key "<gen>/snap/<hex>" or "<gen>/seg/<hex>-<hex>" into @l. */
static int listing_add(struct repl_listing *l, const char *rest, uint64_t size)
{
	char id[REPL_GEN_SIZE];
	struct repl_gen *g;
	uint64_t a, b;
	size_t n = strlen(rest);

	if (n < REPL_GEN_LEN + 1 || !repl_is_gen(rest, REPL_GEN_LEN) ||
	    rest[REPL_GEN_LEN] != '/')
		return 0;
	memcpy(id, rest, REPL_GEN_LEN);
	id[REPL_GEN_LEN] = '\0';
	rest += REPL_GEN_LEN + 1;
	n = strlen(rest);
	if (n == 5 + 16 && memcmp(rest, "snap/", 5) == 0 &&
	    parse_hex16(rest + 5, &a)) {
		g = listing_gen(l, id);
		return g ? obj_push(&g->snaps, &g->nsnaps, a, 0, size)
			 : -ENOMEM;
	}
	if (n == 4 + 33 && memcmp(rest, "seg/", 4) == 0 && rest[20] == '-' &&
	    parse_hex16(rest + 4, &a) && parse_hex16(rest + 21, &b)) {
		g = listing_gen(l, id);
		return g ? obj_push(&g->segs, &g->nsegs, a, b, size) : -ENOMEM;
	}
	return 0; /* not ours (temp files of a store, future kinds) */
}

static int obj_cmp(const void *x, const void *y)
{
	const struct repl_obj *a = x, *b = y;

	if (a->a != b->a)
		return a->a < b->a ? -1 : 1;
	if (a->b != b->b)
		return a->b < b->b ? -1 : 1;
	return 0;
}

static int gen_cmp(const void *x, const void *y)
{
	return strcmp(((const struct repl_gen *)x)->id,
		      ((const struct repl_gen *)y)->id);
}

int repl_list(struct obj_store *s, const char *vol, struct repl_listing *out)
{
	char prefix[OBJ_KEY_MAX + 1];
	struct obj_list page;
	char *token = NULL;
	size_t plen;
	int rc = repl_key_meta(prefix, sizeof(prefix), vol);

	memset(out, 0, sizeof(*out));
	if (rc < 0)
		return rc;
	plen = strlen(prefix);
	obj_list_init(&page);
	do {
		rc = obj_list(s, prefix, NULL, token, 1000, &page);
		free(token);
		token = NULL;
		for (size_t i = 0; rc == 0 && i < page.n; i++)
			rc = listing_add(out, page.items[i].key + plen,
					 page.items[i].size);
		if (rc == 0 && page.truncated && page.next_token) {
			token = strdup(page.next_token);
			if (!token)
				rc = -ENOMEM;
		}
	} while (rc == 0 && token);
	obj_list_release(&page);
	if (rc == -ENOENT)
		rc = 0; /* nothing stored yet */
	if (rc < 0) {
		repl_listing_release(out);
		return rc;
	}
	if (out->ngens)
		qsort(out->gens, out->ngens, sizeof(*out->gens), gen_cmp);
	for (size_t i = 0; i < out->ngens; i++) {
		struct repl_gen *g = &out->gens[i];

		if (g->nsnaps)
			qsort(g->snaps, g->nsnaps, sizeof(*g->snaps), obj_cmp);
		if (g->nsegs)
			qsort(g->segs, g->nsegs, sizeof(*g->segs), obj_cmp);
	}
	return 0;
}

void repl_listing_release(struct repl_listing *l)
{
	for (size_t i = 0; i < l->ngens; i++) {
		free(l->gens[i].snaps);
		free(l->gens[i].segs);
	}
	free(l->gens);
	memset(l, 0, sizeof(*l));
}

const struct repl_gen *repl_listing_latest(const struct repl_listing *l)
{
	for (size_t i = l->ngens; i > 0; i--)
		if (l->gens[i - 1].nsnaps > 0)
			return &l->gens[i - 1];
	return NULL;
}

uint64_t repl_gen_last_seq(const struct repl_gen *g)
{
	uint64_t last = 0;

	for (size_t i = 0; i < g->nsnaps; i++)
		last = MAX(last, g->snaps[i].a);
	for (size_t i = 0; i < g->nsegs; i++)
		last = MAX(last, g->segs[i].b);
	return last;
}

int repl_put_durable(struct obj_store *s, const char *key, const void *data,
		     size_t len)
{
	int rc = obj_put(s, key, data, len);

	if (rc == 0)
		rc = obj_sync(s);
	return rc;
}
