/*
 * cmd_rmr.c - `tessera rmr` (being written; see `tessera rmr --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_rmr(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera rmr: not implemented yet\n");
	return EXIT_ERR;
}
