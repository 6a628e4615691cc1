#!/usr/bin/python3
"""Unbalanced transport (-ot_unbalanced, -ot_unbalanced_a, -ot_unbalanced_b) against references computed here,
independently of otsolve.

usage: check_unbalanced.py BUILD CASE NP [NP ...]

CASE is errors (bad input, each a clear error on every rank), sns (SNS against Sinkhorn), pairs (-pairs against single
runs), divergence (-ot_divergence against GeomLoss's formula), restart (stopped on NP[0] ranks, resumed on each other
NP), or one of
  fmnist   two Fashion-MNIST test images with their raw pixel masses (pixel/255 + 0.01, not normalised: masses
           about 110 and 170), dense /C (squared distances on the 28 x 28 grid), rho = 0.5, eps = 0.01;
           reference: POT's ot.unbalanced.sinkhorn_unbalanced(method='sinkhorn_stabilized');
  points   2-D point clouds of 3,000 and 2,000 points with total masses 1 and 1.7, squared Euclidean (max C about 30),
           rho = 5, eps = 0.005 x max C, with -ot_eps_schedule auto; reference: POT as above;
  semi     a rectangular dense case (400 x 250) with a hard first marginal (-ot_unbalanced_b only: P1 = a) and masses
           1 and 2; POT 0.8.2 has one reg_m for both sides, so the reference is a log-domain generalised Sinkhorn in
           numpy (below), itself first checked here against POT on the doubly relaxed problem.
For each NP, otsolve runs to -ot_tol 1e-12 x the larger mass and its plan P = exp((f + g - C)/eps), from the potentials in the result
file, must satisfy |P - P_ref|_1 / |P_ref|_1 <= 1e-7 and <C,P> equal to the reference's to 1e-7 relative; the
result's transported mass, KL terms and unbalanced objective must equal those of P_ref (1e-7), and its objective
must equal its dual objective (strong duality, 1e-9 relative).
"""
import gzip
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import ot


def kl(x, y):
    return float(np.sum(x * np.log(x / y) - x + y))


def numpy_unbalanced(a, b, M, eps, rho_a, rho_b, tol=1e-14, max_it=200000):
    """Log-domain generalised Sinkhorn (Chizat et al. 2018): f = t_a * eps (log a - LSE_j((g - C)/eps)), and so for g,
    with t = rho / (rho + eps), 1 for a hard side (rho = inf)."""
    ta = 1.0 if np.isinf(rho_a) else rho_a / (rho_a + eps)
    tb = 1.0 if np.isinf(rho_b) else rho_b / (rho_b + eps)
    f, g = np.zeros(len(a)), np.zeros(len(b))
    for _ in range(max_it):
        f_old = f
        z = (g[None, :] - M) / eps
        zmax = z.max(1)
        f = ta * eps * (np.log(a) - (zmax + np.log(np.exp(z - zmax[:, None]).sum(1))))
        z = (f[:, None] - M) / eps
        zmax = z.max(0)
        g = tb * eps * (np.log(b) - (zmax + np.log(np.exp(z - zmax[None, :]).sum(0))))
        if np.abs(f - f_old).max() < tol * eps:
            break
    return np.exp((f[:, None] + g[None, :] - M) / eps)


def fmnist_case():
    raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:2]
    r, c = np.divmod(np.arange(784), 28)
    grid = np.column_stack([c / 27.0, r / 27.0])
    M = ot.dist(grid, grid)
    a, b = images[0] / 255.0 + 0.01, images[1] / 255.0 + 0.01
    return {"C": M}, a, b, M, 0.01, 0.5, 0.5, []


