/*
 * crypt.c - wrap and unwrap a volume's data key with the user's key file
 * (format in crypt.h).
 *
 * Design note.  Three keys: the user's secret (a file, any bytes), the
 * key-encryption key KEK = PBKDF2-HMAC-SHA256(secret, salt, iter), and the
 * data key (random, 32 bytes) that seals the blocks.  Only the wrapped data
 * key is stored, in the volume settings; with its own random salt a copy of
 * the settings is no shortcut for guessing the secret of another volume.
 * PBKDF2 rather than scrypt: its cost is in iterations only, so a mount on a
 * small machine needs no extra memory, and it is in every OpenSSL.  The
 * iteration count is stored with the key, so it can grow in later versions
 * without breaking old volumes.
 *
 * A wrong secret shows as a failed GCM tag on the wrap, which is how we
 * tell "wrong key" from "damaged settings" (a malformed string).  Any
 * change of the wrapped text fails the tag as well; a "wrong key" report
 * for damaged settings is the price, and it still never unlocks anything.
 *
 * Secrets, KEKs and data keys are wiped with OPENSSL_cleanse before their
 * memory goes back.  No state: reentrant.
 */
#include "util/common.h"
#include "object/crypt.h"
#include "util/log.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRAP_VERSION 1
#define WRAP_KDF_PBKDF2_SHA256 1
#define WRAP_SALT_LEN 16
#define WRAP_AAD_LEN (4 + 4 + WRAP_SALT_LEN)
#define WRAP_LEN                                                               \
	(WRAP_AAD_LEN + FRAME_NONCE_LEN + FRAME_KEY_LEN + FRAME_TAG_LEN)
#define WRAP_B64_LEN (WRAP_LEN / 3 * 4)
#define WRAP_PREFIX "tk1:"
/* Refuse stored iteration counts that would stall a mount for minutes. */
#define WRAP_ITER_MAX 100000000u

_Static_assert(sizeof(WRAP_PREFIX) - 1 + WRAP_B64_LEN < CRYPT_WRAPPED_MAX,
	       "CRYPT_WRAPPED_MAX too small");
/* No base64 padding: every character carries six bits of the blob. */
_Static_assert(WRAP_LEN % 3 == 0, "wrapped key length not a multiple of 3");

/* Read all of @fd, up to @cap bytes; *len = bytes read (cap + 1: more). */
static int read_all(int fd, unsigned char *buf, size_t cap, size_t *len)
{
	size_t got = 0;

	for (;;) {
		unsigned char extra;
		ssize_t n;

		if (got < cap)
			n = read(fd, buf + got, cap - got);
		else
			n = read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		if (got == cap) {
			got = cap + 1;
			break;
		}
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

int crypt_read_secret(const char *path, unsigned char *out, size_t *len)
{
	struct stat st;
	size_t n = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return log_fail(-errno, "cannot open key file '%s'", path);
	if (fstat(fd, &st) < 0) {
		rc = log_fail(-errno, "cannot stat key file '%s'", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		log_error("key file '%s' is a directory", path);
		rc = -EINVAL;
		goto out;
	}
	if (st.st_mode & 077) {
		log_error("key file '%s' is accessible by others (mode %04o): "
			  "make it private with 'chmod 600 %s'",
			  path, (unsigned)(st.st_mode & 07777), path);
		rc = -EPERM;
		goto out;
	}
	rc = read_all(fd, out, CRYPT_SECRET_MAX, &n);
	if (rc < 0) {
		log_fail(rc, "cannot read key file '%s'", path);
		goto out;
	}
	if (n > 0 && n <= CRYPT_SECRET_MAX && out[n - 1] == '\n')
		n--;
	if (n > CRYPT_SECRET_MAX || n < CRYPT_SECRET_MIN) {
		log_error("key file '%s' is too %s (the secret must have %d "
			  "to %d bytes)",
			  path, n < CRYPT_SECRET_MIN ? "short" : "long",
			  CRYPT_SECRET_MIN, CRYPT_SECRET_MAX);
		rc = -EINVAL;
		goto out;
	}
	*len = n;
	rc = 0;
out:
	if (rc < 0)
		OPENSSL_cleanse(out, CRYPT_SECRET_MAX);
	close(fd);
	return rc;
}

/* KEK from the secret in @path and the salt/iterations of @hdr. */
static int derive_kek(const char *path, const unsigned char *hdr,
		      unsigned char kek[FRAME_KEY_LEN])
{
	unsigned char secret[CRYPT_SECRET_MAX];
	size_t len;
	int ok, rc = crypt_read_secret(path, secret, &len);

	if (rc < 0)
		return rc;
	ok = PKCS5_PBKDF2_HMAC((const char *)secret, (int)len, hdr + 8,
			       WRAP_SALT_LEN, (int)get_be32(hdr + 4),
			       EVP_sha256(), FRAME_KEY_LEN, kek);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (ok != 1)
		return log_fail(-EIO, "cannot derive a key from '%s'", path);
	return 0;
}

/*
 * AES-256-GCM of 32 bytes under @kek, @blob's first WRAP_AAD_LEN bytes as
 * associated data.  @enc: fills the nonce, ciphertext and tag of @blob from
 * @key; else checks them and fills @key.  0, or -EIO (tag mismatch or an
 * OpenSSL failure).
 */
static int wrap_gcm(bool enc, const unsigned char *kek, unsigned char *blob,
		    unsigned char *key)
{
	unsigned char *nonce = blob + WRAP_AAD_LEN;
	unsigned char *ct = nonce + FRAME_NONCE_LEN;
	unsigned char *tag = ct + FRAME_KEY_LEN;
	const EVP_CIPHER *aes = EVP_aes_256_gcm();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char fin[16];
	int outl = 0, ok;

	if (!ctx)
		return -ENOMEM;
	if (enc)
		ok = EVP_EncryptInit_ex(ctx, aes, NULL, kek, nonce) == 1 &&
		     EVP_EncryptUpdate(ctx, NULL, &outl, blob, WRAP_AAD_LEN) ==
			     1 &&
		     EVP_EncryptUpdate(ctx, ct, &outl, key, FRAME_KEY_LEN) ==
			     1 &&
		     EVP_EncryptFinal_ex(ctx, fin, &outl) == 1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
					 FRAME_TAG_LEN, tag) == 1;
	else
		ok = EVP_DecryptInit_ex(ctx, aes, NULL, kek, nonce) == 1 &&
		     EVP_DecryptUpdate(ctx, NULL, &outl, blob, WRAP_AAD_LEN) ==
			     1 &&
		     EVP_DecryptUpdate(ctx, key, &outl, ct, FRAME_KEY_LEN) ==
			     1 &&
		     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
					 FRAME_TAG_LEN, tag) == 1 &&
		     EVP_DecryptFinal_ex(ctx, fin, &outl) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok && !enc)
		OPENSSL_cleanse(key, FRAME_KEY_LEN);
	return ok ? 0 : -EIO;
}

