#!/bin/bash
# Benchmark (not a test): the bytes each rank sends per truncated Sinkhorn sweep on NP = 2 ... 16 ranks (oversubscribed
# here: bytes are counted, not timed), from Open MPI's monitoring component (pml_monitoring: every point-to-point
# message, those inside collectives included). Two runs per rank count with S1 and S2 sweeps at the target eps (no
# eps schedule), the same problem; the difference divided by S2 - S1 leaves out the set-up, the builds at the start and
# the evaluation. Also the share of the sweep time spent in the column reduction (-log_view, 2 ranks).
# usage: bench_bytes.sh BUILD_DIR [N [NP...]]   (default: n = m = 20000, NP = 2 4 8 16)
set -euo pipefail
build=$1 n=${2:-20000}
shift $(( $# < 2 ? $# : 2 ))
nps=("$@")
[ ${#nps[@]} -gt 0 ] || nps=(2 4 8 16)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n "$n" -gen_m "$n" -gen_dim 3 -gen_seed 1 -gen_output "$dir/p.h5" > /dev/null
s1=20 s2=120
run() { # NP SWEEPS: total bytes sent by all ranks, and the largest rank's
  rm -rf "$dir/mon" && mkdir "$dir/mon"
  mpiexec -n "$1" --mca pml_monitoring_enable 1 --mca pml_monitoring_enable_output 3 --mca pml_monitoring_filename "$dir/mon/m" \
    "$build/otsolve" -problem "$dir/p.h5" -ot_method sinkhorn -ot_sinkhorn_variant truncated -ot_eps_rel 1e-3 -ot_eps_schedule none \
    -ot_sinkhorn_overrelax false -ot_tol 1e-300 -ot_max_it "$2" > /dev/null 2>&1 || true
  # lines "E|I	rank	peer	bytes bytes	count msgs" (external and internal messages); sum the bytes by sender
  cat "$dir"/mon/m* 2> /dev/null | awk '$1 == "E" || $1 == "I" {b[$2] += $4} END {t = 0; mx = 0; for (r in b) {t += b[r]; if (b[r] > mx) mx = b[r]} print t, mx}'
}
printf '%5s %8s %22s %22s %14s\n' ranks m "bytes/sweep (all)" "bytes/sweep (largest)" "8 m doubles"
for np in "${nps[@]}"; do
  read -r t1 m1 <<< "$(run "$np" $s1)"
  read -r t2 m2 <<< "$(run "$np" $s2)"
  awk -v np="$np" -v n="$n" -v t1="$t1" -v t2="$t2" -v m1="$m1" -v m2="$m2" -v d=$((s2 - s1)) \
    'BEGIN {printf "%5d %8d %22.0f %22.0f %14.0f\n", np, n, (t2 - t1) / d, (m2 - m1) / d, 8 * n}'
done
mpiexec -n 2 "$build/otsolve" -problem "$dir/p.h5" -ot_method sinkhorn -ot_sinkhorn_variant truncated -ot_eps_rel 1e-3 -ot_eps_schedule none \
  -ot_tol 1e-300 -ot_max_it 200 -log_view > "$dir/log.txt" 2>&1 || true
awk '$1 == "OTSinkhornSweep" {s = $4} $1 == "OTColumnReduce" {c = $4} END {printf "2 ranks, 200 sweeps: sweeps %.3f s, column allreduce %.3f s (%.1f%%)\n", s, c, 100 * c / (s + c)}' "$dir/log.txt"
