# shellcheck shell=bash
# A one-node Slurm cluster for the tests, in a temporary directory: munged, slurmctld and slurmd started
# by this script with their own socket, ports, state and logs, and stopped by process id when the sourcing
# script exits, whether it passes or fails. Uses Debian's slurm-wlm and munge; installs nothing.
#
# usage (in a bash test script):   . tests/slurm/cluster.sh;  cluster_start
# then sbatch/squeue/sacct/scontrol talk to that cluster (SLURM_CONF is exported); $cluster_dir is a
# scratch directory readable by jobs, removed at exit (kept if KEEP_CLUSTER=1, for debugging).
# Each daemon's log is printed if the script fails.

cluster_pids=()
cluster_helper_pids=()
cluster_dir=
cluster_ok=0

cluster_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Requires the programs of the Debian packages slurm-wlm (slurmctld, slurmd, sbatch, ...) and munge.
cluster_require() {
  local prog missing=()
  for prog in setpriv munged munge slurmctld slurmd slurmstepd sbatch squeue scontrol sinfo srun scancel; do
    command -v "$prog" > /dev/null || missing+=("$prog")
  done
  [ ${#missing[@]} -eq 0 ] || cluster_fail "missing ${missing[*]}: install the Debian packages slurm-wlm and munge (README's set-up command)"
  [ -r /etc/munge/munge.key ] || cluster_fail "no /etc/munge/munge.key: the munge package creates it when installed"
  [ "$(id -u)" -eq 0 ] || cluster_fail "the one-node Slurm test runs its daemons as root"
}

# A TCP port on 127.0.0.1 nobody listens on, from $1 upwards.
cluster_free_port() {
  local port=$1
  while (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; do port=$((port + 1)); done
  echo "$port"
}

cluster_stop() {
  local status=$? pid i
  trap - EXIT
  set +e # the test may have set -e; a daemon's exit status must not cut the clean-up short
  if [ -n "$cluster_dir" ] && [ -n "${SLURM_CONF:-}" ] && [ ${#cluster_pids[@]} -gt 0 ]; then
    # cancel what is left of this cluster's jobs so that no slurmstepd outlives the test
    if [ -n "$(squeue -h -o %i 2> /dev/null)" ]; then
      scancel --full "$(squeue -h -o %i | sort -u)" 2> /dev/null || true
      for i in $(seq 1 30); do [ -z "$(squeue -h -o %i 2> /dev/null)" ] && break; sleep 1; done
    fi
  fi
  for pid in "${cluster_helper_pids[@]}"; do kill "$pid" 2> /dev/null; wait "$pid" 2> /dev/null; done
  # daemons in reverse order of start: slurmd, slurmctld, munged
  for ((i = ${#cluster_pids[@]} - 1; i >= 0; i--)); do
    pid=${cluster_pids[i]}
    kill -TERM "$pid" 2> /dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2> /dev/null && kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
  done
  if [ -n "$cluster_dir" ]; then
    if [ "$status" -ne 0 ] || [ "$cluster_ok" -ne 1 ]; then
      for log in "$cluster_dir"/log/*.log; do
        [ -s "$log" ] || continue
        echo "---- last lines of $log"
        tail -n 30 "$log"
      done
    fi
    if [ "${KEEP_CLUSTER:-0}" = 1 ]; then echo "cluster directory kept: $cluster_dir"; else rm -rf "$cluster_dir"; fi
  fi
  exit "$status"
}

cluster_start() {
  local host cpus mem ctld_port d_port i
  cluster_require
  cluster_dir=$(mktemp -d /tmp/otsolve-slurm.XXXXXX)
  chmod 755 "$cluster_dir" # munge (as user munge) must reach its socket below it
  trap cluster_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -p "$cluster_dir"/{munge,ctld,spool,log,work}
  chown munge:munge "$cluster_dir/munge"
  chmod 755 "$cluster_dir/munge"
  chmod 1777 "$cluster_dir/work"

  # setpriv execs munged as the munge user, so $! is munged's own process id
  setpriv --reuid=munge --regid=munge --init-groups munged --foreground --socket="$cluster_dir/munge/socket" --pid-file="$cluster_dir/munge/pid" \
    --log-file="$cluster_dir/log/munged.log" --seed-file="$cluster_dir/munge/seed" > "$cluster_dir/log/munged.out" 2>&1 &
  cluster_pids+=($!)
  for i in $(seq 1 50); do [ -S "$cluster_dir/munge/socket" ] && break; sleep 0.1; done
  munge -n --socket="$cluster_dir/munge/socket" | unmunge --socket="$cluster_dir/munge/socket" > /dev/null ||
    cluster_fail "munged does not answer on $cluster_dir/munge/socket"

  host=$(hostname -s)
  cpus=$(nproc --all)
  mem=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
  ctld_port=$(cluster_free_port 16817)
  d_port=$(cluster_free_port $((ctld_port + 1)))
  cat > "$cluster_dir/slurm.conf" << EOF
ClusterName=otsolvetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$cluster_dir/munge/socket
CredType=cred/munge
StateSaveLocation=$cluster_dir/ctld
SlurmdSpoolDir=$cluster_dir/spool
SlurmctldPidFile=$cluster_dir/slurmctld.pid
SlurmdPidFile=$cluster_dir/slurmd.pid
SlurmctldLogFile=$cluster_dir/log/slurmctld.log
SlurmdLogFile=$cluster_dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=600
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$cluster_dir/slurm.conf
  slurmctld -D -i -f "$SLURM_CONF" > "$cluster_dir/log/slurmctld.out" 2>&1 &
  cluster_pids+=($!)
  slurmd -D -f "$SLURM_CONF" > "$cluster_dir/log/slurmd.out" 2>&1 &
  cluster_pids+=($!)
  for i in $(seq 1 60); do
    [ "$(sinfo -h -n "$host" -o %t 2> /dev/null)" = idle ] && break
    sleep 0.5
  done
  [ "$(sinfo -h -n "$host" -o %t 2> /dev/null)" = idle ] || { sinfo 2>&1; cluster_fail "the node $host did not become idle"; }
  echo "one-node Slurm cluster up: $SLURM_CONF (node $host, $cpus CPUs, ports $ctld_port/$d_port)"
}

# Marks the test as passed (the daemon logs are then not printed at exit).
cluster_pass() {
  cluster_ok=1
}

# Slurm 22.05 holds a requeued job for about two minutes (Reason=BeginTime, EligibleTime = requeue + 121 s)
# before it may start again, then waits for a scheduling pass. In the background until the test ends, this
# lets such a job start 8 s after its requeue instead (time for slurmd to finish the previous run's steps: a
# step launched sooner can fail), so that a test of requeueing takes seconds per requeue rather than minutes.
cluster_hurry_requeued() {
  (
    while sleep 1; do
      for job in $(squeue -h -t PD -o '%i %r' 2> /dev/null | awk '$2 == "BeginTime" {print $1}'); do
        eligible=$(date -d "$(cluster_job_field "$job" EligibleTime)" +%s 2> /dev/null) || continue
        if [ "$(date +%s)" -ge $((eligible - 121 + 8)) ] && scontrol update JobId="$job" StartTime=now 2> /dev/null; then
          echo "(test harness: requeued job $job may start now)"
        fi
      done
    done
  ) &
  cluster_helper_pids+=($!)
}

# scontrol's one-line record of job JOBID (array tasks each on a line): KEY=VALUE fields.
cluster_job_field() {
  scontrol -o show job "$1" 2> /dev/null | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print substr($0, length(k) + 2)}'
}
