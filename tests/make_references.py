#!/usr/bin/python3
"""Computes the reference values in tests/data/references.txt with POT, independently of otsolve.

Usage:  /usr/bin/python3 tests/make_references.py [--output FILE] [--time-limit S] OTGEN [LAUNCHER ...]

OTGEN is the built problem generator (e.g. build/otgen); LAUNCHER, if given, is the command that
starts it (e.g. mpiexec -n 1). For each case the script writes the problem with otgen into a
temporary directory, checks the file with h5py (shapes, dtypes, attributes, and for fmnist the
weights and costs recomputed from the IDX file; point clouds (mixture) have no /C: their costs are
computed here with numpy from /X, /Y and the attribute cost), then computes

  sinkhorn_cost = sum(G * C),  G = ot.bregman.sinkhorn_log(a, b, C, eps, stopThr=1e-13),
                  run until the marginal error |G1 - a|_1 + |G^T 1 - b|_1 < 1e-10 (numItermax is set
                  to what fits in --time-limit seconds, default 180; nan if that is not enough);
  emd_cost      = ot.emd2(a, b, C, numItermax=10**7)  (exact network simplex, unregularised),

all in float64. Must run under /usr/bin/python3 (Debian's python3-pot 0.8.2, python3-h5py).
"""
import argparse
import datetime
import gzip
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import time
import warnings

import h5py
import numpy as np
import ot

MARGINAL_TOL = 1e-10
STOP_THR = 1e-13
EMD_ITERMAX = 10**7
IDX_FILE = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

# name, otgen arguments, eps
CASES = [
    ("fmnist01_sq", "-gen_type fmnist -gen_images 0,1 -gen_ground sqeuclidean", 2e-3),
    ("fmnist01_l1", "-gen_type fmnist -gen_images 0,1 -gen_ground l1", 5e-3),
    ("gauss_rect", "-gen_type gaussian -gen_n 300 -gen_m 200 -gen_seed 3 -gen_weights random", 0.05),
    ("gauss_sq", "-gen_type gaussian -gen_n 500 -gen_m 500 -gen_seed 1", 0.01),
    ("random_small", "-gen_type random -gen_n 157 -gen_m 211 -gen_seed 7", 0.02),
    ("fmnist23_sq_smalleps", "-gen_type fmnist -gen_images 2,3", 2e-4),  # 1e-4 x max C (= 2)
    ("fmnist01_sq_smalleps", "-gen_type fmnist -gen_images 0,1 -gen_ground sqeuclidean", 2e-4),
    # the SNS paper's benchmark (n = 500, eta = 1/eps = 1200) and the Fashion-MNIST SNS cases
    ("random500", "-gen_type random -gen_n 500 -gen_m 500 -gen_seed 1", 1.0 / 1200),
    ("fmnist01_sq_3e-4", "-gen_type fmnist -gen_images 0,1 -gen_ground sqeuclidean", 3e-4),
    # fewer rows than ranks: on 4 ranks one rank owns no row
    ("random_tiny", "-gen_type random -gen_n 3 -gen_m 5 -gen_seed 11 -gen_weights random", 0.05),
    # point clouds /X, /Y (no /C): POT gets the cost matrix computed here with numpy from the points
    ("points2d_3000", "-gen_type mixture -gen_n 3000 -gen_m 3000 -gen_dim 2 -gen_seed 5", 0.01),
    ("points_euclidean", "-gen_type mixture -gen_n 400 -gen_m 300 -gen_dim 3 -gen_seed 6 -gen_cost euclidean -gen_weights random", 0.02),
    ("points_pnorm1.5", "-gen_type mixture -gen_n 350 -gen_m 450 -gen_dim 5 -gen_components 4 -gen_seed 7 -gen_cost pnorm:1.5", 0.02),
    ("points_tiny", "-gen_type mixture -gen_n 3 -gen_m 6 -gen_dim 2 -gen_seed 8 -gen_cost pnorm:1.5 -gen_weights random", 0.05),
]


def run_otgen(otgen, launcher, args, path):
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    cmd = launcher + [otgen] + shlex.split(args) + ["-gen_output", path]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.exists(path):
        sys.exit("make_references: %s failed (rc %d):\n%s%s" % (shlex.join(cmd), done.returncode, done.stdout, done.stderr))
    return done.stdout.strip()


def option(args, name, default):
    words = shlex.split(args)
    return words[words.index(name) + 1] if name in words else default