def points_case():
    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(0, 0.5, (1500, 2)), rng.normal((2, 1), 0.4, (1500, 2))])
    Y = np.concatenate([rng.normal((0.5, 0.5), 0.6, (1200, 2)), rng.normal((2.5, 0), 0.3, (800, 2))])
    a, b = rng.uniform(0.5, 1.5, 3000), rng.uniform(0.5, 1.5, 2000)
    a, b = a / a.sum(), 1.7 * b / b.sum()
    M = ot.dist(X, Y)
    return {"X": X, "Y": Y}, a, b, M, 0.005 * M.max(), 5.0, 5.0, ["-ot_eps_schedule", "auto"]


def semi_case():
    rng = np.random.default_rng(5)
    X, Y = rng.uniform(0, 1, (400, 3)), rng.uniform(0, 1, (250, 3)) + 0.2
    M = ot.dist(X, Y, metric="euclidean")
    a, b = rng.uniform(0.5, 1.5, 400), rng.uniform(0.5, 1.5, 250)
    a, b = a / a.sum(), 2.0 * b / b.sum()
    # the numpy reference against POT where POT applies (both sides relaxed, rho = 0.2)
    P_pot = ot.unbalanced.sinkhorn_unbalanced(a, b, M, 0.05, 0.2, method="sinkhorn_stabilized", numItermax=100000, stopThr=1e-15)
    P_np = numpy_unbalanced(a, b, M, 0.05, 0.2, 0.2)
    rel = np.abs(P_np - P_pot).sum() / P_pot.sum()
    print("%s numpy reference against POT (rho_a = rho_b = 0.2): |P - P_POT|_1 / |P_POT|_1 = %.1e" % ("ok  " if rel < 1e-9 else "FAIL", rel))
    if rel >= 1e-9:
        sys.exit(1)
    return {"C": M}, a, b, M, 0.05, np.inf, 0.2, []


def errors(build, ranks):
    """Bad input and what is not implemented yet: one clear message on every rank, exit 1, nothing written."""
    d = tempfile.mkdtemp(prefix="otsolve_unbalanced_errors_")
    rng = np.random.default_rng(2)
    with h5py.File(os.path.join(d, "p.h5"), "w") as f:
        f["X"], f["Y"], f["b"] = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)), np.full(20, 0.1)  # masses 1 and 2
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    cases = [
        ([], "total masses differ"),
        (["-ot_unbalanced", "-1"], "-ot_unbalanced: rho must be positive"),
        (["-ot_unbalanced_a", "0"], "-ot_unbalanced: rho must be positive"),
        (["-ot_unbalanced", "1", "-ot_sinkhorn_variant", "absorb"], "-ot_sinkhorn_variant absorb does not handle relaxed marginals yet"),
        (["-ot_unbalanced_a", "1", "-ot_divergence"], "-ot_divergence with unbalanced transport needs one rho for both sides"),
        (["-ot_unbalanced_a", "inf", "-ot_unbalanced_b", "inf"], "total masses differ"),  # inf: both hard, balanced
    ]
    failed = False
    for np_ in ranks:
        for extra, message in cases:
            out = os.path.join(d, "r.h5")
            cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve"), "-problem", os.path.join(d, "p.h5"), "-output", out] + extra
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            text = p.stdout + p.stderr
            ok = p.returncode == 1 and message in text and text.count("otsolve: error:") == 1 and not os.path.exists(out)
            print("%s %d rank(s), %s: exit %d, %s" % ("ok  " if ok else "FAIL", np_, " ".join(extra) or "(balanced)", p.returncode, message))
            if not ok:
                print(text)
            failed = failed or not ok
    sys.exit(1 if failed else 0)


