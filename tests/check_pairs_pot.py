#!/usr/bin/python3
"""-pairs against values computed here, independently of otsolve (tests/check_pairs.sh points NP runs it).

usage: check_pairs_pot.py make DIR
         writes DIR/m0.h5 .. m3.h5 (four 2-D point clouds of 60, 90, 120 and 150 points, random weights in m2),
         DIR/list.txt, and DIR/bad.txt (the same list with a NaN coordinate in the last measure)
       check_pairs_pot.py check DIR SQ.h5 EU.h5 PER.h5
         SQ.h5: -pairs_cost sqeuclidean -ot_divergence; EU.h5: -pairs_cost euclidean -ot_divergence;
         PER.h5: -pairs_cost sqeuclidean -pairs_eps_per_pair

Checks, for every pair i < j:
 - wasserstein_lower <= (POT's exact ot.emd2(a, b, M))^(1/p) <= wasserstein_upper (1e-9 relative slack), p = 2
   for the squared Euclidean cost, 1 for the Euclidean one;
 - the eps: the root attribute eps = 0.01 x the largest max C over the pairs (max C from numpy's distance
   matrices, 1e-13); with -pairs_eps_per_pair no attribute and a K x K /eps of 0.01 x each pair's max C;
 - transport_cost = <C, P> of the entropic plan, and sinkhorn_divergence = OT(a, b) - OT(a, a)/2 - OT(b, b)/2
   in GeomLoss's convention (OT_eps(a, b) = <a, F> + <b, G> at the optimum of the KL(P | a x b)-regularised
   problem), both from a log-domain Sinkhorn in numpy (tests/geomloss_ref.py) run to marginal error 1e-12
   (transport_cost to 1e-6, the divergence to 1e-7 relative or absolute);
and everywhere: symmetric matrices, an exact diagonal (0; converged 1, iterations 0), integer /converged,
/iterations, /divergence_converged, /self_converged, every solve converged.
"""
import os
import sys

import h5py
import numpy as np
import ot

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from geomloss_ref import geomloss_ot, geomloss_ot_symmetric, geomloss_plan, sqdist

SIZES = (60, 90, 120, 150)
REL = 0.01  # the default -ot_eps_rel


def make(d):
    rng = np.random.default_rng(20240607)
    names = []
    for k, n in enumerate(SIZES):
        # clouds of different spreads and places, so that the pairs' max C differ (-pairs_eps_per_pair)
        X = rng.normal(size=(n, 2)) * (0.3 + 0.2 * k) + np.array([0.5 * k, -0.3 * k])
        with h5py.File("%s/m%d.h5" % (d, k), "w") as f:
            f["X"] = X
            if k == 2:
                w = rng.uniform(0.2, 1.0, n)
                f["a"] = w / w.sum()
        names.append("%s/m%d.h5" % (d, k))
        if k == len(SIZES) - 1:
            X[7, 1] = np.nan
            with h5py.File("%s/bad%d.h5" % (d, k), "w") as f:
                f["X"] = X
    with open("%s/list.txt" % d, "w") as f:
        f.write("# four point clouds\n" + "\n".join(names) + "\n")
    with open("%s/bad.txt" % d, "w") as f:
        f.write("\n".join(names[:-1] + ["%s/bad%d.h5" % (d, len(SIZES) - 1)]) + "\n")


def load(d):
    measures = []
    for k in range(len(SIZES)):
        with h5py.File("%s/m%d.h5" % (d, k), "r") as f:
            X = f["X"][:]
            a = f["a"][:] if "a" in f else np.full(len(X), 1.0 / len(X))
        measures.append((X, a))
    return measures


def cost(X, Y, p):
    D2 = sqdist(X, Y)
    return D2 if p == 2 else np.sqrt(D2)


def close(x, y, tol):
    return abs(x - y) <= tol * max(1.0, abs(y))


