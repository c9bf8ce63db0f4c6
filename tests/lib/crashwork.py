#!/usr/bin/env python3
"""tests/lib/crashwork.py - workloads of the crash-point test (0160).

  crashwork.py run POINT MNT MANIFEST   drive MNT until POINT is passed
  crashwork.py noop MNT MANIFEST        every workload on one mount

MANIFEST (text, rewritten whole after each step) has a line "RULE SHA256
NAME" per file, SHA256 "-" for a file that must not exist: RULE "exact" -
the file has exactly these bytes; "either" - missing, empty or exactly
these bytes (the step was cut by the crash before anything promised it).
0160 checks it after the remount.  A step is written down only once its
promise holds: after fsync returned, or (a process crash loses no
committed transaction) before the call that commits it and then crashes
inside it.  Files are small: the test volume has 64 KiB blocks, so each
fits one block.

run exits 0 when the last step failed because the mount died under it (or
returned), 1 when an earlier step failed.
"""
import hashlib
import os
import random
import sys


def data(name, size):
    return random.Random(name).randbytes(size)


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Work:
    def __init__(self, mnt, manifest):
        self.mnt, self.path, self.m = mnt, manifest, {}

    def note(self, name, rule, content):
        self.m[name] = (rule, "-" if content is None else sha(content))
        with open(self.path + ".tmp", "w") as f:
            for n, (r, h) in sorted(self.m.items()):
                f.write("%s %s %s\n" % (r, h, n))
        os.rename(self.path + ".tmp", self.path)

    def p(self, name):
        return os.path.join(self.mnt, name)

    def fsynced(self, name, content):
        with open(self.p(name), "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        self.note(name, "exact", content)

    def closed(self, name, content, fsync=False):
        with open(self.p(name), "wb") as f:
            f.write(content)
            f.flush()
            if fsync:
                os.fsync(f.fileno())

    def slices(self, name):
        """A file of 7 slices in one chunk, each step fsynced."""
        buf = bytearray(data(name, 32768))
        self.fsynced(name, bytes(buf))
        fd = os.open(self.p(name), os.O_WRONLY)
        try:
            for k in range(6):
                piece = data(name + str(k), 512)
                off = k * 5000 + 77
                os.pwrite(fd, piece, off)
                os.fsync(fd)
                buf[off:off + len(piece)] = piece
                self.note(name, "exact", bytes(buf))
        finally:
            os.close(fd)


# Each workload: (steps before the crash step, the crash step).  The point
# is armed with :2 where the first steps pass it once.
def w_write_uncommitted(w):   # write.block_uploaded:2, write.before_commit:2
    w.fsynced("a", data("a", 10000))
    w.note("b", "either", data("b", 12000))
    return lambda: w.closed("b", data("b", 12000))


def w_write_committed(w):     # write.after_commit:2
    w.fsynced("a", data("a", 10000))
    w.note("b", "exact", data("b", 12000))
    return lambda: w.closed("b", data("b", 12000))


def w_fsync(w):               # fsync.before_sync:2, fsync.after_sync:2
    w.fsynced("a", data("a", 10000))
    w.note("b", "exact", data("b", 12000))
    return lambda: w.closed("b", data("b", 12000), fsync=True)


def w_compact(w):             # compact.*: a read meeting 7 slices
    w.fsynced("a", data("a", 10000))
    w.slices("c")

    def read():
        with open(w.p("c"), "rb") as f:
            f.read()
    return read


def w_delete(w):              # delete.*: the worker deletes d's block
    w.fsynced("a", data("a", 10000))
    w.fsynced("d", data("d", 20000))

    def rm():
        os.unlink(w.p("d"))
        w.note("d", "exact", None)   # committed before the crash
    return rm


def w_rename_before(w):       # rename.before_commit: nothing moved
    w.fsynced("a", data("a", 10000))
    w.fsynced("t", data("t", 9000))
    return lambda: os.rename(w.p("a"), w.p("t"))


def w_rename_after(w):        # rename.after_commit: a replaced t
    w.fsynced("a", data("a", 10000))
    w.fsynced("t", data("t", 9000))
    w.note("a", "exact", None)
    w.note("t", "exact", data("a", 10000))
    return lambda: os.rename(w.p("a"), w.p("t"))


def w_stage_upload(w):        # stage.after_upload: run before the armed mount
    w.fsynced("a", data("a", 10000))
    return None


WORK = {
    "write.block_uploaded": w_write_uncommitted,
    "write.before_commit": w_write_uncommitted,
    "write.after_commit": w_write_committed,
    "fsync.before_sync": w_fsync,
    "fsync.after_sync": w_fsync,
    "compact.after_upload": w_compact,
    "compact.after_swap": w_compact,
    "delete.before_store": w_delete,
    "delete.after_store": w_delete,
    "rename.before_commit": w_rename_before,
    "rename.after_commit": w_rename_after,
    "stage.after_write": w_write_uncommitted,
    "stage.after_upload": w_stage_upload,
}


def run(point, mnt, manifest):
    w = Work(mnt, manifest)
    last = WORK[point](w)
    if last is None:
        return 0
    try:
        last()
    except OSError as e:
        print("last step of %s cut by the crash: %s" % (point, e))
    return 0


def noop(mnt, manifest):
    """Every workload on one mount, in a directory each: nothing dies."""
    for point, fn in sorted(WORK.items()):
        d = os.path.join(mnt, point)
        os.mkdir(d)
        last = fn(Work(d, manifest))
        if last:
            last()
    print("ran %d workloads" % len(WORK))
    return 0


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "run":
        sys.exit(run(sys.argv[2], sys.argv[3], sys.argv[4]))
    if mode == "noop":
        sys.exit(noop(sys.argv[2], sys.argv[3]))
    sys.exit("unknown mode %r" % mode)
