/*
 * cli_metrics.c - a mount's Prometheus /metrics page.
 *
 * One source of numbers: the ".stats" lines of the mount (vfs counters,
 * cache, replication), renamed and typed by the table below, then the
 * series that only exist as histograms or with labels: FUSE operations
 * (fuse/loop.c) and object-store requests (object/object.c).
 */
#include "util/common.h"
#include "cli/cli.h"
#include "fuse/fsop.h"
#include "object/object.h"
#include "util/buf.h"
#include "util/httpd.h"
#include "vfs/vfs.h"

#include <inttypes.h>

struct prom_map {
	const char *key;  /* the ".stats" name */
	const char *name; /* tessera_... */
	bool counter;	  /* else gauge */
	double scale;	  /* value * scale (0: 1) */
	const char *help;
};

static const struct prom_map prom_maps[] = {
	{"uptime_s", "tessera_uptime_seconds", false, 0,
	 "Seconds since the mount started."},
	{"open_inodes", "tessera_open_files", false, 0,
	 "Files with open handles or buffered data."},
	{"handles", "tessera_open_handles", false, 0, "Open file handles."},
	{"kernel_refs", "tessera_kernel_refs", false, 0,
	 "Inodes the kernel holds a reference to."},
	{"mem_used", "tessera_buffer_bytes", false, 0,
	 "Memory held by read and write buffers."},
	{"mem_limit", "tessera_buffer_limit_bytes", false, 0,
	 "Bound of the read and write buffers (--buffer-size)."},
	{"lookups", "tessera_lookups_total", true, 0, "Name lookups."},
	{"reads", "tessera_reads_total", true, 0, "Read requests."},
	{"read_bytes", "tessera_read_bytes_total", true, 0,
	 "Bytes read by applications."},
	{"writes", "tessera_writes_total", true, 0, "Write requests."},
	{"write_bytes", "tessera_write_bytes_total", true, 0,
	 "Bytes written by applications."},
	{"commits", "tessera_slice_commits_total", true, 0,
	 "Slices committed to the metadata."},
	{"fsyncs", "tessera_fsyncs_total", true, 0, "fsync requests."},
	{"compactions", "tessera_compactions_total", true, 0,
	 "Chunks compacted."},
	{"deleted_slices", "tessera_deleted_slices_total", true, 0,
	 "Slices whose objects were deleted."},
	{"block_fetches", "tessera_block_fetches_total", true, 0,
	 "Blocks fetched from the object store for reads."},
	{"block_prefetches", "tessera_block_prefetches_total", true, 0,
	 "Blocks fetched ahead of reads."},
	{"block_hits", "tessera_block_memory_hits_total", true, 0,
	 "Block reads served from memory."},
	{"ahead_blocks", "tessera_readahead_blocks_total", true, 0,
	 "Blocks requested by readahead."},
	{"meta_txns", "tessera_meta_transactions_total", true, 0,
	 "Metadata transactions committed."},
	{"meta_retries", "tessera_meta_conflicts_total", true, 0,
	 "Metadata transaction attempts retried after a conflict or a busy "
	 "engine."},
	{"cache_hits", "tessera_cache_hits_total", true, 0,
	 "Block reads served by the local disk cache."},
	{"cache_hit_bytes", "tessera_cache_hit_bytes_total", true, 0,
	 "Bytes served by the local disk cache."},
	{"cache_misses", "tessera_cache_misses_total", true, 0,
	 "Block reads the local disk cache did not have."},
	{"cache_writes", "tessera_cache_writes_total", true, 0,
	 "Blocks written to the local disk cache."},
	{"cache_write_bytes", "tessera_cache_write_bytes_total", true, 0,
	 "Bytes written to the local disk cache."},
	{"cache_drops", "tessera_cache_drops_total", true, 0,
	 "Blocks not cached because the cache queue was full."},
	{"cache_evictions", "tessera_cache_evictions_total", true, 0,
	 "Blocks evicted from the local disk cache."},
	{"cache_evicted_bytes", "tessera_cache_evicted_bytes_total", true, 0,
	 "Bytes evicted from the local disk cache."},
	{"cache_corrupt", "tessera_cache_corrupt_total", true, 0,
	 "Cached blocks found corrupt and dropped."},
	{"cache_used_bytes", "tessera_cache_bytes", false, 0,
	 "Bytes in the local disk cache."},
	{"cache_blocks", "tessera_cache_blocks", false, 0,
	 "Blocks in the local disk cache."},
	{"cache_staged", "tessera_uploads_pending", false, 0,
	 "Blocks staged by write-back and not uploaded yet."},
	{"cache_staged_bytes", "tessera_uploads_pending_bytes", false, 0,
	 "Bytes staged by write-back and not uploaded yet."},
	{"cache_uploads", "tessera_staged_uploads_total", true, 0,
	 "Staged blocks uploaded."},
	{"fuse_uring", "tessera_fuse_uring", false, 0,
	 "1 when requests come over FUSE io_uring."},
	{"replicated", "tessera_replicated", false, 0,
	 "1 when the metadata is replicated into the object store."},
	{"repl_committed_txn", "tessera_replication_committed_txn", false, 0,
	 "Last metadata transaction committed locally."},
	{"repl_shipped_txn", "tessera_replication_shipped_txn", false, 0,
	 "Last metadata transaction stored in the object store."},
	{"repl_lag_ms", "tessera_replication_lag_seconds", false, 0.001,
	 "Age of the oldest metadata transaction not yet stored."},
	{"repl_pending_bytes", "tessera_replication_pending_bytes", false, 0,
	 "Encoded metadata changes not yet stored."},
	{"repl_lease_lost", "tessera_replication_lease_lost", false, 0,
	 "1 when another host took the volume's lease."},
	{"repl_segments_shipped", "tessera_replication_segments_total", true, 0,
	 "Replication segments stored by this mount."},
	{"repl_snapshots_shipped", "tessera_replication_snapshots_total", true,
	 0, "Metadata snapshots stored by this mount."},
};

static int prom_line(struct buf *b, const char *key, const char *val)
{
	char *end;
	double d;

	for (size_t i = 0; i < ARRAY_SIZE(prom_maps); i++) {
		const struct prom_map *p = &prom_maps[i];

		if (strcmp(p->key, key) != 0)
			continue;
		d = strtod(val, &end);
		if (end == val || *end)
			return 0;
		if (p->scale)
			d *= p->scale;
		return buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
				   p->name, p->help, p->name,
				   p->counter ? "counter" : "gauge", p->name,
				   d);
	}
	return 0;
}

int cli_metrics_render(struct vfs *v, const char *volume, struct buf *b)
{
	struct buf st = BUF_INIT;
	char *save = NULL;
	int rc = vfs_stats_text(v, &st);

	if (rc == 0)
		rc = buf_appendf(b,
				 "# HELP tessera_build_info Version of the "
				 "mount and its volume.\n"
				 "# TYPE tessera_build_info gauge\n"
				 "tessera_build_info{version=\"%s\",volume=\"%s\"} 1\n",
				 TESSERA_VERSION, volume);
	for (char *l = st.data ? strtok_r(st.data, "\n", &save) : NULL;
	     l && rc == 0; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');

		if (!sp || strchr(sp + 1, ' '))
			continue; /* not "name value" */
		*sp = '\0';
		rc = prom_line(b, l, sp + 1);
	}
	buf_release(&st);
	if (rc == 0)
		rc = fsop_op_metrics_prom(b);
	if (rc == 0)
		rc = obj_metrics_text(b, true);
	return rc;
}
