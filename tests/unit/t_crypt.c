/*
 * t_crypt.c - encrypted block frames, data-key wrapping and key files, the
 * volume settings -> frame configuration step, and encrypted blocks through
 * a real chunk store on a file:// store.
 *
 * What a wrong program gets wrong here: a frame that decodes after any
 * byte changed, after a wrong key or after a move to another object key; a
 * nonce that repeats; plaintext visible in a stored object; a wrap that
 * opens with another secret; a key file others can read accepted.
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chunk/chunk.h"
#include "cli/cli.h"
#include "meta/meta.h"
#include "object/crypt.h"
#include "object/frame.h"
#include "object/object.h"

#define LEN (150 * 1024)
#define ITER 1000 /* fast wraps in tests */

static const char marker[] = "TESSERA-PLAINTEXT-MARKER-0123456789";

/* Compressible text with the marker in it, or pseudo-random bytes. */
static unsigned char *sample(size_t len, bool random_only, uint64_t seed)
{
	unsigned char *p = malloc(len);
	uint64_t x = 88172645463325252ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = random_only ? (unsigned char)x
				   : (unsigned char)
					     marker[i % (sizeof(marker) - 1)];
	}
	return p;
}

static void key_conf(struct frame_conf *fc, int codec, unsigned char fill)
{
	memset(fc, 0, sizeof(*fc));
	fc->codec = codec;
	fc->encrypt = true;
	memset(fc->key, fill, sizeof(fc->key));
	fc->key[0] = 0x42;
}

static ssize_t decode(const struct frame_conf *fc, const char *objkey,
		      const struct buf *enc, void *dst, size_t cap,
		      const char **why)
{
	struct frame_obj o = {objkey, enc->data, enc->len};

	return frame_decode_obj_to(fc, &o, dst, cap, why);
}

/* ---- frames ---- */

static void test_crypt_roundtrip_all(void **state)
{
	static const int codecs[] = {FRAME_CODEC_NONE, FRAME_CODEC_LZ4,
				     FRAME_CODEC_ZSTD};
	unsigned char *dst = malloc(LEN);

	(void)state;
	for (size_t c = 0; c < ARRAY_SIZE(codecs); c++)
		for (int enc_on = 0; enc_on < 2; enc_on++)
			for (int rnd = 0; rnd < 2; rnd++) {
				unsigned char *raw = sample(LEN, rnd, c);
				struct frame_conf fc = {.codec = codecs[c]};
				struct buf enc = BUF_INIT;
				struct frame_hdr h;
				const char *why = NULL;

				if (enc_on)
					key_conf(&fc, codecs[c], 7);
				assert_int_equal(frame_encode_obj(&fc, "v/k",
								  raw, LEN,
								  &enc),
						 0);
				assert_int_equal(frame_parse_hdr(enc.data,
								 enc.len, &h,
								 &why),
						 0);
				assert_int_equal(h.flags,
						 enc_on ? FRAME_F_ENCRYPTED
							: 0);
				assert_int_equal(h.codec, rnd ? FRAME_CODEC_NONE
							      : codecs[c]);
				if (enc_on) {
					assert_int_equal(h.checksum, 0);
					assert_null(memmem(enc.data, enc.len,
							   marker, 16));
				}
				memset(dst, 0, LEN);
				assert_int_equal(decode(&fc, "v/k", &enc, dst,
							LEN, &why),
						 LEN);
				assert_memory_equal(dst, raw, LEN);
				buf_release(&enc);
				free(raw);
			}
	free(dst);
}

