#!/bin/bash
# The same problem on 1, 2, 3 and 4 ranks must give the same transport cost to 1e-10 relative and take the same
# path (the same numbers of sweeps and of Newton steps, SNS's decisions being made on counts): the row split
# changes only the order of floating-point sums.
# usage: check_ranks.sh BUILD_DIR CASE [otsolve options...]
set -euo pipefail
build=$1 name=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
. "$here/cases.sh"
load_case_tmp "$build" "$name"
eps=$case_eps
for np in 1 2 3 4; do
  mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$eps" -ot_tol 1e-9 "$@" > "$dir/out$np.txt"
  awk -F' = ' -v np="$np" '$1 == "transport_cost" {tc = $2} $1 == "iterations_sinkhorn" {it = $2} $1 == "iterations_newton" {nw = $2}
    $1 == "converged" {c = $2} END {printf "%d %.17g %d %d %d\n", np, tc, it, c, nw}' "$dir/out$np.txt" >> "$dir/table.txt"
done
cat "$dir/table.txt"
awk 'NR == 1 {ref = $2; it = $3; nw = $5} {
  rel = ($2 - ref) / ref; if (rel < 0) rel = -rel
  printf "ranks %d: transport cost %.17g, relative difference to 1 rank %.3g, %d sweeps + %d Newton steps, converged %d\n", $1, $2, rel, $3, $5, $4
  if (!(rel <= 1e-10) || $4 != 1 || $3 != it || $5 != nw) bad = 1
} END {exit bad}' "$dir/table.txt"
