#!/bin/bash
# jobs/solve.sbatch on the one-node Slurm cluster, with `sbatch --wait`, launching otsolve with LAUNCHER
# (srun --mpi=pmix or mpirun):
#  1. the Fashion-MNIST reference case fmnist01_sq on 2 ranks: the job completes with exit code 0, the result
#     file holds a converged plan whose transport cost matches POT's (tests/data/references.txt) to 1e-7 and
#     that numpy rebuilds from /f, /g (tests/check_result.py); the checkpoint is gone after convergence;
#  2. with no environment at all (from a directory of its own): the built-in example, to otsolve-JOBID.h5.
# usage: test_solve.sh BUILD_DIR SOURCE_DIR srun|mpirun
set -euo pipefail
build=$1 source=$2 launcher=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/slurm/cluster.sh
. "$here/cluster.sh"
# shellcheck source=tests/cases.sh
. "$source/tests/cases.sh"
cluster_start
work=$cluster_dir/work
load_case "$build" fmnist01_sq "$work"

export OTSOLVE=$build/otsolve LAUNCHER=$launcher
cd "$work"
t0=$(date +%s.%N)
status=0
PROBLEM=$work/problem.h5 OUTPUT=$work/result.h5 OTSOLVE_OPTIONS="-ot_eps $case_eps" \
  sbatch --wait --ntasks=2 --output="$work/solve-%j.out" "$source/jobs/solve.sbatch" > "$work/sbatch.txt" || status=$?
t1=$(date +%s.%N)
cat "$work/sbatch.txt" "$work"/solve-*.out
job=$(awk '/^Submitted batch job/ {print $4}' "$work/sbatch.txt")
[ "$status" -eq 0 ] || cluster_fail "sbatch --wait jobs/solve.sbatch exited with $status"
state=$(cluster_job_field "$job" JobState) exit_code=$(cluster_job_field "$job" ExitCode)
echo "job $job: JobState=$state ExitCode=$exit_code, sbatch --wait took $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s"
if [ "$state" != COMPLETED ] || [ "$exit_code" != 0:0 ]; then cluster_fail "job $job ended $state with $exit_code"; fi
log=$(ls "$work"/solve-"$job".out)
grep -q "2 ranks via $launcher" "$log" || cluster_fail "the job did not use $launcher on 2 ranks"
[ "$(awk -F' = ' '$1 == "ranks" {v = $2} END {print v}' "$log")" = 2 ] ||
  cluster_fail "otsolve did not report ranks = 2"
[ -f "$work/result.h5" ] || cluster_fail "no result file $work/result.h5"
[ ! -e "$work/result.checkpoint.h5" ] || cluster_fail "the checkpoint was left behind after convergence"
/usr/bin/python3 "$source/tests/check_result.py" "$work/problem.h5" "$work/result.h5" 1e-9
/usr/bin/python3 - "$work/result.h5" "$case_sinkhorn_cost" << 'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "r") as r:
    cost, ref = float(r.attrs["transport_cost"]), float(sys.argv[2])
    assert int(r.attrs["ranks"]) == 2, "ranks = %s" % r.attrs["ranks"]
rel = abs(cost - ref) / ref
print("result file: transport cost %.17g, POT %.17g, relative difference %.3g" % (cost, ref, rel))
assert rel <= 1e-7, "transport cost differs from POT's by %.3g" % rel
EOF

# 2. defaults only: the built-in example, result otsolve-JOBID.h5 in the directory of submission
mkdir "$work/defaults"
cd "$work/defaults"
env -u PROBLEM -u OUTPUT -u OTSOLVE_OPTIONS -u OPTIONS_FILE -u NRANKS sbatch --wait "$source/jobs/solve.sbatch" > sbatch.txt ||
  { cat sbatch.txt otsolve-*.out; cluster_fail "sbatch --wait jobs/solve.sbatch with the defaults failed"; }
job=$(awk '/^Submitted batch job/ {print $4}' sbatch.txt)
tail -n 18 "otsolve-$job.out"
[ -f "otsolve-$job.h5" ] || cluster_fail "no result file otsolve-$job.h5 in the directory of submission"
/usr/bin/python3 - "otsolve-$job.h5" "otsolve-$job.out" << 'EOF'
import sys, h5py
summary = dict(line.rstrip("\n").split(" = ", 1) for line in open(sys.argv[2]) if " = " in line and not line.startswith(" "))
with h5py.File(sys.argv[1], "r") as r:
    assert int(r.attrs["converged"]) == 1 and float(r.attrs["marginal_error"]) <= float(r.attrs["tol"])
    assert (int(r.attrs["n"]), int(r.attrs["m"]), int(r.attrs["ranks"])) == (2000, 2500, 2), "not the built-in example on 2 ranks"
    assert float(summary["transport_cost"]) == float(r.attrs["transport_cost"]), "summary and result file differ"
    print("built-in example: %d x %d on %d ranks, transport cost %.17g, marginal error %.3g"
          % (r.attrs["n"], r.attrs["m"], r.attrs["ranks"], r.attrs["transport_cost"], r.attrs["marginal_error"]))
EOF
echo "jobs/solve.sbatch with $launcher: OK"
cluster_pass
