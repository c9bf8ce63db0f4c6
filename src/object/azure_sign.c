/*
 * azure_sign.c - Azure Blob Shared Key signature (see azure_sign.h).
 */
#include "util/common.h"
#include "object/azure_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

int azure_shared_key_sign(const char *key_b64, const char *sts,
			  char sig[AZURE_SIG_LEN])
{
	size_t klen = strlen(key_b64), pad = 0;
	unsigned char key[256], mac[32];
	unsigned int maclen = 0;
	int n;

	if (klen == 0 || klen % 4 != 0 || klen / 4 * 3 > sizeof(key))
		return -EINVAL;
	n = EVP_DecodeBlock(key, (const unsigned char *)key_b64, (int)klen);
	if (n <= 0)
		return -EINVAL;
	while (pad < 2 && key_b64[klen - 1 - pad] == '=')
		pad++;
	n -= (int)pad;
	if (n <= 0 ||
	    !HMAC(EVP_sha256(), key, n, (const unsigned char *)sts,
		  strlen(sts), mac, &maclen) || maclen != sizeof(mac)) {
		OPENSSL_cleanse(key, sizeof(key));
		return -EINVAL;
	}
	OPENSSL_cleanse(key, sizeof(key));
	EVP_EncodeBlock((unsigned char *)sig, mac, (int)sizeof(mac));
	return 0;
}
