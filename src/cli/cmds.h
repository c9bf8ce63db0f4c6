/*
 * cmds.h - entry points of the subcommands, one per src/cli/cmd_<sub>.c.
 * Each returns the exit status (0 ok, 1 error, 2 usage).
 */
#ifndef TESSERA_CLI_CMDS_H
#define TESSERA_CLI_CMDS_H

int cmd_format(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_umount(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_load(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_objbench(int argc, char **argv);
int cmd_warmup(int argc, char **argv);
int cmd_rmr(int argc, char **argv);
int cmd_trash(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_quota(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_destroy(int argc, char **argv);

/* `tessera mount`'s long options (cmd_mount.c), for mount.tessera. */
#include <getopt.h>
extern const struct option cmd_mount_longopts[];

/* The binary run as /sbin/mount.tessera or umount.fuse.tessera. */
int mount_helper_main(int argc, char **argv);
int umount_helper_main(int argc, char **argv);

#endif
