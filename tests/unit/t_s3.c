/*
 * t_s3.c - the S3 store: SigV4 against AWS's published examples, encoding
 * and XML rules, then behaviour against two servers:
 *
 *  - a fake S3 server in a thread of this process (127.0.0.1, random
 *    port) that verifies every request's signature and payload hash, and
 *    can be told to fail the next N requests (503, 403, reset, hang), so
 *    retries, their bound and error mapping are checked deterministically;
 *  - s3rver at TESSERA_TEST_S3 (default http://127.0.0.1:4568), for keys,
 *    ranges, prefixes, credentials and bucket errors; those tests skip when
 *    it does not answer.  (s3rver checks the access key but not the V4
 *    signature itself: a wrong secret is caught by the fake server only.)
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "object/object.h"
#include "object/s3_int.h"
#include "util/buf.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DATE "20130524T000000Z"

/* ---- SigV4 against the examples of the AWS S3 documentation ------------ */

static void sign_check(const char *method, const char *path, const char *query,
		       const struct s3_pair *h, size_t n, const char *payload,
		       const char *want_sig, const char *want_names)
{
	struct s3_sign_in in = {
		.method = method, .canon_path = path, .canon_query = query,
		.hdrs = h, .nhdrs = n, .payload_hash = payload,
		.amz_date = DATE, .region = "us-east-1",
		.access_key = AK, .secret_key = SK,
	};
	struct buf auth = BUF_INIT;
	char sig[65];

	assert_int_equal(s3_sign(&in, &auth, sig), 0);
	assert_string_equal(sig, want_sig);
	assert_non_null(strstr(auth.data, want_names));
	assert_non_null(strstr(auth.data, "Credential=" AK "/20130524/"
					  "us-east-1/s3/aws4_request"));
	buf_release(&auth);
}

static void test_s3_sign_get_object(void **state)
{
	/* Header names in any case and order: the signer canonicalises. */
	const struct s3_pair h[] = {
		{ "X-Amz-Date", DATE },
		{ "Range", "bytes=0-9" },
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};

	(void)state;
	sign_check("GET", "/test.txt", "", h, ARRAY_SIZE(h), S3_EMPTY_SHA256,
		   "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c60"
		   "36bdb41",
		   "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,");
}

static void test_s3_sign_put_object(void **state)
{
	const char *body = "Welcome to Amazon S3.";
	char sha[65];
	struct buf path = BUF_INIT;
	struct s3_pair h[5] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-date", DATE },
		{ "x-amz-storage-class", "  REDUCED_REDUNDANCY " },
		{ "x-amz-content-sha256", NULL },
	};

	(void)state;
	s3_sha256_hex(body, strlen(body), sha);
	assert_string_equal(sha, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4"
				 "e99e42034a8b803f8b072");
	h[4].value = sha;
	/* '$' is not unreserved: the path is /test%24file.text. */
	assert_int_equal(s3_uri_encode(&path, "/test$file.text", 15, true), 0);
	assert_string_equal(path.data, "/test%24file.text");
	sign_check("PUT", path.data, "", h, ARRAY_SIZE(h), sha,
		   "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0e"
		   "ce108bd",
		   "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
		   "x-amz-storage-class,");
	buf_release(&path);
}

static void test_s3_sign_list_objects(void **state)
{
	/* Given unsorted: the canonical query sorts by name. */
	const struct s3_pair q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct s3_pair h[] = {
		{ "host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-date", DATE },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};
	struct buf query = BUF_INIT;

	(void)state;
	assert_int_equal(s3_canon_query(&query, q, ARRAY_SIZE(q)), 0);
	assert_string_equal(query.data, "max-keys=2&prefix=J");
	sign_check("GET", "/", query.data, h, ARRAY_SIZE(h), S3_EMPTY_SHA256,
		   "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef"
		   "69dc6f7",
		   "SignedHeaders=host;x-amz-content-sha256;x-amz-date,");
	buf_release(&query);
}

static void test_s3_sign_lifecycle(void **state)
{
	/* A parameter without a value is "name=". */
	const struct s3_pair q[] = { { "lifecycle", "" } };
	const struct s3_pair h[] = {
		{ "host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-date", DATE },
		{ "x-amz-content-sha256", S3_EMPTY_SHA256 },
	};
	struct buf query = BUF_INIT;

	(void)state;
	assert_int_equal(s3_canon_query(&query, q, 1), 0);
	assert_string_equal(query.data, "lifecycle=");
	sign_check("GET", "/", query.data, h, ARRAY_SIZE(h), S3_EMPTY_SHA256,
		   "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a013"
		   "6783543",
		   "SignedHeaders=host;x-amz-content-sha256;x-amz-date,");
	buf_release(&query);
}

static void test_s3_sign_depends_on_secret(void **state)
{
	const struct s3_pair h[] = { { "host", "h" }, { "x-amz-date", DATE } };
	struct s3_sign_in in = {
		.method = "GET", .canon_path = "/", .canon_query = "",
		.hdrs = h, .nhdrs = 2, .payload_hash = S3_EMPTY_SHA256,
		.amz_date = DATE, .region = "us-east-1",
		.access_key = AK, .secret_key = SK,
	};
	struct buf a = BUF_INIT;
	char s1[65], s2[65];

	(void)state;
	assert_int_equal(s3_sign(&in, &a, s1), 0);
	in.secret_key = SK "x";
	assert_int_equal(s3_sign(&in, &a, s2), 0);
	assert_string_not_equal(s1, s2);
	/* The secret never appears in the header. */
	assert_null(strstr(a.data, "EXAMPLEKEY"));
	in.amz_date = "2013-05-24";
	assert_int_equal(s3_sign(&in, &a, s2), -EINVAL);
	buf_release(&a);
}

/* ---- encoding and XML ------------------------------------------------- */

