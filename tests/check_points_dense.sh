#!/bin/bash
# A point-cloud problem (/X, /Y, attribute cost) must give the transport cost of the dense problem /C of the
# same points, with /C computed here by numpy from /X and /Y: both solved by otsolve on NP ranks to marginal
# error 1e-9 with the case's eps (the options given apply to the point-cloud run; the dense run takes the
# defaults), their transport costs must agree to RTOL. With -ot_monitor the point-cloud run prints its memory
# estimate exactly once, and with -ot_sinkhorn_variant log it holds nothing of size n x m.
# usage: check_points_dense.sh BUILD_DIR CASE NP RTOL [otsolve options for the point-cloud run...]
set -euo pipefail
build=$1 name=$2 np=$3 rtol=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
. "$here/cases.sh"
load_case_tmp "$build" "$name"
/usr/bin/python3 - "$dir/problem.h5" "$dir/dense.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as p, h5py.File(sys.argv[2], "w") as d:
    assert "C" not in p, "the case must be a point-cloud problem"
    X, Y, cost = p["X"][...], p["Y"][...], p.attrs.get("cost", "sqeuclidean")
    C = ((X[:, None, :] - Y[None, :, :]) ** 2).sum(-1)
    d["C"] = np.sqrt(C) if cost == "euclidean" else (C ** (0.5 * float(cost[6:])) if cost.startswith("pnorm:") else C)
    for key in ("a", "b"):
        if key in p:
            d[key] = p[key][...]
PY
for kind in problem dense; do
  if [ "$kind" = problem ]; then options=("$@"); else options=(); fi
  mpiexec -n "$np" "$build/otsolve" -problem "$dir/$kind.h5" -ot_eps "$case_eps" -ot_tol 1e-9 -ot_monitor 1000000 "${options[@]}" > "$dir/$kind.txt" || {
    status=$?; cat "$dir/$kind.txt"; echo "otsolve on the $kind file exited with $status"; exit 1; }
done
grep "memory estimate" "$dir/problem.txt" || true
[ "$(grep -c 'memory estimate' "$dir/problem.txt")" -eq 1 ] || { echo "FAIL: -ot_monitor must print the memory estimate once"; exit 1; }
if [[ " $* " == *" -ot_sinkhorn_variant log "* ]]; then
  grep -q "memory estimate.*nothing of size n x m" "$dir/problem.txt" || { echo "FAIL: the log variant on points must hold nothing of size n x m"; exit 1; }
fi
value() { awk -F' = ' -v k="$2" '$1 == k {v = $2} END {print v}' "$dir/$1.txt"; }
awk -v tp="$(value problem transport_cost)" -v td="$(value dense transport_cost)" -v cp="$(value problem converged)" -v cd="$(value dense converged)" \
    -v ip="$(value problem iterations_sinkhorn)" -v id="$(value dense iterations_sinkhorn)" -v rtol="$rtol" 'BEGIN {
  rel = (tp - td) / td; if (rel < 0) rel = -rel
  printf "points: transport cost %.17g (%d sweeps, converged %d)\ndense:  transport cost %.17g (%d sweeps, converged %d)\nrelative difference %.3g (allowed %g)\n", tp, ip, cp, td, id, cd, rel, rtol
  exit !(rel <= rtol && cp == 1 && cd == 1)
}'