/* Every single-bit flip, every truncation and an extra byte: -EIO. */
static void tamper_all(int codec)
{
	unsigned char *raw = sample(700, false, 1), dst[1024];
	struct frame_conf fc;
	struct buf enc = BUF_INIT;
	unsigned char *c;

	key_conf(&fc, codec, 3);
	assert_int_equal(frame_encode_obj(&fc, "vol/obj", raw, 700, &enc), 0);
	c = malloc(enc.len + 1);
	for (size_t i = 0; i < enc.len; i++)
		for (int bit = 0; bit < 8; bit++) {
			struct frame_obj o = {"vol/obj", c, enc.len};
			const char *why = NULL;

			memcpy(c, enc.data, enc.len);
			c[i] ^= (unsigned char)(1u << bit);
			memset(dst, 0, sizeof(dst));
			assert_int_equal(frame_decode_obj_to(&fc, &o, dst,
							     sizeof(dst), &why),
					 -EIO);
			assert_non_null(why);
			/* No unverified plaintext left behind. */
			assert_null(memmem(dst, sizeof(dst), marker, 16));
		}
	for (size_t n = 0; n < enc.len; n++) {
		struct frame_obj o = {"vol/obj", enc.data, n};

		assert_int_equal(
			frame_decode_obj_to(&fc, &o, dst, sizeof(dst), NULL),
			-EIO);
	}
	memcpy(c, enc.data, enc.len);
	c[enc.len] = 0;
	{
		struct frame_obj o = {"vol/obj", c, enc.len + 1};

		assert_int_equal(
			frame_decode_obj_to(&fc, &o, dst, sizeof(dst), NULL),
			-EIO);
	}
	free(c);
	buf_release(&enc);
	free(raw);
}

static void test_crypt_tamper(void **state)
{
	(void)state;
	tamper_all(FRAME_CODEC_NONE);
	tamper_all(FRAME_CODEC_LZ4);
	tamper_all(FRAME_CODEC_ZSTD);
}

static void test_crypt_wrong_key(void **state)
{
	unsigned char *raw = sample(LEN, false, 2), *dst = malloc(LEN);
	struct frame_conf fc, other, plain = {.codec = FRAME_CODEC_ZSTD};
	struct buf enc = BUF_INIT;
	const char *why = NULL;

	(void)state;
	key_conf(&fc, FRAME_CODEC_ZSTD, 1);
	key_conf(&other, FRAME_CODEC_ZSTD, 1);
	other.key[31] ^= 1; /* one bit away */
	assert_int_equal(frame_encode_obj(&fc, "a", raw, LEN, &enc), 0);
	assert_int_equal(decode(&other, "a", &enc, dst, LEN, &why), -EIO);
	assert_non_null(strstr(why, "tag"));
	assert_int_equal(decode(&plain, "a", &enc, dst, LEN, &why), -EIO);
	assert_non_null(strstr(why, "no key"));
	assert_int_equal(decode(NULL, "a", &enc, dst, LEN, &why), -EIO);
	assert_int_equal(frame_decode(&fc, enc.data, enc.len, &enc, &why),
			 -EIO);
	assert_null(memmem(dst, LEN, marker, 16));
	buf_release(&enc);
	free(raw);
	free(dst);
}

/* A block copied to another object key does not decode. */
static void test_crypt_moved(void **state)
{
	unsigned char *raw = sample(4096, false, 3), dst[4096];
	struct frame_conf fc;
	struct buf enc = BUF_INIT;

	(void)state;
	key_conf(&fc, FRAME_CODEC_NONE, 9);
	assert_int_equal(frame_encode_obj(&fc, "vol/chunks/0/0/5_0_4096", raw,
					  4096, &enc),
			 0);
	assert_int_equal(decode(&fc, "vol/chunks/0/0/5_0_4096", &enc, dst,
				sizeof(dst), NULL),
			 4096);
	assert_int_equal(decode(&fc, "vol/chunks/0/0/6_0_4096", &enc, dst,
				sizeof(dst), NULL),
			 -EIO);
	assert_int_equal(decode(&fc, NULL, &enc, dst, sizeof(dst), NULL), -EIO);
	assert_int_equal(decode(&fc, "", &enc, dst, sizeof(dst), NULL), -EIO);
	buf_release(&enc);
	/* And one encoded without a key needs none. */
	assert_int_equal(frame_encode(&fc, raw, 4096, &enc), 0);
	assert_int_equal(decode(&fc, NULL, &enc, dst, sizeof(dst), NULL), 4096);
	assert_int_equal(decode(&fc, "x", &enc, dst, sizeof(dst), NULL), -EIO);
	buf_release(&enc);
	free(raw);
}

