/*
 * fuzz_frame.c - libFuzzer target for the block frame decoder
 * (object/frame.c), the first thing that reads a block object from a store.
 *
 * The first input byte picks a mode, the rest is the frame or the block:
 *   bit 0   decode with a fixed AES key (frame_conf.encrypt), else plain
 *   bit 1   repair magic, version, flags, codec, payload length and raw
 *           length (<= DST_CAP) first, so the fuzzer reaches the
 *           decompressors and the cipher
 *   bit 2   round trip instead: encode the bytes (codec from bits 4-5),
 *           flip the byte chosen by the next 2 input bytes, decode; the
 *           result must be an error or exactly the original bytes
 *   bit 3   bind an object key ("vol/chunks/1")
 * Decoding goes to a buffer of at most DST_CAP bytes (what chunk/ does:
 * frame_decode_to with the block's length), so a header claiming 4 GiB
 * costs nothing.
 */
#include "util/common.h"
#include "object/frame.h"

#include <stdint.h>

#define DST_CAP (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void conf_for(struct frame_conf *fc, uint8_t mode)
{
	memset(fc, 0, sizeof(*fc));
	if (mode & 1) {
		fc->encrypt = true;
		for (int i = 0; i < FRAME_KEY_LEN; i++)
			fc->key[i] = (unsigned char)(0xA5 ^ i);
	}
	fc->codec = (mode >> 4) % 3;
}

static void repair(unsigned char *p, size_t len)
{
	if (len < FRAME_HDR_LEN)
		return;
	memcpy(p, "TSB1", 4);
	p[4] = FRAME_VERSION;
	p[5] %= 3;
	p[6] &= FRAME_F_ENCRYPTED;
	p[7] = 0;
	put_be32(p + 12, (uint32_t)(len - FRAME_HDR_LEN));
	if (p[6] & FRAME_F_ENCRYPTED)
		memset(p + 16, 0, 8);
	/* A compressed frame's raw length within what decode() accepts. */
	put_be32(p + 8, get_be32(p + 8) % (DST_CAP + 1));
	if (p[5] == FRAME_CODEC_NONE) {
		size_t n = len - FRAME_HDR_LEN;

		if (p[6])
			n -= MIN(n, (size_t)FRAME_SEAL_OVERHEAD);
		put_be32(p + 8, (uint32_t)n);
	}
}

static void decode(const struct frame_conf *fc, const char *objkey,
		   const unsigned char *p, size_t len, unsigned char *dst)
{
	struct frame_obj o = {.key = objkey, .data = p, .len = len};
	struct frame_hdr h;
	const char *why = NULL;
	ssize_t n;

	n = frame_decode_obj_to(fc, &o, dst, DST_CAP, &why);
	if (n < 0 && !why && n != -ENOMEM)
		abort(); /* -EIO always names its reason */
	if (n >= 0 &&
	    (frame_parse_hdr(p, len, &h, NULL) < 0 || (size_t)n != h.raw_len))
		abort();
}

static void round_trip(const struct frame_conf *fc, const char *objkey,
		       const unsigned char *raw, size_t len, size_t flip,
		       unsigned char *dst)
{
	struct buf enc = BUF_INIT;
	struct frame_obj o = {.key = objkey};
	ssize_t n;

	if (frame_encode_obj(fc, objkey, raw, len, &enc) < 0)
		abort();
	o.data = enc.data;
	o.len = enc.len;
	n = frame_decode_obj_to(fc, &o, dst, DST_CAP, NULL);
	if (n < 0 || (size_t)n != len || (len && memcmp(dst, raw, len) != 0))
		abort(); /* a fresh frame must decode to its bytes */
	enc.data[flip % enc.len] ^= 0x5a;
	n = frame_decode_obj_to(fc, &o, dst, DST_CAP, NULL);
	if (n >= 0 && ((size_t)n != len || (len && memcmp(dst, raw, len))))
		abort(); /* a damaged frame gave wrong bytes */
	buf_release(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char *dst;
	struct frame_hdr h;
	const char *objkey;
	struct frame_conf fc;
	unsigned char *p;
	uint8_t mode;

	if (size < 1 || size > DST_CAP)
		return 0;
	if (!dst && !(dst = malloc(DST_CAP)))
		return 0;
	mode = data[0];
	data++;
	size--;
	conf_for(&fc, mode);
	objkey = (mode & 8) ? "vol/chunks/1" : NULL;
	if (mode & 4) {
		size_t flip;

		if (size < 2)
			return 0;
		flip = ((size_t)data[0] << 8) | data[1];
		round_trip(&fc, objkey, data + 2, size - 2, flip, dst);
		return 0;
	}
	/* An exact-size copy, so ASan sees any read past the object. */
	p = malloc(size ? size : 1);
	if (!p)
		return 0;
	if (size)
		memcpy(p, data, size);
	if (mode & 2)
		repair(p, size);
	decode(&fc, objkey, p, size, dst);
	/*
	 * In place, as chunk/ and the caches decode uncompressed frames:
	 * dst = the payload (frame.h allows it for plain and sealed ones).
	 */
	if (frame_parse_hdr(p, size, &h, NULL) == 0 &&
	    h.codec == FRAME_CODEC_NONE) {
		struct frame_obj o = {.key = objkey, .data = p, .len = size};

		(void)frame_decode_obj_to(&fc, &o, p + FRAME_HDR_LEN,
					  size - FRAME_HDR_LEN, NULL);
	}
	free(p);
	return 0;
}
