/*
 * httpd.h - the smallest HTTP/1.0 server: one thread answering GET of a
 * few paths with text a callback renders (the mount's /metrics).
 *
 * One connection at a time, "Connection: close", a request bounded in
 * size (8 KiB) and time (5 s): a scraper, not a web server.  It binds in
 * httpd_start (so a taken address is reported to the user before the
 * mount is up) and serves until httpd_stop.
 */
#ifndef TESSERA_UTIL_HTTPD_H
#define TESSERA_UTIL_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct httpd;

/* Render the body of GET @path into @b: 0, -ENOENT (404) or -errno (500). */
typedef int (*httpd_fn)(void *arg, const char *path, struct buf *b);

/**
 * Listen on @addr ("HOST:PORT", ":PORT" or "PORT"; HOST an IPv4/IPv6
 * address or name, default 127.0.0.1).  With @next_free, a taken port
 * moves on to the next ones (up to 100); otherwise it is an error.
 * @bound receives "HOST:PORT" as bound.  Returns 0, -EADDRINUSE,
 * -EINVAL (bad address) or -errno, with one ERROR line.
 */
int httpd_start(const char *addr, bool next_free, httpd_fn fn, void *arg,
		struct httpd **out, char *bound, size_t n);

/** Stop serving and free (NULL is a no-op). */
void httpd_stop(struct httpd *h);

#endif