static void test_crypt_nonce_differs(void **state)
{
	unsigned char *raw = sample(8192, false, 4), dst[8192];
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct frame_conf fc;

	(void)state;
	key_conf(&fc, FRAME_CODEC_LZ4, 5);
	assert_int_equal(frame_encode_obj(&fc, "k", raw, 8192, &a), 0);
	assert_int_equal(frame_encode_obj(&fc, "k", raw, 8192, &b), 0);
	assert_int_equal(a.len, b.len);
	/* Same header, different nonce, different ciphertext and tag. */
	assert_memory_equal(a.data, b.data, FRAME_HDR_LEN);
	assert_memory_not_equal(a.data + FRAME_HDR_LEN, b.data + FRAME_HDR_LEN,
				FRAME_NONCE_LEN);
	assert_memory_not_equal(a.data + FRAME_HDR_LEN + FRAME_NONCE_LEN,
				b.data + FRAME_HDR_LEN + FRAME_NONCE_LEN,
				a.len - FRAME_HDR_LEN - FRAME_NONCE_LEN);
	assert_int_equal(decode(&fc, "k", &a, dst, sizeof(dst), NULL), 8192);
	assert_memory_equal(dst, raw, 8192);
	assert_int_equal(decode(&fc, "k", &b, dst, sizeof(dst), NULL), 8192);
	assert_memory_equal(dst, raw, 8192);
	buf_release(&a);
	buf_release(&b);
	free(raw);
}

/* Someone who can write to the store must not plant plain blocks. */
static void test_crypt_plain_refused(void **state)
{
	unsigned char *raw = sample(1000, false, 5), dst[1000];
	struct frame_conf fc;
	struct buf enc = BUF_INIT;
	const char *why = NULL;

	(void)state;
	key_conf(&fc, FRAME_CODEC_NONE, 2);
	assert_int_equal(frame_encode(NULL, raw, 1000, &enc), 0);
	assert_int_equal(decode(&fc, "k", &enc, dst, sizeof(dst), &why), -EIO);
	assert_non_null(strstr(why, "plain block"));
	assert_int_equal(frame_encode_in_place(&fc, enc.data, 1000), -ENOSYS);
	buf_release(&enc);
	free(raw);
}

/* Decoding over the object's own bytes (the chunk store's in-place path). */
static void test_crypt_in_place(void **state)
{
	unsigned char *raw = sample(LEN, false, 6);
	struct frame_conf fc;
	struct buf enc = BUF_INIT;
	struct frame_obj o;

	(void)state;
	for (int codec = 0; codec <= FRAME_CODEC_ZSTD; codec++) {
		key_conf(&fc, codec, 4);
		assert_int_equal(frame_encode_obj(&fc, "k", raw, LEN, &enc), 0);
		o = (struct frame_obj){"k", enc.data, enc.len};
		assert_int_equal(frame_decode_obj_to(&fc, &o,
						     enc.data + FRAME_HDR_LEN,
						     LEN, NULL),
				 LEN);
		assert_memory_equal(enc.data + FRAME_HDR_LEN, raw, LEN);
		buf_release(&enc);
	}
	free(raw);
}

/* ---- key files and wrapping ---- */

struct dir {
	char path[64];
};

static int rm_cb(const char *path, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int dir_setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	snprintf(d->path, sizeof(d->path), "/tmp/tessera-tcrypt-XXXXXX");
	if (!mkdtemp(d->path))
		return -1;
	*state = d;
	return 0;
}

