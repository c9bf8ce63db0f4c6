/*
 * cmd_fsck.c - `tessera fsck` (being written; see `tessera fsck --help`).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

int cmd_fsck(int argc, char **argv)
{
	UNUSED(argc);
	UNUSED(argv);
	fprintf(stderr, "tessera fsck: not implemented yet\n");
	return EXIT_ERR;
}
