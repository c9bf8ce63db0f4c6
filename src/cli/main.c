/*
 * main.c - `tessera`: global options, then dispatch to a subcommand.
 *
 * Exit status: 0 ok, 1 error, 2 usage.  The table below is the single
 * source of the command list and of each --help text.
 */
#include "util/common.h"
#include "cli/cli.h"
#include "cli/cmds.h"
#include "util/crash.h"
#include "util/log.h"

#define VOL "NAME|META-URL|STORAGE-URL/NAME"

const struct cli_cmd cli_cmds[] = {
	{ "format", cmd_format, "create a volume",
	  "usage: tessera format NAME [options]\n"
	  "       tessera format STORAGE-URL/NAME [options]\n"
	  "       tessera format META-URL NAME --storage URL [options]\n"
	  "\n"
	  "Create a volume.  With only NAME, the metadata is SQLite under\n"
	  "$TESSERA_HOME/NAME/meta.db and the data a local directory\n"
	  "$TESSERA_HOME/NAME/objects/.  SQLite metadata is replicated into\n"
	  "the object store (see docs/replication.md), so the volume can be\n"
	  "mounted anywhere as STORAGE-URL/NAME.\n"
	  "\n"
	  "options:\n"
	  "  --storage URL        object store (file:///dir/, s3://bucket, http://host:port/bucket)\n"
	  "  --block-size SIZE    block size (default 4M; 64K to 16M)\n"
	  "  --compress ALG       lz4, zstd or none (default none)\n"
	  "  --encrypt-key FILE   encrypt blocks with AES-256-GCM using this key file\n"
	  "  --trash-days N       keep deleted files in .trash for N days (default 1; 0 disables)\n"
	  "  --capacity SIZE      space limit (default unlimited)\n"
	  "  --inodes N           inode limit (default unlimited)\n"
	  "  --replicate on|off   replicate SQLite metadata into the storage (default on)\n"
	  "  --force              overwrite an existing volume's metadata\n" },
	{ "mount", cmd_mount, "mount a volume",
	  "usage: tessera mount " VOL " MOUNTPOINT [options]\n"
	  "\n"
	  "STORAGE-URL/NAME (file:///dir/NAME, s3://bucket/NAME,\n"
	  "http://host:port/bucket/NAME) mounts a replicated volume from its\n"
	  "object store alone: the metadata is restored into\n"
	  "$TESSERA_HOME/NAME/meta.db unless a current copy is there.  A mount\n"
	  "of a replicated volume holds its lease: another host's mount is\n"
	  "refused until it ends (or --force takes the lease over).\n"
	  "\n"
	  "options:\n"
	  "  -f, --foreground     stay in the foreground\n"
	  "  -d, --debug          debug log (implies -f)\n"
	  "  -o OPTS              mount options: allow_other, noatime, relatime\n"
	  "                       (default), strictatime, nodiratime, lazytime,\n"
	  "                       dev and suid (default nodev, nosuid), noacl\n"
	  "                       (POSIX ACLs are on by default), ...\n"
	  "  --read-only          mount read-only\n"
	  "  --encrypt-key FILE   key file of an encrypted volume (default:\n"
	  "                       $TESSERA_ENCRYPT_KEY_FILE)\n"
	  "  --attr-timeout S     kernel attribute cache (default 1)\n"
	  "  --entry-timeout S    kernel entry cache (default 1)\n"
	  "  --heartbeat S        session heartbeat (default 12); a mount silent\n"
	  "                       for 5 heartbeats is cleaned up by the others\n"
	  "  --buffer-size SIZE   memory for write/read buffers (default 300M)\n"
	  "  --max-uploads N      parallel uploads (default 20)\n"
	  "  --max-readahead SIZE readahead window bound (default 32M; 0 disables)\n"
	  "  --cache-dir DIR      local block cache directory (default $TESSERA_HOME/cache;\n"
	  "                       one subdirectory per volume uuid)\n"
	  "  --cache-size SIZE    local block cache size (default 100G; 0 disables;\n"
	  "                       default 0 for a file:// store on the cache's\n"
	  "                       filesystem)\n"
	  "  --free-space-ratio R keep this share of the cache's filesystem free (default 0.1)\n"
	  "  --metrics ADDR       serve Prometheus metrics on http://ADDR/metrics\n"
	  "                       (default 127.0.0.1:9567, or the next free port;\n"
	  "                       an ADDR given is used or the mount fails)\n"
	  "  --no-metrics         no metrics endpoint\n"
	  "  --no-uring           talk to the kernel through /dev/fuse even when\n"
	  "                       FUSE over io_uring is enabled (fuse.enable_uring=Y)\n"
	  "  --cache-large-write  also cache full blocks just written (default: only\n"
	  "                       partial blocks; big writes go to the store alone)\n"
	  "  --writeback          stage writes in the local cache, upload later\n"
	  "  --force              take the volume's lease from another mount\n"
	  "  --accept-partial     mount a restore that stopped at a damaged\n"
	  "                       segment (the transactions after it are lost)\n" },
	{ "umount", cmd_umount, "flush and unmount",
	  "usage: tessera umount MOUNTPOINT [--force]\n" },
	{ "status", cmd_status, "show settings and sessions",
	  "usage: tessera status " VOL " [--json]\n"
	  "\n"
	  "Settings, usage and, for replicated volumes, the replication state:\n"
	  "generation, last transaction here and in the object store, lag.\n" },
	{ "info", cmd_info, "show a file's inode, chunks, slices and objects",
	  "usage: tessera info PATH... [--json]\n"
	  "\n"
	  "PATH is inside a mount.  For a file: inode, size, links and its\n"
	  "chunks -> slices -> object keys with their lengths.  For a\n"
	  "directory: its number of entries and the totals (files,\n"
	  "directories, bytes) of the tree below it.\n"
	  "\n"
	  "options:\n"
	  "  --json               one JSON object per PATH\n" },
	{ "summary", cmd_summary, "files, directories and bytes per subtree",
	  "usage: tessera summary PATH [--depth N] [--json]\n"
	  "\n"
	  "PATH is inside a mount.  Counts from metadata (no file is read):\n"
	  "files, directories and bytes of the tree at PATH, and of each\n"
	  "subdirectory down to --depth levels (default 0: only PATH).\n" },
	{ "gc", cmd_gc, "find and delete leaked objects",
	  "usage: tessera gc " VOL " [--delete] [--json] [--threads N] [--quiet]\n"
	  "\n"
	  "List the object store once and compare it with the metadata:\n"
	  "objects no slice, checkpoint or clone references (leaked), slices\n"
	  "queued for deletion (pending) and expired trash.  A dry run unless\n"
	  "--delete, which deletes leaked objects and runs the pending\n"
	  "deletes.  Objects younger than one hour are never deleted (they may\n"
	  "be uploads in flight); any listing or metadata error stops gc\n"
	  "before it deletes anything.\n"
	  "\n"
	  "options:\n"
	  "  --delete             delete what is found (default: report only)\n"
	  "  --json               print the report as JSON\n"
	  "  --threads N          parallel deletes (default 8)\n"
	  "  --quiet              no progress line\n" },
	{ "fsck", cmd_fsck, "check metadata against the object store",
	  "usage: tessera fsck " VOL " [--path P] [--verify] [--repair] [--json] [--quiet]\n"
	  "\n"
	  "Check the tree (entries, inode types and parents, link counts,\n"
	  "directory sizes, usage counters, orphan inodes) and that every\n"
	  "block of every slice is in the object store with the length its\n"
	  "key says (the store is listed once).  Each finding is one line\n"
	  "naming the path, the inode and the object key.  Exit status: 0\n"
	  "clean, 1 problems found, 2 usage.\n"
	  "\n"
	  "options:\n"
	  "  --path P             only the tree at P (a path inside the volume)\n"
	  "  --verify             also read every object, decode its frame and\n"
	  "                       check its checksum\n"
	  "  --encrypt-key FILE   key file of an encrypted volume (for --verify;\n"
	  "                       default: $TESSERA_ENCRYPT_KEY_FILE)\n"
	  "  --repair             fix counters, link counts, directory sizes and\n"
	  "                       orphans (moved to the trash); never deletes data\n"
	  "                       a file references\n"
	  "  --threads N          objects read at once by --verify (default 8)\n"
	  "  --json               findings as JSON\n"
	  "  --quiet              no progress line\n" },
	{ "dump", cmd_dump, "dump metadata as JSON",
	  "usage: tessera dump " VOL " [FILE|-] [--json-indent] [--quiet]\n"
	  "\n"
	  "Write the volume's metadata as one JSON document to FILE (default\n"
	  "or \"-\": standard output): settings (the wrapped data key of an\n"
	  "encrypted volume, never a key file), counters, every inode with its\n"
	  "attributes, xattrs and ACLs, entries, chunks and slices, the trash,\n"
	  "the deletion queue and checkpoints.  It streams (memory does not\n"
	  "grow with the volume) and reads one consistent snapshot, also of a\n"
	  "mounted volume.  Format: docs/dump.md.\n"
	  "\n"
	  "options:\n"
	  "  --json-indent        one member per line, indented\n"
	  "  --quiet              no progress line, no summary\n" },
	{ "load", cmd_load, "load metadata from a JSON dump",
	  "usage: tessera load META-URL FILE|- [--force] [--quiet]\n"
	  "\n"
	  "Load a dump into the empty metadata database at META-URL (SQLite,\n"
	  "Redis or PostgreSQL; an SQLite file is created).  The whole dump is\n"
	  "checked first (standard input is spooled to a temporary file): a\n"
	  "truncated, corrupt or wrong-version dump is refused with the byte\n"
	  "offset and the item, and the target is not touched.  A load that\n"
	  "fails later leaves the target empty.  The loaded volume shares the\n"
	  "data objects of the dumped one (nothing is copied) and has\n"
	  "replication off: use one of the two volumes, not both.\n"
	  "\n"
	  "options:\n"
	  "  --force              wipe a target that holds only the records of\n"
	  "                       an unfinished load (never a volume)\n"
	  "  --quiet              no progress line, no summary\n" },
	{ "bench", cmd_bench, "benchmark a directory",
	  "usage: tessera bench PATH [options]\n"
	  "\n"
	  "Write and read one big file and many small files per thread under\n"
	  "PATH, checking every byte, and print throughput.\n"
	  "\n"
	  "options:\n"
	  "  -p, --threads N          threads (default 1)\n"
	  "  --big-file-size SIZE     big file per thread (default 1G)\n"
	  "  --small-file-size SIZE   small file size (default 128K; at most 1M)\n"
	  "  --small-files N          small files per thread (default 100)\n" },
	{ "objbench", cmd_objbench, "benchmark an object store",
	  "usage: tessera objbench STORAGE-URL [options]\n"
	  "\n"
	  "Put, head, get, list and delete N objects of SIZE bytes under a\n"
	  "fresh prefix, and print each operation's throughput and latency.\n"
	  "The objects are deleted at the end.\n"
	  "\n"
	  "options:\n"
	  "  --objects N          number of objects (default 100)\n"
	  "  --size SIZE          object size (default 1M)\n"
	  "  --threads P          parallel requests (default 4)\n" },
	{ "warmup", cmd_warmup, "fill the cache for files or trees",
	  "usage: tessera warmup PATH... [--evict|--check] [-p THREADS] [--quiet]\n"
	  "\n"
	  "Fetch the blocks of the files (directories: every file below) into\n"
	  "the local cache of the mount holding them.\n"
	  "\n"
	  "options:\n"
	  "  --evict              drop the files' blocks from the cache instead\n"
	  "  --check              only report how much of them is cached\n"
	  "  -p, --threads N      files handled in parallel (default 4)\n"
	  "  --quiet              no progress line (it shows only on a terminal)\n" },
	{ "rmr", cmd_rmr, "remove trees fast, through metadata",
	  "usage: tessera rmr PATH... [--quiet]\n"
	  "\n"
	  "Remove each PATH (a file or a whole tree, inside a mount) by\n"
	  "metadata transactions in batches, without a round trip per file\n"
	  "through the kernel.  Files go to the trash when the volume keeps\n"
	  "one.  A progress line shows on a terminal.\n" },
	{ "trash", cmd_trash, "list, restore or empty the trash",
	  "usage: tessera trash list " VOL " [--json]\n"
	  "       tessera trash restore " VOL " ENTRY...|--all\n"
	  "       tessera trash empty " VOL "\n"
	  "\n"
	  "Deleted files stay in the trash for --trash-days (format, config).\n"
	  "list shows each entry with its original path, size and deletion\n"
	  "time; restore puts entries back at their original paths (an error\n"
	  "if the name is taken or the directory is gone); empty deletes them\n"
	  "all now.\n" },
	{ "clone", cmd_clone, "copy a file or tree by metadata only",
	  "usage: tessera clone SRC DST [--preserve]\n"
	  "\n"
	  "Inside a mount, copy file or tree SRC to the new name DST by\n"
	  "metadata only: no data is read or written, the clone shares SRC's\n"
	  "objects (reference counted), and writing either one leaves the other\n"
	  "as it was.  New files belong to the caller with SRC's modes; with\n"
	  "--preserve, owners (root only) and times are kept too.\n" },
	{ "checkpoint", cmd_checkpoint, "create, list, restore, delete checkpoints",
	  "usage: tessera checkpoint [--force] create|list|restore|delete " VOL " [NAME]\n"
	  "\n"
	  "A checkpoint is a named snapshot of the metadata only, stored in the\n"
	  "volume's object store; restore swaps the metadata back in O(metadata)\n"
	  "while no mount is active.  --force takes the volume's lease from a\n"
	  "mount that still holds it (that mount stops writing).\n" },
	{ "quota", cmd_quota, "manage directory quotas",
	  "usage: tessera quota set " VOL " --path P [--capacity SIZE] [--inodes N]\n"
	  "       tessera quota get " VOL " --path P [--json]\n"
	  "       tessera quota list " VOL " [--json]\n"
	  "       tessera quota delete " VOL " --path P\n"
	  "       tessera quota check " VOL " [--path P] [--repair]\n"
	  "\n"
	  "A quota limits the space (SIZE, e.g. 10G; each file counts its length\n"
	  "rounded up to 4 KiB, each directory 4 KiB) and the number of inodes\n"
	  "below directory P, a path inside the volume; 0 removes a limit, an\n"
	  "option left out keeps its value.  Writes, creates and renames that\n"
	  "would pass a limit fail with EDQUOT (\"Disk quota exceeded\") on\n"
	  "every mount.  check counts the usage from the tree and compares;\n"
	  "--repair stores the counted usage.\n" },
	{ "stats", cmd_stats, "show live counters of a mount",
	  "usage: tessera stats MOUNTPOINT [--interval S] [--count N] [--json]\n"
	  "\n"
	  "Every interval, one line of rates from MOUNTPOINT/.stats (the same\n"
	  "counters as the mount's Prometheus /metrics): FUSE requests and\n"
	  "their mean latency, application read and write throughput, object\n"
	  "GETs and PUTs, bytes up and down, the disk cache's hit ratio,\n"
	  "metadata transactions, buffer memory and uploads pending.\n"
	  "\n"
	  "options:\n"
	  "  --interval S         seconds between lines (default 1)\n"
	  "  --count N            print N lines and exit (default: until ^C)\n"
	  "  --json               one JSON object per line\n" },
	{ "profile", cmd_profile, "time per operation, from a mount's access log",
	  "usage: tessera profile MOUNTPOINT|FILE [--interval S] [--count N]\n"
	  "\n"
	  "MOUNTPOINT/.accesslog streams one line per request while it is\n"
	  "open (root only): time, uid, gid, pid, operation, inode and\n"
	  "names or offset and size, result, seconds.  profile reads it and\n"
	  "every interval prints per operation the requests, errors, total\n"
	  "and mean time, the busiest first.  Given a FILE (a saved log:\n"
	  "cat MNT/.accesslog >FILE), one table for the whole file.\n"
	  "\n"
	  "options:\n"
	  "  --interval S         seconds per table (default 2)\n"
	  "  --count N            print N tables and exit (default: until ^C)\n" },
	{ "config", cmd_config, "show or change volume settings",
	  "usage: tessera config " VOL " [--capacity SIZE] [--inodes N] [--trash-days N]\n"
	  "\n"
	  "Without options, print the settings.  Options change them.\n" },
	{ "destroy", cmd_destroy, "delete a volume: every object and the metadata",
	  "usage: tessera destroy " VOL " UUID [--quiet]\n"
	  "\n"
	  "Delete every object of the volume (data, replicated metadata,\n"
	  "checkpoints) and its metadata.  UUID (see 'tessera status') must\n"
	  "match the volume's, a guard against typos.  Refused while any\n"
	  "session (mount) of the volume is alive.\n" },
};
const unsigned cli_ncmds = ARRAY_SIZE(cli_cmds);

