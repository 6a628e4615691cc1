#!/bin/bash
# Benchmark `scale`: the truncated kernel with multiscale eps-scaling on 3-D Gaussian mixtures of growing size, eps
# shrinking as n^(-2/3) (a fixed number of neighbours per kernel radius): eps = 1e-5 x max C at n = 10^6, so
# 2.15e-4 at 10^4. Squared Euclidean cost, eps-scaling from 0.01 max C by factors of 0.2, marginal error <= 1e-6 x mass,
# on the truncated kernel with each method of METHODS (default "sns sinkhorn": SNS, the default method, with Newton
# steps over the kept pairs, and Sinkhorn alone). Prints one row per size and method: sweeps on the points, Newton
# steps, kernel entries per row at the end, seconds per sweep on the points, total solve seconds, the largest peak
# memory of a rank (/usr/bin/time on each rank) and the certified relative gap (upper - lower) / lower of the bounds.
# usage: [METHODS="sns sinkhorn"] bench_scale.sh BUILD_DIR [NP [N...]]   (default: 2 ranks, n = 10000 30000 100000)
set -euo pipefail
build=$1 np=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 30000 100000)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
read -r -a methods <<< "${METHODS:-sns sinkhorn}"
printf "%9s %9s %-8s %7s %6s %9s %10s %9s %10s %10s %s\n" n eps_rel method sweeps newton per_row s_sweep total_s peak_MB gap transport_cost
for n in "${sizes[@]}"; do
  eps_rel=$(awk -v n="$n" 'BEGIN {printf "%.3g", 1e-5 * (n / 1e6) ^ (-2.0 / 3.0)}')
  mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n "$n" -gen_m "$n" -gen_dim 3 -gen_seed 1 -gen_output "$dir/p.h5" > /dev/null
  for method in "${methods[@]}"; do
    mpiexec -n "$np" /usr/bin/time -f "rank_peak_kb %M" "$build/otsolve" -problem "$dir/p.h5" -ot_method "$method" -ot_sinkhorn_variant truncated \
      -ot_eps_rel "$eps_rel" -ot_eps_schedule auto -ot_tol "1e-6" -ot_max_it 200000 -log_view -info :vec,mat,ksp,sys > "$dir/out.txt" 2>&1 || {
      tail -20 "$dir/out.txt"; echo "otsolve failed at n = $n"; exit 1; }
    awk -v n="$n" -v eps_rel="$eps_rel" -v method="$method" '
      $1 == "iterations_sinkhorn" {sweeps = $3} $1 == "iterations_newton" {newton = $3} $1 == "solve_time" {total = $3} $1 == "transport_cost" {cost = $3}
      $1 == "lower_bound" {lo = $3} $1 == "upper_bound" {hi = $3} match($0, /rank_peak_kb [0-9]+/) {v = substr($0, RSTART + 13, RLENGTH - 13) + 0; if (v > peak) peak = v}
      /OTTruncatedBuild\(\)/ {for (k = 1; k <= NF; k++) if ($k == "entries" && $(k + 1) == "kept") kept = $(k - 1)}
      $1 == "OTSinkhornSweep" {time = $4; count = $2}
      END {printf "%9d %9s %-8s %7d %6d %9.1f %10.4f %9.1f %10.0f %10.2e %.12g\n", n, eps_rel, method, sweeps, newton, kept / n, time / count, total, peak / 1024, (hi - lo) / lo, cost}' "$dir/out.txt"
  done
done
