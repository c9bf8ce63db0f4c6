/*
 * frame.c - encode and verify block frames (format in frame.h).
 *
 * Design note.  Encoding is: compress (codec), then encrypt, then prepend
 * the header; decoding runs the same steps backwards and checks the xxh3 of
 * the result last, so a frame passes only if every byte of raw data is what
 * was written.  The header fields are all checked against each other and
 * against the object length before any payload is touched.
 *
 * Encryption (AES-256-GCM, OpenSSL EVP).  seal() runs after compression on
 * the sealed text "xxh3 || body" in place in the output buffer; unseal()
 * checks the tag before anything is decompressed or returned.  The nonce is
 * 12 random bytes per frame: with one key per volume, random nonces stay
 * safe up to about 2^32 frames (NIST SP 800-38D), i.e. 16 PiB of 4 MiB
 * blocks.  Blocks are written once and never rewritten, so there is no
 * nonce reuse by design; a fresh nonce also makes two encodings of the same
 * bytes differ.  The object key is part of the associated data, so the
 * store cannot swap two blocks of a volume without the tag failing.  What
 * stays visible: the raw length (also in the object key) and the
 * compressed length (the object size).
 *
 * A cipher context costs one allocation per frame; at 4 MiB blocks that is
 * noise next to the cipher itself.
 *
 * No shared state, no locks: safe from any thread (RAND_bytes is).
 */
#include "util/common.h"
#include "object/frame.h"

#include <lz4.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <xxhash.h>
#include <zstd.h>

static const unsigned char frame_magic[4] = {'T', 'S', 'B', '1'};

int frame_codec_parse(const char *name, int *out)
{
	if (strcmp(name, "none") == 0)
		*out = FRAME_CODEC_NONE;
	else if (strcmp(name, "lz4") == 0)
		*out = FRAME_CODEC_LZ4;
	else if (strcmp(name, "zstd") == 0)
		*out = FRAME_CODEC_ZSTD;
	else
		return -EINVAL;
	return 0;
}

const char *frame_codec_name(int codec)
{
	switch (codec) {
	case FRAME_CODEC_NONE:
		return "none";
	case FRAME_CODEC_LZ4:
		return "lz4";
	case FRAME_CODEC_ZSTD:
		return "zstd";
	default:
		return "unknown";
	}
}

static void put_hdr(unsigned char *p, int codec, int flags, uint32_t raw_len,
		    uint32_t payload_len, uint64_t sum)
{
	memcpy(p, frame_magic, 4);
	p[4] = FRAME_VERSION;
	p[5] = (unsigned char)codec;
	p[6] = (unsigned char)flags;
	p[7] = 0;
	put_be32(p + 8, raw_len);
	put_be32(p + 12, payload_len);
	put_be64(p + 16, sum);
}

/* Worst-case compressed size of @len bytes, 0 for an unknown codec. */
static size_t compress_bound(int codec, size_t len)
{
	switch (codec) {
	case FRAME_CODEC_LZ4:
		return (size_t)LZ4_compressBound((int)len);
	case FRAME_CODEC_ZSTD:
		return ZSTD_compressBound(len);
	default:
		return 0;
	}
}

/* Compress into dst; returns the size, or 0 when it failed or did not fit. */
static size_t compress(const struct frame_conf *fc, const void *raw, size_t len,
		       void *dst, size_t cap)
{
	if (fc->codec == FRAME_CODEC_LZ4) {
		int n = LZ4_compress_default(raw, dst, (int)len, (int)cap);

		return n > 0 ? (size_t)n : 0;
	}
	if (fc->codec == FRAME_CODEC_ZSTD) {
		size_t n = ZSTD_compress(dst, cap, raw, len,
					 fc->level ? fc->level
						   : ZSTD_CLEVEL_DEFAULT);

		return ZSTD_isError(n) ? 0 : n;
	}
	return 0;
}

/*
 * AES-256-GCM over up to two parts of one message (opening a frame splits
 * the sealed checksum from the body).  The associated data is the header
 * followed by the object key.  Sealing writes m->tag; opening checks it.
 */
struct gcm_msg {
	const unsigned char *key;
	const unsigned char *nonce;
	const unsigned char *hdr; /* FRAME_HDR_LEN bytes */
	const char *objkey;	  /* may be NULL */
	struct {
		const unsigned char *in;
		unsigned char *out;
		size_t len;
	} part[2];
	unsigned char tag[FRAME_TAG_LEN];
};

