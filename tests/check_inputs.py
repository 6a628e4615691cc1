#!/usr/bin/python3
"""Datasets anywhere in HDF5 files (-problem_cost, -problem_x, -problem_y, -problem_a, -problem_b, FILE:/path lines
in -pairs lists), against POT computed here from the same arrays, independently of otsolve.

usage: check_inputs.py BUILD NP

Cases (each solved by otsolve on NP ranks, its result file read back with h5py):
 - a dense cost matrix and weights inside groups of one file (float32 costs, gzip + shuffle);
 - point clouds X and Y from two different files, in groups, with weights from a third file;
 - a problem file whose /a is replaced by -problem_a from another file;
 - two AnnData files written by anndata (cells' coordinates in /obsm/X_pca, float32; weights from the /obs column
   "weight", the two masses different, so -ot_normalize), as one solve and as a -pairs list;
each against POT's ot.sinkhorn (log domain, marginal error 1e-13) on the same data: transport cost to 1e-8 relative,
and POT's exact ot.emd2 inside otsolve's certified bounds. Then bad input, each a clear error on every rank (exit 1,
the message checked, no result written): a missing dataset in a group, X without Y, -problem_cost with -problem_x,
weights of the wrong length, an -output that is one of the input files (AnnData file left intact), a bad -pairs line.
"""
import hashlib
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import ot

EPS = 0.5
TOL = 1e-11


def pot_cost(a, b, M, eps=EPS):
    a = a / a.sum()
    b = b / b.sum()
    P = ot.sinkhorn(a, b, M, eps, method="sinkhorn_log", stopThr=1e-13, numItermax=200000)
    return float((P * M).sum()), float(ot.emd2(a, b, M, numItermax=10000000))


def run(build, np_, args, expect_status=0):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve")] + args
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != expect_status:
        print("FAIL exit %d (expected %d): %s\n%s%s" % (p.returncode, expect_status, " ".join(args), p.stdout, p.stderr))
        sys.exit(1)
    return p.stdout + p.stderr


failures = []


