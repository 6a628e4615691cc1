#!/bin/bash
# Benchmark (not a test): seconds per Sinkhorn iteration on the 4000 x 4000 Gaussian-cloud problem
# (costs scaled to max 1) at eps = 1e-3, otsolve on 1 and 2 ranks (both Sinkhorn variants) against
# POT 0.8.2's ot.bregman.sinkhorn_log and ot.sinkhorn, all measured in this run on this machine.
# usage: bench_sinkhorn.sh BUILD_DIR [N] [ITERATIONS]
set -euo pipefail
build=$1 n=${2:-4000} iterations=${3:-200}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpiexec -n 1 "$build/otgen" -gen_type gaussian -gen_n "$n" -gen_m "$n" -gen_seed 1 -gen_output "$dir/problem.h5" > /dev/null

run_otsolve() { # ranks variant: a fixed number of sweeps (-ot_tol 1e-300 is never met, so otsolve exits with 2)
  mpiexec -n "$1" "$build/otsolve" -problem "$dir/problem.h5" -ot_eps 1e-3 -ot_tol 1e-300 -ot_max_it "$iterations" \
    -ot_sinkhorn_variant "$2" > "$dir/out.txt" 2> /dev/null || true
  awk -F' = ' '$1 == "sinkhorn_seconds_per_iteration" {print $2}' "$dir/out.txt"
}
declare -A per_it
for ranks in 1 2; do
  for variant in log absorb; do per_it[$ranks.$variant]=$(run_otsolve "$ranks" "$variant"); done
done
/usr/bin/python3 - "$dir/problem.h5" > "$dir/pot.txt" <<'PY'
import sys, time, warnings
import h5py, numpy as np, ot
with h5py.File(sys.argv[1], "r") as f:
    C = np.asarray(f["C"])
n, m = C.shape
a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
warnings.simplefilter("ignore")
def per_iteration(solve, iterations):
    start = time.perf_counter()
    solve(iterations)
    return (time.perf_counter() - start) / iterations
log = per_iteration(lambda k: ot.bregman.sinkhorn_log(a, b, C, 1e-3, numItermax=k, stopThr=0), 10)
plain = per_iteration(lambda k: ot.sinkhorn(a, b, C, 1e-3, numItermax=k, stopThr=0), 50)
print(log, plain)
PY
read -r pot_log pot_plain < "$dir/pot.txt"
echo "Sinkhorn iteration, ${n} x ${n} Gaussian clouds, eps = 1e-3 (x max C), $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '%-44s %14s %22s\n' "method" "s/iteration" "vs POT sinkhorn_log"
row() { awk -v name="$1" -v t="$2" -v ref="$pot_log" 'BEGIN {printf "%-44s %14.3e %21.1fx\n", name, t, ref / t}'; }
row "POT ot.bregman.sinkhorn_log (1 process)" "$pot_log"
row "POT ot.sinkhorn (1 process, underflows)" "$pot_plain"
for ranks in 1 2; do
  row "otsolve log domain, $ranks rank(s)" "${per_it[$ranks.log]}"
  row "otsolve absorbed kernel, $ranks rank(s)" "${per_it[$ranks.absorb]}"
done
