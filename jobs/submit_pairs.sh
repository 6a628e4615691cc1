#!/bin/bash
# Submits the pair array (jobs/pairs.sbatch, --array sized to the pair list) and the job that gathers its
# results into one distance matrix (jobs/gather.sbatch, after the whole array). Run it on a login node, in
# the directory where results/ and distances.h5 should go. Prints the two job ids.
#
#   jobs/submit_pairs.sh                              # Fashion-MNIST images 0-3: 6 pairs, 6 array tasks
#   PAIRS=pairs.txt PAIRS_PER_TASK=10 MAX_PARALLEL=50 jobs/submit_pairs.sh --time=2:00:00 --ntasks=4
#   WAIT=1 jobs/submit_pairs.sh                       # return when the matrix is written (sbatch --wait)
#
# Extra arguments go to the array's sbatch (e.g. --time, --ntasks, --partition, --account); the gather job is small.
# Environment: everything pairs.sbatch and gather.sbatch read (PAIRS, FMNIST_IMAGES, PAIRS_PER_TASK,
# RESULTS_DIR, DISTANCES, OPTIONS_FILE, OTSOLVE_OPTIONS, NRANKS, LAUNCHER, ...), which sbatch passes on;
# MAX_PARALLEL, the most array tasks running at once (default: no limit); WAIT=1 to wait for the matrix.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export OTSOLVE_ROOT=${OTSOLVE_ROOT:-$(cd "$here/.." && pwd)}
# shellcheck source=jobs/otsolve_job.sh
. "$here/otsolve_job.sh"

list=$(ot_pairs_list)
[ -n "$list" ] || { echo "submit_pairs: the pair list is empty" >&2; exit 1; }
count=$(wc -l <<< "$list")
per_task=${PAIRS_PER_TASK:-1}
tasks=$(((count + per_task - 1) / per_task))
range=0-$((tasks - 1))${MAX_PARALLEL:+%$MAX_PARALLEL}

array_id=$(sbatch --parsable --array="$range" "$@" "$here/pairs.sbatch")
array_id=${array_id%%;*}
echo "submit_pairs: $count pairs in $tasks array tasks: job $array_id"
wait_flag=()
[ "${WAIT:-0}" = 1 ] && wait_flag=(--wait)
gather_id=$(sbatch --parsable "${wait_flag[@]}" --dependency=afterany:"$array_id" "$here/gather.sbatch") || {
  echo "submit_pairs: the gather job failed (exit status $?); see otsolve-gather-*.out" >&2; exit 1; }
gather_id=${gather_id%%;*}
echo "submit_pairs: gather job $gather_id runs after job $array_id and writes ${DISTANCES:-distances.h5}"
