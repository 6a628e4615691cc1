#!/bin/bash
# Checkpoint and restart (-ot_checkpoint, -ot_restart), against an uninterrupted run of the same problem.
# usage: check_restart.sh BUILD_DIR MODE
#   signal: SIGUSR1 to mpiexec (2 ranks) and SIGTERM to the ranks themselves (3 ranks, as srun sends it)
#           mid-solve: exit status 4, a checkpoint; resumed on 3 and on 2 ranks: the uninterrupted transport
#           cost to 1e-10.
#   max_it: SNS stopped by -ot_max_it at several points with a checkpoint every iteration, resumed on another
#           number of ranks: the same cost to 1e-10 and the same iteration counts.
#   kill9:  kill -9 of every rank while checkpoints are written back to back: the checkpoint left behind is
#           always whole (h5py reads it, otsolve resumes from it), and at least once a kill hit a write.
set -uo pipefail
build=$1 mode=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
source "$here/cases.sh"
fail=0

value() { awk -v k="$1" '$1 == k {print $3}' "$2"; }
same_cost() { # label, cost, reference cost
  if /usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 1e-10 * abs(b) else 1)" "$2" "$3"; then
    echo "ok   $1: transport_cost $2 (uninterrupted $3)"
  else
    echo "FAIL $1: transport_cost '$2' differs from the uninterrupted $3 by more than 1e-10 relative"; fail=1
  fi
}
# waits (at most 60 s) until FILE has a monitor line for an iteration >= N
wait_for_iteration() {
  for _ in $(seq 600); do
    if awk -v n="$2" '$1 == "sinkhorn" && $2 + 0 >= n {found = 1} END {exit !found}' "$1" 2> /dev/null; then return 0; fi
    sleep 0.1
  done
  echo "FAIL: no monitor line for iteration $2 in $1"; cat "$1"; return 1
}

case $mode in
late)
  # SIGUSR1 at moments around the end of the iterations (0 to 0.8 s after the last sweep's monitor line, while the
  # bounds are computed and the result written): the run either stops with its checkpoint (exit 4) or finishes
  # and writes its result (exit 0), never dies of the signal (138: its default action). One case is not otsolve's:
  # mpiexec itself forwards SIGUSR1 to the ranks only while they run, and dies of one that arrives in its own
  # teardown, after every rank printed its summary (which otsolve prints once signals can no longer stop it)
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n 6000 -gen_m 6000 -gen_dim 3 -gen_output "$dir/problem.h5" > /dev/null
  for delay in 0 0.1 0.2 0.3 0.4 0.6 0.8; do
    rm -f "$dir/ck.h5" "$dir/r.h5"
    mpiexec -n 2 "$build/otsolve" -problem "$dir/problem.h5" -ot_eps 0.5 -ot_method sinkhorn -ot_sinkhorn_variant log -ot_tol 1e-9 \
      -ot_checkpoint "$dir/ck.h5" -ot_monitor -output "$dir/r.h5" > "$dir/out" 2>&1 &
    pid=$!
    for _ in $(seq 1500); do
      grep -qE 'sinkhorn .*marginal_error [0-9.]*e-(09|1[0-9])' "$dir/out" 2> /dev/null && break
      sleep 0.02
    done
    sleep $delay
    kill -USR1 $pid 2> /dev/null
    wait $pid
    status=$?
    if [ $status -eq 0 ] && grep -q "result_written = 1" "$dir/out"; then
      echo "ok   SIGUSR1 $delay s after the last sweep: finished, result written (exit 0)"
    elif [ $status -eq 138 ] && grep -q "result_written = 1" "$dir/out" && grep -q "^converged = 1" "$dir/out"; then
      echo "ok   SIGUSR1 $delay s after the last sweep: otsolve finished and wrote its result; mpiexec died of the signal in its teardown (138)"
    elif [ $status -eq 4 ] && [ -s "$dir/ck.h5" ]; then
      echo "ok   SIGUSR1 $delay s after the last sweep: stopped with a checkpoint (exit 4)"
    else
      echo "FAIL SIGUSR1 $delay s after the last sweep: exit status $status"; tail -5 "$dir/out"; fail=1
    fi
  done
  ;;