def check(ok, what):
    print("%s %s" % ("ok  " if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def compare(result, a, b, M, what):
    ref, emd = pot_cost(a, b, M)
    with h5py.File(result, "r") as f:
        cost = float(f.attrs["transport_cost"])
        lower, upper = float(f.attrs["lower_bound"]), float(f.attrs["upper_bound"])
        converged = int(f.attrs["converged"])
    rel = abs(cost - ref) / ref
    check(converged == 1 and rel < 1e-8 and lower <= emd * (1 + 1e-9) and emd <= upper * (1 + 1e-9),
          "%s: transport_cost %.15g, POT %.15g (rel. %.1e); emd2 %.10g in [%.10g, %.10g]" % (what, cost, ref, rel, emd, lower, upper))
    return cost


def make_anndata(d, rng):
    import warnings

    warnings.simplefilter("ignore")
    import anndata
    import pandas as pd

    data = []
    for t, (n, shift) in enumerate([(300, 0.0), (250, 0.6)]):
        genes = rng.normal(size=(n, 12)).astype(np.float32)
        obs = pd.DataFrame({"weight": rng.uniform(0.5, 2.0, n), "n_genes": rng.integers(100, 1000, n), "cluster": pd.Categorical(rng.choice(["a", "b"], n))},
                           index=["c%d" % i for i in range(n)])
        adata = anndata.AnnData(X=genes, obs=obs)
        adata.obsm["X_pca"] = (rng.normal(size=(n, 5)) + shift).astype(np.float32)
        path = os.path.join(d, "t%d.h5ad" % t)
        adata.write_h5ad(path)
        data.append((adata.obsm["X_pca"].astype(np.float64), obs["weight"].to_numpy(), obs["n_genes"].to_numpy()))
    return data


def main():
    build, np_ = sys.argv[1], int(sys.argv[2])
    d = tempfile.mkdtemp(prefix="otsolve_inputs_")
    rng = np.random.default_rng(7)
    common = ["-ot_eps", str(EPS), "-ot_tol", str(TOL)]

    # 1. a dense cost matrix and its weights inside groups of one file
    n, m = 40, 30
    M = rng.uniform(0.0, 3.0, size=(n, m))
    a, b = rng.uniform(0.5, 1.5, n), rng.uniform(0.5, 1.5, m)
    a /= a.sum()
    b /= b.sum()
    with h5py.File(os.path.join(d, "grouped.h5"), "w") as f:
        f.create_dataset("data/costs/C", data=M.astype(np.float32), compression="gzip", shuffle=True, chunks=(7, 30))
        f["weights/a"], f["weights/b"] = a, b
    out = os.path.join(d, "r1.h5")
    run(build, np_, ["-problem_cost", d + "/grouped.h5:/data/costs/C", "-problem_a", d + "/grouped.h5:/weights/a", "-problem_b", d + "/grouped.h5:/weights/b",
                     "-output", out] + common)
    compare(out, a, b, M.astype(np.float32).astype(np.float64), "dense /data/costs/C in a group (float32, gzip), weights in /weights")

    # 2. X and Y from two files, in groups, weights from a third
    X, Y = rng.normal(size=(70, 3)), rng.normal(size=(55, 3)) + 0.3
    wa, wb = rng.uniform(0.5, 1.5, 70), rng.uniform(0.5, 1.5, 55)
    wa, wb = wa / wa.sum(), wb / wb.sum()
    with h5py.File(os.path.join(d, "first.h5"), "w") as f:
        f["run/points"] = X
    with h5py.File(os.path.join(d, "second.h5"), "w") as f:
        f["run/points"] = Y
    with h5py.File(os.path.join(d, "weights.h5"), "w") as f:
        f["x/w"], f["y/w"] = wa, wb
    out = os.path.join(d, "r2.h5")
    run(build, np_, ["-problem_x", d + "/first.h5:/run/points", "-problem_y", d + "/second.h5:/run/points", "-problem_a", d + "/weights.h5:/x/w",
                     "-problem_b", d + "/weights.h5:/y/w", "-output", out] + common)
    compare(out, wa, wb, ot.dist(X, Y), "X and Y from two files, weights from a third")

    # 3. a problem file, its /a replaced by -problem_a from another file
    with h5py.File(os.path.join(d, "pair.h5"), "w") as f:
        f["X"], f["Y"], f["a"] = X, Y, np.full(70, 1.0 / 70)
        f.attrs["cost"] = "euclidean"
    out = os.path.join(d, "r3.h5")
    run(build, np_, ["-problem", d + "/pair.h5", "-problem_a", d + "/weights.h5:/x/w", "-ot_normalize", "-output", out] + common)
    compare(out, wa, np.full(55, 1.0), ot.dist(X, Y, metric="euclidean"), "-problem pair.h5 (euclidean) with -problem_a from another file")

    # 4. AnnData: one solve, and a -pairs list of FILE:/path lines with weights
    (X0, w0, c0), (X1, w1, c1) = make_anndata(d, rng)
    t0, t1 = d + "/t0.h5ad", d + "/t1.h5ad"
    out = os.path.join(d, "r4.h5")
    text = run(build, np_, ["-problem_x", t0 + ":/obsm/X_pca", "-problem_y", t1 + ":/obsm/X_pca", "-problem_a", t0 + ":/obs/weight",
                            "-problem_b", t1 + ":/obs/weight", "-ot_normalize", "-output", out] + common)
    check("total masses differ" in text, "AnnData: the different masses are reported with -ot_normalize")
    single = compare(out, w0, w1, ot.dist(X0, X1), "AnnData t0.h5ad:/obsm/X_pca vs t1.h5ad:/obsm/X_pca, weights /obs/weight")
    out = os.path.join(d, "r5.h5")
    run(build, np_, ["-problem_x", t0 + ":/obsm/X_pca", "-problem_y", t1 + ":/obsm/X_pca", "-problem_a", t0 + ":/obs/n_genes",
                     "-problem_b", t1 + ":/obs/n_genes", "-ot_normalize", "-output", out] + common)
    compare(out, c0.astype(np.float64), c1.astype(np.float64), ot.dist(X0, X1), "AnnData, weights from the integer column /obs/n_genes (counts)")
    with open(os.path.join(d, "list.txt"), "w") as f:
        f.write("# two time points\n%s:/obsm/X_pca %s:/obs/weight\n%s:/obsm/X_pca\t%s:/obs/weight\n%s:/obsm/X_pca\n" % (t0, t0, t1, t1, t0))
    out = os.path.join(d, "pairs.h5")
    run(build, np_, ["-pairs", d + "/list.txt", "-ot_normalize", "-output", out] + common)
    with h5py.File(out, "r") as f:
        D = f["transport_cost"][:]
        files = [s.decode() for s in f["files"][:]]
    uniform, _ = pot_cost(w0, np.ones(len(w0)), ot.dist(X0, X0))
    check(abs(D[0, 1] - single) <= 1e-10 * single and abs(D[0, 2] - uniform) <= 1e-8 * uniform and files[2] == t0 + ":/obsm/X_pca",
          "-pairs with FILE:/path lines: D[0,1] %.15g = the single solve, D[0,2] %.12g = POT %.12g (uniform weights)" % (D[0, 1], D[0, 2], uniform))

    # 5. bad input: one clear message on every rank, exit 1, nothing written
    digest = hashlib.sha256(open(t1, "rb").read()).hexdigest()
    bad = os.path.join(d, "bad.h5")
    cases = [
        (["-problem_cost", d + "/grouped.h5:/data/costs/D"], "grouped.h5: dataset /data/costs/D is missing"),
        (["-problem_cost", d + "/grouped.h5:/nogroup/C"], "grouped.h5: dataset /nogroup/C is missing"),
        (["-problem_x", t0 + ":/obsm/X_pca"], "-problem_x is given but not -problem_y"),
        (["-problem_cost", d + "/grouped.h5:/data/costs/C", "-problem_x", t0 + ":/obsm/X_pca"], "-problem_cost and -problem_x/-problem_y exclude each other"),
        (["-problem_x", t0 + ":/obsm/X_pca", "-problem_y", t1 + ":/obsm/X_pca", "-problem_a", t1 + ":/obs/weight"],
         "t1.h5ad: dataset /obs/weight has length 250; expected 300 to match the points of /obsm/X_pca"),
        (["-problem_x", t0 + ":/obsm/X_pca", "-problem_y", t1 + ":/obs/cluster"], "t1.h5ad: /obs/cluster is not a dataset"),
        (["-problem_x", t0 + ":/obsm/X_pca", "-problem_y", t1 + ":/obsm/X_pca", "-output", t1],
         "-output %s and -problem_y %s:/obsm/X_pca are the same file" % (t1, t1)),
        (["-problem_cost", d + "/grouped.h5:/data/costs/C", "-problem_points_cost", "euclidean"], "-problem_points_cost euclidean applies to point clouds"),
    ]
    with open(os.path.join(d, "bad.txt"), "w") as f:
        f.write("%s:/obsm/X_pca %s:/obs/nothing\n%s\n" % (t0, t0, d + "/pair.h5"))
    cases.append((["-pairs", d + "/bad.txt"], "-pairs: %s: no dataset /obs/nothing (the measure's weights, one per point)" % t0))
    for args, message in cases:
        if "-output" not in args:
            args = args + ["-output", bad]
        text = run(build, np_, args, expect_status=1)
        check(message in text and text.count("otsolve: error:") == 1 and not os.path.exists(bad), "refused %s: %s" % (" ".join(args[:2]), message))
    check(hashlib.sha256(open(t1, "rb").read()).hexdigest() == digest, "the AnnData file named as -output is unchanged")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
