#!/usr/bin/python3
"""The largest cost of a point-cloud problem (max C, which sets eps = -ot_eps_rel x max C) against brute force.

usage: check_cost_max.py BUILD

otsolve and otgen find max C by a branch and bound over a cell tree of Y (OTCellTreeFarthest), so that 10^6 + 10^6
points do not cost a scan of all pairs. Here numpy computes all n x m costs as otsolve's rows do (the squares summed
in coordinate order, then sqrt or the power P/2) and takes their maximum. Cases: d = 1, 2, 3 and 30; uniform,
clustered, with a far outlier in X or in Y, with duplicate points, on a lattice (many pairs tie for the farthest),
and X == Y; costs sqeuclidean, euclidean and pnorm:P. otsolve's max C is read back as the result's eps with
-ot_eps_rel 1 on 1 and 3 ranks; it must equal numpy's exactly, except pnorm, whose power otsolve takes as
exp((P/2) log s): there within 4 ulps. otgen's cost_max attribute (mixtures in d = 2, 3 and 30) must equal numpy's
exactly.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def costs(X, Y, cost):
    s = np.zeros((X.shape[0], Y.shape[0]))
    for k in range(X.shape[1]):  # in coordinate order, as otsolve sums them
        s = s + (X[:, None, k] - Y[None, :, k]) ** 2
    if cost == "euclidean":
        return np.sqrt(s)
    if cost.startswith("pnorm:"):
        return s ** (0.5 * float(cost[6:]))
    return s


def run(cmd):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode not in (0, 2):
        sys.exit("FAIL: %s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout))


def cases(rng):
    def clustered(count, d, centres, spread):
        c = rng.random((centres, d))
        return c[rng.integers(0, centres, count)] + spread * rng.standard_normal((count, d))

    yield "uniform d=1", rng.random((300, 1)), rng.random((200, 1)), "sqeuclidean"
    yield "uniform d=2 euclidean", rng.random((500, 2)), rng.random((700, 2)), "euclidean"
    yield "clustered d=3", clustered(900, 3, 8, 0.05), clustered(800, 3, 8, 0.05), "sqeuclidean"
    yield "clustered d=3 pnorm:1.5", clustered(600, 3, 5, 0.1), clustered(650, 3, 5, 0.1), "pnorm:1.5"
    yield "clustered d=30", clustered(400, 30, 6, 0.02), clustered(500, 30, 6, 0.02), "sqeuclidean"
    yield "clustered d=30 euclidean", clustered(450, 30, 10, 0.3), clustered(350, 30, 10, 0.3), "euclidean"
    X, Y = rng.random((400, 3)), rng.random((500, 3))
    X[123] = (-7.0, 3.0, 0.5)  # a far outlier in X, in the middle of the rows
    yield "outlier in X d=3", X, Y, "sqeuclidean"
    X, Y = clustered(300, 30, 4, 0.05), clustered(300, 30, 4, 0.05)
    Y[77] = 4.0  # a far outlier in Y
    yield "outlier in Y d=30", X, Y, "pnorm:3"
    X = np.repeat(rng.random((20, 2)), 15, axis=0)  # duplicate points
    yield "duplicates d=2", X, np.repeat(rng.random((30, 2)), 10, axis=0), "sqeuclidean"
    g = np.arange(12.0)
    lattice = np.array(np.meshgrid(g, g, g)).reshape(3, -1).T  # many pairs tie for the farthest
    yield "lattice d=3", lattice, lattice[::-1].copy() + 0.5, "euclidean"
    X = clustered(500, 3, 6, 0.1)
    yield "X == Y d=3", X, X.copy(), "sqeuclidean"


def main():
    build = sys.argv[1]
    rng = np.random.default_rng(2026)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        problem, result = os.path.join(tmp, "p.h5"), os.path.join(tmp, "r.h5")
        for name, X, Y, cost in cases(rng):
            largest = costs(X, Y, cost).max()
            with h5py.File(problem, "w") as f:
                f["X"], f["Y"] = X, Y
                f.attrs["cost"] = cost
            for np_ in (1, 3):
                run(["mpiexec", "-n", str(np_), os.path.join(build, "otsolve"), "-problem", problem, "-output", result, "-ot_eps_rel", "1",
                     "-ot_max_it", "1"])
                with h5py.File(result, "r") as f:
                    got = float(f.attrs["eps"])
                ok = got == largest if not cost.startswith("pnorm:") else abs(got - largest) <= 4 * np.spacing(largest)
                failed += not ok
                print("%s %-28s %-12s np=%d otsolve max C %.17g, numpy %.17g" % ("ok  " if ok else "FAIL", name, cost, np_, got, largest))
        for d, cost in ((2, "sqeuclidean"), (3, "euclidean"), (30, "sqeuclidean")):
            run([os.path.join(build, "otgen"), "-gen_type", "mixture", "-gen_n", "700", "-gen_m", "600", "-gen_dim", str(d), "-gen_seed", "11",
                 "-gen_cost", cost, "-gen_output", problem])
            with h5py.File(problem, "r") as f:
                X, Y, got = f["X"][...], f["Y"][...], float(f.attrs["cost_max"])
            largest = costs(X, Y, cost).max()
            ok = got == largest
            failed += not ok
            print("%s otgen mixture d=%-2d %-12s cost_max %.17g, numpy %.17g" % ("ok  " if ok else "FAIL", d, cost, got, largest))
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
