/*
 * frame.h - the block frame: every block object is a header followed by
 * the payload (DESIGN section 3).
 *
 * Header, FRAME_HDR_LEN (24) bytes, integers big-endian:
 *
 *   0  magic "TSB1"
 *   4  u8  format version (1)
 *   5  u8  codec of the payload: 0 none, 1 lz4, 2 zstd
 *   6  u8  flags: FRAME_F_ENCRYPTED; other bits must be 0
 *   7  u8  reserved, 0
 *   8  u32 raw length (bytes before compression)
 *  12  u32 payload length (bytes after the header)
 *  16  u64 xxh3-64 (XXH3_64bits) of the raw bytes; 0 in encrypted frames
 *  24  payload
 *
 * Payload of a plain frame: the raw bytes compressed with the codec (or as
 * is).  Payload of an encrypted frame (FRAME_F_ENCRYPTED):
 *
 *   nonce (12, random per frame) || ciphertext || tag (16)
 *
 * where the ciphertext is AES-256-GCM (volume data key) of
 * u64 xxh3-64 of the raw bytes || compressed bytes, and the associated data
 * is the 24 header bytes followed by the object key the frame is stored
 * under (none when the caller gives no key).  So the checksum is not in
 * clear (it would let anyone confirm a guess of a block's contents), any
 * change to the header, the payload or the object key fails the tag, and a
 * block copied to another key does not decode.
 *
 * The encoder falls back to codec 0 when compression does not shrink the
 * block, so a frame's codec may differ from the configured one; decoders
 * read the codec from the header, never from the configuration.
 *
 * Decoding verifies everything it can (magic, version, flags, lengths,
 * codec, tag, checksum) and fails with -EIO and a static reason: a caller
 * never gets wrong bytes.  With a key configured, plain frames are refused
 * too (whoever can write to the store must not be able to plant data); an
 * encrypted frame without the right key, or read under another object key
 * than it was written with, fails the tag.  All functions may be called
 * from any thread; the only state they touch is OpenSSL's random generator.
 */
#ifndef TESSERA_OBJECT_FRAME_H
#define TESSERA_OBJECT_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

#define FRAME_HDR_LEN 24
#define FRAME_VERSION 1

enum frame_codec {
	FRAME_CODEC_NONE = 0,
	FRAME_CODEC_LZ4 = 1,
	FRAME_CODEC_ZSTD = 2,
};

#define FRAME_F_ENCRYPTED 0x01

#define FRAME_KEY_LEN 32
#define FRAME_NONCE_LEN 12
#define FRAME_TAG_LEN 16
/* Bytes an encrypted payload adds: nonce, sealed checksum, tag. */
#define FRAME_SEAL_OVERHEAD (FRAME_NONCE_LEN + 8 + FRAME_TAG_LEN)

/* How to encode blocks; a volume setting.  Zero-initialized = plain. */
struct frame_conf {
	int codec;    /* enum frame_codec */
	int level;    /* compression level; 0 = the codec's default */
	bool encrypt; /* seal with AES-256-GCM using key */
	unsigned char key[FRAME_KEY_LEN];
};

struct frame_hdr {
	uint8_t version;
	uint8_t codec;
	uint8_t flags;
	uint32_t raw_len;
	uint32_t payload_len;
	uint64_t checksum;
};

/** Parse a codec name ("none", "lz4", "zstd") into *out.  0 or -EINVAL. */
int frame_codec_parse(const char *name, int *out);
/** Name of @codec, or "unknown". */
const char *frame_codec_name(int codec);

/* A stored frame: the object's bytes and the key it is stored under. */
struct frame_obj {
	const char *key;  /* object key, bound into encrypted frames; may
			   * be NULL (then nothing is bound) */
	const void *data; /* the framed bytes */
	size_t len;
};

/**
 * Encode @len raw bytes (len <= UINT32_MAX) into @out (reset first):
 * header then payload, for the object key @objkey (may be NULL; bound into
 * the frame when @fc encrypts: decoding must then give the same key).  The
 * nonce comes from OpenSSL's RAND_bytes.  @fc may be NULL (plain).
 * Returns 0, -ENOMEM, -EINVAL (unknown codec, too long) or -EIO (OpenSSL
 * failed, e.g. no randomness).
 */
int frame_encode_obj(const struct frame_conf *fc, const char *objkey,
		     const void *raw, size_t len, struct buf *out);

/** frame_encode_obj with no object key. */
int frame_encode(const struct frame_conf *fc, const void *raw, size_t len,
		 struct buf *out);

/**
 * Frame in place, without copying: @mem holds FRAME_HDR_LEN free bytes
 * followed by @raw_len raw bytes; the header is written into the free
 * bytes, and the object is mem[0 .. FRAME_HDR_LEN + raw_len).  Only for
 * plain frames: returns -ENOSYS when @fc asks for compression or
 * encryption (use frame_encode then).  @fc may be NULL (plain).
 */
int frame_encode_in_place(const struct frame_conf *fc, void *mem,
			  size_t raw_len);

/**
 * Write into @hdr (FRAME_HDR_LEN bytes) the header of a plain frame of the
 * @raw_len (<= UINT32_MAX) bytes at @raw: the object is then @hdr followed
 * by @raw, unchanged.  For callers that keep header and bytes apart (the
 * disk cache writes both with one writev).
 */
void frame_plain_hdr(void *hdr, const void *raw, size_t raw_len);

/**
 * Parse and check the header of a frame of @len bytes (magic, version,
 * flags, codec, payload length == len - FRAME_HDR_LEN).  0, or -EIO with
 * *why (may be NULL) set to a static reason.
 */
int frame_parse_hdr(const void *framed, size_t len, struct frame_hdr *h,
		    const char **why);

/**
 * Decode the frame @o into @dst (capacity @cap) and verify it.  Returns
 * the raw length, or -EIO (*why, which may be NULL, set to a static
 * reason: "bad magic", "bad checksum", "bad tag (wrong key, ...)"), or
 * -ENOMEM (encrypted frames may need a scratch buffer).  @dst may be
 * o->data + FRAME_HDR_LEN: for a plain frame that verifies in place,
 * without copying; an encrypted one is then decrypted via scratch memory.
 * @fc supplies the data key (may be NULL: then encrypted frames fail);
 * o->key must be the one given when encoding.  On failure @dst holds no
 * unverified plaintext (it is zeroed as needed).
 */
ssize_t frame_decode_obj_to(const struct frame_conf *fc,
			    const struct frame_obj *o, void *dst, size_t cap,
			    const char **why);

/** As frame_decode_obj_to into @out (reset first).  0, -EIO or -ENOMEM. */
int frame_decode_obj(const struct frame_conf *fc, const struct frame_obj *o,
		     struct buf *out, const char **why);

/** frame_decode_obj_to with no object key. */
ssize_t frame_decode_to(const struct frame_conf *fc, const void *framed,
			size_t len, void *dst, size_t cap, const char **why);

/** frame_decode_obj with no object key. */
int frame_decode(const struct frame_conf *fc, const void *framed, size_t len,
		 struct buf *out, const char **why);

#endif
