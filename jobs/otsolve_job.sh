# shellcheck shell=bash
# Shared by the job scripts in jobs/ (sourced, not run): finds otsolve, launches it on NRANKS ranks with
# srun or mpirun, forwards Slurm's warning signal to it, and requeues the job when otsolve stopped on that
# signal after writing its checkpoint (exit status 4); never when the checkpoint could not be written (7) or
# the solve ended but its result could not be written (6): then it says what is kept and how to go on.
# See docs/hpc.md.
#
# Environment read here (every one has a default that runs):
#   OTSOLVE_ROOT  the otsolve source tree holding jobs/, configs/ and build/ (default: found from the job)
#   OTSOLVE       the otsolve program (default: $OTSOLVE_ROOT/build/otsolve)
#   LAUNCHER      srun (default in a Slurm job: srun --mpi=pmix, Slurm starts the ranks) or mpirun (Open
#                 MPI's mpirun inside the allocation; the default outside Slurm)
#   NRANKS        MPI ranks (default: the job's task count, SLURM_NTASKS; 2 outside Slurm)
#   MAX_RESTARTS  most requeues of one job after a checkpoint (default 20)

# The source tree: the job scripts find it before they source this file (see solve.sbatch); checked here.
ot_find_root() {
  [ -n "${OTSOLVE_ROOT:-}" ] && [ -f "$OTSOLVE_ROOT/jobs/otsolve_job.sh" ] && return 0
  echo "otsolve job: cannot find the otsolve tree; set OTSOLVE_ROOT (the directory holding jobs/ and build/)" >&2
  return 1
}

# Sets OTSOLVE_ROOT, OTSOLVE, LAUNCHER, NRANKS and checks them.
ot_setup() {
  ot_find_root || return 1
  OTSOLVE=${OTSOLVE:-$OTSOLVE_ROOT/build/otsolve}
  if [ -n "${SLURM_JOB_ID:-}" ]; then LAUNCHER=${LAUNCHER:-srun}; else LAUNCHER=${LAUNCHER:-mpirun}; fi
  NRANKS=${NRANKS:-${SLURM_NTASKS:-2}}
  MAX_RESTARTS=${MAX_RESTARTS:-20}
  [ -x "$OTSOLVE" ] || { echo "otsolve job: $OTSOLVE is not an executable (build it with meson compile -C build, or set OTSOLVE)" >&2; return 1; }
  case $LAUNCHER in
    srun)
      [ -n "${SLURM_JOB_ID:-}" ] || { echo "otsolve job: LAUNCHER=srun needs a Slurm job; use LAUNCHER=mpirun outside Slurm" >&2; return 1; } ;;
    mpirun) ;;
    *) echo "otsolve job: LAUNCHER must be srun or mpirun, not '$LAUNCHER'" >&2; return 1 ;;
  esac
  export OTSOLVE_ROOT OTSOLVE LAUNCHER NRANKS
  trap 'ot_on_signal USR1' USR1
  trap 'ot_on_signal TERM' TERM
}

# ot_launch ARGS...: otsolve ARGS on NRANKS ranks; replaces the calling (sub)shell with the launcher, so
# that a signal sent to the launched process's id reaches srun or mpirun themselves.
#   srun:   srun --mpi=pmix (plain srun cannot start this Open MPI's ranks)
#   mpirun: Open MPI's mpirun, which takes the allocation from Slurm (or runs locally outside Slurm)
ot_launch() {
  if [ "$LAUNCHER" = srun ]; then
    exec srun --mpi=pmix --ntasks="$NRANKS" --kill-on-bad-exit=1 "$OTSOLVE" "$@"
  else
    exec mpirun -n "$NRANKS" "$OTSOLVE" "$@"
  fi
}

# Slurm's warning signal (--signal=B:USR1@T) and SIGTERM reach this shell: note it, and pass it on to otsolve's
# launcher if one runs (srun and mpirun both pass it on to every rank). Set up by ot_setup for the whole job,
# so that a signal between two runs does not kill the shell either; ot_signalled then says to stop.
ot_signalled=
ot_launcher_pid=
ot_run_started=0
ot_on_signal() {
  ot_signalled=$1
  echo "otsolve job: SIG$1 received at $(date '+%F %T')${ot_launcher_pid:+; asking otsolve to checkpoint and stop}"
  if [ -n "$ot_launcher_pid" ]; then kill -s "$1" "$ot_launcher_pid" 2> /dev/null; fi
}

# ot_run ARGS...: ot_launch ARGS in the background, and wait for it: bash runs a trap only between commands,
# and a background child lets the wait be interrupted. Returns otsolve's exit status (4 without running it
# if a signal came before).
ot_run() {
  local status=0
  [ -z "$ot_signalled" ] || return 4
  ot_run_started=$(date +%s)
  (trap - USR1 TERM; ot_launch "$@") &
  ot_launcher_pid=$!
  wait "$ot_launcher_pid" || status=$?
  # a trapped signal interrupts wait with status > 128 while the launcher still runs: wait again
  while [ "$status" -gt 128 ] && kill -0 "$ot_launcher_pid" 2> /dev/null; do
    status=0
    wait "$ot_launcher_pid" || status=$?
  done
  ot_launcher_pid=
  return "$status"
}