def restart(build, ranks):
    """An unbalanced run stopped by -ot_max_it on ranks[0] ranks, resumed from its checkpoint on each other count, gives
    the uninterrupted answer (1e-10 relative); a restart with another rho is refused."""
    d = tempfile.mkdtemp(prefix="otsolve_unbalanced_restart_")
    data, a, b, M, eps, rho, _, extra = points_case()
    with h5py.File(os.path.join(d, "p.h5"), "w") as f:
        f["X"], f["Y"], f["a"], f["b"] = data["X"][:600], data["Y"][:400], a[:600], b[:400]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    common = ["-problem", os.path.join(d, "p.h5"), "-ot_eps", repr(eps), "-ot_tol", "1e-11", "-ot_unbalanced", repr(rho)] + extra

    def run(np_, args):
        cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve")] + common + args
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)

    full = run(ranks[0], ["-output", os.path.join(d, "full.h5")])
    part = run(ranks[0], ["-ot_max_it", "40", "-ot_checkpoint", os.path.join(d, "ck.h5"), "-output", os.path.join(d, "part.h5")])
    failed = full.returncode != 0 or part.returncode != 2
    cost = h5py.File(os.path.join(d, "full.h5"), "r").attrs["transport_cost"] if not failed else np.nan
    for np_ in ranks[1:]:
        p = run(np_, ["-ot_restart", os.path.join(d, "ck.h5"), "-output", os.path.join(d, "r%d.h5" % np_)])
        resumed = h5py.File(os.path.join(d, "r%d.h5" % np_), "r").attrs["transport_cost"] if p.returncode == 0 else np.nan
        ok = p.returncode == 0 and abs(resumed - cost) <= 1e-10 * cost
        print("%s stopped after 40 iterations on %d ranks, resumed on %d: transport_cost %.15g, uninterrupted %.15g" % ("ok  " if ok else "FAIL", ranks[0], np_, resumed, cost))
        failed = failed or not ok
    common[common.index("-ot_unbalanced") + 1] = repr(2 * rho)
    p = run(ranks[-1], ["-ot_restart", os.path.join(d, "ck.h5"), "-output", os.path.join(d, "other.h5")])
    ok = p.returncode == 1 and "the checkpoint solves rho_a" in p.stdout + p.stderr
    print("%s a restart with another rho is refused" % ("ok  " if ok else "FAIL"))
    sys.exit(1 if failed or not ok else 0)


def sns(build, ranks):
    """SNS on the unbalanced dual (its Hessian with the KL curvature on the diagonal) against unbalanced Sinkhorn on
    Fashion-MNIST with raw pixel masses at eps = 1e-3: the same plan (1e-9 in L1) in at least 10x fewer iterations
    (sweeps and Newton steps, counted: the times are in tests/bench_sns.sh)."""
    data, a, b, M, _, rho, _, _ = fmnist_case()
    eps = 1e-3
    d = tempfile.mkdtemp(prefix="otsolve_unbalanced_sns_")
    with h5py.File(os.path.join(d, "p.h5"), "w") as f:
        f["C"], f["a"], f["b"] = M, a, b
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    failed = False
    for np_ in ranks:
        got = {}
        for method in ("sinkhorn", "sns"):
            out = os.path.join(d, "%s%d.h5" % (method, np_))
            cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve"), "-problem", os.path.join(d, "p.h5"), "-ot_unbalanced", repr(rho), "-ot_eps",
                   repr(eps), "-ot_tol", "1e-9", "-ot_method", method, "-output", out]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                print("FAIL %s on %d ranks: exit %d\n%s%s" % (method, np_, p.returncode, p.stdout, p.stderr))
                sys.exit(1)
            with h5py.File(out, "r") as r:
                at = dict(r.attrs)
                got[method] = (np.exp((r["f"][:][:, None] + r["g"][:][None, :] - M) / eps), at["transport_cost"],
                               int(at["iterations_sinkhorn"] + at["iterations_newton"]), int(at["iterations_newton"]))
        (P0, c0, it0, _), (P1, c1, it1, newton) = got["sinkhorn"], got["sns"]
        rel_plan, rel_cost = np.abs(P1 - P0).sum() / P0.sum(), abs(c1 - c0) / c0
        ok = rel_plan <= 1e-9 and rel_cost <= 1e-9 and newton > 0 and 10 * it1 <= it0
        print("%s SNS on %d rank(s): %d iterations (%d Newton) against Sinkhorn's %d; plans %.1e apart in L1, transport costs %.15g and %.15g (%.1e)" %
              ("ok  " if ok else "FAIL", np_, it1, newton, it0, rel_plan, c1, c0, rel_cost))
        failed = failed or not ok
    sys.exit(1 if failed else 0)