static void test_s3_uri_encode(void **state)
{
	struct buf b = BUF_INIT;
	const char *s = "a b!'()*~-._/+=%\xc3\xbc";

	(void)state;
	assert_int_equal(s3_uri_encode(&b, s, strlen(s), false), 0);
	assert_string_equal(b.data,
			    "a%20b%21%27%28%29%2A~-._%2F%2B%3D%25%C3%BC");
	buf_reset(&b);
	assert_int_equal(s3_uri_encode(&b, s, strlen(s), true), 0);
	assert_string_equal(b.data, "a%20b%21%27%28%29%2A~-._/%2B%3D%25%C3%BC");
	buf_release(&b);
}

static void test_s3_canon_query(void **state)
{
	const struct s3_pair q[] = {
		{ "versionId", "a+b/c=" },
		{ "list-type", "2" },
		{ "prefix", "files/a b&c" },
		{ "continuation-token",
		  "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=" },
	};
	struct buf b = BUF_INIT;

	(void)state;
	assert_int_equal(s3_canon_query(&b, q, ARRAY_SIZE(q)), 0);
	assert_string_equal(b.data,
			    "continuation-token=1ueGcxLPRx1Tr%2FXYExHnhbYLgveD"
			    "s2J%2Fwm36Hy4vbOwM%3D&list-type=2&prefix=files%2F"
			    "a%20b%26c&versionId=a%2Bb%2Fc%3D");
	buf_release(&b);
}

static void test_s3_xml_text(void **state)
{
	struct buf b = BUF_INIT;
	const char *t = "a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; "
			"&#65;&#x42;&#233;&#x65E5;&#x1F600;";

	(void)state;
	assert_int_equal(s3_xml_text(&b, t, strlen(t)), 0);
	assert_string_equal(b.data, "a & b <c> \"d\" 'e' AB\xc3\xa9\xe6\x97\xa5"
				    "\xf0\x9f\x98\x80");
	buf_reset(&b);
	assert_int_equal(s3_xml_text(&b, "&bogus;", 7), -EINVAL);
	buf_reset(&b);
	assert_int_equal(s3_xml_text(&b, "a & b", 5), -EINVAL);
	buf_reset(&b);
	assert_int_equal(s3_xml_text(&b, "&#0;", 4), -EINVAL);
	buf_reset(&b);
	assert_int_equal(s3_xml_text(&b, "&#xD800;", 8), -EINVAL);
	buf_release(&b);
}

static void test_s3_iso8601(void **state)
{
	int64_t ns;
	const char *t = "2013-09-17T18:07:53.250Z";

	(void)state;
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), 0);
	assert_true(ns == 1379441273LL * 1000000000 + 250000000);
	t = "1970-01-01T00:00:01Z";
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), 0);
	assert_true(ns == 1000000000LL);
	t = "2013-13-17T18:07:53Z";
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), -EINVAL);
	t = "2013-09-17 18:07:53Z";
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), -EINVAL);
	/* Outside int64 nanoseconds: refused, not overflowed (fuzz_s3_xml) */
	t = "2262-04-11T00:00:00Z";
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), 0);
	assert_true(ns == 9223286400LL * 1000000000);
	t = "9999-12-31T23:59:59Z";
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), -EINVAL);
	t = "0000-01-01T00:00:00Z";
	assert_int_equal(s3_parse_iso8601(t, strlen(t), &ns), -EINVAL);
}

