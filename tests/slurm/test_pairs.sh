#!/bin/bash
# The pair array and its gather job on the one-node Slurm cluster, submitted as a user would
# (WAIT=1 jobs/submit_pairs.sh: sbatch --array of jobs/pairs.sbatch, then sbatch --wait of jobs/gather.sbatch
# with --dependency=afterany on the array): the 6 pairs of Fashion-MNIST test images 0-3, 2 pairs per array
# task, at eps = 2e-3. Checks:
#  - every array task and the gather job completed with exit code 0, and the gather job started only after
#    the last array task ended;
#  - distances.h5 is 4 x 4, symmetric, NaN on the (unsolved) diagonal, every pair converged;
#  - each entry equals its pair's result file, and the transport cost that numpy rebuilds from that file's
#    /f, /g and the pair's cost matrix; pair (0, 1) matches POT's sinkhorn_log (tests/data/references.txt)
#    to 1e-7; every pair's lower_bound <= POT's exact ot.emd2 <= upper_bound.
# usage: test_pairs.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/slurm/cluster.sh
. "$here/cluster.sh"
cluster_start
work=$cluster_dir/work
eps=$(awk '$1 == "fmnist01_sq" {print $4}' "$source/tests/data/references.txt")
pot_01=$(awk '$1 == "fmnist01_sq" {print $5}' "$source/tests/data/references.txt")

cd "$work"
status=0
t0=$(date +%s)
OTSOLVE=$build/otsolve OTGEN=$build/otgen FMNIST_IMAGES=4 PAIRS_PER_TASK=2 RESULTS_DIR=$work/results DISTANCES=$work/distances.h5 \
  OTSOLVE_OPTIONS="-ot_eps $eps" LAUNCHER=srun WAIT=1 "$source/jobs/submit_pairs.sh" > submit.txt || status=$?
t1=$(date +%s)
cat submit.txt
for out in otsolve-pairs-*.out otsolve-gather-*.out; do echo "---- $out"; cat "$out"; done
[ "$status" -eq 0 ] || cluster_fail "jobs/submit_pairs.sh (WAIT=1) exited with $status"
array=$(awk '/array tasks: job/ {print $NF}' submit.txt)
gather=$(awk '/^submit_pairs: gather job/ {print $4}' submit.txt)
echo "array job $array and gather job $gather done in $((t1 - t0)) s"

# the array's tasks (3 of them) and the gather job: states, exit codes, and the dependency honoured
scontrol -o show job "$array" | tr ' ' '\n' | awk -F= '$1 == "JobId" {id = $2} $1 == "ArrayTaskId" {task = $2}
  $1 == "JobState" {state = $2} $1 == "ExitCode" {code = $2} $1 == "EndTime" {print id, task, state, code, $2}' > tasks.txt
cat tasks.txt
[ "$(wc -l < tasks.txt)" -eq 3 ] || cluster_fail "expected 3 array tasks"
awk '$3 != "COMPLETED" || $4 != "0:0" {exit 1}' tasks.txt || cluster_fail "an array task did not complete with exit code 0"
gather_start=$(cluster_job_field "$gather" StartTime)
if [ "$(cluster_job_field "$gather" JobState)" != COMPLETED ] || [ "$(cluster_job_field "$gather" ExitCode)" != 0:0 ]; then
  cluster_fail "the gather job did not complete with exit code 0"
fi
last_end=$(awk '{print $5}' tasks.txt | sort | tail -n 1)
echo "gather job started $gather_start, last array task ended $last_end"
[[ ! "$gather_start" < "$last_end" ]] || cluster_fail "the gather job started before the array ended"

# the problems again, for numpy and POT
for pair in 0,1 0,2 0,3 1,2 1,3 2,3; do
  "$build/otgen" -gen_type fmnist -gen_images "$pair" -gen_output "$work/problem-${pair/,/-}.h5" > /dev/null
done
/usr/bin/python3 - "$work" "$pot_01" << 'EOF'
import sys
import h5py
import numpy as np
import ot

work, pot_01 = sys.argv[1], float(sys.argv[2])
with h5py.File(work + "/distances.h5", "r") as d:
    tables = {name: d[name][...] for name in ("transport_cost", "lower_bound", "upper_bound", "marginal_error", "converged", "iterations")}
    assert (d.attrs["pairs"], d.attrs["missing"], d.attrs["not_converged"]) == (6, 0, 0), dict(d.attrs)
cost = tables["transport_cost"]
assert cost.shape == (4, 4), cost.shape
assert np.all(np.isnan(np.diag(cost))) and np.all(tables["converged"][~np.eye(4, dtype=bool)] == 1)
assert np.array_equal(cost, cost.T, equal_nan=True), "not symmetric"
print("distance matrix (transport cost):\n", cost)
for i in range(4):
    for j in range(i + 1, 4):
        with h5py.File("%s/problem-%d-%d.h5" % (work, i, j), "r") as p, h5py.File("%s/results/pair-%d-%d.h5" % (work, i, j), "r") as r:
            C = p["C"][...]
            a, b = p["a"][...], p["b"][...]
            f, g, eps = r["f"][...], r["g"][...], float(r.attrs["eps"])
            for name in ("transport_cost", "lower_bound", "upper_bound", "marginal_error"):
                assert tables[name][i, j] == float(r.attrs[name]), (i, j, name)
            assert tables["iterations"][i, j] == int(r.attrs["iterations_sinkhorn"]) + int(r.attrs["iterations_newton"])
        P = np.exp((f[:, None] + g[None, :] - C) / eps)
        rebuilt = float((P * C).sum())
        emd = ot.emd2(a, b, C, numItermax=10**7)
        lo, up = tables["lower_bound"][i, j], tables["upper_bound"][i, j]
        print("pair %d %d: transport cost %.17g (numpy from /f, /g: %.17g), %.10f <= emd %.10f <= %.10f"
              % (i, j, cost[i, j], rebuilt, lo, emd, up))
        assert abs(rebuilt - cost[i, j]) <= 1e-9 * cost[i, j], "transport cost differs from the plan rebuilt by numpy"
        assert lo <= emd * (1 + 1e-12) and emd <= up * (1 + 1e-12), "bounds do not bracket the exact cost"
rel = abs(cost[0, 1] - pot_01) / pot_01
print("pair 0 1 against POT sinkhorn_log %.17g: relative difference %.3g" % (pot_01, rel))
assert rel <= 1e-7
EOF
echo "jobs/pairs.sbatch + jobs/gather.sbatch: OK"
cluster_pass
