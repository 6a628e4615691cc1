#!/bin/bash
# SNS's two assemblies of the Newton matrix (-ot_newton_assembly split: CSR blocks built by otsolve, the
# transposed entries sent with MPI_Alltoallv; setvalues: MatSetValues and PETSc's assembly) must give the same
# run: the same Sinkhorn sweeps and Newton steps, the same transport cost to 1e-12 relative.
# usage: check_assembly.sh BUILD_DIR CASE NP
set -euo pipefail
build=$1 name=$2 np=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
. "$here/cases.sh"
load_case_tmp "$build" "$name"
for assembly in split setvalues; do
  mpiexec -n "$np" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$case_eps" -ot_tol 1e-9 -ot_method sns -ot_newton_time_check false \
    -ot_newton_assembly "$assembly" > "$dir/$assembly.txt"
  awk -F' = ' -v a="$assembly" '$1 == "transport_cost" {tc = $2} $1 == "iterations_sinkhorn" {s = $2} $1 == "iterations_newton" {nw = $2}
    $1 == "converged" {c = $2} END {printf "%s %.17g %d %d %d\n", a, tc, s, nw, c}' "$dir/$assembly.txt" >> "$dir/table.txt"
done
awk 'NR == 1 {ref = $2; its = $3 " " $4} {
  rel = ($2 - ref) / ref; if (rel < 0) rel = -rel
  printf "%-9s transport cost %.17g (relative difference %.3g), %d sweeps + %d Newton steps, converged %d\n", $1, $2, rel, $3, $4, $5
  if (!(rel <= 1e-12) || $5 != 1 || $3 " " $4 != its || $4 == 0) bad = 1
} END {exit bad}' "$dir/table.txt"
