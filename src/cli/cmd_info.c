/*
 * cmd_info.c - `tessera info` (being written; see `tessera info --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_info(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera info: not implemented yet\n");
	return EXIT_ERR;
}