static int dir_teardown(void **state)
{
	struct dir *d = *state;

	nftw(d->path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
	return 0;
}

/* Write @len bytes of @data to DIR/name with @mode; path into @out. */
static void key_file(struct dir *d, const char *name, const void *data,
		     size_t len, mode_t mode, char *out, size_t n)
{
	int fd;

	snprintf(out, n, "%s/%s", d->path, name);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_crypt_wrap_unwrap(void **state)
{
	struct dir *d = *state;
	unsigned char k1[FRAME_KEY_LEN], k2[FRAME_KEY_LEN], got[FRAME_KEY_LEN];
	char good[128], bad[128], nl[128], w1[CRYPT_WRAPPED_MAX],
		w2[CRYPT_WRAPPED_MAX];
	unsigned char bin[40];

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 37); /* includes NUL bytes */
	key_file(d, "good", bin, sizeof(bin), 0600, good, sizeof(good));
	bin[39] ^= 1;
	key_file(d, "bad", bin, sizeof(bin), 0400, bad, sizeof(bad));
	assert_int_equal(crypt_wrap_new_key(good, ITER, w1, sizeof(w1), k1), 0);
	assert_int_equal(crypt_wrap_new_key(good, ITER, w2, sizeof(w2), k2), 0);
	assert_true(strncmp(w1, "tk1:", 4) == 0);
	assert_true(strlen(w1) <
		    sizeof(((struct meta_format *)0)->key_wrapped));
	/* Fresh data key and salt each time. */
	assert_memory_not_equal(k1, k2, FRAME_KEY_LEN);
	assert_string_not_equal(w1, w2);
	/* The wrapped text does not hold the key in clear. */
	assert_null(memmem(w1, strlen(w1), k1, 8));
	assert_int_equal(crypt_unwrap_key(good, w1, got), 0);
	assert_memory_equal(got, k1, FRAME_KEY_LEN);
	assert_int_equal(crypt_unwrap_key(good, w2, got), 0);
	assert_memory_equal(got, k2, FRAME_KEY_LEN);
	assert_int_equal(crypt_unwrap_key(bad, w1, got), -EKEYREJECTED);
	/* Passphrase files: one trailing newline does not matter. */
	key_file(d, "nl", "a long passphrase here\n", 23, 0600, nl, sizeof(nl));
	assert_int_equal(crypt_wrap_new_key(nl, ITER, w2, sizeof(w2), k2), 0);
	key_file(d, "nl", "a long passphrase here", 22, 0600, nl, sizeof(nl));
	assert_int_equal(crypt_unwrap_key(nl, w2, got), 0);
	assert_memory_equal(got, k2, FRAME_KEY_LEN);
	key_file(d, "nl", "a long passphrase herf", 22, 0600, nl, sizeof(nl));
	assert_int_equal(crypt_unwrap_key(nl, w2, got), -EKEYREJECTED);
	assert_int_equal(crypt_wrap_new_key(good, ITER, w2, 64, k2), -ENOBUFS);
}

static void test_crypt_wrapped_damage(void **state)
{
	struct dir *d = *state;
	unsigned char k[FRAME_KEY_LEN], got[FRAME_KEY_LEN];
	char good[128], w[CRYPT_WRAPPED_MAX], c[CRYPT_WRAPPED_MAX];
	size_t n;

	key_file(d, "good", "0123456789abcdef", 16, 0600, good, sizeof(good));
	assert_int_equal(crypt_wrap_new_key(good, ITER, w, sizeof(w), k), 0);
	n = strlen(w);
	/* Any other character anywhere: never the key, never success. */
	for (size_t i = 0; i < n; i++) {
		memcpy(c, w, n + 1);
		c[i] = c[i] == 'A' ? 'B' : 'A';
		memset(got, 0, sizeof(got));
		assert_true(crypt_unwrap_key(good, c, got) < 0);
		assert_memory_not_equal(got, k, FRAME_KEY_LEN);
	}
	assert_int_equal(crypt_unwrap_key(good, "", got), -EINVAL);
	assert_int_equal(crypt_unwrap_key(good, "tk1:", got), -EINVAL);
	assert_int_equal(crypt_unwrap_key(good, "tk2:AAAA", got), -EINVAL);
	memcpy(c, w, n + 1);
	c[n - 3] = '*';
	assert_int_equal(crypt_unwrap_key(good, c, got), -EINVAL);
	c[n - 3] = '\0';
	assert_int_equal(crypt_unwrap_key(good, c, got), -EINVAL);
}

static void test_crypt_key_file_rules(void **state)
{
	struct dir *d = *state;
	unsigned char secret[CRYPT_SECRET_MAX], k[FRAME_KEY_LEN];
	char p[128], w[CRYPT_WRAPPED_MAX], big[CRYPT_SECRET_MAX + 10];
	size_t len = 0;

	memset(big, 'x', sizeof(big));
	key_file(d, "k644", "0123456789abcdef", 16, 0644, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), -EPERM);
	assert_int_equal(crypt_wrap_new_key(p, ITER, w, sizeof(w), k), -EPERM);
	key_file(d, "k640", "0123456789abcdef", 16, 0640, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), -EPERM);
	key_file(d, "k604", "0123456789abcdef", 16, 0604, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), -EPERM);
	key_file(d, "k600", "0123456789abcdef", 16, 0600, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), 0);
	assert_int_equal(len, 16);
	assert_memory_equal(secret, "0123456789abcdef", 16);
	key_file(d, "short", "0123456789abcde\n", 16, 0600, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), -EINVAL);
	key_file(d, "empty", "", 0, 0600, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), -EINVAL);
	key_file(d, "max", big, CRYPT_SECRET_MAX, 0600, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), 0);
	assert_int_equal(len, CRYPT_SECRET_MAX);
	key_file(d, "big", big, sizeof(big), 0600, p, sizeof(p));
	assert_int_equal(crypt_read_secret(p, secret, &len), -EINVAL);
	snprintf(p, sizeof(p), "%s/missing", d->path);
	assert_int_equal(crypt_read_secret(p, secret, &len), -ENOENT);
	snprintf(p, sizeof(p), "%s/sub", d->path);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(crypt_read_secret(p, secret, &len), -EINVAL);
}

