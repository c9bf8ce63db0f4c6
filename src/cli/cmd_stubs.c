/*
 * cmd_stubs.c - subcommands not written yet.  Each says so and exits 1.
 * A subcommand moves to its own cmd_<sub>.c when it is implemented.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"

static int not_yet(const char *name)
{
	fprintf(stderr, "tessera %s: not implemented yet\n", name);
	return EXIT_ERR;
}

#define STUB(sub)                              \
	int cmd_##sub(int argc, char **argv)   \
	{                                      \
		UNUSED(argc);                  \
		UNUSED(argv);                  \
		return not_yet(#sub);          \
	}

STUB(dump)
STUB(load)
STUB(stats)
