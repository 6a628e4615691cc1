#!/bin/bash
# The time-limit job: jobs/solve.sbatch with a one-minute --time on a problem that takes longer, on the
# one-node Slurm cluster. Slurm sends SIGUSR1 before the limit (--signal=B:USR1@50, to the batch shell,
# which passes it on to srun and so to every rank); otsolve writes its checkpoint and exits with status 4;
# the job requeues itself and resumes from the checkpoint, as many times as it takes. `sbatch --wait`
# returns when the job has converged. Checks:
#  - the job ends COMPLETED with exit code 0 after at least one requeue (scontrol's Restarts), its log shows
#    each interruption (otsolve's status line) and each resumption;
#  - the result file is a converged plan that numpy rebuilds from /f, /g (tests/check_result.py), with the
#    same transport cost as an uninterrupted run of the same problem and options to 1e-10 relative, and the
#    same number of Sinkhorn sweeps (a resumed run goes on exactly where it stopped).
# The problem: the SNS paper's random assignment problem (n = m = 500, eps = 1/1200, case random500 of
# tests/data/references.txt), log-domain Sinkhorn, 88,772 sweeps: 45-50 s on 1 rank of an idle machine
# here, more under load. Slurm may send the signal up to a minute early (its event resolution), so the
# first run may be interrupted at any time before its limit; it may also come some 30 s later than asked
# (slurmctld checks time limits periodically): on 2 ranks (25 s) the job once finished before any signal.
# usage: test_timelimit.sh BUILD_DIR SOURCE_DIR [NRANKS (default 1)]
set -euo pipefail
build=$1 source=$2 nranks=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/slurm/cluster.sh
. "$here/cluster.sh"
# shellcheck source=tests/cases.sh
. "$source/tests/cases.sh"
help=$("$build/otsolve" -help 2>&1 || true)
grep -q -- '-ot_checkpoint <' <<< "$help" || cluster_fail "$build/otsolve has no -ot_checkpoint option (checkpoint/restart not built)"
cluster_start
work=$cluster_dir/work
load_case "$build" random500 "$work"
options="-ot_eps $case_eps -ot_method sinkhorn -ot_sinkhorn_variant log -ot_monitor 10000"
value() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$2"; }

# the uninterrupted run, outside Slurm
t0=$(date +%s)
# shellcheck disable=SC2086
mpiexec -n "$nranks" "$build/otsolve" -problem "$work/problem.h5" -output "$work/reference.h5" $options > "$work/reference.txt" ||
  { tail -n 20 "$work/reference.txt"; cluster_fail "the uninterrupted run failed"; }
t1=$(date +%s)
ref_cost=$(value transport_cost "$work/reference.txt") ref_sweeps=$(value iterations_sinkhorn "$work/reference.txt")
echo "uninterrupted run on $nranks ranks: $((t1 - t0)) s, $ref_sweeps sweeps, transport cost $ref_cost"

# the job, with a one-minute limit
cluster_hurry_requeued
cd "$work"
status=0
t0=$(date +%s)
OTSOLVE=$build/otsolve PROBLEM=$work/problem.h5 OUTPUT=$work/result.h5 OTSOLVE_OPTIONS="$options" LAUNCHER=srun MAX_RESTARTS=20 \
  sbatch --wait --ntasks="$nranks" --time=1 --signal=B:USR1@50 --output="$work/job-%j.out" "$source/jobs/solve.sbatch" > sbatch.txt ||
  status=$?
t1=$(date +%s)
job=$(awk '/^Submitted batch job/ {print $4}' sbatch.txt)
log=$work/job-$job.out
grep -E '^otsolve job|^status = |^otsolve: resuming|^transport_cost|^iterations_sinkhorn|SIGUSR1|CANCELLED|test harness' "$log" || true
restarts=$(cluster_job_field "$job" Restarts) state=$(cluster_job_field "$job" JobState) exit_code=$(cluster_job_field "$job" ExitCode)
echo "job $job: $state, exit code $exit_code, $restarts restarts, sbatch --wait took $((t1 - t0)) s"
[ "$status" -eq 0 ] || cluster_fail "sbatch --wait exited with $status"
if [ "$state" != COMPLETED ] || [ "$exit_code" != 0:0 ]; then cluster_fail "the job ended $state with exit code $exit_code"; fi
[ "${restarts:-0}" -ge 1 ] || cluster_fail "the job was never requeued: the problem finished within the time limit"
interruptions=$(grep -c '^status = interrupted by a signal' "$log" || true)
resumptions=$(grep -c '^otsolve: resuming from' "$log" || true)
echo "interrupted after: $(sed -n 's/^status = interrupted by a signal after \([0-9]*\) Sinkhorn sweeps.*/\1/p' "$log" | tr '\n' ' ')sweeps;" \
  "resumed $resumptions times"
if [ "$interruptions" -lt 1 ] || [ "$resumptions" -ne "$restarts" ]; then
  cluster_fail "the log shows $interruptions interruptions and $resumptions resumptions for $restarts requeues"
fi
[ ! -e "$work/result.checkpoint.h5" ] || cluster_fail "the checkpoint was left behind after convergence"

/usr/bin/python3 "$source/tests/check_result.py" "$work/problem.h5" "$work/result.h5" 1e-9
/usr/bin/python3 - "$work/result.h5" "$work/reference.h5" << 'EOF'
import sys
import h5py
with h5py.File(sys.argv[1], "r") as r, h5py.File(sys.argv[2], "r") as ref:
    cost, ref_cost = float(r.attrs["transport_cost"]), float(ref.attrs["transport_cost"])
    sweeps, ref_sweeps = int(r.attrs["iterations_sinkhorn"]), int(ref.attrs["iterations_sinkhorn"])
    rel = abs(cost - ref_cost) / ref_cost
    print("resumed: transport cost %.17g after %d sweeps; uninterrupted: %.17g after %d sweeps; relative difference %.3g"
          % (cost, sweeps, ref_cost, ref_sweeps, rel))
    assert rel <= 1e-10, "the resumed run's transport cost differs from the uninterrupted run's by %.3g" % rel
    assert sweeps == ref_sweeps, "the resumed run made %d sweeps, the uninterrupted one %d" % (sweeps, ref_sweeps)
    assert len(r["history"]) == sweeps + int(r.attrs["iterations_newton"]), "history rows"
EOF
echo "time-limit job: OK"
cluster_pass