/* ---- settings -> frame configuration ---- */

static void test_crypt_cli_frame_conf(void **state)
{
	struct dir *d = *state;
	unsigned char k[FRAME_KEY_LEN];
	char good[128], bad[128];
	struct meta_format f;
	struct frame_conf fc;

	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "vol1");
	snprintf(f.compress, sizeof(f.compress), "zstd");
	snprintf(f.encrypt, sizeof(f.encrypt), "none");
	unsetenv("TESSERA_ENCRYPT_KEY_FILE");
	assert_int_equal(cli_frame_conf(&f, NULL, &fc), 0);
	assert_int_equal(fc.codec, FRAME_CODEC_ZSTD);
	assert_false(fc.encrypt);
	snprintf(f.compress, sizeof(f.compress), "gzip");
	assert_int_equal(cli_frame_conf(&f, NULL, &fc), -EINVAL);
	snprintf(f.compress, sizeof(f.compress), "lz4");
	snprintf(f.encrypt, sizeof(f.encrypt), "rot13");
	assert_int_equal(cli_frame_conf(&f, NULL, &fc), -EINVAL);

	key_file(d, "good", "the right secret!", 17, 0600, good, sizeof(good));
	key_file(d, "bad", "the wrong secret!", 17, 0600, bad, sizeof(bad));
	snprintf(f.encrypt, sizeof(f.encrypt), "aes-256-gcm");
	assert_int_equal(crypt_wrap_new_key(good, ITER, f.key_wrapped,
					    sizeof(f.key_wrapped), k),
			 0);
	assert_int_equal(cli_frame_conf(&f, NULL, &fc), -ENOKEY);
	assert_false(fc.encrypt);
	assert_int_equal(cli_frame_conf(&f, bad, &fc), -EKEYREJECTED);
	assert_false(fc.encrypt);
	assert_int_equal(cli_frame_conf(&f, good, &fc), 0);
	assert_true(fc.encrypt);
	assert_int_equal(fc.codec, FRAME_CODEC_LZ4);
	assert_memory_equal(fc.key, k, FRAME_KEY_LEN);
	/* The environment names the file when the option does not. */
	setenv("TESSERA_ENCRYPT_KEY_FILE", good, 1);
	memset(&fc, 0, sizeof(fc));
	assert_int_equal(cli_frame_conf(&f, NULL, &fc), 0);
	assert_memory_equal(fc.key, k, FRAME_KEY_LEN);
	assert_int_equal(cli_frame_conf(&f, bad, &fc), -EKEYREJECTED);
	unsetenv("TESSERA_ENCRYPT_KEY_FILE");
}