def check(d, sq_file, eu_file, per_file):
    measures = load(d)
    K = len(measures)
    pairs = [(i, j) for i in range(K) for j in range(i + 1, K)]
    ok = True

    def verdict(good, text):
        nonlocal ok
        ok = ok and bool(good)
        print("%s %s" % ("ok  " if good else "FAIL", text))

    for path, p, name in ((sq_file, 2, "sqeuclidean"), (eu_file, 1, "euclidean"), (per_file, 2, "sqeuclidean, -pairs_eps_per_pair")):
        per_pair = path == per_file
        with h5py.File(path, "r") as f:
            D = {key: f[key][()] for key in f if key != "files"}
            attrs = dict(f.attrs)
        C = {(i, j): cost(measures[i][0], measures[j][0], p) for i, j in pairs}
        cmax = {ij: C[ij].max() for ij in pairs}
        largest = max(cmax.values())
        print("== %s (%s)" % (path, name))
        verdict(attrs["cost"] == name.split(",")[0] and attrs["measures"] == K and attrs["pairs"] == 6 and attrs["unconverged"] == 0,
                "attributes cost %s, measures %d, pairs %d, unconverged %d" % (attrs["cost"], attrs["measures"], attrs["pairs"], attrs["unconverged"]))
        verdict(abs(attrs["cost_max"] - largest) <= 1e-13 * largest, "cost_max %.17g = numpy's largest max C %.17g" % (attrs["cost_max"], largest))
        # the eps
        if per_pair:
            want = np.zeros((K, K))
            for i, j in pairs:
                want[i, j] = want[j, i] = REL * cmax[i, j]
            got = D.get("eps", np.full((K, K), np.nan))
            worst = np.max(np.abs(got - want) / np.maximum(want, 1e-300))
            verdict("eps" not in attrs and got.shape == (K, K) and np.all(np.diag(got) == 0) and worst <= 1e-13,
                    "no eps attribute; /eps = 0.01 x each pair's max C (%s ... %s), diagonal 0 (worst %.1e)" % (want[want > 0].min(), want.max(), worst))
            verdict(len(set(want[want > 0])) > 1, "the pairs' eps differ (a test that can tell per pair from common)")
            eps = None
        else:
            eps = REL * largest
            verdict("eps" in attrs and abs(attrs["eps"] - eps) <= 1e-13 * eps and "eps" not in D,
                    "attribute eps %.17g = 0.01 x the largest max C = %.17g, no /eps" % (attrs.get("eps", np.nan), eps))
        # integer types, symmetry, the exact diagonal
        ints = ["converged", "iterations"] + (["divergence_converged"] if not per_pair else [])
        verdict(all(D[k].dtype.kind == "i" for k in ints + (["self_converged"] if not per_pair else [])),
                "integer datasets: %s" % ", ".join("%s %s" % (k, D[k].dtype) for k in ints + (["self_converged"] if not per_pair else [])))
        ones = {"converged", "divergence_converged"}
        good = True
        for key, M in D.items():
            if M.ndim != 2:
                continue
            good = good and M.shape == (K, K) and np.array_equal(M, M.T) and np.all(np.diag(M) == (1 if key in ones else 0))
        verdict(good, "every K x K dataset symmetric with an exact diagonal (%s)" % ", ".join(sorted(k for k in D if D[k].ndim == 2)))
        off = ~np.eye(K, dtype=bool)
        verdict(np.all(D["converged"][off] == 1), "every pair converged")
        # the certified Wasserstein bounds against POT's exact transport cost
        worst_gap = 0.0
        for i, j in pairs:
            (X, a), (Y, b) = measures[i], measures[j]
            exact, log = ot.emd2(a, b, C[i, j], numItermax=10**7, log=True)
            w = exact ** (1.0 / p)
            lo, hi = D["wasserstein_lower"][i, j], D["wasserstein_upper"][i, j]
            good = log["warning"] is None and lo <= w * (1 + 1e-9) and w <= hi * (1 + 1e-9)
            worst_gap = max(worst_gap, (hi - lo) / w)
            verdict(good, "pair %d %d: wasserstein_lower %.12g <= POT's exact W_%d %.12g <= wasserstein_upper %.12g" % (i, j, lo, p, w, hi))
        print("     (widest bracket: %.3g of W)" % worst_gap)
        if per_pair:
            verdict("sinkhorn_divergence" not in D, "no /sinkhorn_divergence without -ot_divergence")
            continue
        # transport_cost and the divergence against a numpy Sinkhorn at the same eps
        self_ot = []
        for X, a in measures:
            self_ot.append(geomloss_ot_symmetric(a, cost(X, X, p), eps, max_it=200000)[0])
        worst_cost = worst_div = 0.0
        for i, j in pairs:
            a, b = measures[i][1], measures[j][1]
            ot_ab, F, G, _ = geomloss_ot(a, b, C[i, j], eps, max_it=200000)
            T = (C[i, j] * geomloss_plan(a, b, C[i, j], eps, F, G)).sum()
            S = ot_ab - 0.5 * (self_ot[i] + self_ot[j])
            worst_cost = max(worst_cost, abs(D["transport_cost"][i, j] - T) / T)
            worst_div = max(worst_div, abs(D["sinkhorn_divergence"][i, j] - S) / max(1.0, abs(S)))
            verdict(close(D["sinkhorn_divergence"][i, j], S, 1e-7) and abs(D["transport_cost"][i, j] - T) <= 1e-6 * T,
                    "pair %d %d: sinkhorn_divergence %.12g = numpy %.12g, transport_cost %.12g = numpy <C,P> %.12g" %
                    (i, j, D["sinkhorn_divergence"][i, j], S, D["transport_cost"][i, j], T))
        print("     (worst: divergence %.1e relative or absolute, transport_cost %.1e relative)" % (worst_div, worst_cost))
        verdict(np.all(D["divergence_converged"] == 1) and np.all(D["self_converged"] == 1) and attrs["unconverged_self"] == 0,
                "every self term and divergence converged")
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:]))
    else:
        sys.exit(__doc__)
