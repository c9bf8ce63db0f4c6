/*
 * fuzz_chunk_key.c - libFuzzer target for chunk_key_parse: a block key
 * listed from a store (anyone with write access to it can plant one) is
 * parsed back into slice id, block index and length.
 *
 * Input: volume name, NUL, key.  A key that parses must be exactly what
 * chunk_key() makes of the parsed numbers.
 */
#include "util/common.h"
#include "chunk/chunk.h"
#include "object/object.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 2), *key, again[OBJ_KEY_MAX + 1];
	uint64_t id;
	uint32_t index, len;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	s[size + 1] = '\0';
	key = s + strlen(s) + 1; /* "" when there is no NUL in the input */
	if (chunk_key_parse(s, key, &id, &index, &len) == 0) {
		chunk_key(s, id, index, len, again, sizeof(again));
		if (id == 0 || strcmp(again, key) != 0)
			abort();
	}
	free(s);
	return 0;
}
