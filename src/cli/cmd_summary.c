/*
 * cmd_summary.c - `tessera summary` (being written; see `tessera summary --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_summary(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera summary: not implemented yet\n");
	return EXIT_ERR;
}