def point_costs(X, Y, cost):
    """The n x m costs of point clouds, computed with numpy: sum of squared differences over the coordinates
    in order, then sqrt (euclidean) or the power P/2 (pnorm:P)."""
    C = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    if cost == "euclidean":
        return np.sqrt(C)
    if cost.startswith("pnorm:"):
        return C ** (0.5 * float(cost[6:]))
    assert cost == "sqeuclidean", cost
    return C


def load_problem(path):
    with h5py.File(path, "r") as f:
        if "C" in f:
            C = f["C"][...].astype(np.float64)
        else:
            C = point_costs(f["X"][...], f["Y"][...], f.attrs.get("cost", "sqeuclidean"))
        n, m = C.shape
        a = f["a"][...].astype(np.float64) if "a" in f else np.full(n, 1.0 / n)
        b = f["b"][...].astype(np.float64) if "b" in f else np.full(m, 1.0 / m)
        return C, a, b, dict(f.attrs), {k: (f[k].shape, f[k].dtype) for k in f}


def fmnist_reference(i, j, ground):
    """a, b and C built straight from the IDX file, for checking otgen's fmnist output."""
    raw = np.frombuffer(gzip.open(IDX_FILE).read(), dtype=np.uint8)
    images = raw[16:].reshape(-1, 784).astype(np.float64)
    a = images[i] / 255 + 0.01
    b = images[j] / 255 + 0.01
    row, col = np.divmod(np.arange(784), 28)
    grid = np.stack([col / 27, row / 27], axis=1)
    diff = grid[:, None, :] - grid[None, :, :]
    C = (diff**2).sum(-1) if ground == "sqeuclidean" else np.abs(diff).sum(-1)
    return C, a / a.sum(), b / b.sum()


def check_file(name, args, path, otgen, launcher, tmpdir):
    """Checks one otgen file with h5py; returns a line of text describing what was checked."""
    C, a, b, attrs, datasets = load_problem(path)
    kind = option(args, "-gen_type", "gaussian")
    n, m = C.shape
    assert kind == "mixture" or datasets["C"][1] == np.float64, (name, datasets)
    assert "generator" in attrs and "seed" in attrs, (name, attrs)
    assert attrs["generator"].startswith("otgen " + kind), attrs["generator"]
    assert np.all(np.isfinite(C)) and C.min() >= 0, name
    if kind == "fmnist":
        i, j = (int(s) for s in option(args, "-gen_images", "0,1").split(","))
        ground = option(args, "-gen_ground", "sqeuclidean")
        C_ref, a_ref, b_ref = fmnist_reference(i, j, ground)
        assert (n, m) == (784, 784) and "a" in datasets and "b" in datasets, name
        assert abs(a.sum() - 1) < 1e-13 and abs(b.sum() - 1) < 1e-13, (a.sum(), b.sum())
        assert C.max() == 2.0, C.max()
        assert np.max(np.abs(C - C_ref)) < 1e-15 and np.max(np.abs(a - a_ref)) < 1e-16 and np.max(np.abs(b - b_ref)) < 1e-16, name
        return "fmnist %s images %d,%d: a, b, C match the IDX file; sum a - 1 = %.1e, sum b - 1 = %.1e, max C = %g" % (
            ground, i, j, a.sum() - 1, b.sum() - 1, C.max())
    expect_n, expect_m = int(option(args, "-gen_n", "1000")), int(option(args, "-gen_m", "1000"))
    assert (n, m) == (expect_n, expect_m), (name, n, m)
    if kind == "mixture":
        # points only; the same options with -gen_dense add /C, which must equal the costs numpy computes here
        d, cost = int(option(args, "-gen_dim", "2")), option(args, "-gen_cost", "sqeuclidean")
        assert "C" not in datasets and datasets["X"] == ((n, d), np.float64) and datasets["Y"] == ((m, d), np.float64), (name, datasets)
        assert attrs["cost"] == cost and attrs["cost_max"] == C.max(), (name, attrs, C.max())
        dense_path = os.path.join(tmpdir, name + "_dense.h5")
        run_otgen(otgen, launcher, args + " -gen_dense", dense_path)
        with h5py.File(dense_path, "r") as f:
            C_dense = f["C"][...]
        assert np.max(np.abs(C_dense - C)) <= 4e-16 * C.max(), name
        return "mixture %s d=%d: no /C; cost_max = max of numpy's costs = %.17g; -gen_dense /C equals them to %.1e" % (
            cost, d, C.max(), np.max(np.abs(C_dense - C)))
    weights = option(args, "-gen_weights", "uniform")
    assert (("a" in datasets) and ("b" in datasets)) == (weights == "random"), (name, datasets)
    if weights == "random":
        assert abs(a.sum() - 1) < 1e-13 and abs(b.sum() - 1) < 1e-13
        assert a.min() * n > 0.5 / 1.5 - 1e-12 and a.max() * n < 1.5 / 0.5 + 1e-12
    if kind == "random":
        assert C.max() < 1.0, name
        return "random: C in [%.3g, %.6g), mean %.4f, no /a /b" % (C.min(), C.max(), C.mean())
    # gaussian: the same options with -gen_points must give the same C, equal to |x - y|^2 / cost_scale
    assert C.max() == 1.0 and "cost_scale" in attrs, name
    points_path = os.path.join(tmpdir, name + "_points.h5")
    run_otgen(otgen, launcher, args + " -gen_points", points_path)
    with h5py.File(points_path, "r") as f:
        X, Y, C_points, scale = f["X"][...], f["Y"][...], f["C"][...], f.attrs["cost_scale"]
        assert f.attrs["cost"] == "sqeuclidean"
    dist2 = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    assert np.array_equal(C_points, C) and scale == attrs["cost_scale"] and dist2.max() == scale
    assert np.max(np.abs(C - dist2 / scale)) < 1e-15
    return "gaussian: max C = 1, C = |X - Y|^2 / cost_scale (cost_scale = %.6g) to %.1e, X mean %s, Y mean %s, weights %s" % (
        scale, np.max(np.abs(C - dist2 / scale)), np.round(X.mean(0), 2), np.round(Y.mean(0), 2), weights)


