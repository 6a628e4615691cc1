#!/usr/bin/env python3
"""Writes the corpus of tests/check_h5errors.sh: small problem files that HDF5 may fail to read.

usage: make_damaged.py DIR COUNT [SEED]
       make_damaged.py --break-checkpoint CHECKPOINT   (its /f made unreadable: a gzip chunk of garbage)

DIR/dense.h5        a dense problem: C (24 x 18, costs in [0, 1)), a, b (positive, equal masses)
DIR/points.h5       a point-cloud problem: X (30 x 3), Y (20 x 3), a, b
DIR/*_gzip.h5       the same data, every dataset chunked with shuffle + gzip (must solve as the plain file)
DIR/*_lzf.h5        the same data, every dataset chunked with h5py's lzf filter (HDF5 itself cannot decode it)
DIR/damaged_K.h5    K = 0 .. COUNT-1: copies of dense, points, dense_gzip, points_gzip in turn, damaged from
                    a generator seeded by (SEED, K): random byte ranges overwritten, or the file cut short, or both
DIR/damaged.txt     one line per damaged copy: name, source file, what was done to it
DIR/dense_blosc.h5  dense.h5 with C under an optional filter HDF5 lacks (32001, blosc) that the writer skipped
DIR/measure_*.h5    -pairs measure files (X, a): good, lzf-compressed, with the data of X overwritten by
                    an unreadable gzip stream
The sizes are chosen so that 3 ranks each read several rows; the files are a few kilobytes.
"""
import sys

import h5py
import numpy as np


def write_problem(path, datasets, **create):
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            if create:
                f.create_dataset(name, data=value, chunks=(min(8, value.shape[0]),) + value.shape[1:], **create)
            else:
                f[name] = value


def damage(data, rng):
    """A copy of the bytes data with random byte ranges overwritten, or cut short, or both; and what was done."""
    out = bytearray(data)
    kind = rng.choice(3, p=[0.7, 0.15, 0.15])  # 0 overwrite, 1 truncate, 2 both (a cut file mostly fails to open)
    done = []
    if kind in (0, 2):
        for _ in range(int(rng.integers(1, 5))):
            length = int(rng.integers(1, 65))
            start = int(rng.integers(0, len(out) - length))
            out[start:start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
            done.append("overwrote %d bytes at %d" % (length, start))
    if kind in (1, 2):
        keep = int(rng.integers(len(out) // 4, len(out)))
        del out[keep:]
        done.append("cut to %d of %d bytes" % (keep, len(data)))
    return bytes(out), "; ".join(done)


def break_checkpoint(path):
    """Rewrites /f of an otsolve checkpoint as one gzip chunk whose stream is garbage (the metadata stay readable)."""
    with h5py.File(path, "r+") as f:
        values = f["f"][()]
        del f["f"]
        f.create_dataset("f", data=values, chunks=values.shape, compression="gzip")
        offset = f["f"].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 16)


def main():
    if sys.argv[1] == "--break-checkpoint":  # make_damaged.py --break-checkpoint CHECKPOINT
        break_checkpoint(sys.argv[2])
        return
    directory, count = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 2026
    rng = np.random.default_rng(seed)

    n, m = 24, 18
    dense = {"C": rng.random((n, m)), "a": rng.random(n) + 0.5, "b": rng.random(m) + 0.5}
    dense["b"] *= dense["a"].sum() / dense["b"].sum()
    points = {"X": rng.random((30, 3)), "Y": rng.random((20, 3)) + 0.3, "a": np.full(30, 1 / 30), "b": np.full(20, 1 / 20)}
    for name, datasets in (("dense", dense), ("points", points)):
        write_problem("%s/%s.h5" % (directory, name), datasets)
        write_problem("%s/%s_gzip.h5" % (directory, name), datasets, compression="gzip", compression_opts=4, shuffle=True)
        write_problem("%s/%s_lzf.h5" % (directory, name), datasets, compression="lzf")

    # C under filter 32001 (blosc), which neither h5py nor HDF5 has here, set optional: the writer skipped it, so the
    # chunks are plain and serial HDF5 reads them; otsolve either solves it or names the filter
    with h5py.File("%s/dense_blosc.h5" % directory, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((8, m))
        dcpl.set_filter(32001, h5py.h5z.FLAG_OPTIONAL, (2, 2, 8, 0, 4, 1, 1))
        space = h5py.h5s.create_simple((n, m))
        h5py.h5d.create(f.id, b"C", h5py.h5t.IEEE_F64LE, space, dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, dense["C"])
        f["a"], f["b"] = dense["a"], dense["b"]

    # measure files for -pairs
    for k in range(2):
        X = rng.random((12, 2)) + k
        write_problem("%s/measure_%d.h5" % (directory, k), {"X": X, "a": np.full(12, 1 / 12)})
    write_problem("%s/measure_lzf.h5" % directory, {"X": rng.random((12, 2)), "a": np.full(12, 1 / 12)}, compression="lzf")
    with h5py.File("%s/measure_broken.h5" % directory, "w") as f:  # a gzip chunk whose stream is garbage
        f.create_dataset("X", data=rng.random((12, 2)), chunks=(12, 2), compression="gzip")
        offset = f["X"].id.get_chunk_info(0).byte_offset
    with open("%s/measure_broken.h5" % directory, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 16)

    sources = ["dense", "points", "dense_gzip", "points_gzip"]
    originals = {s: open("%s/%s.h5" % (directory, s), "rb").read() for s in sources}
    with open("%s/damaged.txt" % directory, "w") as log:
        for k in range(count):
            source = sources[k % len(sources)]
            data, done = damage(originals[source], np.random.default_rng([seed, k]))
            with open("%s/damaged_%d.h5" % (directory, k), "wb") as f:
                f.write(data)
            log.write("damaged_%d.h5 %s.h5 %s\n" % (k, source, done))


if __name__ == "__main__":
    main()
