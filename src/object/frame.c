/*
 * frame.c - encode and verify block frames (format in frame.h).
 *
 * Design note.  Encoding is: compress (codec), then (later) encrypt, then
 * prepend the header; decoding runs the same steps backwards and checks the
 * xxh3 of the result last, so a frame passes only if every byte of raw data
 * is what was written.  The header fields are all checked against each
 * other and against the object length before any payload is touched.
 *
 * Where encryption plugs in: frame_encode() calls seal() after compressing
 * and frame_decode_to() calls unseal() before decompressing; both work on a
 * payload that is nonce || ciphertext || tag with the 24 header bytes as
 * AEAD associated data.  They are stubs today (-ENOSYS / -EIO).
 *
 * No state, no locks: safe from any thread.
 */
#include "util/common.h"
#include "object/frame.h"

#include <lz4.h>
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
		size_t n =
		    ZSTD_compress(dst, cap, raw, len,
				  fc->level ? fc->level : ZSTD_CLEVEL_DEFAULT);

		return ZSTD_isError(n) ? 0 : n;
	}
	return 0;
}

/* Encryption hook (AES-256-GCM over the payload; header as AAD). */
static int seal(const struct frame_conf *fc, struct buf *framed)
{
	(void)fc;
	(void)framed;
	return -ENOSYS;
}

int frame_encode(const struct frame_conf *fc, const void *raw, size_t len,
		 struct buf *out)
{
	static const struct frame_conf plain;
	unsigned char *p;
	size_t bound, n = 0;
	int codec, rc;

	if (!fc)
		fc = &plain;
	buf_reset(out);
	if (len > UINT32_MAX || (fc->codec != FRAME_CODEC_NONE &&
				 compress_bound(fc->codec, len) == 0))
		return -EINVAL;
	if (fc->encrypt)
		return seal(fc, out);
	codec = fc->codec;
	bound = codec == FRAME_CODEC_NONE ? len : compress_bound(codec, len);
	rc = buf_grow(out, FRAME_HDR_LEN + MAX(bound, len));
	if (rc < 0)
		return rc;
	p = (unsigned char *)out->data;
	if (codec != FRAME_CODEC_NONE)
		n = compress(fc, raw, len, p + FRAME_HDR_LEN, bound);
	if (n == 0 || n >= len) {
		/* Incompressible (or the codec failed): store as is. */
		codec = FRAME_CODEC_NONE;
		n = len;
		if (len)
			memcpy(p + FRAME_HDR_LEN, raw, len);
	}
	put_hdr(p, codec, 0, (uint32_t)len, (uint32_t)n, XXH3_64bits(raw, len));
	out->len = FRAME_HDR_LEN + n;
	out->data[out->len] = '\0';
	return 0;
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
	if (h->codec == FRAME_CODEC_NONE && !(h->flags & FRAME_F_ENCRYPTED) &&
	    h->payload_len != h->raw_len)
		return bad(why, "length mismatch");
	return 0;
}

/* Decryption hook: verify the tag and decrypt the payload. */
static int unseal(const struct frame_conf *fc, const struct frame_hdr *h,
		  const char **why)
{
	(void)fc;
	(void)h;
	return bad(why, "encrypted block (encryption is not supported)");
}

static ssize_t decompress(const struct frame_hdr *h, const void *src, void *dst,
			  const char **why)
{
	if (h->codec == FRAME_CODEC_LZ4) {
		int n;

		if (h->payload_len > INT32_MAX || h->raw_len > INT32_MAX)
			return bad(why, "bad lz4 payload");
		n = LZ4_decompress_safe(src, dst, (int)h->payload_len,
					(int)h->raw_len);
		if (n < 0 || (uint32_t)n != h->raw_len)
			return bad(why, "bad lz4 payload");
		return n;
	}
	if (h->codec == FRAME_CODEC_ZSTD) {
		size_t n =
		    ZSTD_decompress(dst, h->raw_len, src, h->payload_len);

		if (ZSTD_isError(n) || n != h->raw_len)
			return bad(why, "bad zstd payload");
		return (ssize_t)n;
	}
	return bad(why, "unknown codec");
}

ssize_t frame_decode_to(const struct frame_conf *fc, const void *framed,
			size_t len, void *dst, size_t cap, const char **why)
{
	const unsigned char *payload =
	    (const unsigned char *)framed + FRAME_HDR_LEN;
	struct frame_hdr h;
	int rc = frame_parse_hdr(framed, len, &h, why);

	if (rc < 0)
		return rc;
	if (h.raw_len > cap)
		return bad(why, "block longer than expected");
	if (h.flags & FRAME_F_ENCRYPTED)
		return unseal(fc, &h, why);
	if (h.codec == FRAME_CODEC_NONE) {
		if (dst != payload && h.raw_len)
			memmove(dst, payload, h.raw_len);
	} else {
		ssize_t n = decompress(&h, payload, dst, why);

		if (n < 0)
			return n;
	}
	if (XXH3_64bits(dst, h.raw_len) != h.checksum)
		return bad(why, "bad checksum");
	return (ssize_t)h.raw_len;
}

int frame_decode(const struct frame_conf *fc, const void *framed, size_t len,
		 struct buf *out, const char **why)
{
	struct frame_hdr h;
	ssize_t n;
	int rc;

	buf_reset(out);
	rc = frame_parse_hdr(framed, len, &h, why);
	if (rc < 0)
		return rc;
	rc = buf_grow(out, h.raw_len);
	if (rc < 0)
		return rc;
	n = frame_decode_to(fc, framed, len, out->data, h.raw_len, why);
	if (n < 0)
		return (int)n;
	out->len = (size_t)n;
	out->data[out->len] = '\0';
	return 0;
}
