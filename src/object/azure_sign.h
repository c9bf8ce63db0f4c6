/*
 * azure_sign.h - Azure Blob Shared Key signature (building block of the
 * Azure store of issue #22; the store itself is not written yet).
 *
 * The caller builds the string-to-sign (verb, the eleven standard headers,
 * Range, canonicalized x-ms-* headers, canonicalized resource); this turns
 * it into the signature: base64(HMAC-SHA256(base64-decoded key, sts)).
 * Pure computation, any thread.
 */
#ifndef TESSERA_OBJECT_AZURE_SIGN_H
#define TESSERA_OBJECT_AZURE_SIGN_H

#include <stddef.h>

/** Base64 length of a 32-byte HMAC plus NUL. */
#define AZURE_SIG_LEN 45

/**
 * Sign @sts with the account key @key_b64 (base64, as the portal and
 * connection strings give it) into @sig.  0, or -EINVAL when the key is
 * not valid base64 or decodes to nothing.
 */
int azure_shared_key_sign(const char *key_b64, const char *sts,
			  char sig[AZURE_SIG_LEN]);

#endif