static void test_s3_parse_list(void **state)
{
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/"
		"2006-03-01/\"><Name>b</Name><Prefix>p/</Prefix>"
		"<KeyCount>4</KeyCount><MaxKeys>4</MaxKeys>"
		"<IsTruncated>true</IsTruncated>"
		"<Contents><Key>p/a &amp; b</Key>"
		"<LastModified>2013-09-17T18:07:53.000Z</LastModified>"
		"<ETag>&quot;x&quot;</ETag><Size>12</Size></Contents>"
		"<Contents><Key>p/&lt;x&gt;/\xc3\xbc &#x41;</Key><Size>0</Size>"
		"</Contents>"
		"<Contents><Key>other/k</Key><Size>1</Size></Contents>"
		"<Contents><Key>p/big</Key><Size>5000000000</Size></Contents>"
		"<NextContinuationToken>tok+/=&amp;</NextContinuationToken>"
		"</ListBucketResult>";
	struct obj_list l;

	(void)state;
	obj_list_init(&l);
	assert_int_equal(s3_parse_list(xml, strlen(xml), "p/", &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.items[0].key, "a & b");
	assert_int_equal(l.items[0].size, 12);
	assert_true(l.items[0].mtime_ns == 1379441273LL * 1000000000);
	assert_string_equal(l.items[1].key, "<x>/\xc3\xbc A");
	assert_int_equal(l.items[1].size, 0);
	assert_string_equal(l.items[2].key, "big");
	assert_true(l.items[2].size == 5000000000ULL);
	assert_true(l.truncated);
	assert_string_equal(l.next_token, "tok+/=&");
	/* Not a listing at all. */
	assert_int_equal(s3_parse_list("<Error/>", 8, "", &l), -EIO);
	/* A key with a broken entity. */
	xml = "<ListBucketResult><Contents><Key>a &bad; b</Key></Contents>"
	      "</ListBucketResult>";
	assert_int_equal(s3_parse_list(xml, strlen(xml), "", &l), -EIO);
	/* A negative or signed size is not wrapped to 2^64 - 1 (fuzz). */
	xml = "<ListBucketResult><Contents><Key>a</Key><Size>-1</Size>"
	      "</Contents></ListBucketResult>";
	assert_int_equal(s3_parse_list(xml, strlen(xml), "", &l), -EIO);
	xml = "<ListBucketResult><Contents><Key>a</Key><Size> +1</Size>"
	      "</Contents></ListBucketResult>";
	assert_int_equal(s3_parse_list(xml, strlen(xml), "", &l), -EIO);
	/* Empty, not truncated. */
	xml = "<ListBucketResult><IsTruncated>false</IsTruncated>"
	      "</ListBucketResult>";
	assert_int_equal(s3_parse_list(xml, strlen(xml), "", &l), 0);
	assert_int_equal(l.n, 0);
	assert_false(l.truncated);
	assert_null(l.next_token);
	obj_list_release(&l);
}

/* ---- capturing the one error line ------------------------------------- */

static int g_saved_fd = -1;
static char g_cap_path[64];

static void cap_begin(void)
{
	int fd;

	snprintf(g_cap_path, sizeof(g_cap_path), "/tmp/t_s3-log-XXXXXX");
	fd = mkstemp(g_cap_path);
	assert_true(fd >= 0);
	g_saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Stop capturing; returns what was logged (caller frees). */
static char *cap_end(void)
{
	char *s = calloc(1, 8192);
	int fd;
	ssize_t n;

	dup2(g_saved_fd, 2);
	close(g_saved_fd);
	fd = open(g_cap_path, O_RDONLY);
	n = read(fd, s, 8191);
	close(fd);
	unlink(g_cap_path);
	s[n > 0 ? n : 0] = '\0';
	return s;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not found in '%s'", needle, hay);
}

static void short_timeouts(void)
{
	setenv("TESSERA_S3_RETRIES", "2", 1);
	setenv("TESSERA_S3_TIMEOUT_MS", "3000", 1);
	setenv("TESSERA_S3_CONNECT_TIMEOUT_MS", "1000", 1);
}

/* ---- the fake S3 server ------------------------------------------------ */

enum fake_fail {
	FAIL_503,   /* 503 SlowDown */
	FAIL_500,   /* 500 InternalError */
	FAIL_403,   /* 403 AccessDenied: not retried */
	FAIL_CLOSE, /* close the connection without an answer */
	FAIL_HANG,  /* never answer (until the client gives up) */
	FAIL_SHORT, /* announce more body than sent, then close */
};

struct fake {
	int lfd;
	int port;
	pthread_t th;
	atomic_bool stop;
	pthread_mutex_t lock;
	int fail_next;         /* guarded by lock */
	enum fake_fail mode;   /* guarded by lock */
	int nreq;              /* guarded by lock */
	int bad_sig;           /* guarded by lock */
	char last_target[4096]; /* guarded by lock */
	struct buf object;     /* guarded by lock: the last PUT body */
};

struct http_req {
	char method[16];
	char target[4096];
	struct s3_pair hdr[40];
	size_t nhdr;
	char *head;            /* owns the header strings */
	char *body;
	size_t body_len;
};

static const char *req_hdr(const struct http_req *r, const char *name)
{
	for (size_t i = 0; i < r->nhdr; i++)
		if (strcasecmp(r->hdr[i].name, name) == 0)
			return r->hdr[i].value;
	return NULL;
}

/* Read one request; false on EOF or garbage. */
static bool read_req(int fd, struct http_req *r)
{
	struct buf in = BUF_INIT;
	char chunk[4096], *end = NULL, *line, *save = NULL;
	const char *cl;
	size_t hlen, want;

	memset(r, 0, sizeof(*r));
	while (!end) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n <= 0 || buf_append(&in, chunk, (size_t)n) < 0) {
			buf_release(&in);
			return false;
		}
		end = strstr(in.data, "\r\n\r\n");
	}
	hlen = (size_t)(end - in.data) + 4;
	*end = '\0';
	line = strtok_r(in.data, "\r\n", &save);
	if (!line || sscanf(line, "%15s %4095s", r->method, r->target) != 2) {
		buf_release(&in);
		return false;
	}
	while ((line = strtok_r(NULL, "\r\n", &save)) && r->nhdr < 40) {
		char *c = strchr(line, ':');

		if (!c)
			continue;
		*c++ = '\0';
		while (*c == ' ')
			c++;
		r->hdr[r->nhdr++] = (struct s3_pair){ line, c };
	}
	cl = req_hdr(r, "Content-Length");
	want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
	r->body = malloc(want + 1);
	r->body_len = MIN(want, in.len - hlen);
	memcpy(r->body, in.data + hlen, r->body_len);
	while (r->body_len < want) {
		ssize_t n = read(fd, r->body + r->body_len, want - r->body_len);

		if (n <= 0)
			break;
		r->body_len += (size_t)n;
	}
	r->head = buf_detach(&in, NULL);
	return r->body_len == want;
}

static void free_req(struct http_req *r)
{
	free(r->head);
	free(r->body);
}

/* Recompute the signature from what arrived; true when it matches. */
static bool sig_ok(const struct http_req *r, const char *secret)
{
	const char *auth = req_hdr(r, "Authorization");
	const char *sha = req_hdr(r, "x-amz-content-sha256");
	const char *date = req_hdr(r, "x-amz-date");
	char names[512], sig[65], got[65], body_sha[65], path[4096], ak[64];
	char region[64], *q, *save = NULL;
	struct s3_pair h[16];
	struct buf out = BUF_INIT;
	size_t n = 0;

	if (!auth || !sha || !date ||
	    sscanf(auth, "AWS4-HMAC-SHA256 Credential=%63[^/]/%*8s/%63[^/]/"
			 "s3/aws4_request, SignedHeaders=%511[^,], "
			 "Signature=%64s",
		   ak, region, names, sig) != 4)
		return false;
	s3_sha256_hex(r->body, r->body_len, body_sha);
	if (strcmp(body_sha, sha) != 0)
		return false;
	for (char *t = strtok_r(names, ";", &save); t && n < 16;
	     t = strtok_r(NULL, ";", &save)) {
		const char *v = req_hdr(r, t);

		if (!v)
			return false;
		h[n++] = (struct s3_pair){ t, v };
	}
	snprintf(path, sizeof(path), "%s", r->target);
	q = strchr(path, '?');
	if (q)
		*q++ = '\0';
	struct s3_sign_in in = {
		.method = r->method, .canon_path = path,
		.canon_query = q ? q : "", .hdrs = h, .nhdrs = n,
		.payload_hash = sha, .amz_date = date, .region = region,
		.access_key = ak, .secret_key = secret,
	};
	if (s3_sign(&in, &out, got) < 0) {
		buf_release(&out);
		return false;
	}
	buf_release(&out);
	return strcmp(got, sig) == 0;
}

