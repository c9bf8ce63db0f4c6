/*
 * cli_crypt.c - turn a volume's settings (and the user's key file) into
 * the frame configuration its blocks are read and written with.
 *
 * Design note.  The settings say what the volume is ("zstd",
 * "aes-256-gcm" plus the wrapped data key); the key file is the user's
 * part and never stored.  Every command that touches block data (mount,
 * and later gc, fsck, bench) goes through cli_frame_conf, so the messages
 * for a missing or wrong key are the same everywhere.  The environment
 * variable is a fallback for the key path only, never for the secret
 * itself.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "meta/meta.h"
#include "object/crypt.h"
#include "object/frame.h"
#include "util/log.h"

#define KEY_FILE_ENV "TESSERA_ENCRYPT_KEY_FILE"

static int unlock(const struct meta_format *f, const char *key_path,
		  struct frame_conf *out)
{
	int rc;

	if (!key_path || !*key_path) {
		log_error("volume '%s' is encrypted: give --encrypt-key FILE",
			  f->name);
		return -ENOKEY;
	}
	rc = crypt_unwrap_key(key_path, f->key_wrapped, out->key);
	if (rc == -EKEYREJECTED)
		log_error("wrong encryption key for volume '%s'", f->name);
	if (rc < 0)
		return rc;
	out->encrypt = true;
	return 0;
}

int cli_frame_conf(const struct meta_format *f, const char *key_path,
		   struct frame_conf *out)
{
	bool encrypted = strcmp(f->encrypt, "aes-256-gcm") == 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!key_path)
		key_path = getenv(KEY_FILE_ENV);
	if (f->compress[0] && frame_codec_parse(f->compress, &out->codec)) {
		log_error("volume '%s': unknown compression '%s'", f->name,
			  f->compress);
		return -EINVAL;
	}
	if (!encrypted && f->encrypt[0] && strcmp(f->encrypt, "none") != 0) {
		log_error("volume '%s': unknown encryption '%s'", f->name,
			  f->encrypt);
		return -EINVAL;
	}
	if (!encrypted) {
		if (key_path && *key_path)
			log_warn("volume '%s' is not encrypted: ignoring the "
				 "key file '%s'",
				 f->name, key_path);
		return 0;
	}
	rc = unlock(f, key_path, out);
	if (rc < 0)
		explicit_bzero(out, sizeof(*out));
	return rc;
}
