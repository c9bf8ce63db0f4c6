/*
 * procid.c - process identities and whether they still run (procid.h).
 *
 * Everything is read from /proc and /etc at each call: the values are few
 * and cheap, and a fork (cmd_mount forks before it records anything)
 * changes pid and start time.  The one wait (a zombie whose threads still
 * exit) polls a pidfd, which the kernel makes readable once the whole
 * thread group is gone.
 */
#include "util/common.h"
#include "util/procid.h"

#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A zombie whose threads still exit is waited for this long. */
#define EXIT_WAIT_MS 1000

/* First line of @path, keeping [0-9a-zA-Z-] only, into @out; "" if none. */
static void read_id(const char *path, char *out, size_t n)
{
	char line[128];
	size_t k = 0;
	FILE *f = fopen(path, "re");

	out[0] = '\0';
	if (!f)
		return;
	if (fgets(line, sizeof(line), f))
		for (char *c = line; *c && k + 1 < n; c++)
			if (isalnum((unsigned char)*c) || *c == '-')
				out[k++] = *c;
	out[k] = '\0';
	fclose(f);
}

static uint64_t self_pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

struct pstat {
	char state;
	long threads;
	uint64_t start;
};

/*
 * Fields 3 (state), 20 (num_threads) and 22 (starttime) of
 * /proc/PID/stat.  0, -ENOENT (no such process), -errno.
 */
static int read_pstat(long pid, struct pstat *ps)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field = 3;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* the command name may hold spaces and ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	memset(ps, 0, sizeof(*ps));
	ps->state = p[2];
	for (p += 2; *p && field <= 22; field++) {
		if (field == 20)
			ps->threads = strtol(p, NULL, 10);
		else if (field == 22)
			ps->start = strtoull(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	return field > 22 ? 0 : -EINVAL;
}

void procid_self(struct procid *p)
{
	struct pstat ps;

	memset(p, 0, sizeof(*p));
	if (gethostname(p->host, sizeof(p->host) - 1) < 0 || !p->host[0])
		snprintf(p->host, sizeof(p->host), "localhost");
	read_id("/etc/machine-id", p->machine_id, sizeof(p->machine_id));
	if (!p->machine_id[0])
		read_id("/var/lib/dbus/machine-id", p->machine_id,
			sizeof(p->machine_id));
	read_id("/proc/sys/kernel/random/boot_id", p->boot_id,
		sizeof(p->boot_id));
	p->pid_ns = self_pid_ns();
	p->pid = (long)getpid();
	if (read_pstat(p->pid, &ps) == 0)
		p->pid_start = ps.start;
}

static bool both_differ(const char *a, const char *b)
{
	return a[0] && b[0] && strcmp(a, b) != 0;
}

/*
 * What /proc says of pid @p->pid: ALIVE, GONE (with *why), or -1: a zombie
 * whose other threads have not exited yet (they may still be writing).
 */
static int judge_pstat(const struct procid *p, const char **why)
{
	struct pstat ps;
	int rc = read_pstat(p->pid, &ps);

	if (rc == -ENOENT) {
		*why = "no such process";
		return PROCID_GONE;
	}
	if (rc < 0)
		return PROCID_ALIVE; /* no /proc: kill() said it exists */
	if (p->pid_start && ps.start != p->pid_start) {
		*why = "pid reused";
		return PROCID_GONE;
	}
	if (ps.state != 'Z' && ps.state != 'X')
		return PROCID_ALIVE;
	/* the leader is a zombie once it exits; its threads may not be */
	if (ps.threads <= 1) {
		*why = "zombie";
		return PROCID_GONE;
	}
	return -1;
}

/* Is process @p of this pid namespace still the one recorded? */
static enum procid_state check_pid(const struct procid *p, const char **why)
{
	struct pollfd pfd = {.events = POLLIN};
	int rc;

	if (kill((pid_t)p->pid, 0) < 0 && errno == ESRCH) {
		*why = "no such process";
		return PROCID_GONE;
	}
	rc = judge_pstat(p, why);
	if (rc >= 0)
		return (enum procid_state)rc;
	/* a pidfd polls readable once the whole thread group has exited */
	pfd.fd = (int)syscall(SYS_pidfd_open, (pid_t)p->pid, 0);
	if (pfd.fd < 0) {
		if (errno != ESRCH)
			return PROCID_ALIVE;
		*why = "no such process";
		return PROCID_GONE;
	}
	poll(&pfd, 1, EXIT_WAIT_MS);
	close(pfd.fd);
	rc = judge_pstat(p, why);
	return rc >= 0 ? (enum procid_state)rc : PROCID_ALIVE;
}

enum procid_state procid_check(const struct procid *p, const char **why)
{
	struct procid me;
	const char *dummy;

	if (!why)
		why = &dummy;
	*why = "";
	procid_self(&me);
	if (!p->host[0] || strcmp(p->host, me.host) != 0 ||
	    both_differ(p->machine_id, me.machine_id))
		return PROCID_UNKNOWN;
	if (both_differ(p->boot_id, me.boot_id)) {
		if (!p->machine_id[0] || !me.machine_id[0])
			return PROCID_UNKNOWN;
		*why = "host rebooted";
		return PROCID_GONE;
	}
	if (p->pid_ns && me.pid_ns && p->pid_ns != me.pid_ns)
		return PROCID_UNKNOWN;
	if (p->pid <= 0)
		return PROCID_UNKNOWN;
	if (p->pid == me.pid) {
		if (p->pid_start && me.pid_start && p->pid_start != me.pid_start) {
			*why = "pid reused";
			return PROCID_GONE;
		}
		return PROCID_ALIVE;
	}
	return check_pid(p, why);
}

static int set_str(json_t *o, const char *key, const char *v)
{
	return v[0] ? json_object_set_new(o, key, json_string(v)) : 0;
}

static int set_int(json_t *o, const char *key, uint64_t v)
{
	return v ? json_object_set_new(o, key, json_integer((json_int_t)v))
		 : 0;
}

int procid_to_json(const struct procid *p, struct json_t *o)
{
	if (json_object_set_new(o, "host", json_string(p->host)) < 0 ||
	    json_object_set_new(o, "pid", json_integer(p->pid)) < 0 ||
	    set_str(o, "machine_id", p->machine_id) < 0 ||
	    set_str(o, "boot_id", p->boot_id) < 0 ||
	    set_int(o, "pid_ns", p->pid_ns) < 0 ||
	    set_int(o, "pid_start", p->pid_start) < 0)
		return -ENOMEM;
	return 0;
}

static void get_str(json_t *o, const char *key, char *dst, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	snprintf(dst, n, "%s", s ? s : "");
}

static uint64_t get_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return 0;
	return (uint64_t)json_integer_value(v);
}

void procid_from_json(struct json_t *o, struct procid *p)
{
	memset(p, 0, sizeof(*p));
	get_str(o, "host", p->host, sizeof(p->host));
	get_str(o, "machine_id", p->machine_id, sizeof(p->machine_id));
	get_str(o, "boot_id", p->boot_id, sizeof(p->boot_id));
	p->pid_ns = get_u64(o, "pid_ns");
	p->pid = (long)get_u64(o, "pid");
	p->pid_start = get_u64(o, "pid_start");
}