/* EVP_*Update takes int lengths: feed big parts in pieces. */
static bool gcm_update(EVP_CIPHER_CTX *ctx, bool enc, unsigned char *out,
		       const unsigned char *in, size_t len)
{
	while (len > 0) {
		int n = (int)MIN(len, (size_t)1 << 30), outl = 0;
		int ok = enc ? EVP_EncryptUpdate(ctx, out, &outl, in, n)
			     : EVP_DecryptUpdate(ctx, out, &outl, in, n);

		if (ok != 1 || outl != n)
			return false;
		if (out)
			out += n;
		in += n;
		len -= (size_t)n;
	}
	return true;
}

static bool gcm_steps(EVP_CIPHER_CTX *ctx, struct gcm_msg *m, bool enc)
{
	const EVP_CIPHER *aes = EVP_aes_256_gcm();
	unsigned char fin[16];
	int outl = 0;

	if ((enc ? EVP_EncryptInit_ex(ctx, aes, NULL, m->key, m->nonce)
		 : EVP_DecryptInit_ex(ctx, aes, NULL, m->key, m->nonce)) != 1)
		return false;
	if (!gcm_update(ctx, enc, NULL, m->hdr, FRAME_HDR_LEN))
		return false;
	if (m->objkey &&
	    !gcm_update(ctx, enc, NULL, (const unsigned char *)m->objkey,
			strlen(m->objkey)))
		return false;
	for (int i = 0; i < 2; i++)
		if (!gcm_update(ctx, enc, m->part[i].out, m->part[i].in,
				m->part[i].len))
			return false;
	if (enc)
		return EVP_EncryptFinal_ex(ctx, fin, &outl) == 1 &&
		       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
					   FRAME_TAG_LEN, m->tag) == 1;
	return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, FRAME_TAG_LEN,
				   m->tag) == 1 &&
	       EVP_DecryptFinal_ex(ctx, fin, &outl) == 1;
}

/* 0, -ENOMEM, or -EIO (sealing failed / the tag does not match). */
static int gcm_run(struct gcm_msg *m, bool enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	bool ok;

	if (!ctx)
		return -ENOMEM;
	ok = gcm_steps(ctx, m, enc);
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

/*
 * Seal the frame at @p in place: the header is written, the payload area
 * holds the nonce slot, then @n bytes (sealed checksum and body), then room
 * for the tag.
 */
static int seal(const struct frame_conf *fc, const char *objkey,
		unsigned char *p, size_t n)
{
	unsigned char *text = p + FRAME_HDR_LEN + FRAME_NONCE_LEN;
	struct gcm_msg m = {
		.key = fc->key,
		.nonce = p + FRAME_HDR_LEN,
		.hdr = p,
		.objkey = objkey,
		.part = {{text, text, n}},
	};
	int rc;

	if (RAND_bytes(p + FRAME_HDR_LEN, FRAME_NONCE_LEN) != 1)
		return -EIO;
	rc = gcm_run(&m, true);
	if (rc == 0)
		memcpy(text + n, m.tag, FRAME_TAG_LEN);
	OPENSSL_cleanse(&m, sizeof(m));
	return rc;
}

int frame_encode_obj(const struct frame_conf *fc, const char *objkey,
		     const void *raw, size_t len, struct buf *out)
{
	static const struct frame_conf plain;
	unsigned char *p, *body;
	size_t bound, n = 0, pre, post;
	uint64_t sum;
	int codec, rc;

	if (!fc)
		fc = &plain;
	buf_reset(out);
	if (len > UINT32_MAX - FRAME_SEAL_OVERHEAD ||
	    (fc->codec != FRAME_CODEC_NONE &&
	     compress_bound(fc->codec, len) == 0))
		return -EINVAL;
	codec = fc->codec;
	pre = fc->encrypt ? FRAME_NONCE_LEN + 8 : 0;
	post = fc->encrypt ? FRAME_TAG_LEN : 0;
	bound = codec == FRAME_CODEC_NONE ? len : compress_bound(codec, len);
	rc = buf_grow(out, FRAME_HDR_LEN + pre + MAX(bound, len) + post);
	if (rc < 0)
		return rc;
	p = (unsigned char *)out->data;
	body = p + FRAME_HDR_LEN + pre;
	if (codec != FRAME_CODEC_NONE)
		n = compress(fc, raw, len, body, bound);
	if (n == 0 || n >= len) {
		/* Incompressible (or the codec failed): store as is. */
		codec = FRAME_CODEC_NONE;
		n = len;
		if (len)
			memcpy(body, raw, len);
	}
	sum = XXH3_64bits(raw, len);
	if (fc->encrypt) {
		put_hdr(p, codec, FRAME_F_ENCRYPTED, (uint32_t)len,
			(uint32_t)(n + FRAME_SEAL_OVERHEAD), 0);
		put_be64(body - 8, sum);
		rc = seal(fc, objkey, p, n + 8);
		if (rc < 0)
			return rc;
	} else {
		put_hdr(p, codec, 0, (uint32_t)len, (uint32_t)n, sum);
	}
	out->len = FRAME_HDR_LEN + pre + n + post;
	out->data[out->len] = '\0';
	return 0;
}

int frame_encode(const struct frame_conf *fc, const void *raw, size_t len,
		 struct buf *out)
{
	return frame_encode_obj(fc, NULL, raw, len, out);
}

int frame_encode_in_place(const struct frame_conf *fc, void *mem,
			  size_t raw_len)
{
	unsigned char *p = mem;

	if (fc && (fc->codec != FRAME_CODEC_NONE || fc->encrypt))
		return -ENOSYS;
	if (raw_len > UINT32_MAX)
		return -EINVAL;
	put_hdr(p, FRAME_CODEC_NONE, 0, (uint32_t)raw_len, (uint32_t)raw_len,
		XXH3_64bits(p + FRAME_HDR_LEN, raw_len));
	return 0;
}

void frame_plain_hdr(void *hdr, const void *raw, size_t raw_len)
{
	put_hdr(hdr, FRAME_CODEC_NONE, 0, (uint32_t)raw_len, (uint32_t)raw_len,
		XXH3_64bits(raw, raw_len));
}

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EIO;
}