signal)
  # ~1250 sweeps; the interrupted runs take the slower log-domain sweeps (same iterates to rounding) so that
  # the signal lands mid-solve, the others the absorbed kernel
  load_case_tmp "$build" fmnist01_sq
  opts=(-problem "$dir/problem.h5" -ot_eps "$case_eps" -ot_method sinkhorn -ot_sinkhorn_variant absorb)
  mpiexec -n 2 "$build/otsolve" "${opts[@]}" > "$dir/full" || { echo "FAIL: uninterrupted run"; cat "$dir/full"; exit 1; }
  full=$(value transport_cost "$dir/full")
  for how in usr1_mpiexec term_ranks; do
    ck=$dir/$how.h5
    np=2; [ $how = term_ranks ] && np=3
    mpiexec -n $np "$build/otsolve" "${opts[@]}" -ot_sinkhorn_variant log -ot_checkpoint "$ck" -ot_monitor 20 > "$dir/$how.out" 2>&1 &
    pid=$!
    wait_for_iteration "$dir/$how.out" 200 || { kill -9 $pid; exit 1; }
    if [ $how = usr1_mpiexec ]; then kill -USR1 $pid; else pkill -TERM -f "^$build/otsolve .*-ot_checkpoint $ck"; fi
    wait $pid
    status=$?
    its=$(value iterations_sinkhorn "$dir/$how.out")
    if [ "$status" -eq 4 ] && [ -s "$ck" ] && grep -q "status = interrupted by a signal after" "$dir/$how.out"; then
      echo "ok   $how: exit status 4 after $its sweeps, checkpoint $(stat -c %s "$ck") bytes"
    else
      echo "FAIL $how: exit status $status (want 4), checkpoint $(ls -l "$ck" 2>&1)"; cat "$dir/$how.out"; fail=1; continue
    fi
    np=3; [ $how = term_ranks ] && np=2
    mpiexec -n $np "$build/otsolve" "${opts[@]}" -ot_restart "$ck" -output "$dir/r.h5" > "$dir/resumed" 2>&1
    status=$?
    grep -q "resuming from $ck after $its Sinkhorn sweeps" "$dir/resumed" || { echo "FAIL $how: no resume line"; cat "$dir/resumed"; fail=1; }
    [ "$(value iterations_sinkhorn "$dir/resumed")" = "$(value iterations_sinkhorn "$dir/full")" ] ||
      { echo "FAIL $how: $(value iterations_sinkhorn "$dir/resumed") sweeps in all, uninterrupted $(value iterations_sinkhorn "$dir/full")"; fail=1; }
    [ "$status" -eq 0 ] || { echo "FAIL $how: resumed run exit status $status"; fail=1; }
    same_cost "$how, resumed on $np rank(s)" "$(value transport_cost "$dir/resumed")" "$full"
    # the result file's history runs on from the checkpoint's: every sweep once, in order
    /usr/bin/python3 - "$dir/r.h5" "$(value iterations_sinkhorn "$dir/resumed")" << 'PY' || fail=1
import sys, h5py, numpy as np
h = h5py.File(sys.argv[1], "r")["history"][:]
ok = len(h) == int(sys.argv[2]) and np.array_equal(h["iteration"], np.arange(1, len(h) + 1)) and np.all(np.diff(h["time"]) >= 0)
print(("ok  " if ok else "FAIL") + " history of the resumed run: %d rows, iterations 1..%d, time non-decreasing" % (len(h), h["iteration"][-1]))
sys.exit(0 if ok else 1)
PY
  done
  ;;
