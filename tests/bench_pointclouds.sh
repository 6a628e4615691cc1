#!/bin/bash
# Benchmark (not a test): point clouds with costs computed on the fly (docs/design.md §3, issue 4).
# 1. Per-core throughput of the fused cost + exponential row kernel (tests/bench_costs.c), d = 2 and d = 10,
#    next to the exponential of a stored dense row.
# 2. n + n points in 3-D (otgen -gen_type mixture), squared Euclidean, eps = 0.05 x max C, -ot_tol 1e-6,
#    -ot_method sinkhorn, on RANKS ranks, for each n in SIZES: iterations, solve time, seconds per iteration,
#    entries per second per rank, each rank's peak resident memory (GNU time's %M, i.e. VmHWM) and the
#    share of a core each rank got (its CPU seconds / wall seconds, GNU time's (%U + %S) / %e).
#    The time per iteration should grow as n^2; the dense matrix at n = 60,000 would need 28.8 GB.
# The machine is shared with other work: timings are noisy (the kernel bench takes the best of 10 rounds of
# thread CPU time; the solves are single wall-clock runs, whose CPU share says how much other work took).
# usage: bench_pointclouds.sh BUILD_DIR [SIZES (default "15000 30000 60000")] [RANKS (default 2)] [VARIANT (default log)]
set -euo pipefail
build=$1 sizes=${2:-15000 30000 60000} ranks=${3:-2} variant=${4:-log}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "Point clouds, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "1. Row kernel throughput on one core (best of 10 rounds of thread CPU time; m = 20000)"
"$build/tests/bench_costs" -bench_m 20000 -bench_dims 2,10
echo
echo "2. Sinkhorn on n + n points in 3-D, sqeuclidean, eps = 0.05 x max C, tol 1e-6, $ranks ranks, -ot_sinkhorn_variant $variant"
printf '%7s %11s %6s %5s %10s %10s %12s %14s %11s %s\n' n eps iters conv "solve s" "wall s" "s/iter" "entries/s/rank" "marg. err" "per rank: peak RSS MB, CPU share"
for n in $sizes; do
  mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n "$n" -gen_m "$n" -gen_dim 3 -gen_seed 1 -gen_output "$dir/points.h5" > /dev/null
  eps=$(/usr/bin/python3 -c "import h5py, sys; print(repr(0.05 * float(h5py.File(sys.argv[1], 'r').attrs['cost_max'])))" "$dir/points.h5")
  start=$(date +%s.%N)
  # each rank under GNU time: its own peak resident set size, in kB, to rss.RANK
  mpiexec -n "$ranks" sh -c '/usr/bin/time -f "%M %U %S %e" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$dir/rss" "$build/otsolve" -problem "$dir/points.h5" \
    -ot_eps "$eps" -ot_tol 1e-6 -ot_method sinkhorn -ot_sinkhorn_variant "$variant" -ot_monitor 10 > "$dir/out.$n.txt" 2>&1 || true
  wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {print e - s}')
  value() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$dir/out.$n.txt"; }
  rss=$(for r in $(seq 0 $((ranks - 1))); do awk '{printf "%.0f MB %.2f, ", $1 / 1024, ($2 + $3) / $4}' "$dir/rss.$r"; done)
  awk -v n="$n" -v eps="$eps" -v it="$(value iterations_sinkhorn)" -v conv="$(value converged)" -v t="$(value solve_time)" -v wall="$wall" \
      -v per="$(value sinkhorn_seconds_per_iteration)" -v err="$(value marginal_error)" -v ranks="$ranks" -v rss="$rss" 'BEGIN {
    printf "%7d %11.4g %6d %5d %10.1f %10.1f %12.4f %14.3e %11.2e %s\n", n, eps, it, conv, t, wall, per, n * n / (per * ranks), err, rss }'
  grep "memory estimate" "$dir/out.$n.txt" | sed 's/^ */        /' || true
done
