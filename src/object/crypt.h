/*
 * crypt.h - the data key of an encrypted volume, and the user's key file
 * that unlocks it (DESIGN sections 2-3).
 *
 * An encrypted volume has one random 32-byte data key; every block frame
 * is sealed with it (frame.h).  The data key is never stored in clear: the
 * volume settings hold it wrapped (AES-256-GCM) under a key-encryption key
 * derived with PBKDF2-HMAC-SHA256 from the user's secret, which lives in a
 * key file given at format and at mount time.  Changing the user's secret
 * later only means re-wrapping 32 bytes, never re-encrypting data.
 *
 * Key file: any bytes (a passphrase or random bytes), at least
 * CRYPT_SECRET_MIN bytes after one trailing newline is dropped (so
 * `echo pass > file` and `printf pass > file` give the same key), at most
 * CRYPT_SECRET_MAX.  It must not be accessible by group or others (mode
 * 0600 or stricter, as ssh demands of private keys).
 *
 * Wrapped form, "tk1:" followed by base64 (RFC 4648; 112 characters, no
 * padding) of these 84 bytes:
 *
 *   0  u8  1 (version)     1  u8  1 (KDF: PBKDF2-HMAC-SHA256)
 *   2  u16 0 (reserved)    4  u32 iterations, big-endian
 *   8  16  salt            24  12  nonce
 *  36  32  wrapped data key
 *  68  16  tag
 *
 * The first 24 bytes are the associated data of the wrap, so neither the
 * version, the KDF nor its parameters can be changed without the unwrap
 * failing.
 *
 * Threads: all calls are reentrant.  Secrets are wiped from our memory
 * (OPENSSL_cleanse) once used; the caller wipes the data keys it gets.
 */
#ifndef TESSERA_OBJECT_CRYPT_H
#define TESSERA_OBJECT_CRYPT_H

#include <stddef.h>

#include "object/frame.h"

#define CRYPT_SECRET_MIN 16
#define CRYPT_SECRET_MAX 4096
/* Room for the wrapped key text, with its NUL (fits meta_format's). */
#define CRYPT_WRAPPED_MAX 128
/* PBKDF2 iterations of new wraps (OWASP 2023 advice for SHA-256). */
#define CRYPT_KDF_ITER 600000

/**
 * Read the user's secret from the key file @path into @out (at least
 * CRYPT_SECRET_MAX bytes), *len set to its length.  Checks the mode and
 * the length.  Returns 0, or -errno after logging one line naming the
 * file: -ENOENT (and other open errors), -EPERM (accessible by group or
 * others), -EINVAL (too short, too long, a directory).  @out holds nothing
 * on failure.
 */
int crypt_read_secret(const char *path, unsigned char *out, size_t *len);

/**
 * Make a random data key and wrap it with the secret in @path: the data
 * key goes to @data_key, the wrapped text (NUL-terminated) to @out (@n >=
 * CRYPT_WRAPPED_MAX).  @iter: PBKDF2 iterations, 0 = CRYPT_KDF_ITER
 * (tests pass small counts).  Returns 0, crypt_read_secret's errors, -EIO
 * (OpenSSL failed, e.g. no randomness) or -ENOBUFS (@n too small).
 */
int crypt_wrap_new_key(const char *path, unsigned iter, char *out, size_t n,
		       unsigned char data_key[FRAME_KEY_LEN]);

/**
 * Unwrap the data key of @wrapped with the secret in @path into
 * @data_key.  Returns 0, crypt_read_secret's errors, -EINVAL (@wrapped is
 * malformed or of an unknown version: logged), or -EKEYREJECTED (the
 * secret is not the one the key was wrapped with; not logged: the caller
 * names the volume).
 */
int crypt_unwrap_key(const char *path, const char *wrapped,
		     unsigned char data_key[FRAME_KEY_LEN]);

#endif
