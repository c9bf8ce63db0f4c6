/*
 * t_procid.c - process identities: which records name a process of this
 * host that is gone (exited, a zombie, its pid reused, the host rebooted),
 * and which cannot be judged here (another host or pid namespace).
 */
#include "util/common.h"
#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/procid.h"

static enum procid_state judge(const struct procid *p, const char *want_why)
{
	const char *why = NULL;
	enum procid_state st = procid_check(p, &why);

	assert_non_null(why);
	if (want_why)
		assert_string_equal(why, want_why);
	return st;
}

static void test_procid_self(void **state)
{
	struct procid me, p;

	(void)state;
	procid_self(&me);
	assert_true(me.host[0] != '\0');
	assert_int_equal(me.pid, (long)getpid());
	/* every Linux we run on has these */
	assert_true(me.boot_id[0] != '\0');
	assert_true(me.pid_ns != 0);
	assert_true(me.pid_start != 0);
	assert_int_equal(judge(&me, ""), PROCID_ALIVE);
	/* our pid, recorded for a process that started at another time */
	p = me;
	p.pid_start++;
	assert_int_equal(judge(&p, "pid reused"), PROCID_GONE);
}

static void test_procid_other_host(void **state)
{
	struct procid me, p;

	(void)state;
	procid_self(&me);
	me.pid = 1; /* alive, whatever we are */
	p = me;
	p.host[0] ^= 1; /* another name */
	assert_int_equal(judge(&p, ""), PROCID_UNKNOWN);
	/* a dead pid elsewhere tells nothing either */
	p.pid = 0x3fffffff;
	assert_int_equal(judge(&p, ""), PROCID_UNKNOWN);
	p = me;
	snprintf(p.machine_id, sizeof(p.machine_id), "%s",
		 strcmp(me.machine_id, "0") ? "0" : "1");
	if (me.machine_id[0])
		assert_int_equal(judge(&p, ""), PROCID_UNKNOWN);
	p = me;
	p.pid_ns++;
	p.pid = 0x3fffffff;
	assert_int_equal(judge(&p, ""), PROCID_UNKNOWN);
	/* another boot of this machine: every process of it is gone */
	p = me;
	snprintf(p.boot_id, sizeof(p.boot_id), "%s", "x");
	if (me.machine_id[0])
		assert_int_equal(judge(&p, "host rebooted"), PROCID_GONE);
	/* ... but without machine ids it may be another machine */
	p.machine_id[0] = '\0';
	assert_int_equal(judge(&p, ""), PROCID_UNKNOWN);
}

static void test_procid_dead_child(void **state)
{
	struct procid me, p;
	int status;
	pid_t pid;

	(void)state;
	procid_self(&me);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	p = me;
	p.pid = pid;
	p.pid_start = 0; /* an old record: pid alone */
	assert_int_equal(judge(&p, ""), PROCID_ALIVE);
	kill(pid, SIGKILL);
	/* not reaped yet (WNOWAIT): a zombie holds nothing */
	{
		siginfo_t si;

		assert_int_equal(waitid(P_PID, (id_t)pid, &si,
					WEXITED | WNOWAIT),
				 0);
	}
	assert_int_equal(judge(&p, "zombie"), PROCID_GONE);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(judge(&p, "no such process"), PROCID_GONE);
}

static void test_procid_pid_reused(void **state)
{
	struct procid me, p;

	(void)state;
	procid_self(&me);
	/* our parent runs; recorded with another start time it is gone */
	p = me;
	p.pid = (long)getppid();
	p.pid_start = 0;
	assert_int_equal(judge(&p, ""), PROCID_ALIVE);
	p.pid_start = 1;
	assert_int_equal(judge(&p, "pid reused"), PROCID_GONE);
}

static void test_procid_json(void **state)
{
	struct procid me, back;
	json_t *o = json_object();

	(void)state;
	procid_self(&me);
	assert_int_equal(procid_to_json(&me, o), 0);
	procid_from_json(o, &back);
	assert_memory_equal(&me, &back, sizeof(me));
	json_decref(o);
	/* an older record: host and pid only, the rest unknown */
	o = json_pack("{s:s, s:i}", "host", "h", "pid", 42);
	procid_from_json(o, &back);
	assert_string_equal(back.host, "h");
	assert_int_equal(back.pid, 42);
	assert_string_equal(back.boot_id, "");
	assert_int_equal(back.pid_start, 0);
	assert_int_equal(back.pid_ns, 0);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_procid_self),
		cmocka_unit_test(test_procid_other_host),
		cmocka_unit_test(test_procid_dead_child),
		cmocka_unit_test(test_procid_pid_reused),
		cmocka_unit_test(test_procid_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
