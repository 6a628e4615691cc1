#!/bin/bash
# Benchmark `fixed_eps` (not a test): n + n points in 3-D (otgen -gen_type mixture, seed 1), squared Euclidean, at the
# fixed eps = 1e-3 x max C, marginal error <= 1e-6 x mass, on NP ranks, side by side in one run:
#   truncated: the default method (SNS) on the truncated kernel with its eps-scaling (-ot_sinkhorn_variant truncated
#              -ot_eps_schedule auto)
#   log:       Sinkhorn in the log domain at eps itself, every pair in every sweep (-ot_method sinkhorn
#              -ot_sinkhorn_variant log), the path point clouds took before the truncated kernel
# Prints per run: sweeps, Newton steps, solve seconds, each rank's peak memory (GNU time's %M) and its CPU share
# ((user + system) / wall: below 1, other work took the core), the transport cost; then the ratio of the solve times.
# usage: [PATHS="truncated log"] bench_fixed_eps.sh BUILD_DIR [NP (default 2)] [N... (default 60000)]
set -euo pipefail
build=$1 np=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(60000)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
echo "$(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%8s %-9s %7s %6s %9s %-36s %s\n" n path sweeps newton solve_s "per rank: peak MB, CPU share" transport_cost
for n in "${sizes[@]}"; do
  mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n "$n" -gen_m "$n" -gen_dim 3 -gen_seed 1 -gen_output "$dir/p.h5" > /dev/null
  declare -A solve=()
  for path in ${PATHS:-truncated log}; do
    if [ "$path" = truncated ]; then opts=(-ot_sinkhorn_variant truncated -ot_eps_schedule auto)
    else opts=(-ot_method sinkhorn -ot_sinkhorn_variant log); fi
    mpiexec -n "$np" sh -c '/usr/bin/time -f "%M %U %S %e" -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$dir/rss" "$build/otsolve" -problem "$dir/p.h5" \
      -ot_eps_rel 1e-3 -ot_tol 1e-6 -ot_max_it 1000000 "${opts[@]}" -ot_monitor 100 > "$dir/out.$path.txt" 2>&1 || {
      tail -20 "$dir/out.$path.txt"; echo "otsolve failed at n = $n ($path)"; exit 1; }
    value() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$dir/out.$path.txt"; }
    rss=$(for r in $(seq 0 $((np - 1))); do awk '{printf "%.0f MB %.2f, ", $1 / 1024, ($2 + $3) / $4}' "$dir/rss.$r"; done)
    solve[$path]=$(value solve_time)
    printf "%8d %-9s %7d %6d %9.1f %-36s %s\n" "$n" "$path" "$(value iterations_sinkhorn)" "$(value iterations_newton)" "${solve[$path]}" "${rss%, }" "$(value transport_cost)"
  done
  [ -z "${solve[log]:-}" ] || [ -z "${solve[truncated]:-}" ] ||
    awk -v n="$n" -v a="${solve[log]}" -v b="${solve[truncated]}" 'BEGIN {printf "%8d log / truncated solve time: %.1f\n", n, a / b}'
done
