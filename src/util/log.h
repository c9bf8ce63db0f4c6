/*
 * log.h - leveled logging to stderr, or to syslog once daemonized.
 *
 * Levels: ERROR (an operation failed), WARN (degraded, retrying), INFO
 * (lifecycle), DEBUG (per request).  Messages are lower-case, without a final
 * period, and never contain secrets: pass URLs through url_redact() first.
 * Any thread may log; each message is written with one write call.
 */
#ifndef TESSERA_UTIL_LOG_H
#define TESSERA_UTIL_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN = 1,
	LOG_LVL_INFO = 2,
	LOG_LVL_DEBUG = 3,
};

/** Set the most verbose level written (startup only). */
void log_set_level(enum log_level lvl);

/** Current level; check before formatting expensive DEBUG lines. */
enum log_level log_get_level(void);

/** Send further messages to syslog with this ident (startup only). */
void log_use_syslog(const char *ident);

/** Prefix stderr lines with a timestamp and level (the mount does). */
void log_set_verbose_format(bool on);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                   \
	do {                                                             \
		if (log_get_level() >= LOG_LVL_DEBUG)                    \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);             \
	} while (0)

/**
 * Log at ERROR "<message>: <strerror(-rc)>" and return rc unchanged, so a
 * failure is reported once where the detail is: `return log_fail(rc, ...)`.
 */
int log_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
