/*
 * cmd_trash.c - `tessera trash` (being written; see `tessera trash --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_trash(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera trash: not implemented yet\n");
	return EXIT_ERR;
}