int frame_parse_hdr(const void *framed, size_t len, struct frame_hdr *h,
		    const char **why)
{
	const unsigned char *p = framed;

	if (len < FRAME_HDR_LEN)
		return bad(why, "truncated header");
	if (memcmp(p, frame_magic, 4) != 0)
		return bad(why, "bad magic");
	h->version = p[4];
	h->codec = p[5];
	h->flags = p[6];
	h->raw_len = get_be32(p + 8);
	h->payload_len = get_be32(p + 12);
	h->checksum = get_be64(p + 16);
	if (h->version != FRAME_VERSION)
		return bad(why, "unsupported format version");
	if ((h->flags & ~FRAME_F_ENCRYPTED) || p[7] != 0)
		return bad(why, "unknown flags");
	if (h->codec > FRAME_CODEC_ZSTD)
		return bad(why, "unknown codec");
	if (h->payload_len != len - FRAME_HDR_LEN)
		return bad(why, "length mismatch (truncated object?)");
	if (!(h->flags & FRAME_F_ENCRYPTED)) {
		if (h->codec == FRAME_CODEC_NONE &&
		    h->payload_len != h->raw_len)
			return bad(why, "length mismatch");
		return 0;
	}
	if (h->payload_len < FRAME_SEAL_OVERHEAD)
		return bad(why, "truncated encrypted payload");
	if (h->codec == FRAME_CODEC_NONE &&
	    h->payload_len - FRAME_SEAL_OVERHEAD != h->raw_len)
		return bad(why, "length mismatch");
	if (h->checksum != 0)
		return bad(why, "checksum in clear in an encrypted frame");
	return 0;
}

static ssize_t decompress(const struct frame_hdr *h, const void *src,
			  size_t src_len, void *dst, const char **why)
{
	if (h->codec == FRAME_CODEC_LZ4) {
		int n;

		if (src_len > INT32_MAX || h->raw_len > INT32_MAX)
			return bad(why, "bad lz4 payload");
		n = LZ4_decompress_safe(src, dst, (int)src_len,
					(int)h->raw_len);
		if (n < 0 || (uint32_t)n != h->raw_len)
			return bad(why, "bad lz4 payload");
		return n;
	}
	if (h->codec == FRAME_CODEC_ZSTD) {
		size_t n = ZSTD_decompress(dst, h->raw_len, src, src_len);

		if (ZSTD_isError(n) || n != h->raw_len)
			return bad(why, "bad zstd payload");
		return (ssize_t)n;
	}
	return bad(why, "unknown codec");
}

static bool overlaps(const void *a, size_t alen, const void *b, size_t blen)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return x < y + blen && y < x + alen;
}

