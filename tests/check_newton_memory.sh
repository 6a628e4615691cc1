#!/bin/bash
# The Newton memory budget (-ot_newton_memory) and the density check of SNS, on NP ranks:
#  1. a budget too small for -ot_newton_density's entries: no Newton step, the monitor says so, Sinkhorn finishes and
#     the answer is Sinkhorn's (truncated kernel, 2,000 + 2,000 3-D points);
#  2. P not sparse (eps = 0.5 max C): the entries that fit leave out most of P's mass, no Newton step, the monitor says
#     so, and the answer is Sinkhorn's;
#  3. a negative budget is refused with exit 1.
# usage: check_newton_memory.sh BUILD_DIR NP
set -euo pipefail
build=$1 np=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n 2000 -gen_m 2000 -gen_dim 3 -gen_seed 3 -gen_output "$dir/p.h5" > /dev/null
value() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$2"; }
same() { # same transport cost to 1e-9 relative
  awk -v a="$(value transport_cost "$1")" -v b="$(value transport_cost "$2")" -v what="$3" 'BEGIN {
    rel = (a - b) / b; if (rel < 0) rel = -rel
    printf "%s: transport_cost %.17g, Sinkhorn %.17g, relative difference %.3g\n", what, a, b, rel; exit !(rel <= 1e-9) }'
}
check() { # FILE WHAT MESSAGE
  grep -F "$3" "$1" || { cat "$1"; echo "FAIL ($2): no monitor line saying: $3"; exit 1; }
  [ "$(value iterations_newton "$1")" = 0 ] || { echo "FAIL ($2): Newton steps were taken"; exit 1; }
  [ "$(value converged "$1")" = 1 ] || { echo "FAIL ($2): not converged"; exit 1; }
}
common=(-problem "$dir/p.h5" -ot_tol 1e-10 -ot_sinkhorn_variant truncated)
# 1. a budget of 0.3 MB per rank
mpiexec -n "$np" "$build/otsolve" "${common[@]}" -ot_eps_rel 1e-3 -ot_method sinkhorn > "$dir/sinkhorn.txt"
mpiexec -n "$np" "$build/otsolve" "${common[@]}" -ot_eps_rel 1e-3 -ot_method sns -ot_newton_time_check false -ot_newton_memory 0.3 \
  -ot_monitor 1000000 > "$dir/budget.txt"
check "$dir/budget.txt" budget "more than the Newton memory budget of 0.3 MB per rank (-ot_newton_memory): Sinkhorn sweeps finish this eps stage"
same "$dir/budget.txt" "$dir/sinkhorn.txt" "budget 0.3 MB"
# the same problem with the default budget takes Newton steps
mpiexec -n "$np" "$build/otsolve" "${common[@]}" -ot_eps_rel 1e-3 -ot_method sns -ot_newton_time_check false > "$dir/default.txt"
[ "$(value iterations_newton "$dir/default.txt")" -ge 1 ] || { cat "$dir/default.txt"; echo "FAIL: no Newton step with the default budget"; exit 1; }
same "$dir/default.txt" "$dir/sinkhorn.txt" "default budget, $(value iterations_newton "$dir/default.txt") Newton steps"
# 2. P dense at eps = 0.5 max C (the log domain: every entry of P is there)
common=(-problem "$dir/p.h5" -ot_tol 1e-12 -ot_sinkhorn_variant log -ot_eps_rel 0.5)
mpiexec -n "$np" "$build/otsolve" "${common[@]}" -ot_method sinkhorn > "$dir/sinkhorn.txt"
mpiexec -n "$np" "$build/otsolve" "${common[@]}" -ot_method sns -ot_newton_time_check false -ot_monitor 1000000 > "$dir/dense.txt"
check "$dir/dense.txt" dense "(P is not sparse at this eps): Sinkhorn sweeps finish this eps stage"
same "$dir/dense.txt" "$dir/sinkhorn.txt" "P dense"
# 3. a bad budget
if mpiexec -n "$np" "$build/otsolve" -problem "$dir/p.h5" -ot_newton_memory -5 > "$dir/bad.txt" 2>&1; then
  echo "FAIL: -ot_newton_memory -5 was accepted"; exit 1
fi
grep -F -- "-ot_newton_memory must be >= 0" "$dir/bad.txt" || { cat "$dir/bad.txt"; echo "FAIL: no clear message for -ot_newton_memory -5"; exit 1; }
echo "newton memory checks passed"
