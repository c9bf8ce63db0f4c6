/*
 * log.c - the log sink.  Default: stderr, messages at WARN and above, plain
 * "tessera: message" lines (what a command-line user wants).  The mount
 * switches to timestamped lines or syslog.
 */
#include "util/common.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int cur_level = LOG_LVL_WARN;
static bool use_syslog;
static bool verbose_format;

void log_set_level(enum log_level lvl)
{
	atomic_store(&cur_level, (int)lvl);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&cur_level);
}

void log_use_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

void log_set_verbose_format(bool on)
{
	verbose_format = on;
}

static const char *const level_names[] = { "ERROR", "WARN", "INFO", "DEBUG" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	char msg[2048];
	char line[2200];
	int n;

	if ((int)lvl > atomic_load(&cur_level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (use_syslog) {
		syslog(syslog_prio[lvl], "%s", msg);
		return;
	}
	if (verbose_format) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line),
			     "%04d-%02d-%02d %02d:%02d:%02d.%03ld %s %s\n",
			     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			     tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000, level_names[lvl], msg);
	} else {
		n = snprintf(line, sizeof(line), "tessera: %s\n", msg);
	}
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

int log_fail(int rc, const char *fmt, ...)
{
	char msg[1800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_LVL_ERROR, "%s: %s", msg, strerror(rc < 0 ? -rc : rc));
	return rc;
}