static void respond(int fd, int status, const char *reason,
		    const char *body, size_t len, const char *extra)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n",
			 status, reason, len, extra ? extra : "");

	if (write(fd, head, (size_t)n) < 0 ||
	    (len && write(fd, body, len) < 0))
		return;
}

static void respond_err(int fd, int status, const char *reason,
			const char *code)
{
	char body[256];
	int n = snprintf(body, sizeof(body),
			 "<?xml version=\"1.0\"?><Error><Code>%s</Code>"
			 "<Message>m</Message></Error>",
			 code);

	respond(fd, status, reason, body, (size_t)n, NULL);
}

/* Injected failure for this request, if one is due. */
static bool fake_fail(struct fake *f, int fd)
{
	enum fake_fail mode;
	bool fail;
	struct pollfd p = { fd, POLLIN, 0 };
	char c;

	pthread_mutex_lock(&f->lock);
	fail = f->fail_next > 0;
	if (fail)
		f->fail_next--;
	mode = f->mode;
	pthread_mutex_unlock(&f->lock);
	if (!fail)
		return false;
	switch (mode) {
	case FAIL_503:
		respond_err(fd, 503, "Slow Down", "SlowDown");
		break;
	case FAIL_500:
		respond_err(fd, 500, "Internal Error", "InternalError");
		break;
	case FAIL_403:
		respond_err(fd, 403, "Forbidden", "AccessDenied");
		break;
	case FAIL_CLOSE:
		break;
	case FAIL_HANG:
		/* Until the client hangs up (or 10 s). */
		if (poll(&p, 1, 10000) > 0 && read(fd, &c, 1) < 0)
			break;
		break;
	case FAIL_SHORT: {
		static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 5"
					  "\r\nConnection: close\r\n\r\nhel";

		if (write(fd, cut, sizeof(cut) - 1) < 0)
			break;
		break;
	}
	}
	return true;
}

static void fake_answer(struct fake *f, int fd, const struct http_req *r)
{
	static const char list[] =
		"<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>false"
		"</IsTruncated></ListBucketResult>";
	char extra[128];
	int n;

	if (strcmp(r->method, "GET") == 0 && strstr(r->target, "list-type=2")) {
		respond(fd, 200, "OK", list, strlen(list), NULL);
	} else if (strcmp(r->method, "PUT") == 0) {
		pthread_mutex_lock(&f->lock);
		buf_reset(&f->object);
		buf_append(&f->object, r->body, r->body_len);
		pthread_mutex_unlock(&f->lock);
		respond(fd, 200, "OK", "", 0, NULL);
	} else if (strcmp(r->method, "GET") == 0) {
		pthread_mutex_lock(&f->lock);
		respond(fd, 200, "OK", f->object.data ? f->object.data : "",
			f->object.len, NULL);
		pthread_mutex_unlock(&f->lock);
	} else if (strcmp(r->method, "HEAD") == 0) {
		pthread_mutex_lock(&f->lock);
		n = snprintf(extra, sizeof(extra),
			     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
			     "Connection: close\r\n\r\n",
			     f->object.len);
		pthread_mutex_unlock(&f->lock);
		if (write(fd, extra, (size_t)n) < 0)
			return;
	} else {
		respond(fd, 204, "No Content", "", 0, NULL);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	while (!atomic_load(&f->stop)) {
		struct pollfd p = { f->lfd, POLLIN, 0 };
		struct http_req r;
		int fd;

		if (poll(&p, 1, 50) <= 0)
			continue;
		fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (read_req(fd, &r)) {
			bool ok = sig_ok(&r, "fake-secret");

			pthread_mutex_lock(&f->lock);
			f->nreq++;
			f->bad_sig += !ok;
			snprintf(f->last_target, sizeof(f->last_target), "%s",
				 r.target);
			pthread_mutex_unlock(&f->lock);
			if (!ok)
				respond_err(fd, 403, "Forbidden",
					    "SignatureDoesNotMatch");
			else if (!fake_fail(f, fd))
				fake_answer(f, fd, &r);
		}
		free_req(&r);
		close(fd);
	}
	return NULL;
}

static struct fake *fake_start(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	assert_non_null(f);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &alen), 0);
	f->port = ntohs(a.sin_port);
	pthread_mutex_init(&f->lock, NULL);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

static void fake_stop(struct fake *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->th, NULL);
	close(f->lfd);
	buf_release(&f->object);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static void fake_arm(struct fake *f, enum fake_fail mode, int n)
{
	pthread_mutex_lock(&f->lock);
	f->mode = mode;
	f->fail_next = n;
	pthread_mutex_unlock(&f->lock);
}

static int fake_count(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->nreq;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* A fake server and a store opened on it, as the test state. */
struct fx {
	struct fake *f;
	struct obj_store *s;
};

static int fake_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	char url[128];

	if (!x)
		return -1;
	x->f = fake_start();
	setenv("TESSERA_ACCESS_KEY", "fake-key", 1);
	setenv("TESSERA_SECRET_KEY", "fake-secret", 1);
	short_timeouts();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/bkt/pfx", x->f->port);
	if (obj_s3_open(url, 0, &x->s) != 0) {
		fake_stop(x->f);
		free(x);
		return -1;
	}
	*state = x;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fx *x = *state;

	obj_close(x->s);
	fake_stop(x->f);
	free(x);
	return 0;
}

