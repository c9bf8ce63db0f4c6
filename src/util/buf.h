/*
 * buf.h - a growable byte buffer.
 *
 * Invariants: data is NULL when cap is 0; otherwise data[len] is a NUL byte
 * (so text can be used as a C string), and len < cap.  Calls that grow the
 * buffer may move data: do not keep pointers into it across them.
 * Not thread-safe; a buf belongs to one thread at a time.
 */
#ifndef TESSERA_UTIL_BUF_H
#define TESSERA_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_init(struct buf *b);
/** Free the memory; the buf is BUF_INIT again. */
void buf_release(struct buf *b);
/** Keep the memory, set len to 0. */
void buf_reset(struct buf *b);
/** Make room for extra more bytes.  Returns 0 or -ENOMEM. */
int buf_grow(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** Take the memory out of the buffer (caller frees); b becomes BUF_INIT. */
char *buf_detach(struct buf *b, size_t *len);

#endif