int crypt_wrap_new_key(const char *path, unsigned iter, char *out, size_t n,
		       unsigned char data_key[FRAME_KEY_LEN])
{
	unsigned char blob[WRAP_LEN], kek[FRAME_KEY_LEN];
	unsigned char key[FRAME_KEY_LEN];
	int rc;

	if (n < CRYPT_WRAPPED_MAX)
		return -ENOBUFS;
	if (iter == 0)
		iter = CRYPT_KDF_ITER;
	if (iter > WRAP_ITER_MAX)
		return -EINVAL;
	memset(blob, 0, sizeof(blob));
	blob[0] = WRAP_VERSION;
	blob[1] = WRAP_KDF_PBKDF2_SHA256;
	put_be32(blob + 4, iter);
	if (RAND_bytes(blob + 8, WRAP_SALT_LEN) != 1 ||
	    RAND_bytes(blob + WRAP_AAD_LEN, FRAME_NONCE_LEN) != 1 ||
	    RAND_bytes(key, FRAME_KEY_LEN) != 1)
		return log_fail(-EIO, "cannot get random bytes for a new key");
	rc = derive_kek(path, blob, kek);
	if (rc == 0)
		rc = wrap_gcm(true, kek, blob, key);
	OPENSSL_cleanse(kek, sizeof(kek));
	if (rc == 0) {
		memcpy(out, WRAP_PREFIX, sizeof(WRAP_PREFIX) - 1);
		EVP_EncodeBlock((unsigned char *)out + sizeof(WRAP_PREFIX) - 1,
				blob, WRAP_LEN);
		memcpy(data_key, key, FRAME_KEY_LEN);
	} else if (rc == -EIO) {
		log_error("cannot wrap the data key");
	}
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

/* Decode "tk1:BASE64" into @blob (WRAP_LEN bytes); 0 or -EINVAL. */
static int parse_wrapped(const char *wrapped, unsigned char *blob)
{
	const char *b64 = wrapped + sizeof(WRAP_PREFIX) - 1;
	uint32_t iter;

	if (strncmp(wrapped, WRAP_PREFIX, sizeof(WRAP_PREFIX) - 1) != 0 ||
	    strlen(b64) != WRAP_B64_LEN ||
	    EVP_DecodeBlock(blob, (const unsigned char *)b64, WRAP_B64_LEN) !=
		    WRAP_LEN)
		return -EINVAL;
	iter = get_be32(blob + 4);
	if (blob[0] != WRAP_VERSION || blob[1] != WRAP_KDF_PBKDF2_SHA256 ||
	    blob[2] != 0 || blob[3] != 0 || iter == 0 || iter > WRAP_ITER_MAX)
		return -EINVAL;
	return 0;
}

int crypt_unwrap_key(const char *path, const char *wrapped,
		     unsigned char data_key[FRAME_KEY_LEN])
{
	unsigned char blob[WRAP_LEN], kek[FRAME_KEY_LEN];
	int rc;

	if (parse_wrapped(wrapped, blob) < 0) {
		log_error("the wrapped data key in the volume settings is "
			  "malformed or of an unknown version");
		return -EINVAL;
	}
	rc = derive_kek(path, blob, kek);
	if (rc < 0)
		return rc;
	rc = wrap_gcm(false, kek, blob, data_key);
	OPENSSL_cleanse(kek, sizeof(kek));
	return rc == -EIO ? -EKEYREJECTED : rc;
}
