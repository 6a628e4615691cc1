#!/usr/bin/python3
"""-ot_divergence on a larger point-cloud problem against GeomLoss's convention, computed by numpy.

otgen -gen_type mixture -gen_n 2000 -gen_m 1500 -gen_dim 5 (cost sqeuclidean, uniform weights), then
otsolve -ot_eps 0.5 -ot_divergence on NP ranks. The run must converge (converged = 1, divergence_converged = 1), and
its sinkhorn_divergence must equal S = OT(a,b) - OT(a,a)/2 - OT(b,b)/2 with OT(a,b) = min <C,P> + eps KL(P | a x b)
computed here from the points alone (docs/design.md §1, "Conventions"): log-domain Sinkhorn on GeomLoss's dual
potentials, the symmetric terms with GeomLoss's averaged update F <- (F + T(F))/2, each to marginal error 1e-12;
|S_otsolve - S| <= 1e-7 |S|. The otsolve wall time is printed, not checked.
usage: check_divergence_geomloss.py BUILD_DIR NP"""
import os, subprocess, sys, tempfile, time
import h5py, numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from geomloss_ref import geomloss_ot, geomloss_ot_symmetric, run_otsolve, sqdist, summary

build, nranks = sys.argv[1], int(sys.argv[2])
EPS = 0.5


with tempfile.TemporaryDirectory() as tmp:
    problem, result = os.path.join(tmp, "clouds.h5"), os.path.join(tmp, "r.h5")
    subprocess.run([os.path.join(build, "otgen"), "-gen_type", "mixture", "-gen_n", "2000", "-gen_m", "1500", "-gen_dim", "5",
                    "-gen_output", problem], check=True)
    cmd = ["mpiexec", "-n", str(nranks), os.path.join(build, "otsolve"), "-problem", problem, "-output", result,
           "-ot_eps", str(EPS), "-ot_divergence"]
    stdout, wall = run_otsolve(cmd)
    print("otsolve wall time %.2f s on %d rank(s) (not checked)" % (wall, nranks))
    with h5py.File(problem, "r") as p:
        X, Y = p["X"][:], p["Y"][:]
        cost = p.attrs["cost"]
        a = p["a"][:] if "a" in p else np.full(len(X), 1.0 / len(X))
        b = p["b"][:] if "b" in p else np.full(len(Y), 1.0 / len(Y))
    with h5py.File(result, "r") as r:
        got, conv, dconv, eps = (r.attrs[k].item() for k in ("sinkhorn_divergence", "converged", "divergence_converged", "eps"))
    printed = float(summary(stdout)["sinkhorn_divergence"])

t = time.perf_counter()
ot_ab, _, _, it_ab = geomloss_ot(a, b, sqdist(X, Y), EPS)
ot_aa, _, it_aa = geomloss_ot_symmetric(a, sqdist(X, X), EPS)
ot_bb, _, it_bb = geomloss_ot_symmetric(b, sqdist(Y, Y), EPS)
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
