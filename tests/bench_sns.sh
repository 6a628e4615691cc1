#!/bin/bash
# Benchmark (not a test): iterations and seconds to marginal error 1e-9 for Sinkhorn (absorbed kernel and
# log domain) and SNS on the SNS paper's random assignment problem and Fashion-MNIST pairs, all in one run, then
# unbalanced Sinkhorn against SNS on Fashion-MNIST with raw masses.
# Seconds: solve_time, the median of 3 runs (iterations: of the last; the time check can change them from run to run).
# usage: bench_sns.sh BUILD_DIR [RANKS]
set -euo pipefail
build=$1 ranks=${2:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpiexec -n 1 "$build/otgen" -gen_type random -gen_n 500 -gen_m 500 -gen_seed 1 -gen_output "$dir/random500.h5" > /dev/null
mpiexec -n 1 "$build/otgen" -gen_type fmnist -gen_images 0,1 -gen_ground sqeuclidean -gen_output "$dir/fmnist_sq.h5" > /dev/null
mpiexec -n 1 "$build/otgen" -gen_type fmnist -gen_images 0,1 -gen_ground l1 -gen_output "$dir/fmnist_l1.h5" > /dev/null
printf '%-22s %-11s %-19s %10s %7s %9s %22s\n' problem eps method "all it." newton seconds transport_cost  # all it. = sweeps + Newton steps
for case in "random500 8.333333333333333e-4" "fmnist_sq 2e-3" "fmnist_sq 3e-4" "fmnist_l1 5e-3"; do
  read -r name eps <<< "$case"
  # sns: the default (Newton weighed against Sinkhorn in time, -ot_newton_time_check); sns-newton: Newton kept on
  for method in "sinkhorn absorb" "sinkhorn log" "sns absorb" "sns-newton absorb"; do
    read -r m variant <<< "$method"
    extra=()
    [[ $m == sns-newton ]] && extra=(-ot_newton_time_check false)
    # the median of 3 runs (1 for the log domain, the slow reference): the machine is shared and noisy
    runs=3
    [[ $variant == log ]] && runs=1
    : > "$dir/times.txt"
    for ((r = 0; r < runs; r++)); do
      mpiexec -n "$ranks" "$build/otsolve" -problem "$dir/$name.h5" -ot_eps "$eps" -ot_tol 1e-9 -ot_method "${m%-newton}" "${extra[@]}" \
        -ot_sinkhorn_variant "$variant" -ot_max_it 200000 > "$dir/out.txt" 2> /dev/null || true
      awk -F' = ' '$1 == "solve_time" {print $2}' "$dir/out.txt" >> "$dir/times.txt"
    done
    t=$(sort -g "$dir/times.txt" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    awk -F' = ' -v p="$name" -v e="$eps" -v meth="$m ($variant)" -v t="$t" '
      $1 == "iterations_sinkhorn" {s = $2} $1 == "iterations_newton" {nw = $2}
      $1 == "transport_cost" {c = $2} $1 == "converged" {ok = $2}
      END {printf "%-22s %-11.6g %-19s %10d %7d %9.3f %22.17g%s\n", p, e, meth, s + nw, nw, t, c, ok == 1 ? "" : " NOT CONVERGED"}' "$dir/out.txt"
  done
done
# Unbalanced transport (-ot_unbalanced 0.5): Fashion-MNIST 0/1 with their raw pixel masses (pixel/255 + 0.01, sums
# about 139 and 404), squared Euclidean on the unit grid, eps = 1e-3; relaxed marginals run in the log domain
/usr/bin/python3 - "$dir/fmnist_raw.h5" << 'PY'
import gzip, sys, h5py, numpy as np
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:2]
r, c = np.divmod(np.arange(784), 28)
grid = np.column_stack([c / 27.0, r / 27.0])
with h5py.File(sys.argv[1], "w") as f:
    f["C"] = ((grid[:, None, :] - grid[None, :, :]) ** 2).sum(-1)
    f["a"], f["b"] = images[0] / 255.0 + 0.01, images[1] / 255.0 + 0.01
PY
for m in sinkhorn sns; do
  runs=3
  [[ $m == sinkhorn ]] && runs=1
  : > "$dir/times.txt"
  for ((r = 0; r < runs; r++)); do
    mpiexec -n "$ranks" "$build/otsolve" -problem "$dir/fmnist_raw.h5" -ot_unbalanced 0.5 -ot_eps 1e-3 -ot_tol 1e-9 -ot_method "$m" -ot_max_it 200000 \
      > "$dir/out.txt" 2> /dev/null || true
    awk -F' = ' '$1 == "solve_time" {print $2}' "$dir/out.txt" >> "$dir/times.txt"
  done
  t=$(sort -g "$dir/times.txt" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  awk -F' = ' -v p="fmnist_raw_unbalanced" -v meth="$m (log)" -v t="$t" '
    $1 == "iterations_sinkhorn" {s = $2} $1 == "iterations_newton" {nw = $2}
    $1 == "transport_cost" {c = $2} $1 == "converged" {ok = $2}
    END {printf "%-22s %-11.6g %-19s %10d %7d %9.3f %22.17g%s\n", p, 1e-3, meth, s + nw, nw, t, c, ok == 1 ? "" : " NOT CONVERGED"}' "$dir/out.txt"
done