# ot_check_output STATUS OUTPUT: prints the status to act on. A launcher may report success although no
# rank ran (srun does, when a step launch fails): with status 0 (converged) or 2 (not converged, results
# written), OUTPUT must have been written by this run (after the last ot_run began), else 3.
ot_check_output() {
  if [ "$1" -eq 0 ] || [ "$1" -eq 2 ]; then
    if [ ! -f "$2" ] || [ "$(stat -c %Y "$2")" -lt "$ot_run_started" ]; then
      echo "otsolve job: the launcher said $1 but $2 was not written by this run: treating it as a failure (3)" >&2
      echo 3
      return
    fi
  fi
  echo "$1"
}

# ot_requeue: puts this job (or this array task) back in the queue, to start again from the top of the
# script; returns non-zero (and the caller exits) if that is not possible or MAX_RESTARTS is reached.
ot_requeue() {
  local id=${SLURM_JOB_ID:-} restarts=${SLURM_RESTART_COUNT:-0}
  [ -n "$id" ] || { echo "otsolve job: not in a Slurm job, not requeued; run the same command again to resume"; return 1; }
  if [ "$restarts" -ge "$MAX_RESTARTS" ]; then
    echo "otsolve job: already restarted $restarts times (MAX_RESTARTS=$MAX_RESTARTS); not requeued"
    return 1
  fi
  # an array task is requeued as itself; SLURM_JOB_ID is the task's own id
  echo "otsolve job: requeueing job $id (restart $((restarts + 1)) of at most $MAX_RESTARTS) at $(date '+%F %T')"
  scontrol requeue "$id" || { echo "otsolve job: scontrol requeue $id failed (submit with --requeue?)"; return 1; }
  # Slurm now ends this run of the script (and starts it again later): wait for that rather than go on
  sleep 120
  return 0
}

# ot_result_not_written OUTPUT CHECKPOINT ARGS...: after exit status 6 (the solve ended, converged or not, but
# OUTPUT could not be written: no space, quota, I/O error, permission). otsolve then wrote the solved state to
# CHECKPOINT, which the caller keeps whatever KEEP_CHECKPOINT says; this says where it is and how to get the
# result from it without iterating again (ARGS: the otsolve options of the run). Not requeued: the same job
# would fail to write OUTPUT again until something changes.
ot_result_not_written() {
  local output=$1 checkpoint=$2 again=()
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      -output | -ot_restart) shift 2 ;;
      *) again+=("$1"); shift ;;
    esac
  done
  echo "otsolve job: the solve ended but its result $output could not be written (otsolve's message above says why); not requeued"
  if [ -f "$checkpoint" ] && [ "$(stat -c %Y "$checkpoint")" -ge "$ot_run_started" ]; then
    echo "otsolve job: the solved state is kept in $checkpoint (whatever KEEP_CHECKPOINT says)"
    echo "otsolve job: to write the result without iterating again, free space for $output or choose another OUTPUT, and submit the job again with CHECKPOINT=$checkpoint (it resumes from it), or run:"
    echo "otsolve job:   $OTSOLVE ${again[*]} -ot_restart $checkpoint -output OTHER.h5"
  elif [ -f "$checkpoint" ]; then
    echo "otsolve job: the checkpoint $checkpoint was not updated at the end (see otsolve's messages); it is kept: resuming from it (-ot_restart $checkpoint) repeats the iterations made since it was written"
  else
    echo "otsolve job: there is no checkpoint $checkpoint either: once $output can be written, the solve has to run again"
  fi
}

# ot_checkpoint_not_written CHECKPOINT: after exit status 7 (SIGTERM or SIGUSR1, but the checkpoint could not
# be written). Not requeued: the requeued job would have nothing new to resume from.
ot_checkpoint_not_written() {
  echo "otsolve job: otsolve stopped on the signal but its checkpoint $1 could not be written (otsolve's message above says why); not requeued"
  if [ -f "$1" ]; then
    echo "otsolve job: the previous checkpoint $1 (of $(date -r "$1" '+%F %T')) is kept: free space and submit the job again to resume from it"
  else
    echo "otsolve job: there is no earlier checkpoint: submitted again, the job starts from the beginning"
  fi
}

# ot_pairs_list: the pair list of pairs.sbatch and gather.sbatch, one 'I J PROBLEM' a line, from the file
# PAIRS (comments and blank lines dropped, each line checked), or the pairs I < J of Fashion-MNIST test
# images 0 .. FMNIST_IMAGES-1 (default 4) as 'I J fmnist:I,J'.
ot_pairs_list() {
  local images i j
  if [ -n "${PAIRS:-}" ]; then
    [ -r "$PAIRS" ] || { echo "otsolve pairs: cannot read the pair list PAIRS=$PAIRS" >&2; return 1; }
    awk -v file="$PAIRS" '{ sub(/#.*/, "") } NF == 0 { next }
      NF != 3 || $1 !~ /^[0-9]+$/ || $2 !~ /^[0-9]+$/ {
        printf "otsolve pairs: %s line %d: expected I J PROBLEM, got: %s\n", file, FNR, $0 > "/dev/stderr"; bad = 1; exit 1 }
      { print $1, $2, $3 }
      END { exit bad }' "$PAIRS"
    return
  fi
  images=${FMNIST_IMAGES:-4}
  for ((i = 0; i < images; i++)); do
    for ((j = i + 1; j < images; j++)); do echo "$i $j fmnist:$i,$j"; done
  done
}

# ot_value KEY FILE: the value of the last 'KEY = value' line otsolve printed to FILE.
ot_value() {
  awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$2"
}