def pairs(build, ranks):
    """-pairs with -ot_unbalanced and -ot_divergence: each entry of the K x K matrices (the divergence too) equals the
    single run of its pair (its points and weights named with -problem_x/-problem_y/-problem_a/-problem_b in the measure
    files), to 1e-10."""
    d = tempfile.mkdtemp(prefix="otsolve_unbalanced_pairs_")
    rng = np.random.default_rng(9)
    names = []
    for k, (n, mass) in enumerate([(80, 1.0), (60, 1.5), (70, 0.7)]):
        names.append(os.path.join(d, "m%d.h5" % k))
        with h5py.File(names[-1], "w") as f:
            f["X"], f["a"] = rng.normal(0.3 * k, 1.0, (n, 2)), rng.uniform(0.5, 1.5, n)
            f["a"][...] = mass * f["a"][:] / f["a"][:].sum()
    with open(os.path.join(d, "list.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    common = ["-ot_unbalanced", "1", "-ot_eps", "0.05", "-ot_tol", "1e-12"]
    failed = False
    single = {}
    for i in range(3):
        for j in range(i + 1, 3):
            out = os.path.join(d, "s%d%d.h5" % (i, j))
            cmd = ["mpiexec", "-n", "1", os.path.join(build, "otsolve"), "-problem_x", names[i] + ":/X", "-problem_y", names[j] + ":/X", "-problem_a",
                   names[i] + ":/a", "-problem_b", names[j] + ":/a", "-output", out, "-ot_divergence"] + common
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                print("FAIL single run %d %d: exit %d\n%s%s" % (i, j, p.returncode, p.stdout, p.stderr))
                sys.exit(1)
            with h5py.File(out, "r") as r:
                single[i, j] = (r.attrs["transport_cost"], r.attrs["unbalanced_objective"], r.attrs["transported_mass"], r.attrs["sinkhorn_divergence"])
    for np_ in ranks:
        out = os.path.join(d, "D%d.h5" % np_)
        cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve"), "-pairs", os.path.join(d, "list.txt"), "-output", out, "-ot_divergence"] + common
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            print("FAIL -pairs on %d ranks: exit %d\n%s%s" % (np_, p.returncode, p.stdout, p.stderr))
            sys.exit(1)
        with h5py.File(out, "r") as r:
            T, U, Mass, S = r["transport_cost"][:], r["unbalanced_objective"][:], r["transported_mass"][:], r["sinkhorn_divergence"][:]
            absent = "lower_bound" not in r and "wasserstein" not in r and (r["divergence_converged"][:] == 1).all()
        worst = max(max(abs(T[i, j] - c) / c, abs(U[i, j] - u) / abs(u), abs(Mass[j, i] - m) / m, abs(S[j, i] - v) / v)
                    for (i, j), (c, u, m, v) in single.items())
        ok = worst <= 1e-10 and absent and np.isnan(U[0, 0]) and S[1, 1] == 0
        print("%s -pairs -ot_unbalanced 1 -ot_divergence on %d rank(s): transport_cost, unbalanced_objective, transported_mass, "
              "sinkhorn_divergence equal the 3 single runs to %.1e; no bounds, NaN diagonal" % ("ok  " if ok else "FAIL", np_, worst))
        failed = failed or not ok
    sys.exit(1 if failed else 0)


def geomloss_unbalanced(a, b, C, eps, rho, max_it=50000):
    """The potentials (F, G) of the problem regularised by eps KL(P | a x b) with marginal penalties rho KL, in
    GeomLoss's convention (plan a_i b_j exp((F_i + G_j - C_ij)/eps)), by its damped softmin updates."""
    from scipy.special import logsumexp
    F, G, t = np.zeros(len(a)), np.zeros(len(b)), 1.0 / (1.0 + eps / rho)
    for _ in range(max_it):
        F_new = -t * eps * logsumexp(np.log(b)[None, :] + (G[None, :] - C) / eps, axis=1)
        G_new = -t * eps * logsumexp(np.log(a)[:, None] + (F_new[:, None] - C) / eps, axis=0)
        done = max(np.abs(F_new - F).max(), np.abs(G_new - G).max()) < 1e-15 * eps
        F, G = F_new, G_new
        if done:
            break
    return F, G


def divergence(build, ranks):
    """-ot_divergence with -ot_unbalanced: the unbalanced Sinkhorn divergence of Séjourné et al. 2019 (Proposition 12,
    GeomLoss's formula (rho + eps/2) <a, exp(-F_aa/rho) - exp(-F_ba/rho)> + (the same for b)) from potentials computed
    here in GeomLoss's convention, to 1e-9 relative; and zero for two copies of one measure."""
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(120, 2)), rng.normal(size=(90, 2)) + 0.4
    a, b = rng.uniform(0.5, 1.5, 120), rng.uniform(0.5, 1.5, 90)
    a, b = a / a.sum(), 1.4 * b / b.sum()
    eps, rho = 0.1, 0.7
    F_ba, G_ab = geomloss_unbalanced(a, b, ot.dist(X, Y), eps, rho)
    F_aa, _ = geomloss_unbalanced(a, a, ot.dist(X, X), eps, rho)
    G_bb, _ = geomloss_unbalanced(b, b, ot.dist(Y, Y), eps, rho)
    ref = (rho + eps / 2) * ((a * (np.exp(-F_aa / rho) - np.exp(-F_ba / rho))).sum() + (b * (np.exp(-G_bb / rho) - np.exp(-G_ab / rho))).sum())
    d = tempfile.mkdtemp(prefix="otsolve_unbalanced_divergence_")
    with h5py.File(os.path.join(d, "p.h5"), "w") as f:
        f["X"], f["Y"], f["a"], f["b"] = X, Y, a, b
    with h5py.File(os.path.join(d, "same.h5"), "w") as f:
        f["X"], f["Y"], f["a"], f["b"] = X, X, a, a
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    failed = False
    for np_ in ranks:
        values = []
        for name in ("p", "same"):
            out = os.path.join(d, "%s%d.h5" % (name, np_))
            cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve"), "-problem", os.path.join(d, name + ".h5"), "-ot_unbalanced", repr(rho),
                   "-ot_eps", repr(eps), "-ot_tol", "1e-12", "-ot_divergence", "-output", out]
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                print("FAIL -ot_divergence on %d ranks: exit %d\n%s%s" % (np_, p.returncode, p.stdout, p.stderr))
                sys.exit(1)
            with h5py.File(out, "r") as r:
                values.append((r.attrs["sinkhorn_divergence"], int(r.attrs["divergence_converged"])))
        (value, conv), (zero, conv0) = values
        ok = abs(value - ref) <= 1e-9 * ref and abs(zero) <= 1e-10 and conv == 1 and conv0 == 1
        print("%s unbalanced divergence on %d rank(s): %.15g, reference %.15g (rel. %.1e); two copies of a: %.1e" %
              ("ok  " if ok else "FAIL", np_, value, ref, abs(value - ref) / ref, zero))
        failed = failed or not ok
    sys.exit(1 if failed else 0)


