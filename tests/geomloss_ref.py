"""Reference code shared by the Python checks (tests/check_conventions.py, tests/check_divergence_geomloss.py,
tests/check_pairs_pot.py): GeomLoss's convention for entropic OT computed in numpy, independently of otsolve, and
running otsolve with its key = value summary.

GeomLoss's convention (docs/design.md §1, "Conventions"): OT_eps(a,b) = min <C,P> + eps KL(P | a x b), with
KL(p|q) = sum p log(p/q) - sum p + sum q, solved by log-domain Sinkhorn on the dual potentials F, G
(P = a_i b_j exp((F_i + G_j - C_ij)/eps)); the symmetric terms OT_eps(a,a) by GeomLoss's averaged update
F <- (F + T(F))/2. The scripts import it with sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))."""
import subprocess, sys, time

import numpy as np


def lse(x, axis):
    """log sum exp along axis, in numpy (scipy may be absent)."""
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def sqdist(U, V):
    """The squared Euclidean distances |U_i - V_j|^2 between the rows of U and V."""
    return ((U[:, None, :] - V[None, :, :]) ** 2).sum(-1)


def geomloss_plan(a, b, C, eps, F, G):
    """The plan of the potentials F, G: P_ij = a_i b_j exp((F_i + G_j - C_ij)/eps)."""
    return np.exp(np.log(a)[:, None] + np.log(b)[None, :] + (F[:, None] + G[None, :] - C) / eps)


def geomloss_ot(a, b, C, eps, tol=1e-12, max_it=100000):
    """GeomLoss's OT_eps(a,b) = min <C,P> + eps KL(P | a x b) (KL(p|q) = sum p log(p/q) - sum p + sum q) by log-domain
    Sinkhorn on its dual potentials F, G (P = a_i b_j exp((F_i + G_j - C_ij)/eps)), to marginal error tol
    (sum_i |sum_j P_ij - a_i| + sum_j |sum_i P_ij - b_j|). Returns the dual value
    <a,F> + <b,G> - eps <a x b, exp((F + G - C)/eps) - 1>, F, G and the iterations; raises RuntimeError when the
    error is above tol after max_it iterations."""
    la, lb = np.log(a), np.log(b)
    F, G = np.zeros(len(a)), np.zeros(len(b))
    for it in range(1, max_it + 1):
        F = -eps * lse(lb[None, :] + (G[None, :] - C) / eps, 1)
        G = -eps * lse(la[:, None] + (F[:, None] - C) / eps, 0)
        P = geomloss_plan(a, b, C, eps, F, G)
        err = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
        if err <= tol:
            return a @ F + b @ G - eps * (P.sum() - a.sum() * b.sum()), F, G, it
    raise RuntimeError("GeomLoss-convention Sinkhorn: marginal error %.3e after %d iterations" % (err, max_it))


def geomloss_ot_symmetric(a, C, eps, tol=1e-12, max_it=100000):
    """OT_eps(a,a) as GeomLoss computes it: one potential F, the averaged update F <- (F + T(F))/2 with
    T(F)_i = -eps LSE_j(log a_j + (F_j - C_ij)/eps), to marginal error tol (both sides: 2 sum_i |sum_j P_ij - a_i|,
    P = geomloss_plan(a, a, C, eps, F, F); C symmetric). Returns the dual value
    2 <a,F> - eps <a x a, exp((F + F - C)/eps) - 1>, F and the iterations; raises RuntimeError when the error is
    above tol after max_it iterations."""
    la = np.log(a)
    F = np.zeros(len(a))
    for it in range(1, max_it + 1):
        F = 0.5 * (F - eps * lse(la[None, :] + (F[None, :] - C) / eps, 1))
        P = geomloss_plan(a, a, C, eps, F, F)
        err = 2 * np.abs(P.sum(1) - a).sum()
        if err <= tol:
            return 2 * (a @ F) - eps * (P.sum() - a.sum() ** 2), F, it
    raise RuntimeError("GeomLoss-convention symmetric Sinkhorn: marginal error %.3e after %d iterations" % (err, max_it))


def run_otsolve(cmd):
    """Runs the command line cmd (mpiexec ... otsolve ...), printing it and its output; exits the check with a
    failure when it fails. Returns its standard output and its wall time in seconds."""
    print("$ " + " ".join(cmd))
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    print(run.stdout + run.stderr, end="")
    if run.returncode != 0:
        sys.exit("FAIL: otsolve exited with status %d" % run.returncode)
    return run.stdout, seconds


def summary(text):
    """otsolve's summary lines `key = value` in text (its standard output), as a dict of strings; comment lines
    (#), messages (otsolve: ...) and indented lines are left out."""
    return dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line and not line.startswith(("#", "otsolve", " ")))
