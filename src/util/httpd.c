/*
 * httpd.c - see httpd.h.
 */
#include "util/common.h"
#include "util/httpd.h"
#include "util/buf.h"
#include "util/log.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define REQ_MAX 8192
#define REQ_TIMEOUT_MS 5000

struct httpd {
	int fd;
	int stop[2]; /* a byte on stop[1] ends the thread */
	pthread_t thread;
	httpd_fn fn;
	void *arg;
};

static int split_addr(const char *addr, char *host, size_t hn, char *port,
		      size_t pn)
{
	const char *colon = strrchr(addr, ':');
	const char *h = "127.0.0.1", *p = addr;
	size_t hl = strlen(h);

	if (colon) {
		h = addr;
		hl = (size_t)(colon - addr);
		p = colon + 1;
		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl == 0) {
			h = "127.0.0.1";
			hl = strlen(h);
		}
	}
	if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5 ||
	    atoi(p) > 65535 || hl >= hn || strlen(p) >= pn)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, pn, "%s", p);
	return 0;
}

static int listen_on(const char *host, int port, char *bound, size_t n)
{
	struct addrinfo hints, *res = NULL;
	char ps[16];
	int fd, one = 1, rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(ps, sizeof(ps), "%d", port);
	rc = getaddrinfo(host, ps, &hints, &res);
	if (rc != 0 || !res) {
		if (res)
			freeaddrinfo(res);
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	snprintf(bound, n, "%s%s%s:%d", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
	return fd;
}

static void reply(int fd, int code, const char *status, const char *type,
		  const char *body, size_t len)
{
	char head[256];
	int hn = snprintf(head, sizeof(head),
			  "HTTP/1.0 %d %s\r\nContent-Type: %s\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  code, status, type, len);
	const char *parts[2] = {head, body};
	size_t lens[2] = {(size_t)hn, len};

	for (int i = 0; i < 2; i++) {
		size_t off = 0;

		while (off < lens[i]) {
			ssize_t w = send(fd, parts[i] + off, lens[i] - off,
					 MSG_NOSIGNAL);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return;
			off += (size_t)w;
		}
	}
}

static void serve_one(struct httpd *h, int fd)
{
	char req[REQ_MAX + 1], method[16], path[1024];
	size_t got = 0;
	struct buf b = BUF_INIT;
	int rc;

	while (got < REQ_MAX) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&p, 1, REQ_TIMEOUT_MS) <= 0)
			return;
		r = recv(fd, req + got, REQ_MAX - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = '\0';
	if (sscanf(req, "%15s %1023s", method, path) != 2) {
		reply(fd, 400, "Bad Request", "text/plain", "bad request\n", 12);
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		reply(fd, 405, "Method Not Allowed", "text/plain",
		      "method not allowed\n", 19);
		return;
	}
	path[strcspn(path, "?")] = '\0';
	rc = h->fn(h->arg, path, &b);
	if (rc == -ENOENT)
		reply(fd, 404, "Not Found", "text/plain", "not found\n", 10);
	else if (rc < 0)
		reply(fd, 500, "Internal Server Error", "text/plain",
		      "error\n", 6);
	else
		reply(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		      b.data ? b.data : "",
		      strcmp(method, "HEAD") == 0 ? 0 : b.len);
	buf_release(&b);
}

static void *httpd_main(void *arg)
{
	struct httpd *h = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = h->fd, .events = POLLIN},
				      {.fd = h->stop[0], .events = POLLIN}};
		int c;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve_one(h, c);
		close(c);
	}
	return NULL;
}

int httpd_start(const char *addr, bool next_free, httpd_fn fn, void *arg,
		struct httpd **out, char *bound, size_t n)
{
	char host[256], port[8];
	struct httpd *h;
	int fd = -EINVAL, p0;

	if (split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0) {
		log_error("invalid metrics address '%s' (want HOST:PORT)", addr);
		return -EINVAL;
	}
	p0 = atoi(port);
	for (int i = 0; i <= (next_free ? 100 : 0) && p0 + i <= 65535; i++) {
		fd = listen_on(host, p0 + i, bound, n);
		if (fd >= 0 || fd != -EADDRINUSE)
			break;
	}
	if (fd < 0) {
		if (fd == -EINVAL)
			log_error("invalid metrics address '%s': cannot "
				  "resolve '%s'",
				  addr, host);
		else
			log_error("cannot serve metrics on '%s': %s%s", addr,
				  strerror(-fd),
				  fd == -EADDRINUSE
					  ? " (choose another --metrics "
					    "address or --no-metrics)"
					  : "");
		return fd;
	}
	h = calloc(1, sizeof(*h));
	if (!h || pipe2(h->stop, O_CLOEXEC) < 0) {
		free(h);
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	h->fn = fn;
	h->arg = arg;
	if (pthread_create(&h->thread, NULL, httpd_main, h) != 0) {
		close(h->stop[0]);
		close(h->stop[1]);
		close(fd);
		free(h);
		return -EAGAIN;
	}
	*out = h;
	return 0;
}

void httpd_stop(struct httpd *h)
{
	char c = 1;

	if (!h)
		return;
	while (write(h->stop[1], &c, 1) < 0 && errno == EINTR)
		;
	pthread_join(h->thread, NULL);
	close(h->stop[0]);
	close(h->stop[1]);
	close(h->fd);
	free(h);
}
