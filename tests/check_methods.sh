#!/bin/bash
# -ot_method sns and -ot_method sinkhorn must reach the same transport cost (1e-9 relative) at tol 1e-11.
# usage: check_methods.sh BUILD_DIR CASE NP
set -euo pipefail
build=$1 name=$2 np=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
. "$here/cases.sh"
load_case_tmp "$build" "$name"
eps=$case_eps
for method in sinkhorn sns; do
  mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$eps" -ot_tol 1e-11 -ot_method "$method" > "$dir/$method.txt"
  awk -F' = ' -v m="$method" '$1 == "transport_cost" {tc = $2} $1 == "iterations_sinkhorn" {s = $2} $1 == "iterations_newton" {nw = $2}
    $1 == "converged" {c = $2} $1 == "solve_time" {t = $2} END {printf "%s %.17g %d %d %d %s\n", m, tc, s, nw, c, t}' "$dir/$method.txt" >> "$dir/table.txt"
done
awk 'NR == 1 {ref = $2} {
  rel = ($2 - ref) / ref; if (rel < 0) rel = -rel
  printf "%-8s transport cost %.17g (relative difference %.3g), %d sweeps + %d Newton steps, converged %d, %s s\n", $1, $2, rel, $3, $4, $5, $6
  if (!(rel <= 1e-9) || $5 != 1) bad = 1
} END {exit bad}' "$dir/table.txt"
