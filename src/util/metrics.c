/*
 * metrics.c - latency histograms; see metrics.h.
 */
#include "util/common.h"
#include "util/metrics.h"
#include "util/buf.h"

#include <time.h>

static const uint64_t bound_ns[METRIC_BUCKETS - 1] = {
	100000ULL,    250000ULL,    1000000ULL,	  2500000ULL,
	10000000ULL,  25000000ULL,  100000000ULL, 250000000ULL,
	1000000000ULL, 2500000000ULL, 10000000000ULL,
};

const char *const metric_bucket_le[METRIC_BUCKETS] = {
	"0.0001", "0.00025", "0.001", "0.0025", "0.01", "0.025",
	"0.1",	  "0.25",    "1",     "2.5",	"10",	"+Inf",
};

uint64_t metric_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void metric_observe(struct metric_hist *h, uint64_t ns)
{
	int i = 0;

	while (i < METRIC_BUCKETS - 1 && ns > bound_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

int metric_hist_prom(struct buf *b, const char *name, const char *labels,
		     const struct metric_hist *h)
{
	const char *sep = *labels ? "," : "";
	uint64_t cum = 0;
	int rc = 0;

	/* The count printed is the +Inf bucket's, so that the two agree
	 * while observations go on. */
	for (int i = 0; i < METRIC_BUCKETS && rc == 0; i++) {
		cum += atomic_load_explicit(&h->bucket[i],
					    memory_order_relaxed);
		rc = buf_appendf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name,
				 labels, sep, metric_bucket_le[i],
				 (unsigned long long)cum);
	}
	if (rc == 0)
		rc = buf_appendf(
			b, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %llu\n", name,
			*labels ? "{" : "", labels, *labels ? "}" : "",
			(double)atomic_load_explicit(&h->sum_ns,
						     memory_order_relaxed) /
				1e9,
			name, *labels ? "{" : "", labels, *labels ? "}" : "",
			(unsigned long long)cum);
	return rc;
}