max_it)
  load_case_tmp "$build" random500
  # the default (SNS weighing Newton against Sinkhorn in counted work, each way: a path made of counts, which the
  # checkpoint carries) and Newton throughout
  for check in true false; do
  opts=(-problem "$dir/problem.h5" -ot_eps "$case_eps" -ot_method sns -ot_newton_time_check $check)
  mpiexec -n 2 "$build/otsolve" "${opts[@]}" > "$dir/full" || { echo "FAIL: uninterrupted run"; exit 1; }
  full=$(value transport_cost "$dir/full")
  counts="$(value iterations_sinkhorn "$dir/full") $(value iterations_newton "$dir/full")"
  echo "uninterrupted, -ot_newton_time_check $check: $counts (sweeps, Newton steps)"
  stops="5 14 17"
  [ $check = true ] && stops="5 14 17 40 100 150" # its path: warm-up, Newton, runs of sweeps
  for stop in $stops; do
    rm -f "$dir/ck.h5"
    mpiexec -n 2 "$build/otsolve" "${opts[@]}" -ot_checkpoint "$dir/ck.h5" -ot_checkpoint_interval 1e-9 -ot_max_it $stop > "$dir/part" 2>&1
    status=$?
    [ "$status" -eq 2 ] || { echo "FAIL: stopped run exit status $status (want 2)"; cat "$dir/part"; fail=1; }
    for np in 1 4; do
      mpiexec -n $np "$build/otsolve" "${opts[@]}" -ot_restart "$dir/ck.h5" > "$dir/resumed" 2>&1 || { echo "FAIL: resumed run"; cat "$dir/resumed"; fail=1; }
      got="$(value iterations_sinkhorn "$dir/resumed") $(value iterations_newton "$dir/resumed")"
      [ "$got" = "$counts" ] || { echo "FAIL: resumed after $stop iterations on $np ranks: iterations $got, uninterrupted $counts"; fail=1; }
      same_cost "SNS stopped at $stop iterations, resumed on $np rank(s), iterations $got" "$(value transport_cost "$dir/resumed")" "$full"
    done
  done
  done
  ;;
schedule)
  # an eps schedule stopped inside an intermediate stage and inside the last one, resumed on other rank counts
  load_case_tmp "$build" fmnist01_sq
  opts=(-problem "$dir/problem.h5" -ot_eps "$case_eps" -ot_method sinkhorn -ot_eps_schedule 0.05:0.5 -ot_sinkhorn_variant absorb)
  mpiexec -n 2 "$build/otsolve" "${opts[@]}" -output "$dir/full.h5" > "$dir/full" || { echo "FAIL: uninterrupted run"; cat "$dir/full"; exit 1; }
  full=$(value transport_cost "$dir/full")
  counts=$(value iterations_sinkhorn "$dir/full")
  if /usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 1e-7 * abs(b) else 1)" "$full" "$case_sinkhorn_cost"; then
    echo "ok   eps schedule 0.05:0.5 down to $case_eps: transport_cost $full in $counts sweeps (POT $case_sinkhorn_cost)"
  else
    echo "FAIL: eps schedule transport_cost $full, POT $case_sinkhorn_cost"; fail=1
  fi
  # the history records each iteration's eps: the five stages 0.05, 0.025, 0.0125, 0.00625, 0.003125, then 0.002
  /usr/bin/python3 -c "
