#!/bin/bash
# jobs/scaling.sbatch on the one-node Slurm cluster (sbatch --wait, 2 tasks): the Fashion-MNIST reference case
# fmnist01_sq with log-domain Sinkhorn on 1 and 2 ranks. The table must have one row per rank count (1, 2),
# positive times, the same iteration count and transport cost on both (1e-10 relative: the row split only
# reorders sums), that cost within 1e-7 of POT's (tests/data/references.txt), and speed-up and efficiency
# columns equal to t(1)/t(r) and t(1)/(r t(r)).
# usage: test_scaling.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/slurm/cluster.sh
. "$here/cluster.sh"
# shellcheck source=tests/cases.sh
. "$source/tests/cases.sh"
cluster_start
work=$cluster_dir/work
load_case "$build" fmnist01_sq "$work"

cd "$work"
status=0
OTSOLVE=$build/otsolve PROBLEM=$work/problem.h5 TABLE=$work/scaling.txt OTSOLVE_OPTIONS="-ot_eps $case_eps -ot_sinkhorn_variant log" \
  sbatch --wait --ntasks=2 "$source/jobs/scaling.sbatch" > sbatch.txt || status=$?
cat sbatch.txt otsolve-scaling-*.out
[ "$status" -eq 0 ] || cluster_fail "sbatch --wait jobs/scaling.sbatch exited with $status"
[ -f scaling.txt ] || cluster_fail "no table $work/scaling.txt"
awk -v ref="$case_sinkhorn_cost" '
  /^#/ { next }
  { rows++; ranks[rows] = $1; t[rows] = $2; its[rows] = $4; speedup[rows] = $5; eff[rows] = $6; cost[rows] = $7; st[rows] = $8 }
  END {
    bad = 0
    if (rows != 2 || ranks[1] != 1 || ranks[2] != 2) { print "FAIL: expected rows for 1 and 2 ranks"; exit 1 }
    for (k = 1; k <= rows; k++) {
      if (!(t[k] > 0) || st[k] != 0) { print "FAIL: row " k ": time " t[k] ", exit status " st[k]; bad = 1 }
      rel = (cost[k] - cost[1]) / cost[1]; if (rel < 0) rel = -rel
      if (!(rel <= 1e-10) || its[k] != its[1]) { print "FAIL: " ranks[k] " ranks: cost or iterations differ from 1 rank"; bad = 1 }
      d = speedup[k] - t[1] / t[k]; if (d < 0) d = -d
      e = eff[k] - t[1] / (ranks[k] * t[k]); if (e < 0) e = -e
      if (d > 2e-3 * speedup[k] + 1e-3 || e > 2e-3 * eff[k] + 1e-3) { print "FAIL: speed-up or efficiency of row " k; bad = 1 }
    }
    rel = (cost[1] - ref) / ref; if (rel < 0) rel = -rel
    printf "transport cost %.17g, POT %.17g, relative difference %.3g; %d iterations; speed-up on 2 ranks %.2f\n", cost[1], ref, rel, its[1], speedup[2]
    if (!(rel <= 1e-7)) { print "FAIL: transport cost differs from POT"; bad = 1 }
    exit bad
  }' scaling.txt || cluster_fail "the scaling table is wrong"
echo "jobs/scaling.sbatch: OK"
cluster_pass
