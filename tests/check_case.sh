#!/bin/bash
# Solves one reference case of tests/data/references.txt with otsolve on NP ranks and checks it against
# POT's values: converged, marginal error <= 1e-9, transport cost within RTOL of ot.bregman.sinkhorn_log,
# lower bound <= exact cost (ot.emd2) <= upper bound; then checks the result file independently with numpy.
# usage: check_case.sh BUILD_DIR CASE NP [RTOL [extra otsolve options...]]
set -euo pipefail
build=$1 name=$2 np=$3 rtol=${4:-1e-7}
shift $(( $# < 4 ? $# : 4 ))
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
. "$here/cases.sh"
load_case_tmp "$build" "$name"
n=$case_n m=$case_m eps=$case_eps sinkhorn_cost=$case_sinkhorn_cost emd_cost=$case_emd_cost

mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -output "$dir/result.h5" -ot_eps "$eps" -ot_tol 1e-9 "$@" > "$dir/out.txt" || {
  status=$?; cat "$dir/out.txt"; echo "otsolve exited with $status"; exit 1; }
cat "$dir/out.txt"
value() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$dir/out.txt"; }
awk -v conv="$(value converged)" -v err="$(value marginal_error)" -v tc="$(value transport_cost)" -v ref="$sinkhorn_cost" \
    -v lo="$(value lower_bound)" -v up="$(value upper_bound)" -v emd="$emd_cost" -v rtol="$rtol" -v n="$(value n)" -v m="$(value m)" \
    -v want_n="$n" -v want_m="$m" 'BEGIN {
  bad = 0
  if (conv != 1) { print "FAIL: converged = " conv; bad = 1 }
  if (n != want_n || m != want_m) { print "FAIL: sizes " n " x " m ", expected " want_n " x " want_m; bad = 1 }
  if (!(err + 0 <= 1e-9)) { print "FAIL: marginal_error " err " > 1e-9"; bad = 1 }
  if (ref != "nan") {
    rel = (tc - ref) / ref; if (rel < 0) rel = -rel
    printf "transport_cost %.17g  POT sinkhorn_log %.17g  relative difference %.3g (allowed %g)\n", tc, ref, rel, rtol
    if (!(rel <= rtol)) { print "FAIL: transport cost differs from POT"; bad = 1 }
  }
  slack = 1e-12 * (emd < 0 ? -emd : emd) + 1e-15
  printf "lower_bound %.17g <= emd %.17g <= upper_bound %.17g\n", lo, emd, up
  if (!(lo <= emd + slack && emd <= up + slack)) { print "FAIL: the bounds do not bracket the exact cost"; bad = 1 }
  exit bad
}'
/usr/bin/python3 "$here/check_result.py" "$dir/problem.h5" "$dir/result.h5" 1e-9
