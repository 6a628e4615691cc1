#!/bin/bash
# The sparse plan (-ot_plan_threshold) written on NP ranks, against P recomputed by numpy from the problem's C
# and the result's f, g: the kept set is exactly {P_ij >= t max P} (up to ties within 1e-9), the values agree
# to 1e-12, indptr/indices form a valid CSR matrix; with t = 0 the plan is all of P, its mass is the total mass
# and <C,P> is the reported transport cost. Point-cloud cases get C from numpy (sqeuclidean, euclidean). Extra options
# (such as -ot_sinkhorn_variant truncated, whose plan comes from the kernel's kept entries) are passed on.
# usage: check_plan.sh BUILD_DIR CASE NP [extra otsolve options...]
set -uo pipefail
build=$1 name=$2 np=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
source "$here/cases.sh"
load_case_tmp "$build" "$name"
fail=0
for t in 1e-3 0.5 0; do
  mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$case_eps" -output "$dir/r.h5" -ot_plan_threshold "$t" "$@" -info :sys > "$dir/out" 2>&1 ||
    { echo "FAIL: otsolve -ot_plan_threshold $t"; cat "$dir/out"; exit 1; }
  # on the truncated kernel, a cut above what it dropped reads the plan from its kept entries
  if [[ " $* " == *" truncated "* && $t != 0 ]] && ! grep -q "from the truncated kernel's kept entries" "$dir/out"; then
    echo "FAIL t = $t: the plan did not come from the truncated kernel"; fail=1
  fi
  /usr/bin/python3 - "$dir/problem.h5" "$dir/r.h5" "$t" "$case_eps" << 'PY' || fail=1
import sys, h5py, numpy as np
prob, res, t, eps = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3]), float(sys.argv[4])
f, g = res["f"][:], res["g"][:]
if "C" in prob:
    C = prob["C"][:]
else:
    X, Y = prob["X"][:], prob["Y"][:]
    C = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    kind = prob.attrs["cost"]
    kind = kind.decode() if isinstance(kind, bytes) else kind
    assert kind in ("sqeuclidean", "euclidean"), kind
    if kind == "euclidean":
        C = np.sqrt(C)
n, m = C.shape
P = np.exp((f[:, None] + g[None, :] - C) / eps)
pl = res["plan"]
indptr, indices, data = pl["indptr"][:], pl["indices"][:], pl["data"][:]
ok = True
def check(cond, what):
    global ok
    if not cond:
        ok = False
        print("FAIL t = %g: %s" % (t, what))
check(tuple(pl.attrs["shape"]) == (n, m) and len(indptr) == n + 1 and indptr[0] == 0 and indptr[-1] == len(indices) == len(data) == pl.attrs["nnz"], "CSR layout")
check(np.all(np.diff(indptr) >= 0), "indptr non-decreasing")
rows = np.repeat(np.arange(n), np.diff(indptr))
check(np.all((indices >= 0) & (indices < m)), "column indices in range")
kept = np.zeros((n, m), bool)
kept[rows, indices] = True
check(kept.sum() == len(indices), "no duplicate entries")
cut = t * P.max()
check(np.all(kept[P >= cut * (1 + 1e-9)]), "every entry >= t max P is kept")
check(np.all(P[kept] >= cut * (1 - 1e-9)), "every kept entry is >= t max P")
check(np.allclose(data, P[rows, indices], rtol=1e-12, atol=0), "values equal P")
check(abs(pl.attrs["max"] - P.max()) <= 1e-12 * P.max(), "max attribute")
if t == 0:
    check(len(data) == n * m, "t = 0 keeps all of P")
    check(abs(data.sum() - P.sum()) <= 1e-12 and abs(np.dot(data, C[rows, indices]) - res.attrs["transport_cost"]) <= 1e-12 * res.attrs["transport_cost"],
          "mass and <C,P> of the full plan")
print("%s t = %g: %d of %d entries kept, mass %.6f of %.6f" % ("ok  " if ok else "FAIL", t, len(data), n * m, data.sum(), P.sum()))
sys.exit(0 if ok else 1)
PY
done
exit $fail
