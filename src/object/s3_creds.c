/*
 * s3_creds.c - where the S3 store's credentials come from, in this order:
 * TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY, the file named by
 * TESSERA_S3_CREDENTIALS_FILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (with
 * AWS_SESSION_TOKEN), else none (anonymous requests).
 *
 * The file holds lines "access_key=...", "secret_key=..." and optionally
 * "session_token=..." ('#' comments, blanks ignored) and must be a regular
 * file that no other user can access (mode 0600 or stricter): one that can
 * be is refused, not merely warned about.  Half a pair in the environment
 * is an error rather than a silent fall-through to the next source.  Values
 * are never logged; the secret is wiped from memory on release.
 */
#include "util/common.h"
#include "object/s3_int.h"
#include "util/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define S3_CREDS_FILE_MAX 65536

static char *trim(char *p)
{
	char *e;

	while (*p == ' ' || *p == '\t')
		p++;
	e = p + strlen(p);
	while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return p;
}

static int creds_parse(struct s3_creds *s, char *text, const char *path)
{
	char *save = NULL;

	for (char *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *eq, *name, *val, **dst;

		l = trim(l);
		if (!*l || *l == '#')
			continue;
		eq = strchr(l, '=');
		if (!eq)
			goto bad;
		*eq = '\0';
		name = trim(l);
		val = trim(eq + 1);
		if (strcmp(name, "access_key") == 0)
			dst = &s->access_key;
		else if (strcmp(name, "secret_key") == 0)
			dst = &s->secret_key;
		else if (strcmp(name, "session_token") == 0)
			dst = &s->token;
		else
			goto bad;
		free(*dst);
		*dst = strdup(val);
		if (!*dst)
			return -ENOMEM;
	}
	if (s->access_key && *s->access_key && s->secret_key &&
	    *s->secret_key)
		return 0;
	log_error("credentials file '%s' must set access_key and secret_key",
		  path);
	return -EINVAL;
bad:
	log_error("credentials file '%s': expected lines access_key=..., "
		  "secret_key=... (and optionally session_token=...)", path);
	return -EINVAL;
}

static int creds_file(struct s3_creds *s, const char *path)
{
	char buf[S3_CREDS_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return log_fail(-errno, "cannot read credentials file '%s'",
				path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		log_error("credentials file '%s' is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		log_error("credentials file '%s' is accessible by other users "
			  "(mode %03o): chmod 600 it",
			  path, (unsigned)(st.st_mode & 0777));
		return -EACCES;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	rc = n < 0 ? -errno : 0;
	close(fd);
	if (rc < 0)
		return log_fail(rc, "cannot read credentials file '%s'", path);
	if (n == (ssize_t)sizeof(buf) - 1) {
		log_error("credentials file '%s' is too large", path);
		return -EINVAL;
	}
	buf[n] = '\0';
	rc = creds_parse(s, buf, path);
	memset(buf, 0, sizeof(buf));
	return rc;
}

/* One pair of variables: both set, neither, or an error. */
static int creds_env(struct s3_creds *s, const char *ak_name,
		     const char *sk_name, bool *found)
{
	const char *ak = getenv(ak_name), *sk = getenv(sk_name);

	*found = false;
	if ((!ak || !*ak) && (!sk || !*sk))
		return 0;
	if (!ak || !*ak || !sk || !*sk) {
		log_error("%s is set but %s is not",
			  ak && *ak ? ak_name : sk_name,
			  ak && *ak ? sk_name : ak_name);
		return -EINVAL;
	}
	s->access_key = strdup(ak);
	s->secret_key = strdup(sk);
	if (!s->access_key || !s->secret_key)
		return -ENOMEM;
	*found = true;
	return 0;
}

int s3_creds_load(struct s3_creds *s)
{
	const char *file = getenv("TESSERA_S3_CREDENTIALS_FILE");
	const char *tok;
	bool found;
	int rc;

	rc = creds_env(s, "TESSERA_ACCESS_KEY", "TESSERA_SECRET_KEY", &found);
	if (rc < 0 || found)
		return rc;
	if (file && *file)
		return creds_file(s, file);
	rc = creds_env(s, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", &found);
	tok = getenv("AWS_SESSION_TOKEN");
	if (rc == 0 && found && tok && *tok) {
		s->token = strdup(tok);
		if (!s->token)
			rc = -ENOMEM;
	}
	return rc;
}

void s3_creds_release(struct s3_creds *c)
{
	free(c->access_key);
	if (c->secret_key) {
		memset(c->secret_key, 0, strlen(c->secret_key));
		free(c->secret_key);
	}
	free(c->token);
	memset(c, 0, sizeof(*c));
}
