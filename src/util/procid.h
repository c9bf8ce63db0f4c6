/*
 * procid.h - who a process is, recorded so that another process can tell
 * later whether it still runs: the lease (replicate/) and the session
 * records (meta/) name their holder this way, and a mount restarted after
 * a crash takes over what a dead process of its own host left behind.
 *
 * A process is (host name, machine id, boot id, pid namespace, pid, start
 * time).  Pids can only be checked by a process of the same host, boot and
 * pid namespace; the start time (clock ticks after boot, /proc/PID/stat
 * field 22) tells a reused pid from the process recorded.  Any field may
 * be unknown (empty or 0: an older record, a system without /proc or
 * /etc/machine-id); then the verdict falls back to what remains, never to
 * "gone" on a guess:
 *
 *   host name differs, or machine ids differ   unknown (another host)
 *   boot ids differ, same machine id           gone (rebooted since)
 *   boot ids differ, machine id unknown        unknown
 *   pid namespaces differ                      unknown (another container)
 *   no such pid (ESRCH), or a zombie           gone
 *   start time recorded and different          gone (pid reused)
 *   otherwise                                  alive
 *
 * Hosts must have distinct names or machine ids (containers sharing a
 * kernel are told apart by their pid namespaces).  Any thread; no state.
 */
#ifndef TESSERA_UTIL_PROCID_H
#define TESSERA_UTIL_PROCID_H

#include <stdint.h>

struct json_t;

struct procid {
	char host[256];	      /* gethostname(); never empty */
	char machine_id[33];  /* /etc/machine-id; "" unknown */
	char boot_id[37];     /* /proc/sys/kernel/random/boot_id; "" */
	uint64_t pid_ns;      /* inode of /proc/self/ns/pid; 0 unknown */
	long pid;	      /* 0 unknown */
	uint64_t pid_start;   /* ticks after boot (stat field 22); 0 */
};

enum procid_state {
	PROCID_UNKNOWN = 0, /* cannot tell: another host, pid namespace */
	PROCID_ALIVE,	    /* runs on this host */
	PROCID_GONE,	    /* was a process of this host; it is gone */
};

/** Fill @p for the calling process. */
void procid_self(struct procid *p);

/**
 * Judge @p from this process (rules above).  *why (may be NULL) gets a
 * short static reason for PROCID_GONE ("no such process", "zombie", "pid
 * reused", "host rebooted").  A zombie whose other threads still exit is
 * waited for, up to 1 s: until then it may still be writing.
 */
enum procid_state procid_check(const struct procid *p, const char **why);

/**
 * Put the fields of @p into JSON object @o: "host", "pid", and, when
 * known, "machine_id", "boot_id", "pid_ns", "pid_start".  0 or -ENOMEM.
 */
int procid_to_json(const struct procid *p, struct json_t *o);

/**
 * Read them back from @o; absent or malformed fields stay unknown (an
 * empty host reads as "").
 */
void procid_from_json(struct json_t *o, struct procid *p);

#endif
