/*
 * t_frame.c - block frames: round trips for every codec, and every kind of
 * damage must fail with -EIO, never decode to wrong bytes.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include "object/frame.h"

#define LEN (200 * 1024)

/* Half compressible text, half pseudo-random bytes. */
static unsigned char *sample(size_t len, bool random_only)
{
	unsigned char *p = malloc(len);
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (random_only || i % 2048 < 1024)
			   ? (unsigned char)x
			   : (unsigned char)("tessera "[i % 8]);
	}
	return p;
}

static void roundtrip(int codec, bool random_only, int want_codec)
{
	struct frame_conf fc = {.codec = codec};
	unsigned char *raw = sample(LEN, random_only);
	struct buf enc = BUF_INIT, dec = BUF_INIT;
	struct frame_hdr h;
	const char *why = NULL;

	assert_int_equal(frame_encode(&fc, raw, LEN, &enc), 0);
	assert_int_equal(frame_parse_hdr(enc.data, enc.len, &h, &why), 0);
	assert_int_equal(h.codec, want_codec);
	assert_int_equal(h.raw_len, LEN);
	if (want_codec != FRAME_CODEC_NONE)
		assert_true(enc.len < LEN);
	assert_int_equal(frame_decode(NULL, enc.data, enc.len, &dec, &why), 0);
	assert_int_equal(dec.len, LEN);
	assert_memory_equal(dec.data, raw, LEN);
	/* Flip one payload byte: always detected. */
	enc.data[enc.len / 2] ^= 0x10;
	assert_int_equal(frame_decode(NULL, enc.data, enc.len, &dec, &why),
			 -EIO);
	assert_non_null(why);
	buf_release(&enc);
	buf_release(&dec);
	free(raw);
}

static void test_frame_none(void **state)
{
	(void)state;
	roundtrip(FRAME_CODEC_NONE, false, FRAME_CODEC_NONE);
}

static void test_frame_lz4(void **state)
{
	(void)state;
	roundtrip(FRAME_CODEC_LZ4, false, FRAME_CODEC_LZ4);
}

static void test_frame_zstd(void **state)
{
	(void)state;
	roundtrip(FRAME_CODEC_ZSTD, false, FRAME_CODEC_ZSTD);
}

static void test_frame_incompressible(void **state)
{
	(void)state;
	roundtrip(FRAME_CODEC_ZSTD, true, FRAME_CODEC_NONE);
	roundtrip(FRAME_CODEC_LZ4, true, FRAME_CODEC_NONE);
}

static void test_frame_empty(void **state)
{
	struct buf enc = BUF_INIT, dec = BUF_INIT;

	(void)state;
	assert_int_equal(frame_encode(NULL, "", 0, &enc), 0);
	assert_int_equal(enc.len, FRAME_HDR_LEN);
	assert_int_equal(frame_decode(NULL, enc.data, enc.len, &dec, NULL), 0);
	assert_int_equal(dec.len, 0);
	buf_release(&enc);
	buf_release(&dec);
}

static void test_frame_in_place(void **state)
{
	unsigned char *raw = sample(LEN, false);
	unsigned char *mem = malloc(FRAME_HDR_LEN + LEN);
	struct frame_conf z = {.codec = FRAME_CODEC_ZSTD};
	struct buf enc = BUF_INIT;
	ssize_t n;

	(void)state;
	memcpy(mem + FRAME_HDR_LEN, raw, LEN);
	assert_int_equal(frame_encode_in_place(&z, mem, LEN), -ENOSYS);
	assert_int_equal(frame_encode_in_place(NULL, mem, LEN), 0);
	/* Same bytes as the copying encoder. */
	assert_int_equal(frame_encode(NULL, raw, LEN, &enc), 0);
	assert_int_equal(enc.len, FRAME_HDR_LEN + LEN);
	assert_memory_equal(enc.data, mem, enc.len);
	/* Verify in place. */
	n = frame_decode_to(NULL, mem, FRAME_HDR_LEN + LEN, mem + FRAME_HDR_LEN,
			    LEN, NULL);
	assert_int_equal(n, LEN);
	assert_memory_equal(mem + FRAME_HDR_LEN, raw, LEN);
	buf_release(&enc);
	free(mem);
	free(raw);
}

static void expect_bad(const unsigned char *p, size_t len, const char *what)
{
	unsigned char dst[4096];
	const char *why = NULL;

	assert_int_equal(frame_decode_to(NULL, p, len, dst, sizeof(dst), &why),
			 -EIO);
	assert_non_null(why);
	assert_non_null(strstr(why, what));
}

static void test_frame_damage(void **state)
{
	static const char text[] = "some block bytes, some block bytes";
	struct buf enc = BUF_INIT;
	unsigned char *c;
	size_t n;

	(void)state;
	assert_int_equal(frame_encode(NULL, text, sizeof(text), &enc), 0);
	n = enc.len;
	c = malloc(n);
	/* Every single-byte change anywhere is detected. */
	for (size_t i = 0; i < n; i++) {
		unsigned char dst[256];

		memcpy(c, enc.data, n);
		c[i] ^= 0x01;
		assert_true(frame_decode_to(NULL, c, n, dst, sizeof(dst),
					    NULL) == -EIO);
	}
	memcpy(c, enc.data, n);
	c[0] = 'X';
	expect_bad(c, n, "magic");
	memcpy(c, enc.data, n);
	c[4] = 2;
	expect_bad(c, n, "version");
	memcpy(c, enc.data, n);
	c[5] = 9;
	expect_bad(c, n, "codec");
	memcpy(c, enc.data, n);
	c[6] = 0x80;
	expect_bad(c, n, "flags");
	memcpy(c, enc.data, n);
	c[6] = FRAME_F_ENCRYPTED;
	expect_bad(c, n, "encrypt");
	memcpy(c, enc.data, n);
	c[n - 1] ^= 0xff;
	expect_bad(c, n, "checksum");
	expect_bad((const unsigned char *)enc.data, n - 1, "length");
	expect_bad((const unsigned char *)enc.data, 10, "truncated");
	expect_bad((const unsigned char *)enc.data, 0, "truncated");
	free(c);
	buf_release(&enc);
}

static void test_frame_codec_names(void **state)
{
	int c = -1;

	(void)state;
	assert_int_equal(frame_codec_parse("zstd", &c), 0);
	assert_int_equal(c, FRAME_CODEC_ZSTD);
	assert_int_equal(frame_codec_parse("lz4", &c), 0);
	assert_int_equal(c, FRAME_CODEC_LZ4);
	assert_int_equal(frame_codec_parse("none", &c), 0);
	assert_int_equal(c, FRAME_CODEC_NONE);
	assert_int_equal(frame_codec_parse("gzip", &c), -EINVAL);
	assert_string_equal(frame_codec_name(FRAME_CODEC_LZ4), "lz4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frame_none),
	    cmocka_unit_test(test_frame_lz4),
	    cmocka_unit_test(test_frame_zstd),
	    cmocka_unit_test(test_frame_incompressible),
	    cmocka_unit_test(test_frame_empty),
	    cmocka_unit_test(test_frame_in_place),
	    cmocka_unit_test(test_frame_damage),
	    cmocka_unit_test(test_frame_codec_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
