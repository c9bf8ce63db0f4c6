/*
 * metrics.h - latency histograms for the counters a mount exports
 * (".stats", Prometheus /metrics, `tessera stats`).
 *
 * A histogram is a fixed array of atomics: observing is three relaxed
 * additions, no lock, any thread.  The bucket bounds are the same for
 * every histogram (100 us .. 10 s), so they print as Prometheus
 * histograms without per-metric configuration.
 */
#ifndef TESSERA_UTIL_METRICS_H
#define TESSERA_UTIL_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

struct buf;

#define METRIC_BUCKETS 12

struct metric_hist {
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
	_Atomic uint64_t bucket[METRIC_BUCKETS]; /* not cumulative */
};

/* Upper bounds of the buckets, in seconds as printed ("0.0001" ...). */
extern const char *const metric_bucket_le[METRIC_BUCKETS];

void metric_observe(struct metric_hist *h, uint64_t ns);

/*
 * Append @h as the Prometheus series NAME_bucket{LABELS,le=..},
 * NAME_sum and NAME_count; @labels is `op="read"` or "" (no braces).
 */
int metric_hist_prom(struct buf *b, const char *name, const char *labels,
		     const struct metric_hist *h);

/* Monotonic nanoseconds. */
uint64_t metric_now_ns(void);

#endif