static void fake_target(struct fake *f, char *out, size_t n)
{
	pthread_mutex_lock(&f->lock);
	snprintf(out, n, "%s", f->last_target);
	pthread_mutex_unlock(&f->lock);
}

static int fake_bad_sigs(struct fake *f)
{
	int n;

	pthread_mutex_lock(&f->lock);
	n = f->bad_sig;
	pthread_mutex_unlock(&f->lock);
	return n;
}

static void test_s3_fake_signed(void **state)
{
	struct fx *x = *state;
	const char *key = "dir/a b+\xc3\xbc%~";
	struct buf b = BUF_INIT;
	struct obj_info info;
	char target[4096];
	int n0 = fake_count(x->f), bad0 = fake_bad_sigs(x->f);

	assert_int_equal(obj_put(x->s, key, "hello", 5), 0);
	fake_target(x->f, target, sizeof(target));
	/* The URL prefix is prepended; the key is encoded once, '/' kept. */
	assert_string_equal(target, "/bkt/pfx/dir/a%20b%2B%C3%BC%25~");
	assert_int_equal(obj_get(x->s, key, 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "hello", 5);
	assert_int_equal(obj_head(x->s, key, &info), 0);
	assert_int_equal(info.size, 5);
	assert_int_equal(obj_del(x->s, key), 0);
	/* Every request carried a signature and payload hash that verify. */
	assert_int_equal(fake_count(x->f) - n0, 4);
	assert_int_equal(fake_bad_sigs(x->f), bad0);
	/* Bad keys never reach the wire. */
	assert_int_equal(obj_put(x->s, "/abs", "x", 1), -EINVAL);
	assert_int_equal(obj_put(x->s, "a/../b", "x", 1), -EINVAL);
	assert_int_equal(fake_count(x->f) - n0, 4);
	buf_release(&b);
}

static void test_s3_fake_retry_503(void **state)
{
	struct fx *x = *state;
	int n0 = fake_count(x->f);

	fake_arm(x->f, FAIL_503, 2);
	assert_int_equal(obj_put(x->s, "k", "abc", 3), 0);
	assert_int_equal(fake_count(x->f) - n0, 3);
	fake_arm(x->f, FAIL_500, 1);
	assert_int_equal(obj_del(x->s, "k"), 0);
	assert_int_equal(fake_count(x->f) - n0, 5);
}

static void test_s3_fake_retry_exhausted(void **state)
{
	struct fx *x = *state;
	int n0 = fake_count(x->f);
	struct obj_state st;
	char *log, *first;
	char want[160];

	fake_arm(x->f, FAIL_503, 100);
	cap_begin();
	assert_int_equal(obj_put(x->s, "k", "abc", 3), -EIO);
	assert_int_equal(obj_put(x->s, "k", "abc", 3), -EIO);
	log = cap_end();
	fake_arm(x->f, FAIL_503, 0);
	/* TESSERA_S3_RETRIES=2: three tries each. */
	assert_int_equal(fake_count(x->f) - n0, 6);
	/* The store is down: one line with the reason, none per request. */
	snprintf(want, sizeof(want),
		 "object store 'http://127.0.0.1:%d/"
		 "bkt/pfx' is unreachable: HTTP 503 SlowDown (after 3 tries)",
		 x->f->port);
	assert_contains(log, want);
	first = strstr(log, "unreachable");
	assert_null(strstr(first + 1, "unreachable"));
	assert_null(strstr(log, "cannot put"));
	free(log);
	obj_state(x->s, &st);
	assert_true(st.down);
	assert_int_equal(st.outages, 1);
	assert_contains(st.why, "HTTP 503 SlowDown");
	/* Any answer ends the outage, said once. */
	cap_begin();
	assert_int_equal(obj_put(x->s, "k", "abc", 3), 0);
	assert_int_equal(obj_put(x->s, "k", "abc", 3), 0);
	log = cap_end();
	snprintf(want, sizeof(want),
		 "object store 'http://127.0.0.1:%d/"
		 "bkt/pfx' answers again (down for ",
		 x->f->port);
	assert_contains(log, want);
	assert_null(strstr(strstr(log, "answers") + 1, "answers"));
	free(log);
	obj_state(x->s, &st);
	assert_false(st.down);
	assert_int_equal(st.outages, 1);
	assert_string_equal(st.why, "");
}

/*
 * OBJ_OPEN_OFFLINE: a store that answers only 503 at open is opened
 * down, silently; one that answers 403 is refused all the same.
 */
static void test_s3_fake_offline_open(void **state)
{
	struct fx *x = *state;
	struct obj_store *s = NULL;
	struct obj_state st;
	char url[128], *log;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/bkt", x->f->port);
	fake_arm(x->f, FAIL_403, 1);
	cap_begin();
	assert_int_equal(obj_s3_open(url, OBJ_OPEN_OFFLINE, &s), -EACCES);
	log = cap_end();
	assert_null(s);
	assert_contains(log, "access denied");
	free(log);
	fake_arm(x->f, FAIL_503, 100);
	cap_begin();
	assert_int_equal(obj_s3_open(url, 0, &s), -EIO);
	assert_null(s);
	assert_int_equal(obj_s3_open(url, OBJ_OPEN_OFFLINE, &s), 0);
	log = cap_end();
	/* one line: the plain open's refusal; the offline one is silent */
	assert_contains(log, "cannot open storage");
	assert_null(strchr(strchr(log, '\n') + 1, '\n'));
	free(log);
	obj_state(s, &st);
	assert_true(st.down);
	assert_int_equal(st.outages, 1);
	assert_contains(st.why, "HTTP 503");
	fake_arm(x->f, FAIL_503, 0);
	cap_begin();
	assert_int_equal(obj_put(s, "k", "abc", 3), 0);
	log = cap_end();
	assert_contains(log, "answers again");
	free(log);
	obj_state(s, &st);
	assert_false(st.down);
	obj_close(s);
}

static void test_s3_fake_reset_and_short(void **state)
{
	struct fx *x = *state;
	struct buf b = BUF_INIT;
	int n0;

	assert_int_equal(obj_put(x->s, "k", "hello", 5), 0);
	n0 = fake_count(x->f);
	fake_arm(x->f, FAIL_CLOSE, 2);
	assert_int_equal(obj_get(x->s, "k", 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, 5);
	assert_int_equal(fake_count(x->f) - n0, 3);
	/* A body cut short is retried, never returned. */
	fake_arm(x->f, FAIL_SHORT, 1);
	assert_int_equal(obj_get(x->s, "k", 0, OBJ_TO_END, &b), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "hello", 5);
	assert_int_equal(fake_count(x->f) - n0, 5);
	buf_release(&b);
}

static void test_s3_fake_not_retried(void **state)
{
	struct fx *x = *state;
	int n0 = fake_count(x->f);
	char *log;

	fake_arm(x->f, FAIL_403, 1);
	cap_begin();
	assert_int_equal(obj_put(x->s, "k", "abc", 3), -EACCES);
	log = cap_end();
	assert_int_equal(fake_count(x->f) - n0, 1);
	assert_contains(log, "access denied");
	free(log);
}

static void test_s3_fake_timeout(void **state)
{
	struct fx *x = *state;
	struct obj_store *s = NULL;
	struct buf b = BUF_INIT;
	char url[128], *log;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/bkt", x->f->port);
	setenv("TESSERA_S3_TIMEOUT_MS", "700", 1);
	setenv("TESSERA_S3_RETRIES", "5", 1);
	assert_int_equal(obj_s3_open(url, 0, &s), 0);
	short_timeouts();
	fake_arm(x->f, FAIL_HANG, 100);
	cap_begin();
	assert_int_equal(obj_get(s, "k", 0, OBJ_TO_END, &b), -EIO);
	log = cap_end();
	fake_arm(x->f, FAIL_HANG, 0);
	assert_contains(log, "timed out");
	free(log);
	obj_close(s);
	buf_release(&b);
}

static void test_s3_fake_wrong_secret(void **state)
{
	struct fx *x = *state;
	struct obj_store *s = NULL;
	char url[128], *log, want[300];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/bkt", x->f->port);
	setenv("TESSERA_SECRET_KEY", "not-the-secret", 1);
	cap_begin();
	assert_int_equal(obj_s3_open(url, 0, &s), -EACCES);
	log = cap_end();
	setenv("TESSERA_SECRET_KEY", "fake-secret", 1);
	assert_null(s);
	snprintf(want, sizeof(want), "cannot open storage '%s': access denied "
		 "(check TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY)", url);
	assert_contains(log, want);
	/* The secret is never logged. */
	assert_null(strstr(log, "not-the-secret"));
	free(log);
}

/* AWS_CA_BUNDLE is for TLS: a bad one must not break a plain http store. */
static void test_s3_fake_ca_bundle_http(void **state)
{
	struct fx *x = *state;
	struct obj_store *s = NULL;
	const char *old = getenv("AWS_CA_BUNDLE");
	char *saved = old ? strdup(old) : NULL;
	char url[128];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/bkt", x->f->port);
	setenv("AWS_CA_BUNDLE", "/nonexistent/ca-bundle.pem", 1);
	assert_int_equal(obj_s3_open(url, 0, &s), 0);
	assert_int_equal(obj_put(s, "k", "v", 1), 0);
	obj_close(s);
	if (saved)
		setenv("AWS_CA_BUNDLE", saved, 1);
	else
		unsetenv("AWS_CA_BUNDLE");
	free(saved);
}

/* ---- errors without any server ---------------------------------------- */

static void open_fails(const char *url, int want_rc, const char *want_msg)
{
	struct obj_store *s = NULL;
	char *log;

	cap_begin();
	assert_int_equal(obj_open(url, false, &s), want_rc);
	log = cap_end();
	assert_null(s);
	assert_contains(log, want_msg);
	free(log);
}

static void test_s3_refused(void **state)
{
	(void)state;
	short_timeouts();
	open_fails("http://127.0.0.1:1/b", -EIO,
		   "cannot open storage 'http://127.0.0.1:1/b': cannot "
		   "connect: connection refused");
}

/* Nothing listens: opened down with OBJ_OPEN_OFFLINE; requests -EIO. */
static void test_s3_refused_offline(void **state)
{
	struct obj_store *s = NULL;
	struct obj_state st;
	struct buf b = BUF_INIT;
	char *log;

	(void)state;
	short_timeouts();
	cap_begin();
	assert_int_equal(
		obj_open_flags("http://127.0.0.1:1/b", OBJ_OPEN_OFFLINE, &s),
		0);
	assert_int_equal(obj_get(s, "k", 0, OBJ_TO_END, &b), -EIO);
	log = cap_end();
	assert_string_equal(log, ""); /* the opener says it, once */
	free(log);
	obj_state(s, &st);
	assert_true(st.down);
	assert_contains(st.why, "connection refused");
	obj_close(s);
	buf_release(&b);
	/* A host that does not resolve is a wrong URL: refused. */
	cap_begin();
	assert_int_equal(obj_open_flags("http://no-such-host.invalid:4568/b",
					OBJ_OPEN_OFFLINE, &s),
			 -EIO);
	log = cap_end();
	assert_contains(log, "cannot resolve host");
	free(log);
}

static void test_s3_unresolvable(void **state)
{
	(void)state;
	short_timeouts();
	open_fails("http://no-such-host.invalid:4568/b", -EIO,
		   "cannot resolve host 'no-such-host.invalid'");
}

static void test_s3_bad_urls(void **state)
{
	(void)state;
	open_fails("http://127.0.0.1:4568/", -EINVAL, "missing bucket");
	open_fails("s3://bucket:99/x", -EINVAL, "take no port");
	open_fails("http://127.0.0.1:1/b?x=1", -EINVAL, "unknown query");
	open_fails("http://127.0.0.1:1/b%zz", -EINVAL, "percent-escape");
	open_fails("http://127.0.0.1:1/b*d", -EINVAL, "bad bucket name");
	open_fails("s3://Bad_Bucket", -EINVAL, "bad bucket name");
	open_fails("http://user:pw@127.0.0.1:1/b", -EINVAL,
		   "credentials are not allowed");
}

/* ---- against s3rver --------------------------------------------------- */

static char g_s3[256];

static bool s3rver_up(void)
{
	const char *u = getenv("TESSERA_TEST_S3");
	const char *k = getenv("TESSERA_TEST_S3_KEY");
	const char *sk = getenv("TESSERA_TEST_S3_SECRET");
	struct sockaddr_in a = { .sin_family = AF_INET };
	int port = 4568, fd, rc;

	snprintf(g_s3, sizeof(g_s3), "%s",
		 u && *u ? u : "http://127.0.0.1:4568");
	if (strncmp(g_s3, "http://127.0.0.1:", 17) == 0)
		port = atoi(g_s3 + 17);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	setenv("TESSERA_ACCESS_KEY", k && *k ? k : "S3RVER", 1);
	setenv("TESSERA_SECRET_KEY", sk && *sk ? sk : "S3RVER", 1);
	unsetenv("TESSERA_S3_CREDENTIALS_FILE");
	short_timeouts();
	return rc == 0;
}

static struct obj_store *s3rver_open(const char *path)
{
	struct obj_store *s = NULL;
	char url[512];

	snprintf(url, sizeof(url), "%s%s", g_s3, path);
	assert_int_equal(obj_open(url, true, &s), 0);
	return s;
}

static void test_s3_server_keys(void **state)
{
	static const char *keys[] = {
		"a b", "pct%41", "plus+eq=&semi;", "x<y>'\"",
		"\xc3\xbc/\xe6\x97\xa5",
	};
	struct obj_store *s, *root;
	struct obj_list l;
	struct buf b = BUF_INIT;
	char path[128], pfx[128];

	(void)state;
	if (!s3rver_up())
		skip();
	/* A prefix with a space and a non-ASCII letter, given escaped. */
	snprintf(path, sizeof(path), "/tessera-test/ts3%%20%%C3%%BC-%d/",
		 (int)getpid());
	snprintf(pfx, sizeof(pfx), "ts3 \xc3\xbc-%d/", (int)getpid());
	s = s3rver_open(path);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		assert_int_equal(obj_put(s, keys[i], keys[i], strlen(keys[i])),
				 0);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		assert_int_equal(obj_get(s, keys[i], 0, OBJ_TO_END, &b), 0);
		assert_int_equal(b.len, strlen(keys[i]));
		assert_memory_equal(b.data, keys[i], b.len);
	}
	obj_list_init(&l);
	assert_int_equal(obj_list(s, "", NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, ARRAY_SIZE(keys));
	for (size_t i = 0; i < l.n; i++) {
		assert_string_equal(l.items[i].key, keys[i]);
		assert_int_equal(l.items[i].size, strlen(keys[i]));
		assert_true(l.items[i].mtime_ns > 0);
	}
	/* Seen from the bucket root, the keys carry the prefix. */
	root = s3rver_open("/tessera-test");
	assert_int_equal(obj_list(root, pfx, NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, ARRAY_SIZE(keys));
	assert_int_equal(strncmp(l.items[0].key, pfx, strlen(pfx)), 0);
	assert_string_equal(l.items[0].key + strlen(pfx), keys[0]);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		assert_int_equal(obj_del(s, keys[i]), 0);
	assert_int_equal(obj_list(root, pfx, NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, 0);
	obj_list_release(&l);
	obj_close(root);
	obj_close(s);
	buf_release(&b);
}

static void get_expect(struct obj_store *s, const char *key, uint64_t off,
		       uint64_t len, const char *want)
{
	struct buf b = BUF_INIT;

	assert_int_equal(buf_append(&b, "stale", 5), 0);
	assert_int_equal(obj_get(s, key, off, len, &b), 0);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	buf_release(&b);
}

static void test_s3_server_range(void **state)
{
	struct obj_store *s;
	struct obj_info info;
	struct buf b = BUF_INIT;
	char path[128];

	(void)state;
	if (!s3rver_up())
		skip();
	snprintf(path, sizeof(path), "/tessera-test/ts3-range-%d",
		 (int)getpid());
	s = s3rver_open(path);
	assert_int_equal(obj_put(s, "d", "0123456789", 10), 0);
	get_expect(s, "d", 0, 1, "0");  /* bytes=0-0 */
	get_expect(s, "d", 9, 5, "9");
	get_expect(s, "d", 3, 4, "3456");
	get_expect(s, "d", 4, OBJ_TO_END, "456789");
	get_expect(s, "d", 10, 1, "");  /* 416 */
	get_expect(s, "d", 100, OBJ_TO_END, "");
	get_expect(s, "d", 3, 0, "");
	assert_int_equal(obj_head(s, "d", &info), 0);
	assert_int_equal(info.size, 10);
	assert_int_equal(obj_put(s, "e", "", 0), 0);
	get_expect(s, "e", 0, OBJ_TO_END, "");
	get_expect(s, "e", 0, 1, "");
	assert_int_equal(obj_get(s, "nope", 0, OBJ_TO_END, &b), -ENOENT);
	assert_int_equal(obj_get(s, "nope", 0, 0, &b), -ENOENT);
	assert_int_equal(obj_head(s, "nope", &info), -ENOENT);
	assert_int_equal(obj_del(s, "nope"), 0);
	assert_int_equal(obj_del(s, "d"), 0);
	assert_int_equal(obj_del(s, "e"), 0);
	obj_close(s);
	buf_release(&b);
}

static void test_s3_server_denied(void **state)
{
	char url[300], want[400];

	(void)state;
	if (!s3rver_up())
		skip();
	snprintf(url, sizeof(url), "%s/tessera-test", g_s3);
	setenv("TESSERA_ACCESS_KEY", "NOBODY", 1);
	setenv("TESSERA_SECRET_KEY", "WRONG", 1);
	snprintf(want, sizeof(want), "cannot open storage '%s': access denied "
		 "(check TESSERA_ACCESS_KEY/TESSERA_SECRET_KEY)", url);
	open_fails(url, -EACCES, want);
}

static void test_s3_server_missing_bucket(void **state)
{
	struct obj_store *s = NULL;
	char url[300], want[400];

	(void)state;
	if (!s3rver_up())
		skip();
	snprintf(url, sizeof(url), "%s/tessera-missing-%d-%ld", g_s3,
		 (int)getpid(), (long)time(NULL));
	snprintf(want, sizeof(want), "cannot open storage '%s': bucket does "
		 "not exist", url);
	open_fails(url, -ENOENT, want);
	/* With create it is made, and then opens without. */
	snprintf(url, sizeof(url), "%s/tessera-t-s3-created", g_s3);
	assert_int_equal(obj_open(url, true, &s), 0);
	obj_close(s);
	assert_int_equal(obj_open(url, false, &s), 0);
	obj_close(s);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_s3_server_creds_file(void **state)
{
	char dir[] = "/tmp/t_s3-creds-XXXXXX", file[64], url[300], text[256];
	const char *k = getenv("TESSERA_ACCESS_KEY");
	struct obj_store *s = NULL;

	(void)state;
	if (!s3rver_up())
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/creds", dir);
	snprintf(url, sizeof(url), "%s/tessera-test", g_s3);
	snprintf(text, sizeof(text), "# test\naccess_key = %s\nsecret_key=%s\n",
		 k, getenv("TESSERA_SECRET_KEY"));
	unsetenv("TESSERA_ACCESS_KEY");
	unsetenv("TESSERA_SECRET_KEY");
	setenv("TESSERA_S3_CREDENTIALS_FILE", file, 1);
	write_file(file, text, 0644);
	open_fails(url, -EACCES, "chmod 600");
	chmod(file, 0600);
	assert_int_equal(obj_open(url, false, &s), 0);
	obj_close(s);
	write_file(file, "access_key=x\n", 0600);
	open_fails(url, -EINVAL, "must set access_key and secret_key");
	write_file(file, "password=x\n", 0600);
	open_fails(url, -EINVAL, "expected lines");
	unlink(file);
	open_fails(url, -ENOENT, "cannot read credentials file");
	rmdir(dir);
	unsetenv("TESSERA_S3_CREDENTIALS_FILE");
	/* Half a pair in the environment is an error, not anonymous. */
	setenv("TESSERA_ACCESS_KEY", "x", 1);
	open_fails(url, -EINVAL, "TESSERA_ACCESS_KEY is set but "
		   "TESSERA_SECRET_KEY is not");
	s3rver_up();
}

struct thr_arg {
	struct obj_store *s;
	int id;
	int bad;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	struct buf b = BUF_INIT;
	char key[64], val[256];

	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "t%d/k%d", a->id, i);
		memset(val, 'a' + (a->id + i) % 26, sizeof(val));
		memcpy(val, key, strlen(key));
		if (obj_put(a->s, key, val, sizeof(val)) != 0 ||
		    obj_get(a->s, key, 0, OBJ_TO_END, &b) != 0 ||
		    b.len != sizeof(val) || memcmp(b.data, val, b.len) != 0 ||
		    obj_del(a->s, key) != 0)
			a->bad++;
	}
	buf_release(&b);
	return NULL;
}

/* One store, many threads: the handle pool hands out distinct handles. */
static void test_s3_server_threads(void **state)
{
	struct obj_store *s;
	struct thr_arg a[6];
	pthread_t th[6];
	struct obj_list l;
	char path[128];

	(void)state;
	if (!s3rver_up())
		skip();
	snprintf(path, sizeof(path), "/tessera-test/ts3-thr-%d",
		 (int)getpid());
	s = s3rver_open(path);
	for (int i = 0; i < 6; i++) {
		a[i] = (struct thr_arg){ s, i, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &a[i]),
				 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].bad, 0);
	}
	obj_list_init(&l);
	assert_int_equal(obj_list(s, "", NULL, NULL, 1000, &l), 0);
	assert_int_equal(l.n, 0);
	obj_list_release(&l);
	obj_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_sign_get_object),
		cmocka_unit_test(test_s3_sign_put_object),
		cmocka_unit_test(test_s3_sign_list_objects),
		cmocka_unit_test(test_s3_sign_lifecycle),
		cmocka_unit_test(test_s3_sign_depends_on_secret),
		cmocka_unit_test(test_s3_uri_encode),
		cmocka_unit_test(test_s3_canon_query),
		cmocka_unit_test(test_s3_xml_text),
		cmocka_unit_test(test_s3_iso8601),
		cmocka_unit_test(test_s3_parse_list),
		cmocka_unit_test_setup_teardown(test_s3_fake_signed, fake_setup,
						fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_retry_503,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_retry_exhausted,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_offline_open,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_reset_and_short,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_not_retried,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_timeout,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_wrong_secret,
						fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_s3_fake_ca_bundle_http,
						fake_setup, fake_teardown),
		cmocka_unit_test(test_s3_refused),
		cmocka_unit_test(test_s3_refused_offline),
		cmocka_unit_test(test_s3_unresolvable),
		cmocka_unit_test(test_s3_bad_urls),
		cmocka_unit_test(test_s3_server_keys),
		cmocka_unit_test(test_s3_server_range),
		cmocka_unit_test(test_s3_server_denied),
		cmocka_unit_test(test_s3_server_missing_bucket),
		cmocka_unit_test(test_s3_server_creds_file),
		cmocka_unit_test(test_s3_server_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