def main():
    build, case, ranks = sys.argv[1], sys.argv[2], [int(k) for k in sys.argv[3:]]
    if case == "divergence":
        divergence(build, ranks)
    if case == "pairs":
        pairs(build, ranks)
    if case == "sns":
        sns(build, ranks)
    if case == "errors":
        errors(build, ranks)
    if case == "restart":
        restart(build, ranks)
    data, a, b, M, eps, rho_a, rho_b, extra = {"fmnist": fmnist_case, "points": points_case, "semi": semi_case}[case]()
    if np.isinf(rho_a):
        P_ref = numpy_unbalanced(a, b, M, eps, rho_a, rho_b)
    else:
        P_ref = ot.unbalanced.sinkhorn_unbalanced(a, b, M, eps, rho_a, method="sinkhorn_stabilized", numItermax=200000, stopThr=1e-15)
    ref_cost, ref_mass = float((P_ref * M).sum()), float(P_ref.sum())
    ref_kl = [0.0 if np.isinf(rho_a) else kl(P_ref.sum(1), a), kl(P_ref.sum(0), b)]
    ref_obj = ref_cost + eps * float((P_ref * (np.log(P_ref) - 1)).sum()) + sum(r * k for r, k in zip((rho_a, rho_b), ref_kl) if not np.isinf(r))
    print("reference: <C,P> = %.15g, mass %.12g (sum a = %.6g, sum b = %.6g), objective %.15g" % (ref_cost, ref_mass, a.sum(), b.sum(), ref_obj))

    d = tempfile.mkdtemp(prefix="otsolve_unbalanced_")
    with h5py.File(os.path.join(d, "problem.h5"), "w") as f:
        for k, v in data.items():
            f[k] = v
        f["a"], f["b"] = a, b
    options = ["-ot_eps", repr(eps), "-ot_tol", repr(1e-12 * max(a.sum(), b.sum()))] + extra
    options += ["-ot_unbalanced", repr(rho_b)] if rho_a == rho_b else ["-ot_unbalanced_b", repr(rho_b)]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    failed = False
    for np_ in ranks:
        out = os.path.join(d, "r%d.h5" % np_)
        cmd = ["mpiexec", "-n", str(np_), os.path.join(build, "otsolve"), "-problem", os.path.join(d, "problem.h5"), "-output", out] + options
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            print("FAIL %s on %d ranks: exit %d\n%s%s" % (case, np_, p.returncode, p.stdout, p.stderr))
            failed = True
            continue
        with h5py.File(out, "r") as r:
            f, g, at = r["f"][:], r["g"][:], dict(r.attrs)
        P = np.exp((f[:, None] + g[None, :] - M) / eps)
        rel_plan = np.abs(P - P_ref).sum() / np.abs(P_ref).sum()
        rel_cost = abs(at["transport_cost"] - ref_cost) / ref_cost
        rel_mass = abs(at["transported_mass"] - ref_mass) / ref_mass
        rel_kl = max(abs(at[k] - v) / max(v, 1e-300) for k, v in zip(("kl_a", "kl_b"), ref_kl) if v > 0)
        rel_obj = abs(at["unbalanced_objective"] - ref_obj) / abs(ref_obj)
        gap = abs(at["unbalanced_objective"] - at["dual_objective"]) / abs(at["dual_objective"])
        ok = rel_plan <= 1e-7 and rel_cost <= 1e-7 and rel_mass <= 1e-7 and rel_kl <= 1e-7 and rel_obj <= 1e-7 and gap <= 1e-9
        ok = ok and int(at["converged"]) == 1 and "lower_bound" not in at and "wasserstein" not in at
        print("%s %s on %d rank(s): |P - P_ref|_1/|P_ref|_1 = %.1e, <C,P> %.15g (rel. %.1e), mass rel. %.1e, KL rel. %.1e, objective rel. %.1e, "
              "primal-dual gap %.1e, %d sweeps" % ("ok  " if ok else "FAIL", case, np_, rel_plan, at["transport_cost"], rel_cost, rel_mass, rel_kl, rel_obj, gap,
                                                  at["iterations_sinkhorn"]))
        failed = failed or not ok
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
