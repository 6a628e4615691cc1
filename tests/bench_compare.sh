#!/bin/bash
# Benchmark (not a test): two builds of otsolve side by side in one run, each case run by both in turn (A, B, A, B,
# ...), so that the drift of a shared machine falls on both alike. For a change that must keep results and speed
# (a refactoring): the iterations must agree, the time ratio B/A should be near 1.
# Cases: tests/bench_sns.sh's problems (random assignment n = 500, Fashion-MNIST 0/1 squared Euclidean and L1) to
# marginal error 1e-9, by Sinkhorn (absorbed kernel) and SNS with -ot_newton_time_check false (a reproducible
# path); and 100 stored-matrix Sinkhorn sweeps on Gaussian clouds (2000 and 4000 points, eps 1e-3; absorb, log,
# single-precision kernel). Seconds: solve_time (problems to 1e-9) or sinkhorn_seconds_per_iteration (sweeps), the
# median of RUNS runs of each build.
# usage: bench_compare.sh BUILD_A BUILD_B [RANKS] [RUNS]
set -euo pipefail
a=$1 b=$2 ranks=${3:-1} runs=${4:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
gen() { mpiexec -n 1 "$a/otgen" "$@" > /dev/null; }
gen -gen_type random -gen_n 500 -gen_m 500 -gen_seed 1 -gen_output "$dir/random500.h5"
gen -gen_type fmnist -gen_images 0,1 -gen_ground sqeuclidean -gen_output "$dir/fmnist_sq.h5"
gen -gen_type fmnist -gen_images 0,1 -gen_ground l1 -gen_output "$dir/fmnist_l1.h5"
gen -gen_type gaussian -gen_n 2000 -gen_m 2000 -gen_seed 1 -gen_output "$dir/gauss2000.h5"
gen -gen_type gaussian -gen_n 4000 -gen_m 4000 -gen_seed 1 -gen_output "$dir/gauss4000.h5"

# run BUILD OUT ARGS...: one otsolve run, its key = value lines in OUT
run() {
  local build=$1 out=$2
  shift 2
  mpiexec -n "$ranks" "$build/otsolve" "$@" > "$out" 2> /dev/null || true
}
key() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v == "" ? 0 : v}' "$2"; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

printf '%-34s %12s %12s %12s %12s %7s\n' case "it. A" "it. B" "s A" "s B" "B/A"
compare() { # compare NAME TIMEKEY ARGS...
  local name=$1 timekey=$2
  shift 2
  : > "$dir/ta"
  : > "$dir/tb"
  for ((r = 0; r < runs; r++)); do
    run "$a" "$dir/oa" "$@"
    key "$timekey" "$dir/oa" >> "$dir/ta"
    run "$b" "$dir/ob" "$@"
    key "$timekey" "$dir/ob" >> "$dir/tb"
  done
  local ia ib ta tb
  ia=$(($(key iterations_sinkhorn "$dir/oa") + $(key iterations_newton "$dir/oa")))
  ib=$(($(key iterations_sinkhorn "$dir/ob") + $(key iterations_newton "$dir/ob")))
  ta=$(median < "$dir/ta")
  tb=$(median < "$dir/tb")
  awk -v n="$name" -v ia="$ia" -v ib="$ib" -v ta="$ta" -v tb="$tb" \
    'BEGIN {printf "%-34s %12d %12d %12.4g %12.4g %7.3f%s\n", n, ia, ib, ta, tb, tb / ta, ia == ib ? "" : "  ITERATIONS DIFFER"}'
}
for case in "random500 8.333333333333333e-4" "fmnist_sq 2e-3" "fmnist_sq 3e-4" "fmnist_l1 5e-3"; do
  read -r name eps <<< "$case"
  common=(-problem "$dir/$name.h5" -ot_eps "$eps" -ot_tol 1e-9 -ot_max_it 200000 -ot_sinkhorn_variant absorb)
  compare "$name $eps sinkhorn" solve_time "${common[@]}" -ot_method sinkhorn
  compare "$name $eps sns" solve_time "${common[@]}" -ot_method sns -ot_newton_time_check false
done
for n in 2000 4000; do
  for variant in "absorb double" "log double" "absorb single"; do
    read -r v p <<< "$variant"
    compare "gauss$n 100 sweeps $v $p" sinkhorn_seconds_per_iteration -problem "$dir/gauss$n.h5" -ot_eps 1e-3 -ot_tol 1e-300 -ot_max_it 100 \
      -ot_method sinkhorn -ot_sinkhorn_variant "$v" -ot_kernel_precision "$p"
  done
done
