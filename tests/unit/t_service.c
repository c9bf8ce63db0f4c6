/*
 * t_service.c - the pieces a mount run as a service uses: the progress
 * line (drawn on a terminal only, never when quiet or on a pipe, with
 * done/total, percent and rate), the metrics HTTP server (a taken address
 * is an error unless moving on is allowed, 200 / 404 / 405 answers, bad
 * addresses refused) and the latency histograms (cumulative buckets,
 * count equal to the +Inf bucket).
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/httpd.h"
#include "util/metrics.h"
#include "util/progress.h"

/* Run @fn with stderr on @fd; return what was written to @rfd. */
static size_t with_stderr(int fd, int rfd, void (*fn)(bool), bool arg,
			  char *out, size_t cap)
{
	int saved = dup(STDERR_FILENO);
	size_t got = 0;
	ssize_t n;

	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fcntl(rfd, F_SETFL, O_NONBLOCK);
	while (got < cap - 1 && (n = read(rfd, out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	return got;
}

static void draw_some(bool quiet)
{
	struct progress p;

	progress_init(&p, "files", "files", 100, quiet);
	progress_add(&p, 40);
	progress_end(&p);
}

static void test_progress_tty_only(void **state)
{
	int m, s, pp[2];
	char out[4096];

	(void)state;
	assert_int_equal(openpty(&m, &s, NULL, NULL, NULL), 0);
	with_stderr(s, m, draw_some, false, out, sizeof(out));
	assert_non_null(strstr(out, "files"));
	assert_non_null(strstr(out, "40/100"));
	assert_non_null(strstr(out, "40%"));
	/* quiet: nothing, even on a terminal */
	assert_int_equal(with_stderr(s, m, draw_some, true, out, sizeof(out)),
			 0);
	close(m);
	close(s);
	/* a pipe is not a terminal: nothing */
	assert_int_equal(pipe(pp), 0);
	assert_int_equal(with_stderr(pp[1], pp[0], draw_some, false, out,
				     sizeof(out)),
			 0);
	close(pp[0]);
	close(pp[1]);
}

static int page(void *arg, const char *path, struct buf *b)
{
	(void)arg;
	if (strcmp(path, "/metrics") == 0)
		return buf_appendf(b, "tessera_x 1\n");
	return -ENOENT;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void get(int port, const char *req, char *out, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t n;

	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got < cap - 1 && (n = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(fd);
}

static void test_httpd(void **state)
{
	struct httpd *h, *h2;
	char addr[64], bound[64], bound2[64], out[4096];
	int port = free_port(), port2;

	(void)state;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(httpd_start(addr, false, page, NULL, &h, bound,
				     sizeof(bound)),
			 0);
	assert_string_equal(bound, addr);
	get(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.0 200 OK\r\n"));
	assert_non_null(strstr(out, "Content-Length: 12\r\n"));
	assert_non_null(strstr(out, "\r\n\r\ntessera_x 1\n"));
	get(port, "GET /other HTTP/1.0\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.0 404 "));
	get(port, "POST /metrics HTTP/1.0\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "HTTP/1.0 405 "));
	/* taken: an error, or the next free port when allowed */
	assert_int_equal(httpd_start(addr, false, page, NULL, &h2, bound2,
				     sizeof(bound2)),
			 -EADDRINUSE);
	assert_int_equal(httpd_start(addr, true, page, NULL, &h2, bound2,
				     sizeof(bound2)),
			 0);
	assert_string_not_equal(bound2, addr);
	port2 = atoi(strrchr(bound2, ':') + 1);
	assert_true(port2 > port);
	get(port2, "GET /metrics HTTP/1.0\r\n\r\n", out, sizeof(out));
	assert_non_null(strstr(out, "tessera_x 1"));
	httpd_stop(h2);
	httpd_stop(h);
	httpd_stop(NULL);
	/* bad addresses */
	assert_int_equal(httpd_start("127.0.0.1:99999", false, page, NULL, &h,
				     bound, sizeof(bound)),
			 -EINVAL);
	assert_int_equal(httpd_start("localhost:", false, page, NULL, &h,
				     bound, sizeof(bound)),
			 -EINVAL);
}

static void test_histogram(void **state)
{
	static struct metric_hist h;
	struct buf b = BUF_INIT;

	(void)state;
	metric_observe(&h, 50000);	   /* 50 us: first bucket */
	metric_observe(&h, 2000000);	   /* 2 ms: le 0.0025 */
	metric_observe(&h, 20000000000ULL); /* 20 s: +Inf only */
	assert_int_equal(metric_hist_prom(&b, "t_seconds", "op=\"x\"", &h), 0);
	assert_non_null(strstr(b.data, "t_seconds_bucket{op=\"x\",le=\"0.0001\"} 1\n"));
	assert_non_null(strstr(b.data, "t_seconds_bucket{op=\"x\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(b.data, "t_seconds_bucket{op=\"x\",le=\"0.0025\"} 2\n"));
	assert_non_null(strstr(b.data, "t_seconds_bucket{op=\"x\",le=\"10\"} 2\n"));
	assert_non_null(strstr(b.data, "t_seconds_bucket{op=\"x\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(b.data, "t_seconds_count{op=\"x\"} 3\n"));
	assert_non_null(strstr(b.data, "t_seconds_sum{op=\"x\"} 20.002050000\n"));
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_progress_tty_only),
		cmocka_unit_test(test_httpd),
		cmocka_unit_test(test_histogram),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