/* ---- through a chunk store ---- */

#define BS (64 * 1024)

static bool file_has(const char *path, const void *pat, size_t n)
{
	struct stat st;
	char *p;
	bool found;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
	close(fd);
	found = memmem(p, (size_t)st.st_size, pat, n) != NULL;
	free(p);
	return found;
}

static void block_path(struct dir *d, struct chunk_store *cs, uint64_t id,
		       uint32_t index, uint32_t len, char *out, size_t n)
{
	char key[256];

	chunk_block_key(cs, id, index, len, key, sizeof(key));
	assert_true(snprintf(out, n, "%s/%s", d->path, key) < (int)n);
}

static void test_crypt_chunk_store(void **state)
{
	struct dir *d = *state;
	const uint32_t size = 3 * BS;
	unsigned char *p = sample(size, false, 7), *got = malloc(size);
	struct slice s = {0, 61, size, 0, size};
	struct chunk_conf conf = {.volname = "vol",
				  .block_size = BS,
				  .buffer_size = 4 * MiB,
				  .max_uploads = 2};
	struct frame_conf fc;
	struct chunk_store *cs;
	struct chunk_writer *w;
	struct obj_store *os;
	char url[128], b0[512], b1[512], tmp[600];

	key_conf(&fc, FRAME_CODEC_ZSTD, 8);
	conf.frame = &fc;
	snprintf(url, sizeof(url), "file://%s/", d->path);
	assert_int_equal(obj_open(url, false, &os), 0);
	assert_int_equal(chunk_store_new(os, &conf, &cs), 0);
	assert_int_equal(chunk_writer_new(cs, 61, &w), 0);
	assert_int_equal(chunk_writer_write(w, 0, p, size), size);
	assert_int_equal(chunk_writer_finish(w), 0);
	chunk_writer_free(w);
	chunk_forget_slice(cs, 61);
	assert_int_equal(chunk_read(cs, &s, 1, 0, got, size), size);
	assert_memory_equal(got, p, size);
	/* No plaintext in the stored objects. */
	block_path(d, cs, 61, 0, BS, b0, sizeof(b0));
	block_path(d, cs, 61, 1, BS, b1, sizeof(b1));
	assert_false(file_has(b0, marker, 16));
	assert_false(file_has(b1, marker, 16));
	/* Swap blocks 0 and 1 (same length): both fail, nothing returned. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", b0);
	assert_int_equal(rename(b0, tmp), 0);
	assert_int_equal(rename(b1, b0), 0);
	assert_int_equal(rename(tmp, b1), 0);
	chunk_forget_slice(cs, 61);
	memset(got, 0, size);
	assert_int_equal(chunk_read(cs, &s, 1, 0, got, 100), -EIO);
	assert_int_equal(chunk_read(cs, &s, 1, BS + 5, got, 100), -EIO);
	assert_int_equal(chunk_read(cs, &s, 1, 2 * BS, got, 100), 100);
	assert_memory_equal(got, p + 2 * BS, 100);
	chunk_store_free(cs);
	/* The same objects through a store with another key: -EIO. */
	fc.key[5] ^= 0x20;
	assert_int_equal(chunk_store_new(os, &conf, &cs), 0);
	assert_int_equal(chunk_read(cs, &s, 1, 2 * BS, got, 100), -EIO);
	chunk_store_free(cs);
	obj_close(os);
	free(p);
	free(got);
}

#define D(name) cmocka_unit_test_setup_teardown(name, dir_setup, dir_teardown)

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crypt_roundtrip_all),
		cmocka_unit_test(test_crypt_tamper),
		cmocka_unit_test(test_crypt_wrong_key),
		cmocka_unit_test(test_crypt_moved),
		cmocka_unit_test(test_crypt_nonce_differs),
		cmocka_unit_test(test_crypt_plain_refused),
		cmocka_unit_test(test_crypt_in_place),
		D(test_crypt_wrap_unwrap),
		D(test_crypt_wrapped_damage),
		D(test_crypt_key_file_rules),
		D(test_crypt_cli_frame_conf),
		D(test_crypt_chunk_store),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
