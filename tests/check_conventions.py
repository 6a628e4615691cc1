#!/usr/bin/python3
"""The worked example of docs/design.md §1 "Conventions: otsolve's numbers, POT's and GeomLoss's", checked.

Runs otgen and otsolve on NP ranks, then checks every relation the doc states between otsolve's outputs and
the numbers of POT 0.8.2 and GeomLoss, each computed here independently of otsolve from the points and weights:
  - ot.sinkhorn2 (log domain, to 1e-14) = transport_cost, and ot.sinkhorn's plan = exp((f + g - C)/eps) from /f, /g;
  - <C,P> + eps sum P (log P - 1) of POT's plan = entropic_cost = dual_objective;
  - ot.emd2 lies in [lower_bound, upper_bound], its square root in [wasserstein_lower, wasserstein_upper];
  - ot.bregman.empirical_sinkhorn_divergence (and the same formula from three tight ot.sinkhorn2 calls)
    = max(0, T(X,Y) - T(X,X)/2 - T(Y,Y)/2) with T the transport_cost of otsolve runs on (X,Y), (X,X), (Y,Y);
  - GeomLoss's convention, a numpy log-domain Sinkhorn on min <C',P> + eps' KL(P | a x b) in GeomLoss's own units
    (SamplesLoss("sinkhorn", p=2, blur=BLUR): C' = |x - y|^2 / 2, eps' = BLUR^2), run to marginal error 1e-12,
    the symmetric terms with GeomLoss's averaged update F <- (F + T(F))/2:
    OT'(a,b) = (dual_objective + eps (H(a) + H(b) + mu^2)) / 2 at eps = 2 BLUR^2, its potentials
    F' = (f - eps log a) / 2, G' = (g - eps log b) / 2 (up to a constant t, -t), and
    S' = sinkhorn_divergence / 2.
Prints every number (the doc's example is this output, from 2 ranks with -ot_newton_time_check false, which makes
SNS's iterations independent of timings, so the digits repeat from run to run).
usage: check_conventions.py BUILD_DIR NP [OTSOLVE OPTIONS...]"""
import os, subprocess, sys, tempfile, warnings
import h5py, numpy as np, ot

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from geomloss_ref import geomloss_ot, geomloss_ot_symmetric, run_otsolve, sqdist

build, nranks, options = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
EPS = 0.02          # otsolve's eps, on the cost |x - y|^2
EPS_G = EPS / 2     # GeomLoss's eps = blur^2 on its cost |x - y|^2 / 2: blur = 0.1
BLUR = 0.1
TOL = "1e-12"
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def rel(x, ref, scale=None):
    return abs(x - ref) / abs(scale if scale is not None else ref)


def otsolve(problem, result, extra):
    cmd = ["mpiexec", "-n", str(nranks), os.path.join(build, "otsolve"), "-problem", problem, "-output", result,
           "-ot_eps", repr(EPS), "-ot_tol", TOL] + options + extra
    _, seconds = run_otsolve(cmd)
    print("(otsolve wall time %.2f s)" % seconds)
    with h5py.File(result, "r") as r:
        out = {k: (v.item() if hasattr(v, "item") else v) for k, v in r.attrs.items()}
        out["f"], out["g"] = r["f"][:], r["g"][:]
    return out


