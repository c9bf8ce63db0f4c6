/*
 * mkcorpus.c - writes the seed inputs of the fuzz targets that need real
 * encoded objects: frames (plain, lz4, zstd, sealed with the fuzz key), a
 * segment and a snapshot made by src/replicate/.  Each file starts with the
 * mode byte its target reads first (see the target's top comment).
 *
 * Usage: mkcorpus DIR   (writes DIR/frame/, DIR/repl_seg/, DIR/repl_snap/;
 * `make fuzz-corpus`).  Encrypted frames get a fresh nonce on every run.
 */
#include "util/common.h"
#include "object/frame.h"
#include "replicate/repl_int.h"

#include <stdio.h>
#include <unistd.h>

static int put_file(const char *dir, const char *sub, const char *name,
		    unsigned char mode, const void *data, size_t len)
{
	char path[512];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	ok = fwrite(&mode, 1, 1, f) == 1 &&
	     (len == 0 || fwrite(data, 1, len, f) == len);
	if (fclose(f) != 0 || !ok) {
		perror(path);
		return -1;
	}
	return 0;
}

static int frames(const char *dir)
{
	static const char text[] =
		"tessera block tessera block tessera block tessera block";
	struct frame_conf fc;
	struct buf out = BUF_INIT;
	int rc = 0;

	for (int m = 0; m < 8 && rc == 0; m++) {
		char name[32];
		int codec = m % 3, enc = m >= 4;
		unsigned char mode = (unsigned char)((codec << 4) | enc);

		memset(&fc, 0, sizeof(fc));
		fc.codec = codec;
		fc.encrypt = enc;
		for (int i = 0; enc && i < FRAME_KEY_LEN; i++)
			fc.key[i] = (unsigned char)(0xA5 ^ i);
		rc = frame_encode(&fc, text, m == 3 ? 0 : sizeof(text) - 1,
				  &out);
		snprintf(name, sizeof(name), "seed-%s%s%s",
			 frame_codec_name(codec), enc ? "-sealed" : "",
			 m == 3 ? "-empty" : "");
		if (rc == 0)
			rc = put_file(dir, "frame", name, mode, out.data,
				      out.len);
	}
	/* A round-trip seed: mode bit 2, flip offset 7, then the bytes. */
	if (rc == 0)
		rc = put_file(dir, "frame", "seed-roundtrip-zstd", 0x24,
			      "\x00\x07"
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			      34);
	buf_release(&out);
	return rc;
}

static int segment(const char *dir)
{
	struct repl_seg s;
	struct buf txn = BUF_INIT, out = BUF_INIT;
	int rc;

	repl_seg_init(&s);
	rc = repl_txn_start(&txn);
	if (rc == 0)
		rc = repl_txn_add(&txn, REPL_OP_PUT, KV_INODE,
				  "\0\0\0\0\0\0\0\1", 8, "attrs", 5);
	if (rc == 0)
		rc = repl_txn_add(&txn, REPL_OP_DEL, KV_DENTRY, "k", 1, NULL,
				  0);
	if (rc == 0)
		rc = repl_seg_append(&s, &txn, 2, 41);
	if (rc == 0)
		rc = repl_txn_start(&txn);
	if (rc == 0)
		rc = repl_txn_add(&txn, REPL_OP_PUT, KV_COUNTER, "replSeq", 7,
				  "\0\0\0\0\0\0\0\x2a", 8);
	if (rc == 0)
		rc = repl_seg_append(&s, &txn, 1, 42);
	if (rc == 0)
		rc = repl_seg_encode(&s, "00000000000000a1", &out);
	if (rc == 0)
		rc = put_file(dir, "repl_seg", "seed-2txn", 0, out.data,
			      out.len);
	/* The same without the trailer: the repairing mode's input. */
	if (rc == 0)
		rc = put_file(dir, "repl_seg", "seed-2txn-repair", 1, out.data,
			      out.len - REPL_SUM_LEN);
	buf_release(&txn);
	buf_release(&out);
	repl_seg_release(&s);
	return rc;
}

static int snapshot(const char *dir)
{
	char url[600], db[512];
	struct kv_engine *e = NULL;
	struct kv_txn *t = NULL;
	struct repl_snap_info info;
	struct buf out = BUF_INIT, raw = BUF_INIT;
	int rc;

	snprintf(db, sizeof(db), "/tmp/tessera-mkcorpus-%d.db", (int)getpid());
	snprintf(url, sizeof(url), "sqlite3://%s", db);
	rc = kv_open(url, true, &e);
	if (rc == 0)
		rc = kv_begin(e, true, &t);
	if (rc == 0)
		rc = kv_put(t, KV_COUNTER, "replSeq", 7, "\0\0\0\0\0\0\0\x2a",
			    8);
	if (rc == 0)
		rc = kv_put(t, KV_INODE, "\0\0\0\0\0\0\0\1", 8, "attrs", 5);
	if (rc == 0)
		rc = kv_put(t, KV_SYMLINK, "\0\0\0\0\0\0\0\2", 8, "/target", 7);
	if (rc == 0) {
		rc = kv_commit(t);
		t = NULL;
	}
	if (t)
		kv_rollback(t);
	if (rc == 0)
		rc = repl_snap_dump(e, "00000000000000a1", &out, &info);
	if (rc == 0)
		rc = put_file(dir, "repl_snap", "seed-3rec", 0, out.data,
			      out.len);
	/* Header and zstd body without the trailer: mode 1. */
	if (rc == 0)
		rc = put_file(dir, "repl_snap", "seed-3rec-zstd", 1, out.data,
			      out.len - REPL_SUM_LEN);
	/* Header and raw records (compressed by the target): mode 2. */
	if (rc == 0)
		rc = buf_append(&raw, out.data, REPL_SNAP_HDR);
	if (rc == 0)
		rc = buf_append(&raw,
				"\x03"
				"\x00\x01"
				"\x00\x00\x00\x01"
				"kv"
				"\x08"
				"\x00\x02"
				"\x00\x00\x00\x00"
				"ab",
				18);
	if (rc == 0) {
		put_be64((unsigned char *)raw.data + 24, 2); /* records */
		rc = put_file(dir, "repl_snap", "seed-2rec-raw", 2, raw.data,
			      raw.len);
	}
	kv_close(e);
	unlink(db);
	buf_release(&out);
	buf_release(&raw);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	if (frames(argv[1]) || segment(argv[1]) || snapshot(argv[1])) {
		fprintf(stderr, "mkcorpus: failed\n");
		return 1;
	}
	return 0;
}
