/*
 * cmd_gc.c - `tessera gc` (being written; see `tessera gc --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_gc(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera gc: not implemented yet\n");
	return EXIT_ERR;
}