with tempfile.TemporaryDirectory() as tmp:
    problem = os.path.join(tmp, "example.h5")
    gen = [os.path.join(build, "otgen"), "-gen_type", "mixture", "-gen_n", "200", "-gen_m", "150", "-gen_dim", "2",
           "-gen_weights", "random", "-gen_output", problem]
    print("$ " + " ".join(gen))
    subprocess.run(gen, check=True)
    with h5py.File(problem, "r") as p:
        X, Y, a, b = p["X"][:], p["Y"][:], p["a"][:], p["b"][:]
        check(p.attrs["cost"] in ("sqeuclidean", b"sqeuclidean"), "the example's cost is sqeuclidean")
    # the two symmetric problems, for the transport costs that POT's divergence combines
    for name, Z, w in (("xx.h5", X, a), ("yy.h5", Y, b)):
        with h5py.File(os.path.join(tmp, name), "w") as p:
            p["X"], p["Y"], p["a"], p["b"] = Z, Z, w, w
            p.attrs["cost"] = "sqeuclidean"

    r = otsolve(problem, os.path.join(tmp, "r.h5"), ["-ot_divergence"])
    rxx = otsolve(os.path.join(tmp, "xx.h5"), os.path.join(tmp, "rxx.h5"), [])
    ryy = otsolve(os.path.join(tmp, "yy.h5"), os.path.join(tmp, "ryy.h5"), [])
    for name, res in (("(X,Y)", r), ("(X,X)", rxx), ("(Y,Y)", ryy)):
        check(res["converged"] == 1 and abs(res["eps"] - EPS) <= 1e-15 * EPS, "otsolve %s converged at eps %g" % (name, EPS))
    check(r.get("divergence_converged") == 1, "divergence_converged = 1")

    C, Cxx, Cyy = sqdist(X, Y), sqdist(X, X), sqdist(Y, Y)
    mu = a.sum()
    Ha, Hb = -(a @ np.log(a)), -(b @ np.log(b))
    warnings.simplefilter("ignore")

    # ---- POT 0.8.2 ----
    print("\nPOT %s, reg = eps = %g:" % (ot.__version__, EPS))
    P_pot = ot.sinkhorn(a, b, C, EPS, method="sinkhorn_log", numItermax=200000, stopThr=1e-14)
    T_pot = ot.sinkhorn2(a, b, C, EPS, method="sinkhorn_log", numItermax=200000, stopThr=1e-14)
    print("  ot.sinkhorn2(a, b, M, eps, method='sinkhorn_log')   = %.17g" % T_pot)
    check(rel(r["transport_cost"], T_pot) <= 1e-8,
          "transport_cost %.17g = POT sinkhorn2 %.17g (rel. diff. %.1e <= 1e-8)" % (r["transport_cost"], T_pot, rel(r["transport_cost"], T_pot)))
    P_ots = np.exp((r["f"][:, None] + r["g"][None, :] - C) / EPS)
    dP = np.abs(P_ots - P_pot).max()
    check(dP <= 1e-8 * P_pot.max(), "otsolve's plan exp((f + g - C)/eps) = POT's ot.sinkhorn plan (max |diff| %.1e, max P %.3e)" % (dP, P_pot.max()))
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(P_pot > 0, P_pot * (np.log(P_pot) - 1), 0.0).sum()
    reg_value = (P_pot * C).sum() + EPS * plogp
    print("  <C,P> + eps sum P (log P - 1) of POT's plan          = %.17g" % reg_value)
    print("  POT's documented objective <C,P> + reg sum P log P   = %.17g (= that + eps mu)" % (reg_value + EPS * P_pot.sum()))
    check(rel(r["entropic_cost"], reg_value, max(abs(reg_value), EPS)) <= 1e-8 and rel(r["dual_objective"], reg_value, max(abs(reg_value), EPS)) <= 1e-8,
          "entropic_cost %.17g and dual_objective %.17g = POT plan's regularised value %.17g" % (r["entropic_cost"], r["dual_objective"], reg_value))
    emd = ot.emd2(a, b, C, numItermax=10000000)
    print("  ot.emd2(a, b, M)                                     = %.17g" % emd)
    check(r["lower_bound"] <= emd <= r["upper_bound"], "lower_bound %.17g <= emd2 %.17g <= upper_bound %.17g" % (r["lower_bound"], emd, r["upper_bound"]))
    check(r["wasserstein_lower"] <= np.sqrt(emd) <= r["wasserstein_upper"],
          "wasserstein_lower %.10g <= sqrt(emd2) %.10g <= wasserstein_upper %.10g" % (r["wasserstein_lower"], np.sqrt(emd), r["wasserstein_upper"]))
    check(rel(r["wasserstein"], np.sqrt(T_pot)) <= 1e-8 and r["wasserstein"] > np.sqrt(emd),
          "wasserstein %.17g = sqrt(sinkhorn2) %.17g > sqrt(emd2) (biased upward)" % (r["wasserstein"], np.sqrt(T_pot)))
    # POT's divergence: transport costs of the entropic plans, not regularised values
    T_xx = ot.sinkhorn2(a, a, Cxx, EPS, method="sinkhorn_log", numItermax=200000, stopThr=1e-14)
    T_yy = ot.sinkhorn2(b, b, Cyy, EPS, method="sinkhorn_log", numItermax=200000, stopThr=1e-14)
    div_pot3 = max(0.0, T_pot - 0.5 * (T_xx + T_yy))
    div_pot = float(ot.bregman.empirical_sinkhorn_divergence(X, Y, EPS, a, b, numIterMax=100000))
    div_from_ots = max(0.0, r["transport_cost"] - 0.5 * (rxx["transport_cost"] + ryy["transport_cost"]))
    print("  ot.sinkhorn2 on (X,X), (Y,Y)                         = %.17g, %.17g" % (T_xx, T_yy))
    print("  ot.bregman.empirical_sinkhorn_divergence(X, Y, eps, a, b) = %.17g" % div_pot)
    print("  the same from three tight sinkhorn2 calls            = %.17g" % div_pot3)
    print("  from otsolve: max(0, T(X,Y) - T(X,X)/2 - T(Y,Y)/2)   = %.17g  (T(X,X) = %.17g, T(Y,Y) = %.17g)"
          % (div_from_ots, rxx["transport_cost"], ryy["transport_cost"]))
    scale = max(T_pot, T_xx, T_yy)
    check(abs(div_from_ots - div_pot3) <= 1e-8 * scale,
          "POT's divergence formula from otsolve's three transport costs = three POT sinkhorn2 (|diff| %.1e <= 1e-8 x %.3g)" % (abs(div_from_ots - div_pot3), scale))
    check(abs(div_from_ots - div_pot) <= 1e-6 * scale,
          "= POT's empirical_sinkhorn_divergence, whose stopThr is fixed at 1e-9 (|diff| %.1e <= 1e-6 x %.3g)" % (abs(div_from_ots - div_pot), scale))
    check(abs(div_pot - r["sinkhorn_divergence"]) > 1e-3 * r["sinkhorn_divergence"],
          "POT's divergence %.10g differs from otsolve's sinkhorn_divergence %.10g" % (div_pot, r["sinkhorn_divergence"]))

    # ---- GeomLoss's convention, in GeomLoss's units ----
    eps_g = EPS_G
    print("\nGeomLoss convention, SamplesLoss('sinkhorn', p=2, blur=%g, debias=False / True): cost |x-y|^2/2, eps' = blur^2 = %g" % (BLUR, eps_g))
    ot_ab, F, G, it_ab = geomloss_ot(a, b, C / 2, eps_g)
    ot_aa, _, it_aa = geomloss_ot_symmetric(a, Cxx / 2, eps_g)
    ot_bb, _, it_bb = geomloss_ot_symmetric(b, Cyy / 2, eps_g)
    s_g = ot_ab - 0.5 * (ot_aa + ot_bb)
    print("  numpy Sinkhorn: OT'(a,b) = %.17g (%d iterations), OT'(a,a) = %.17g (%d), OT'(b,b) = %.17g (%d)" % (ot_ab, it_ab, ot_aa, it_aa, ot_bb, it_bb))
    print("  <a,F'> + <b,G'> (what GeomLoss returns, debias=False) = %.17g" % (a @ F + b @ G))
    print("  S'(a,b) = OT'(a,b) - OT'(a,a)/2 - OT'(b,b)/2 (debias=True) = %.17g" % s_g)
    print("  H(a) = %.17g, H(b) = %.17g, mu = %.17g" % (Ha, Hb, mu))
    doc_ot = 0.5 * (r["dual_objective"] + EPS * (Ha + Hb + mu ** 2))
    doc_s = 0.5 * r["sinkhorn_divergence"]
    print("  from otsolve: (dual_objective + eps (H(a) + H(b) + mu^2)) / 2 = %.17g" % doc_ot)
    print("  from otsolve: sinkhorn_divergence / 2                          = %.17g" % doc_s)
    check(rel(doc_ot, ot_ab) <= 1e-8, "GeomLoss OT' from otsolve %.17g = numpy %.17g (rel. diff. %.1e <= 1e-8)" % (doc_ot, ot_ab, rel(doc_ot, ot_ab)))
    check(rel(a @ F + b @ G, ot_ab) <= 1e-12, "<a,F'> + <b,G'> = OT' (mass 1)")
    check(rel(doc_s, s_g) <= 1e-8, "GeomLoss S' from otsolve %.17g = numpy %.17g (rel. diff. %.1e <= 1e-8)" % (doc_s, s_g, rel(doc_s, s_g)))
    # the potentials: F' = (f - eps log a)/2 + t, G' = (g - eps log b)/2 - t
    dF = (r["f"] - EPS * np.log(a)) / 2 - F
    dG = (r["g"] - EPS * np.log(b)) / 2 - G
    t = dF.mean()
    spread = max(np.abs(dF - t).max(), np.abs(dG + t).max())
    check(spread <= 1e-8, "potentials: (f - eps log a)/2 - F' and (g - eps log b)/2 - G' are t and -t (t = %.3e, spread %.1e <= 1e-8)" % (t, spread))
    # the same at otsolve's own cost and eps (no factor 1/2): OT_eps = dual_objective + eps (H(a) + H(b) + mu^2)
    ot_full, _, _, _ = geomloss_ot(a, b, C, EPS)
    s_full = ot_full - 0.5 * (geomloss_ot_symmetric(a, Cxx, EPS)[0] + geomloss_ot_symmetric(b, Cyy, EPS)[0])
    print("  KL convention at otsolve's cost |x-y|^2 and eps %g: OT_eps(a,b) = %.17g, S_eps = %.17g" % (EPS, ot_full, s_full))
    check(abs(2 * ot_ab - ot_full) <= 1e-9 * abs(ot_full), "OT at (|x-y|^2/2, blur^2) is half of OT at (|x-y|^2, 2 blur^2)")
    check(rel(r["dual_objective"] + EPS * (Ha + Hb + mu ** 2), ot_full) <= 1e-8 and rel(r["sinkhorn_divergence"], s_full) <= 1e-8,
          "dual_objective + eps (H(a) + H(b) + mu^2) = OT_eps and sinkhorn_divergence = S_eps at otsolve's cost and eps")

print("\n%s: %d failure(s)" % ("FAIL" if failures else "ok", len(failures)))
sys.exit(1 if failures else 0)
