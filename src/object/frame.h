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
 *  16  u64 xxh3-64 (XXH3_64bits) of the raw bytes
 *  24  payload
 *
 * Payload: the raw bytes compressed with the codec (or as is), then, when
 * FRAME_F_ENCRYPTED is set, sealed with AES-256-GCM as
 * nonce (12) || ciphertext || tag (16), the header being the associated
 * data.  Encryption is not implemented yet: encoding with a key and
 * decoding an encrypted frame return -ENOSYS / -EIO (see frame.c for where
 * it plugs in).
 *
 * The encoder falls back to codec 0 when compression does not shrink the
 * block, so a frame's codec may differ from the configured one; decoders
 * read the codec from the header, never from the configuration.
 *
 * Decoding verifies everything it can (magic, version, flags, lengths,
 * codec, checksum) and fails with -EIO and a static reason: a caller never
 * gets wrong bytes.  All functions are pure and may be called from any
 * thread.
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

/**
 * Encode @len raw bytes (len <= UINT32_MAX) into @out (reset first):
 * header then payload.  Returns 0, -ENOMEM, -EINVAL (unknown codec, too
 * long) or -ENOSYS (encryption requested: not implemented yet).
 */
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
 * Decode a frame of @len bytes into @dst (capacity @cap) and verify it.
 * Returns the raw length, or -EIO (*why set: "bad magic", "bad checksum",
 * ...).  For a plain frame @dst may be framed + FRAME_HDR_LEN (verify in
 * place without copying).  @fc supplies the key of encrypted frames; it
 * may be NULL.
 */
ssize_t frame_decode_to(const struct frame_conf *fc, const void *framed,
			size_t len, void *dst, size_t cap, const char **why);

/** As frame_decode_to into @out (reset first).  0, -EIO or -ENOMEM. */
int frame_decode(const struct frame_conf *fc, const void *framed, size_t len,
		 struct buf *out, const char **why);

#endif
