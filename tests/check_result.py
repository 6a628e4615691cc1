#!/usr/bin/python3
"""Checks an otsolve result file against its problem file with numpy, independently of otsolve's code:
the plan P = exp((f + g - C)/eps) rebuilt from /f and /g (C from /C, or from the point clouds /X, /Y) must have the reported marginal error (<= tol)
and transport cost, and the file must have every dataset and attribute of docs/design.md §3.
usage: check_result.py PROBLEM.h5 RESULT.h5 TOL"""
import sys

import h5py
import numpy as np

problem, result, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
with h5py.File(problem, "r") as p, h5py.File(result, "r") as r:
    if "C" in p:
        C = np.asarray(p["C"], dtype=np.float64)
    else:  # point clouds: the costs from /X, /Y and the attribute cost, computed here
        X, Y, cost = np.asarray(p["X"]), np.asarray(p["Y"]), p.attrs.get("cost", "sqeuclidean")
        C = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
        C = np.sqrt(C) if cost == "euclidean" else (C ** (0.5 * float(cost[6:])) if cost.startswith("pnorm:") else C)
    n, m = C.shape
    a = np.asarray(p["a"]) if "a" in p else np.full(n, 1.0 / n)
    b = np.asarray(p["b"]) if "b" in p else np.full(m, 1.0 / m)
    for key in ("transport_cost", "dual_objective", "marginal_error", "lower_bound", "upper_bound", "eps",
                "iterations_sinkhorn", "iterations_newton", "converged", "status"):
        assert key in r.attrs, "result file lacks attribute %s" % key
    f, g, eps = np.asarray(r["f"]), np.asarray(r["g"]), float(r.attrs["eps"])
    assert f.shape == (n,) and g.shape == (m,), "f %s, g %s for a %d x %d problem" % (f.shape, g.shape, n, m)
    history = r["history"][...]
    assert len(history) == int(r.attrs["iterations_sinkhorn"]) + int(r.attrs["iterations_newton"]), "history rows"
    assert np.all(np.diff(history["time"]) >= 0) and np.all(np.isfinite(history["marginal_error"]))
    P = np.exp((f[:, None] + g[None, :] - C) / eps)
    err = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
    cost = float((P * C).sum())
    dual = float(a @ f + b @ g - eps * P.sum())
    reported = float(r.attrs["transport_cost"])
    print("numpy: marginal error %.3g (file %.3g), transport cost %.17g (file %.17g), dual %.17g (file %.17g)"
          % (err, r.attrs["marginal_error"], cost, reported, dual, r.attrs["dual_objective"]))
    assert err <= 1.01 * tol, "plan rebuilt from /f, /g has marginal error %.3g > %g" % (err, tol)
    # a truncated kernel's transport cost leaves out its dropped entries: at most dropped_mass x max C
    dropped = float(r.attrs["dropped_mass"]) * float(C.max()) if "dropped_mass" in r.attrs else 0.0
    assert abs(cost - reported) <= 1e-12 * abs(cost) + 1e-15 + dropped, "transport cost differs from the plan rebuilt from /f, /g"
    assert abs(dual - float(r.attrs["dual_objective"])) <= 1e-12 * abs(dual) + 1e-14 + eps * float(r.attrs.get("dropped_mass", 0.0))
    assert int(r.attrs["converged"]) == 1
print("result file OK")
