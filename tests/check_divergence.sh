#!/bin/bash
# -ot_divergence on point clouds (NP ranks) against the debiased Sinkhorn divergence computed from POT 0.8.2:
# ot.bregman.sinkhorn_log's plans for (a,b), (a,a), (b,b), each turned by numpy into its regularised value
# <C,P> + eps sum P (log P - 1); also wasserstein = transport_cost^(1/p) for sqeuclidean (p = 2) and pnorm:1.5, and
# wasserstein_lower <= W_p <= wasserstein_upper with W_p of the unregularised problem from POT's ot.emd2.
# usage: check_divergence.sh BUILD_DIR NP
set -uo pipefail
build=$1 np=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
for cost in sqeuclidean pnorm:1.5; do
  /usr/bin/python3 - "$dir/problem.h5" "$cost" > "$dir/ref" << 'PY'
import sys, warnings, h5py, numpy as np, ot
rng = np.random.default_rng(5)
X = rng.normal(size=(160, 2)); Y = rng.normal(size=(130, 2)) * 0.7 + [1.0, 0.3]
a = rng.random(160) + 0.5; a /= a.sum(); b = rng.random(130) + 0.5; b /= b.sum()
cost = sys.argv[2]
with h5py.File(sys.argv[1], "w") as f:
    f["X"], f["Y"], f["a"], f["b"] = X, Y, a, b
    f.attrs["cost"] = cost
p = 2.0 if cost == "sqeuclidean" else float(cost.split(":")[1])
def C(U, V):
    return np.sqrt(((U[:, None, :] - V[None, :, :]) ** 2).sum(-1)) ** p
eps = 0.01 * C(X, Y).max()
warnings.simplefilter("ignore")
def value(u, v, U, V):
    M = C(U, V)
    P = ot.bregman.sinkhorn_log(u, v, M, eps, numItermax=200000, stopThr=1e-14)
    return (P * M).sum() + eps * (P * (np.log(P) - 1)).sum(), (P * M).sum()
ab, cost_ab = value(a, b, X, Y)
aa, _ = value(a, a, X, X)
bb, _ = value(b, b, Y, Y)
exact = ot.emd2(a, b, C(X, Y), numItermax=10**7) ** (1 / p)  # W_p of the unregularised problem
print(eps, ab - 0.5 * (aa + bb), abs(ab), cost_ab ** (1 / p), exact)
PY
  read -r eps ref scale wref exact < "$dir/ref"
  mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_divergence -ot_tol 1e-10 -output "$dir/r.h5" > "$dir/out" 2>&1 ||
    { echo "FAIL: otsolve -ot_divergence ($cost)"; cat "$dir/out"; fail=1; continue; }
  got=$(awk '$1 == "sinkhorn_divergence" {print $3}' "$dir/out")
  w=$(awk '$1 == "wasserstein" {print $3}' "$dir/out")
  if /usr/bin/python3 -c "
import sys, h5py
got, ref, scale, w, wref, eps, exact = map(float, sys.argv[1:8])
r = h5py.File(sys.argv[8], 'r')
ok = abs(got - ref) <= 1e-8 * scale and abs(w - wref) <= 1e-7 * wref and r.attrs['sinkhorn_divergence'] == got and r.attrs['divergence_converged'] == 1
ok = ok and abs(r.attrs['eps'] - eps) <= 1e-12 * eps and r.attrs['wasserstein_lower'] <= exact * (1 + 1e-12) and exact <= r.attrs['wasserstein_upper'] * (1 + 1e-12)
sys.exit(0 if ok else 1)" "$got" "$ref" "$scale" "$w" "$wref" "$eps" "$exact" "$dir/r.h5"; then
    echo "ok   $cost: sinkhorn_divergence $got (POT-based $ref), wasserstein $w (POT $wref), exact W_p $exact (POT emd2) within the bounds, $np rank(s)"
  else
    echo "FAIL $cost: sinkhorn_divergence '$got' vs $ref (|diff| must be <= 1e-8 x $scale), wasserstein '$w' vs $wref"; cat "$dir/out"; fail=1
  fi
done
exit $fail