import h5py, numpy as np, sys
e = h5py.File('$dir/full.h5', 'r')['history']['eps']
stages = [x for i, x in enumerate(e) if i == 0 or x != e[i - 1]]
sys.exit(0 if np.allclose(stages, [0.05, 0.025, 0.0125, 0.00625, 0.003125, $case_eps], rtol=1e-12) else 1)" ||
    { echo "FAIL: the history's eps column does not follow the schedule"; fail=1; }
  for stop in 40 $((counts - 30)); do
    rm -f "$dir/ck.h5"
    # no periodic checkpoints: the one written when -ot_max_it stops the run is the one resumed
    mpiexec -n 2 "$build/otsolve" "${opts[@]}" -ot_checkpoint "$dir/ck.h5" -ot_max_it $stop > "$dir/part" 2>&1
    [ $? -eq 2 ] || { echo "FAIL: stopped run"; cat "$dir/part"; fail=1; }
    mpiexec -n 3 "$build/otsolve" "${opts[@]}" -ot_restart "$dir/ck.h5" > "$dir/resumed" 2>&1 || { echo "FAIL: resumed run"; cat "$dir/resumed"; fail=1; }
    got=$(value iterations_sinkhorn "$dir/resumed")
    [ "$got" = "$counts" ] || { echo "FAIL: resumed after $stop sweeps: $got sweeps in all, uninterrupted $counts"; fail=1; }
    same_cost "eps schedule stopped after $stop of $counts sweeps ($(grep -o 'in eps stage [0-9]* of [0-9]*' "$dir/part" || echo 'in the last stage')), resumed on 3 ranks" "$(value transport_cost "$dir/resumed")" "$full"
  done
  ;;
kill9)
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  # tall and narrow: sweeps are fast and each checkpoint (3.2 MB of f) takes most of an iteration's time
  /usr/bin/python3 -c "import h5py, numpy as np; h5py.File('$dir/tall.h5', 'w')['C'] = np.random.default_rng(3).random((400000, 4))"
  opts=(-problem "$dir/tall.h5" -ot_eps 1e-3 -ot_method sinkhorn -ot_checkpoint "$dir/ck.h5" -ot_checkpoint_interval 1e-9)
  hits=0
  for try in $(seq 12); do # a kill lands in a write about one time in three
    rm -f "$dir"/ck.h5*
    mpiexec -n 2 "$build/otsolve" "${opts[@]}" > "$dir/out" 2>&1 &
    pid=$!
    for _ in $(seq 300); do [ -s "$dir/ck.h5" ] && break; sleep 0.1; done
    sleep "0.$((RANDOM % 10))"
    pkill -KILL -f "^$build/otsolve .*$dir/ck.h5"
    wait $pid 2> /dev/null
    left=$(find "$dir" -name 'ck.h5.tmp.*' | wc -l)
    hits=$((hits + (left > 0)))
    if ! /usr/bin/python3 -c "
import h5py, sys
f = h5py.File('$dir/ck.h5', 'r')
assert f.attrs['format'] == 'otsolve checkpoint 1' and f['f'].shape == (400000,) and f['g'].shape == (4,)
print(int(f.attrs['iterations_sinkhorn']))" > "$dir/its" 2>&1; then
      echo "FAIL try $try: the checkpoint left by kill -9 is not whole"; cat "$dir/its"; fail=1; continue
    fi
    mpiexec -n 1 "$build/otsolve" -problem "$dir/tall.h5" -ot_eps 1e-3 -ot_method sinkhorn -ot_restart "$dir/ck.h5" -ot_max_it "$(($(cat "$dir/its") + 2))" > "$dir/resumed" 2>&1
    status=$?
    if [ "$status" -eq 2 ] && grep -q "resuming from $dir/ck.h5 after $(cat "$dir/its") Sinkhorn sweeps" "$dir/resumed"; then
      echo "ok   try $try: killed with $left unfinished checkpoint(s) on disk; the previous one (after $(cat "$dir/its") sweeps) is whole and resumes"
    else
      echo "FAIL try $try: resuming from the checkpoint left by kill -9 failed (exit $status)"; cat "$dir/resumed"; fail=1
    fi
    [ $hits -ge 2 ] && break
  done
  [ $hits -ge 1 ] || { echo "FAIL: no kill landed during a checkpoint write in $try tries (the test did not exercise its case)"; fail=1; }
  ;;
*) echo "unknown mode $mode"; exit 2 ;;
esac
exit $fail