def sinkhorn_child(conn, a, b, C, eps, itermax, stop_thr):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        G, log = ot.bregman.sinkhorn_log(a, b, C, eps, numItermax=itermax, stopThr=stop_thr, log=True, warn=False)
        elapsed = time.perf_counter() - start
    err_rows = np.abs(G.sum(1) - a).sum()
    err_cols = np.abs(G.sum(0) - b).sum()
    conn.send(dict(cost=float(np.sum(G * C)), err_rows=float(err_rows), err_cols=float(err_cols), niter=int(log["niter"]) + 1,
                   last_err=float(log["err"][-1]), time=elapsed, warnings=[str(w.message) for w in caught]))
    conn.close()


def run_sinkhorn(a, b, C, eps, itermax, stop_thr, timeout):
    """One sinkhorn_log solve in a child process; None if it ran past timeout seconds."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=sinkhorn_child, args=(sender, a, b, C, eps, itermax, stop_thr))
    child.start()
    sender.close()
    result = receiver.recv() if receiver.poll(timeout) else None
    child.join(1 if result is None else None)
    if child.is_alive():  # out of time: stop the solve this script started
        child.terminate()
        child.join()
    if result is not None:
        result["itermax"] = itermax
    return result


def solve_sinkhorn(a, b, C, eps, time_limit):
    """sinkhorn_log to marginal error < MARGINAL_TOL; nan if that needs more than time_limit seconds.

    sinkhorn_log cannot be warm-started, so rather than rerunning it with ever larger numItermax,
    a short probe measures its speed and numItermax is set to what fits in time_limit; POT stops
    earlier on stopThr. The final marginal error is always reported, converged or not."""
    probe = run_sinkhorn(a, b, C, eps, 20, 0.0, time_limit)
    if probe is None:
        return float("nan"), dict(itermax=20, timed_out=True), time_limit
    seconds_per_iteration = probe["time"] / probe["niter"]
    itermax = max(1000, int((time_limit - probe["time"]) / seconds_per_iteration))
    result = run_sinkhorn(a, b, C, eps, itermax, STOP_THR, 1.5 * time_limit + 30)
    if result is None:
        return float("nan"), dict(itermax=itermax, timed_out=True), probe["time"]
    result["seconds_per_iteration"] = seconds_per_iteration
    converged = result["err_rows"] + result["err_cols"] < MARGINAL_TOL
    return (result["cost"] if converged else float("nan")), result, result["time"]


def solve_emd(a, b, C):
    start = time.perf_counter()
    cost, log = ot.emd2(a, b, C, numItermax=EMD_ITERMAX, log=True)
    elapsed = time.perf_counter() - start
    u, v = log["u"], log["v"]
    dual = float(a @ u + b @ v)
    violation = float(np.max(u[:, None] + v[None, :] - C))
    return float(cost), elapsed, log["warning"], dual, violation


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--output", default=os.path.join(here, "data", "references.txt"))
    parser.add_argument("--time-limit", type=float, default=180.0, help="seconds allowed to each sinkhorn_log case")
    parser.add_argument("--only", default="", help="comma-separated case names: compute just these and print their lines")
    parser.add_argument("otgen")
    parser.add_argument("launcher", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    otgen = os.path.abspath(opts.otgen)
    command = "/usr/bin/python3 " + shlex.join(sys.argv)

    lines = [
        "# Reference values for otsolve's tests, computed independently with POT (Python Optimal Transport).",
        "# Produced by: %s" % command,
        "#   on %s with POT %s, numpy %s, h5py %s." % (datetime.date.today().isoformat(), ot.__version__, np.__version__, h5py.__version__),
        "# sinkhorn_cost = sum(G*C), G = ot.bregman.sinkhorn_log(a, b, C, eps, stopThr=%g) run until" % STOP_THR,
        "#   |G1 - a|_1 + |G^T 1 - b|_1 < %g (nan if that needs more than %g s here); emd_cost = ot.emd2(a, b, C, numItermax=10**7)," % (MARGINAL_TOL, opts.time_limit),
        "#   the exact unregularised optimal transport cost. Weights are uniform where otgen writes no /a, /b. float64 throughout.",
        "# Each case: a comment with the solve statistics, then '# otgen: ARGS' (the otgen options that regenerate its",
        "#   problem file, given with -gen_output FILE), then the line:  name n m eps sinkhorn_cost emd_cost",
    ]
    with tempfile.TemporaryDirectory(prefix="otgen_refs_") as tmpdir:
        for name, args, eps in CASES:
            if opts.only and name not in opts.only.split(","):
                continue
            path = os.path.join(tmpdir, name + ".h5")
            run_otgen(otgen, opts.launcher, args, path)
            checked = check_file(name, args, path, otgen, opts.launcher, tmpdir)
            print("%s: file check passed: %s" % (name, checked), flush=True)
            C, a, b, _, _ = load_problem(path)
            n, m = C.shape

            sinkhorn_cost, run, sinkhorn_time = solve_sinkhorn(a, b, C, eps, opts.time_limit)
            if run.get("timed_out"):
                print("  sinkhorn_log numItermax=%d: stopped after the time limit" % run["itermax"], flush=True)
            else:
                print("  sinkhorn_log numItermax=%d (%.1f ms per iteration): %d iterations, %.2f s, marginal error %.3g "
                      "(rows %.3g, cols %.3g), POT's last err %.3g, warnings %s" % (
                          run["itermax"], 1e3 * run["seconds_per_iteration"], run["niter"], run["time"], run["err_rows"] + run["err_cols"],
                          run["err_rows"], run["err_cols"], run["last_err"], run["warnings"] or "none"), flush=True)
            emd_cost, emd_time, emd_warning, emd_dual, emd_violation = solve_emd(a, b, C)
            print("  emd2: cost %.17g in %.2f s, warning %s, dual <a,u>+<b,v> = %.17g, max(u_i+v_j-C_ij) = %.3g" % (
                emd_cost, emd_time, emd_warning, emd_dual, emd_violation), flush=True)
            if np.isfinite(sinkhorn_cost):
                print("  sinkhorn_cost %.17g, minus emd_cost %.3g" % (sinkhorn_cost, sinkhorn_cost - emd_cost), flush=True)

            if np.isfinite(sinkhorn_cost):
                stats = "sinkhorn_log %d iterations, marginal error %.2g, %.1f s" % (run["niter"], run["err_rows"] + run["err_cols"], sinkhorn_time)
            elif run.get("timed_out"):
                stats = "sinkhorn_log ran past its time limit (nan)"
            else:
                stats = "sinkhorn_log not converged to %g within %g s: %d iterations reached marginal error %.2g (nan)" % (
                    MARGINAL_TOL, opts.time_limit, run["niter"], run["err_rows"] + run["err_cols"])
            lines.append("# %s: %s; emd2 %.2f s, duality gap %.2g" % (name, stats, emd_time, emd_cost - emd_dual))
            lines.append("# otgen: %s" % args)
            lines.append("%s %d %d %.17g %.17g %.17g" % (name, n, m, eps, sinkhorn_cost, emd_cost))
    with open(opts.output, "w") as out:
        out.write("\n".join(lines) + "\n")
    print("make_references: wrote %s" % opts.output)


if __name__ == "__main__":
    main()
