/*
 * libFuzzer harness for the library's qcow2 header check
 * (library_qcow2_check in src/server/library.c): any bytes, any length.
 * The contract checked: it returns 0 or -EINVAL, gives a reason with
 * -EINVAL, and refuses every qcow2 header that names a backing file.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "library.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	int rc = library_qcow2_check(data, size, &why);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == -EINVAL && (!why || !*why))
		abort();
	/* A qcow2 magic with a non-zero backing file offset is never accepted. */
	if (rc == 0 && size >= 16 && memcmp(data, "QFI\xfb", 4) == 0) {
		for (size_t i = 8; i < 16; i++)
			if (data[i])
				abort();
	}
	return 0;
}
