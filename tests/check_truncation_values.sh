#!/bin/bash
# The truncated kernel with its values computed by each pass instead of stored (-ot_truncation_values computed):
# check_case.sh against POT (transport cost, marginal error, the certified bounds around ot.emd2, the result file),
# then every number of the run (transport cost, bounds, dual, marginal error, iterations) the same to the last digit
# as with the values stored (-ot_truncation_values stored): the passes compute them bit for bit as a build stores them;
# and the same again with the default (auto), whose first build keeps positions only and fills the values in after.
# usage: check_truncation_values.sh BUILD_DIR CASE NP [extra otsolve options...]
set -euo pipefail
build=$1 name=$2 np=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
computed=$(bash "$here/check_case.sh" "$build" "$name" "$np" 1e-7 -ot_sinkhorn_variant truncated -ot_truncation_values computed "$@") || {
  echo "$computed"; exit 1; }
echo "$computed"
# shellcheck source=tests/cases.sh
. "$here/cases.sh"
load_case_tmp "$build" "$name"
stored=$(mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$case_eps" -ot_tol 1e-9 -ot_sinkhorn_variant truncated \
  -ot_truncation_values stored "$@") || { echo "$stored"; echo "FAIL: the run with stored values failed"; exit 1; }
keys='^(transport_cost|lower_bound|upper_bound|dual|marginal_error|iterations_sinkhorn|iterations_newton) = '
a=$(grep -E "$keys" <<< "$computed") b=$(grep -E "$keys" <<< "$stored")
[ "$(wc -l <<< "$a")" -ge 6 ] || { echo "FAIL: the computed run printed too few results"; exit 1; }
echo "with stored values:"; echo "$b"
[ "$a" = "$b" ] || { echo "FAIL: computed and stored values give different results"; diff <(echo "$a") <(echo "$b"); exit 1; }
echo "computed = stored, to the last digit"
auto=$(mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$case_eps" -ot_tol 1e-9 -ot_sinkhorn_variant truncated "$@") || {
  echo "$auto"; echo "FAIL: the run with -ot_truncation_values auto failed"; exit 1; }
[ "$(grep -E "$keys" <<< "$auto")" = "$b" ] || { echo "FAIL: auto and stored values give different results"; diff <(grep -E "$keys" <<< "$auto") <(echo "$b"); exit 1; }
echo "auto (values filled in after the first build) = stored, to the last digit"
