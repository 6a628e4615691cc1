#!/bin/bash
# Benchmark (not a test): the default method on hard cases against the better of its two parts. For each case,
# seconds to marginal error 1e-9 of the default (SNS, Newton weighed against Sinkhorn in counted work),
# -ot_method sinkhorn and -ot_newton_time_check false (Newton steps throughout), each the median of RUNS runs taken
# in turn (A, B, C, A, B, C, ...: the machine is shared and noisy), and the ratio default / min(the two others).
# Seconds: the summary's solve_time, plus the two self terms' seconds for -ot_divergence (loading excluded).
# usage: bench_defaults.sh BUILD_DIR [RANKS] [RUNS]
set -uo pipefail
build=$1 ranks=${2:-2} runs=${3:-3}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
gen() { mpiexec -n 1 "$build/otgen" "$@" > /dev/null; }
gen -gen_type mixture -gen_n 2000 -gen_m 1500 -gen_dim 5 -gen_output "$dir/mix5.h5"
gen -gen_type mixture -gen_n 2000 -gen_m 1500 -gen_dim 5 -gen_components 10 -gen_sigma 0.02 -gen_output "$dir/clusters5.h5"
gen -gen_type fmnist -gen_images 0,1 -gen_ground l1 -gen_output "$dir/fmnist_l1.h5"
gen -gen_type fmnist -gen_images 0,1 -gen_ground sqeuclidean -gen_output "$dir/fmnist_sq.h5"
gen -gen_type mixture -gen_n 10000 -gen_m 10000 -gen_dim 3 -gen_output "$dir/dense_p.h5"
gen -gen_type random -gen_n 1000 -gen_m 1000 -gen_seed 1 -gen_output "$dir/random1000.h5"
cases=(
  "divergence-5d       mix5.h5       -ot_eps 0.5 -ot_divergence"
  "divergence-clusters clusters5.h5  -ot_eps 0.005 -ot_divergence"
  "fmnist-l1           fmnist_l1.h5  -ot_eps 5e-3"
  "fmnist-sq-1e-4maxC  fmnist_sq.h5  -ot_eps 2e-4"
  "dense-P-10k-3d      dense_p.h5    -ot_eps 0.5"
  "random-assignment   random1000.h5 -ot_eps_rel 1e-3"
)
methods=("default" "sinkhorn:-ot_method sinkhorn" "newton:-ot_newton_time_check false")
seconds() { # the run's solve seconds, with the divergence terms'
  awk '$1 == "solve_time" {t += $3} /divergence term/ {for (i = 1; i < NF; i++) if ($(i + 1) == "s,") t += $i} END {print t}' "$1"
}
printf '%-20s %-34s %12s %12s %12s %8s  %s\n' case options default sinkhorn newton ratio "converged (d s n), iterations of the default"
for c in "${cases[@]}"; do
  read -r name file opts <<< "$c"
  for m in "${methods[@]}"; do : > "$dir/t.${m%%:*}"; done
  for ((r = 0; r < runs; r++)); do
    for m in "${methods[@]}"; do
      label=${m%%:*} extra=${m#*:}
      [ "$label" = default ] && extra=
      # shellcheck disable=SC2086
      mpiexec -n "$ranks" "$build/otsolve" -problem "$dir/$file" $opts $extra -ot_tol 1e-9 -ot_max_it 200000 > "$dir/out.$label" 2>&1
      seconds "$dir/out.$label" >> "$dir/t.$label"
      conv=$(awk '$1 == "converged" {c = $3} $1 == "divergence_converged" {d = $3} END {print (d == "" ? c : c * d)}' "$dir/out.$label")
      echo "$conv" > "$dir/c.$label"
    done
  done
  med() { sort -g "$dir/t.$1" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
  d=$(med default) s=$(med sinkhorn) n=$(med newton)
  its=$(awk '$1 == "iterations_sinkhorn" {s = $3} $1 == "iterations_newton" {n = $3} END {print s " sweeps + " n " Newton"}' "$dir/out.default")
  awk -v name="$name" -v opts="$opts" -v d="$d" -v s="$s" -v n="$n" -v cd="$(cat "$dir/c.default")" -v cs="$(cat "$dir/c.sinkhorn")" \
    -v cn="$(cat "$dir/c.newton")" -v its="$its" 'BEGIN {
      best = (cs == 1 && (cn != 1 || s < n)) ? s : n
      printf "%-20s %-34s %12.3f %12.3f %12.3f %8.2f  %s %s %s, %s\n", name, opts, d, s, n, d / best, cd, cs, cn, its }'
done