static void usage(FILE *f)
{
	fprintf(f, "usage: tessera [--version] [--help] COMMAND [ARGS]\n\n"
		   "commands:\n");
	for (unsigned i = 0; i < cli_ncmds; i++)
		fprintf(f, "  %-11s %s\n", cli_cmds[i].name,
			cli_cmds[i].summary);
	fprintf(f, "\n'tessera COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
	const char *lvl = getenv("TESSERA_LOG");
	const char *self = argc > 0 ? strrchr(argv[0], '/') : NULL;

	if (lvl && strcmp(lvl, "debug") == 0)
		log_set_level(LOG_LVL_DEBUG);
	else if (lvl && strcmp(lvl, "info") == 0)
		log_set_level(LOG_LVL_INFO);
	if (crash_init() < 0) /* tests only; logged */
		return EXIT_ERR;
	/* Run by mount(8) or umount(8) through a link (cmd_mount_helper.c). */
	self = self ? self + 1 : argc > 0 ? argv[0] : "";
	if (strcmp(self, "mount.tessera") == 0 ||
	    strcmp(self, "mount.fuse.tessera") == 0)
		return mount_helper_main(argc, argv);
	if (strcmp(self, "umount.fuse.tessera") == 0 ||
	    strcmp(self, "umount.tessera") == 0)
		return umount_helper_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2 && strcmp(argv[1], "help") == 0)
			return cli_help(argv[2]) == EXIT_OK
				       ? EXIT_OK
				       : cli_usage_error(NULL,
							 "unknown command '%s'",
							 argv[2]);
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("tessera %s\n", TESSERA_VERSION);
		return EXIT_OK;
	}
	if (argv[1][0] == '-')
		return cli_usage_error(NULL, "unknown option '%s'", argv[1]);
	for (unsigned i = 0; i < cli_ncmds; i++) {
		if (strcmp(cli_cmds[i].name, argv[1]) != 0)
			continue;
		if (cli_wants_help(argc - 1, argv + 1))
			return cli_help(argv[1]);
		return cli_cmds[i].fn(argc - 1, argv + 1);
	}
	return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}
