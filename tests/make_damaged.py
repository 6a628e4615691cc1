#!/usr/bin/env python3
"""Writes the corpus of tests/check_h5errors.sh: small problem files that HDF5 may fail to read.

usage: make_damaged.py DIR COUNT [SEED]
       make_damaged.py --break-checkpoint CHECKPOINT   (its /f made unreadable: a gzip chunk of garbage)

DIR/dense.h5        a dense problem: C (24 x 18, costs in [0, 1)), a, b (positive, equal masses)
DIR/points.h5       a point-cloud problem: X (30 x 3), Y (20 x 3), a, b
DIR/*_gzip.h5       the same data, every dataset chunked with shuffle + gzip (must solve as the plain file)
DIR/*_lzf.h5        the same data, every dataset chunked with h5py's lzf filter (HDF5 itself cannot decode it)
DIR/partial_*.h5    dense.h5 with the rows of only the last of 3 ranks unreadable: contiguous C running past the end of
                    the file (partial_contiguous), a garbage gzip chunk (partial_gzip), the address of a chunk (not
                    compressed) past the end (partial_address)
DIR/damaged_K.h5    K = 0 .. COUNT-1: copies of dense, points, dense_gzip, points_gzip in turn, damaged from
                    a generator seeded by (SEED, K): random byte ranges overwritten, or the file cut short, or both
DIR/damaged.txt     one line per damaged copy: name, source file, what was done to it
DIR/dense_blosc.h5  dense.h5 with C under an optional filter HDF5 lacks (32001, blosc) that the writer skipped
DIR/dense_blosc_mandatory.h5  the same with the filter mandatory: no read can skip it
DIR/measure_*.h5    -pairs measure files (X, a): good, lzf-compressed, with the data of X overwritten by
                    an unreadable gzip stream
The sizes are chosen so that 3 ranks each read several rows; the files are a few kilobytes.
"""
import re
import struct
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

    # multiples of 1/16 (mantissas mostly zero bytes), so that lzf does compress every chunk (it stores a chunk that it
    # cannot shrink as is, marked unfiltered, and HDF5 reads that one without the filter)
    n, m = 24, 18
    dense = {"C": rng.integers(0, 16, (n, m)) / 16, "a": rng.integers(8, 16, n) / 16, "b": rng.integers(8, 16, m) / 16}
    dense["b"] *= dense["a"].sum() / dense["b"].sum()
    points = {"X": rng.integers(0, 16, (30, 3)) / 16, "Y": rng.integers(4, 20, (20, 3)) / 16, "a": np.full(30, 1 / 30), "b": np.full(20, 1 / 20)}
    for name, datasets in (("dense", dense), ("points", points)):
        write_problem("%s/%s.h5" % (directory, name), datasets)
        write_problem("%s/%s_gzip.h5" % (directory, name), datasets, compression="gzip", compression_opts=4, shuffle=True)
        write_problem("%s/%s_lzf.h5" % (directory, name), datasets, compression="lzf")
        with h5py.File("%s/%s_lzf.h5" % (directory, name), "r") as f:
            assert all(f[k].id.get_storage_size() < datasets[k].nbytes for k in datasets), "lzf left a dataset uncompressed"

    # damage that only some ranks meet: the rows of the last of 3 chunks of C (rank 2's of 3) unreadable
    plain = "%s/dense.h5" % directory
    with h5py.File(plain, "r") as f:
        offset, size = f["C"].id.get_offset(), f["C"].id.get_storage_size()
    data = bytearray(open(plain, "rb").read())
    at = data.find(struct.pack("<QQ", offset, size))  # the layout message: address and size of the contiguous data
    assert at > 0 and data.count(struct.pack("<QQ", offset, size)) == 1
    data[at:at + 8] = struct.pack("<Q", len(data) - size // 3)  # the last third of C past the end of the file
    open("%s/partial_contiguous.h5" % directory, "wb").write(data)
    for name, how in (("partial_gzip", "garbage"), ("partial_address", "address")):
        path = "%s/%s.h5" % (directory, name)
        write_problem(path, dense, compression="gzip" if how == "garbage" else None)  # chunks of 8 rows
        with h5py.File(path, "r") as f:
            offset = f["C"].id.get_chunk_info(2).byte_offset
        data = bytearray(open(path, "rb").read())
        if how == "garbage":  # the chunk's gzip stream
            data[offset:offset + 16] = b"\xff" * 16
        else:  # the chunk's address in the B-tree, far past the end of the file
            at = data.find(struct.pack("<Q", offset))
            assert at > 0 and data.count(struct.pack("<Q", offset)) == 1
            data[at:at + 8] = struct.pack("<Q", 10**9)
        open(path, "wb").write(data)

    # C under filter 32001 (blosc), which neither h5py nor HDF5 has here, set optional: the writer skipped it, so the
    # chunks are plain and serial HDF5 reads them; otsolve either solves it or names the filter
    with h5py.File("%s/dense_blosc.h5" % directory, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((8, m))
        dcpl.set_filter(32001, h5py.h5z.FLAG_OPTIONAL, (2, 2, 8, 0, 4, 1, 1))
        space = h5py.h5s.create_simple((n, m))
        h5py.h5d.create(f.id, b"C", h5py.h5t.IEEE_F64LE, space, dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, dense["C"])
        f["a"], f["b"] = dense["a"], dense["b"]
    # the same filter made mandatory (its flags in the pipeline message: id 32001, name length 0, flags 1 -> 0, 7 values)
    data = bytearray(open("%s/dense_blosc.h5" % directory, "rb").read())
    at = [m.start() for m in re.finditer(rb"\x01\x7d\x00\x00\x01\x00\x07\x00", bytes(data))]
    assert len(at) == 1, "the pipeline message of dense_blosc.h5 was not found"
    data[at[0] + 4] = 0
    open("%s/dense_blosc_mandatory.h5" % directory, "wb").write(data)

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