/*
 * Open an encrypted frame: check the tag, then decompress (or copy) into
 * @dst.  Uncompressed frames decrypt straight into @dst unless it overlaps
 * the object; nothing unverified is left in @dst on failure.
 */
static ssize_t unseal(const struct frame_conf *fc, const struct frame_obj *o,
		      const struct frame_hdr *h, void *dst, const char **why)
{
	const unsigned char *nonce =
		(const unsigned char *)o->data + FRAME_HDR_LEN;
	const unsigned char *text = nonce + FRAME_NONCE_LEN;
	size_t n = h->payload_len - FRAME_SEAL_OVERHEAD;
	bool direct = h->codec == FRAME_CODEC_NONE &&
		      !overlaps(dst, n, o->data, o->len);
	unsigned char sum[8], *body = dst, *scratch = NULL;
	struct gcm_msg m = {
		.nonce = nonce,
		.hdr = o->data,
		.objkey = o->key,
	};
	ssize_t rc = (ssize_t)h->raw_len;

	if (!fc || !fc->encrypt)
		return bad(why, "encrypted block, but no key is configured");
	if (!direct) {
		scratch = malloc(n ? n : 1);
		if (!scratch)
			return -ENOMEM;
		body = scratch;
	}
	m.key = fc->key;
	m.part[0].in = text;
	m.part[0].out = sum;
	m.part[0].len = 8;
	m.part[1].in = text + 8;
	m.part[1].out = body;
	m.part[1].len = n;
	memcpy(m.tag, text + 8 + n, FRAME_TAG_LEN);
	if (gcm_run(&m, false) < 0) {
		OPENSSL_cleanse(body, n);
		rc = bad(why, "bad tag (wrong key, damaged or moved object)");
	} else if (h->codec != FRAME_CODEC_NONE) {
		rc = decompress(h, scratch, n, dst, why);
	} else if (!direct && n) {
		memmove(dst, scratch, n);
	}
	if (rc >= 0 && XXH3_64bits(dst, h->raw_len) != get_be64(sum))
		rc = bad(why, "bad checksum");
	free(scratch);
	return rc;
}

ssize_t frame_decode_obj_to(const struct frame_conf *fc,
			    const struct frame_obj *o, void *dst, size_t cap,
			    const char **why)
{
	const unsigned char *payload =
		(const unsigned char *)o->data + FRAME_HDR_LEN;
	struct frame_hdr h;
	int rc = frame_parse_hdr(o->data, o->len, &h, why);

	if (rc < 0)
		return rc;
	if (h.raw_len > cap)
		return bad(why, "block longer than expected");
	if (h.flags & FRAME_F_ENCRYPTED)
		return unseal(fc, o, &h, dst, why);
	if (fc && fc->encrypt)
		return bad(why, "plain block in an encrypted volume");
	if (h.codec == FRAME_CODEC_NONE) {
		if (dst != payload && h.raw_len)
			memmove(dst, payload, h.raw_len);
	} else {
		ssize_t n = decompress(&h, payload, h.payload_len, dst, why);

		if (n < 0)
			return n;
	}
	if (XXH3_64bits(dst, h.raw_len) != h.checksum)
		return bad(why, "bad checksum");
	return (ssize_t)h.raw_len;
}

ssize_t frame_decode_to(const struct frame_conf *fc, const void *framed,
			size_t len, void *dst, size_t cap, const char **why)
{
	struct frame_obj o = {.data = framed, .len = len};

	return frame_decode_obj_to(fc, &o, dst, cap, why);
}

int frame_decode_obj(const struct frame_conf *fc, const struct frame_obj *o,
		     struct buf *out, const char **why)
{
	struct frame_hdr h;
	ssize_t n;
	int rc;

	buf_reset(out);
	rc = frame_parse_hdr(o->data, o->len, &h, why);
	if (rc < 0)
		return rc;
	rc = buf_grow(out, h.raw_len);
	if (rc < 0)
		return rc;
	n = frame_decode_obj_to(fc, o, out->data, h.raw_len, why);
	if (n < 0)
		return (int)n;
	out->len = (size_t)n;
	out->data[out->len] = '\0';
	return 0;
}

int frame_decode(const struct frame_conf *fc, const void *framed, size_t len,
		 struct buf *out, const char **why)
{
	struct frame_obj o = {.data = framed, .len = len};

	return frame_decode_obj(fc, &o, out, why);
}
