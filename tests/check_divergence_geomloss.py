#!/usr/bin/python3
"""-ot_divergence on a larger point-cloud problem against GeomLoss's convention, computed by numpy.

otgen -gen_type mixture -gen_n 2000 -gen_m 1500 -gen_dim 5 (cost sqeuclidean, uniform weights), then
otsolve -ot_eps 0.5 -ot_divergence on NP ranks. The run must converge (converged = 1, divergence_converged = 1), and
its sinkhorn_divergence must equal S = OT(a,b) - OT(a,a)/2 - OT(b,b)/2 with OT(a,b) = min <C,P> + eps KL(P | a x b)
computed here from the points alone (docs/design.md §1, "Conventions"): log-domain Sinkhorn on GeomLoss's dual
potentials, the symmetric terms with GeomLoss's averaged update F <- (F + T(F))/2, each to marginal error 1e-12;
|S_otsolve - S| <= 1e-7 |S|. The otsolve wall time is printed, not checked.
usage: check_divergence_geomloss.py BUILD_DIR NP"""
import os, re, subprocess, sys, tempfile, time
import h5py, numpy as np

build, nranks = sys.argv[1], int(sys.argv[2])
EPS = 0.5


def lse(x, axis):
    """log sum exp along axis, in numpy (scipy may be absent)."""
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def geomloss_ot(a, b, C, eps, tol=1e-12, max_it=100000):
    """min <C,P> + eps KL(P | a x b) by log-domain Sinkhorn on F, G (P = a_i b_j exp((F_i + G_j - C_ij)/eps)), to
    marginal error tol; returns the dual value <a,F> + <b,G> - eps <a x b, exp((F + G - C)/eps) - 1> and the iterations."""
    la, lb = np.log(a), np.log(b)
    F, G = np.zeros(len(a)), np.zeros(len(b))
    for it in range(1, max_it + 1):
        F = -eps * lse(lb[None, :] + (G[None, :] - C) / eps, 1)
        G = -eps * lse(la[:, None] + (F[:, None] - C) / eps, 0)
        P = np.exp(la[:, None] + lb[None, :] + (F[:, None] + G[None, :] - C) / eps)
        err = np.abs(P.sum(1) - a).sum() + np.abs(P.sum(0) - b).sum()
        if err <= tol:
            return a @ F + b @ G - eps * (P.sum() - a.sum() * b.sum()), it
    raise RuntimeError("Sinkhorn: marginal error %.3e after %d iterations" % (err, max_it))


def geomloss_ot_symmetric(a, C, eps, tol=1e-12, max_it=100000):
    """OT(a,a) with one potential and the averaged update F <- (F + T(F))/2, T(F)_i = -eps LSE_j(log a_j + (F_j - C_ij)/eps)."""
    la = np.log(a)
    F = np.zeros(len(a))
    for it in range(1, max_it + 1):
        F = 0.5 * (F - eps * lse(la[None, :] + (F[None, :] - C) / eps, 1))
        P = np.exp(la[:, None] + la[None, :] + (F[:, None] + F[None, :] - C) / eps)
        err = 2 * np.abs(P.sum(1) - a).sum()
        if err <= tol:
            return 2 * (a @ F) - eps * (P.sum() - a.sum() ** 2), it
    raise RuntimeError("symmetric Sinkhorn: marginal error %.3e after %d iterations" % (err, max_it))


def sqdist(U, V):
    return ((U[:, None, :] - V[None, :, :]) ** 2).sum(-1)


with tempfile.TemporaryDirectory() as tmp:
    problem, result = os.path.join(tmp, "clouds.h5"), os.path.join(tmp, "r.h5")
    subprocess.run([os.path.join(build, "otgen"), "-gen_type", "mixture", "-gen_n", "2000", "-gen_m", "1500", "-gen_dim", "5",
                    "-gen_output", problem], check=True)
    cmd = ["mpiexec", "-n", str(nranks), os.path.join(build, "otsolve"), "-problem", problem, "-output", result,
           "-ot_eps", str(EPS), "-ot_divergence"]
    print("$ " + " ".join(cmd))
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    print(run.stdout + run.stderr, end="")
    if run.returncode != 0:
        sys.exit("FAIL: otsolve exited with status %d" % run.returncode)
    print("otsolve wall time %.2f s on %d rank(s) (not checked)" % (wall, nranks))
    with h5py.File(problem, "r") as p:
        X, Y = p["X"][:], p["Y"][:]
        cost = p.attrs["cost"]
        a = p["a"][:] if "a" in p else np.full(len(X), 1.0 / len(X))
        b = p["b"][:] if "b" in p else np.full(len(Y), 1.0 / len(Y))
    with h5py.File(result, "r") as r:
        got, conv, dconv, eps = (r.attrs[k].item() for k in ("sinkhorn_divergence", "converged", "divergence_converged", "eps"))
    printed = float(re.search(r"^sinkhorn_divergence = (\S+)$", run.stdout, re.M).group(1))

t = time.perf_counter()
ot_ab, it_ab = geomloss_ot(a, b, sqdist(X, Y), EPS)
ot_aa, it_aa = geomloss_ot_symmetric(a, sqdist(X, X), EPS)
ot_bb, it_bb = geomloss_ot_symmetric(b, sqdist(Y, Y), EPS)
ref = ot_ab - 0.5 * (ot_aa + ot_bb)
print("numpy, GeomLoss's convention: OT(a,b) = %.17g (%d iterations), OT(a,a) = %.17g (%d), OT(b,b) = %.17g (%d), S = %.17g (%.1f s)"
      % (ot_ab, it_ab, ot_aa, it_aa, ot_bb, it_bb, ref, time.perf_counter() - t))
ok = True
for good, what in ((cost in ("sqeuclidean", b"sqeuclidean"), "cost sqeuclidean (%s)" % cost),
                   (eps == EPS, "eps %r" % eps),
                   (conv == 1, "converged = %d" % conv),
                   (dconv == 1, "divergence_converged = %d" % dconv),
                   (printed == got, "printed sinkhorn_divergence %r = the result file's %r" % (printed, got)),
                   (abs(got - ref) <= 1e-7 * abs(ref),
                    "sinkhorn_divergence %.17g = numpy S %.17g (|diff| %.1e, relative %.1e <= 1e-7)" % (got, ref, abs(got - ref), abs(got - ref) / abs(ref)))):
    print(("ok   " if good else "FAIL ") + what)
    ok = ok and good
sys.exit(0 if ok else 1)
