/*
 * slice.h - the slice record shared by meta/ (which stores chunk slice lists)
 * and chunk/ (which reads and writes slice bytes).  DESIGN section 3.
 *
 * A chunk is 64 MiB of a file.  Each slice record says: bytes [off, off+len)
 * of slice @id (whose stored size is @size) appear at [pos, pos+len) of the
 * chunk.  Later records in a chunk's list cover earlier ones where they
 * overlap.  id 0 reads as zeros (holes, truncate, punch hole) and has no
 * objects.
 */
#ifndef TESSERA_UTIL_SLICE_H
#define TESSERA_UTIL_SLICE_H

#include <stdint.h>

struct slice {
	uint32_t pos;  /* offset in the chunk */
	uint64_t id;   /* 0 = zeros */
	uint32_t size; /* total bytes stored in the slice's blocks */
	uint32_t off;  /* offset of the visible part inside the slice */
	uint32_t len;  /* visible length */
};

/* Encoded size of one slice record in a chunk value (big-endian fields). */
#define SLICE_REC_LEN 24

#endif
