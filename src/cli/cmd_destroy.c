/*
 * cmd_destroy.c - `tessera destroy` (being written; see `tessera destroy --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_destroy(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera destroy: not implemented yet\n");
	return EXIT_ERR;
}
