#!/bin/bash
# Storage faults: nothing is lost when a file system fills up. Small tmpfs mounts (root only; without them the
# test is skipped, exit 77) stand for a full result or checkpoint directory. On 1, 2 and 3 ranks:
#   a) the result cannot be written (its /plan does not fit; /f and /g would, so the up-front check passes):
#      exit 6, the summary printed with result_written = 0, one message naming the file and the reason, no
#      temporary left, the state in the -ot_checkpoint file; the restart that the message gives
#      (-ot_restart CK -output OTHER) does no iteration and writes the result with the same transport cost;
#   b) periodic checkpoints fail (their directory filled while the solve runs): the solve goes on and
#      converges (exit 0), the result is written, a warning (once, until a checkpoint is written again),
#      checkpoint_failures = N >= 1 and checkpoint_error in the summary, the previous checkpoint whole, no
#      temporary left;
#   c) SIGUSR1 with the checkpoint directory full: exit 7, the summary printed (interrupted = 1,
#      checkpoint_written = 0), the previous checkpoint unchanged, no temporary left;
#   d) the up-front space check: -output or -ot_checkpoint on a file system with less than 8 (n + m) bytes
#      free ends the run with exit 1 before the solve, in one message giving the bytes needed and free;
#   e) -pairs whose output directory fills up while the pairs are solved: exit 6, the summary printed
#      (output_written = 0);
# then once: otgen into a full directory (exit 6, no temporary), and jobs/solve.sbatch outside Slurm
# (LAUNCHER=mpirun) on statuses 6 (checkpoint kept although KEEP_CHECKPOINT=0, the restart command printed;
# the same job again with another OUTPUT writes the result and removes the checkpoint) and 7 (no requeue).
# Every otsolve run is under `timeout 120`: a hang is a failure, not a stuck test.
# usage: check_storage.sh BUILD_DIR [RANKS ...]   (default: 1 2 3)
set -uo pipefail
build=$(cd "$1" && pwd)
shift
ranks=${*:-1 2 3}
source=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
mounts=() background=()
cleanup() {
  local p m
  for p in "${background[@]}"; do kill -TERM "$p" 2> /dev/null; done
  for p in "${background[@]}"; do wait "$p" 2> /dev/null; done
  for m in "${mounts[@]}"; do mountpoint -q "$m" && umount "$m"; done
  rm -rf "$work"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
show() { local f; for f; do echo "----- $f"; cat "$f" 2> /dev/null; done; echo "-----"; }
value() { awk -F' = ' -v k="$1" '$1 == k {v = $2} END {print v}' "$2"; }

# mount_tmpfs NAME SIZE: a new tmpfs of SIZE at $work/NAME, in $tmpfs; skips the test (77) if mount fails
mount_tmpfs() {
  tmpfs=$work/$1
  mkdir -p "$tmpfs"
  local why
  if ! why=$(mount -t tmpfs -o size="$2" tmpfs "$tmpfs" 2>&1); then
    echo "SKIP: cannot mount a tmpfs of $2 on $tmpfs (this test needs root): $why"
    exit 77
  fi
  mounts+=("$tmpfs")
}
unmount() { umount "$1" || bad "could not unmount $1"; }
# fill DIR: writes zeros to DIR/fill until its file system is full
fill() { dd if=/dev/zero of="$1/fill" bs=4k oflag=append conv=notrunc 2> /dev/null; true; }
free_bytes() { df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '; }
# no_temporaries LABEL DIR...: no FILE.tmp.PID left anywhere in DIR...
no_temporaries() {
  local label=$1 left
  shift
  left=$(find "$@" -name '*.tmp.*' 2> /dev/null)
  if [ -z "$left" ]; then ok "$label: no temporary left"; else bad "$label: temporaries left behind: $left"; fi
}
# run PREFIX NP ARGS...: otsolve ARGS on NP ranks under timeout 120; stdout to PREFIX.out, stderr to PREFIX.err,
# exit status in $st (124: it hung, reported here)
run() {
  local p=$1 np=$2
  shift 2
  timeout 120 mpiexec -n "$np" --oversubscribe "$build/otsolve" "$@" < /dev/null > "$p.out" 2> "$p.err"
  st=$?
  [ "$st" -ne 124 ] || bad "$(basename "$p") on $np rank(s): otsolve did not end within 120 s (hang?): otsolve $*"
}
# start PREFIX NP ARGS...: run in the background; $pid is timeout's process, $launcher mpiexec's
start() {
  local p=$1 np=$2
  shift 2
  timeout 120 mpiexec -n "$np" --oversubscribe "$build/otsolve" "$@" < /dev/null > "$p.out" 2> "$p.err" &
  pid=$!
  background+=("$pid")
  launcher=
  for _ in $(seq 100); do launcher=$(pgrep -P "$pid" | head -n 1) && [ -n "$launcher" ] && break; sleep 0.02; done
}
# forget PID: no longer one to end in cleanup
forget() {
  local p kept=()
  for p in "${background[@]}"; do [ "$p" = "$1" ] || kept+=("$p"); done
  background=("${kept[@]}")
}
# finish: waits for the run started last; status in $st
finish() {
  wait "$pid"
  st=$?
  forget "$pid"
  [ "$st" -ne 124 ] || bad "the background run did not end within 120 s (hang?)"
}
# wait_for PATTERN FILE...: waits (at most 60 s) until one of FILE... has a line matching PATTERN (extended
# regular expression) and the run started last is still alive
wait_for() {
  local pattern=$1
  shift
  for _ in $(seq 1200); do
    grep -qE -- "$pattern" "$@" 2> /dev/null && return 0
    kill -0 "$pid" 2> /dev/null || return 1
    sleep 0.05
  done
  return 1
}
# relative difference of two numbers within TOL: same_value A B TOL
same_value() {
  /usr/bin/python3 -c "import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= t * abs(b) else 1)" "$1" "$2" "$3" 2> /dev/null
}
checkpoint_whole() { # FILE: an otsolve checkpoint that h5py reads whole
  /usr/bin/python3 -c "
import sys, h5py
with h5py.File(sys.argv[1], 'r') as f:
    assert f.attrs['format'] == 'otsolve checkpoint 1' and f['f'].shape[0] > 0 and f['g'].shape[0] > 0
    f['f'][:], f['g'][:]" "$1" 2> /dev/null
}

mount_tmpfs probe 64k # skip at once where no tmpfs can be mounted
unmount "$tmpfs"

# measure files for -pairs (e): three point clouds of 1500 points (3 pairs take 3-6 s here)
mkdir -p "$work/measures"
for k in 0 1 2; do
  "$build/otgen" -gen_type mixture -gen_n 1500 -gen_m 10 -gen_dim 2 -gen_seed $((k + 1)) -gen_output "$work/measures/m$k.h5" > /dev/null ||
    { echo "FAIL: otgen could not write the measure files"; exit 1; }
  echo "$work/measures/m$k.h5" >> "$work/measures/list.txt"
done

small=(-ot_example_n 300 -ot_example_m 300 -ot_newton_time_check false)     # 300 x 300: /plan 1.4 MB, /f + /g 4.8 kB
slow=(-ot_method sinkhorn -ot_eps 0.01 -ot_tol 1e-12)                         # 2000 x 2500: ~1470 sweeps, 4-6 s here
endless=(-ot_method sinkhorn -ot_eps 0.001 -ot_tol 1e-13 -ot_monitor 10)      # far longer than the test waits

for np in $ranks; do
  echo "=== $np rank(s)"
  big=$work/big$np
  mkdir -p "$big"

  # a) the result directory is full: /plan (all of P, 16 bytes an entry) does not fit in 512 KiB, /f and /g do
  mount_tmpfs "a$np" 512k
  t=$tmpfs
  run "$big/a" "$np" "${small[@]}" -ot_plan_threshold 0 -output "$t/r.h5" -ot_checkpoint "$big/ck.h5"
  label="a) result directory full, $np rank(s)"
  if [ "$st" -eq 6 ]; then ok "$label: exit status 6"; else bad "$label: exit status $st (want 6)"; show "$big/a.out" "$big/a.err"; fi
  if grep -q '^transport_cost = ' "$big/a.out" && [ "$(value result_written "$big/a.out")" = 0 ]; then
    ok "$label: summary printed, transport_cost = $(value transport_cost "$big/a.out"), result_written = 0"
  else
    bad "$label: no summary with transport_cost and result_written = 0 on stdout"; show "$big/a.out"
  fi
  message=$(grep "otsolve: error: result $t/r.h5 not written" "$big/a.err")
  if [ -n "$message" ] && grep -qi 'space' <<< "$message" && grep -qF -- "-ot_restart $big/ck.h5" "$big/a.err"; then
    ok "$label: $message"
  else
    bad "$label: stderr has no 'otsolve: error: result $t/r.h5 not written: ... space ...' with '-ot_restart $big/ck.h5'"; show "$big/a.err"
  fi
  [ "$(grep -c 'otsolve: error' "$big/a.err")" -eq 1 ] || { bad "$label: want one error message, got:"; grep 'otsolve: error' "$big/a.err"; }
  no_temporaries "$label" "$t" "$big"
  [ ! -e "$t/r.h5" ] || bad "$label: $t/r.h5 exists although it was not written"
  if checkpoint_whole "$big/ck.h5"; then ok "$label: the state is in $big/ck.h5"; else bad "$label: no whole checkpoint $big/ck.h5"; fi
  unmount "$t"
  # the restart that the message gives: no iteration, the result written, the same transport cost
  run "$big/a2" "$np" "${small[@]}" -ot_restart "$big/ck.h5" -output "$big/r2.h5"
  label="a) -ot_restart $big/ck.h5 -output r2.h5, $np rank(s)"
  its1="$(value iterations_sinkhorn "$big/a.out") $(value iterations_newton "$big/a.out")"
  its2="$(value iterations_sinkhorn "$big/a2.out") $(value iterations_newton "$big/a2.out")"
  cost1=$(value transport_cost "$big/a.out") cost2=$(value transport_cost "$big/a2.out")
  if [ "$st" -eq 0 ] && [ "$its1" = "$its2" ] && [ "$its1" != " " ] && same_value "$cost2" "$cost1" 1e-12 &&
    [ "$(value result_written "$big/a2.out")" = 1 ]; then
    ok "$label: exit 0, iterations (sinkhorn newton) $its2 as the first run's (no new iteration), transport_cost $cost2 (first run $cost1)"
  else
    bad "$label: exit $st (want 0), iterations $its2 (first run $its1), transport_cost '$cost2' (first run '$cost1'), result_written '$(value result_written "$big/a2.out")'"
    show "$big/a2.out" "$big/a2.err"
  fi
  if /usr/bin/python3 -c "
import sys, h5py
with h5py.File(sys.argv[1], 'r') as r:
    assert r['f'].shape == (300,) and r['g'].shape == (300,)" "$big/r2.h5" 2> /dev/null; then
    ok "$label: h5py reads /f (300) and /g (300) from r2.h5"
  else
    bad "$label: h5py cannot read /f and /g of $big/r2.h5"
  fi

  # b) periodic checkpoints into a directory that fills up while the solve runs
  mount_tmpfs "b$np" 1m
  t=$tmpfs
  label="b) checkpoint directory full mid-solve, $np rank(s)"
  start "$big/b" "$np" "${slow[@]}" -ot_checkpoint "$t/ck.h5" -ot_checkpoint_interval 0.2 -output "$big/rb.h5"
  for _ in $(seq 1200); do [ -s "$t/ck.h5" ] || ! kill -0 "$pid" 2> /dev/null && break; sleep 0.05; done
  filled=0
  if [ -s "$t/ck.h5" ] && kill -0 "$pid" 2> /dev/null; then
    filled=1
    # keep it full: a failed checkpoint's temporary frees its space when it is removed
    while kill -0 "$pid" 2> /dev/null; do fill "$t"; sleep 0.05; done &
    keeper=$!
    background+=("$keeper")
  fi
  finish
  [ "$filled" = 0 ] || { wait "$keeper" 2> /dev/null; forget "$keeper"; }
  failures=$(value checkpoint_failures "$big/b.out") reason=$(value checkpoint_error "$big/b.out")
  warnings=$(cat "$big/b.out" "$big/b.err" | grep -c "otsolve: warning: checkpoint $t/ck.h5 not written")
  if [ "$filled" = 0 ]; then
    bad "$label: the run ended before its first checkpoint could be taken away (lengthen the run)"; show "$big/b.out" "$big/b.err"
  elif [ "$st" -eq 0 ] && [ "$(value converged "$big/b.out")" = 1 ] && [ -s "$big/rb.h5" ] && [ "$(value result_written "$big/b.out")" = 1 ]; then
    ok "$label: converged (exit 0) after $(value iterations_sinkhorn "$big/b.out") sweeps, result written"
  else
    bad "$label: exit $st (want 0), converged '$(value converged "$big/b.out")', result $(ls -l "$big/rb.h5" 2>&1)"; show "$big/b.out" "$big/b.err"
  fi
  # one warning when checkpoints start to fail, and again after one was written in between: 1 to N of them
  if [ "${failures:-0}" -ge 1 ] 2> /dev/null && [ -n "$reason" ] && grep -qi space <<< "$reason" && [ "$warnings" -ge 1 ] && [ "$warnings" -le "$failures" ]; then
    ok "$label: checkpoint_failures = $failures, checkpoint_error = $reason, $warnings warning(s): $(grep -h -m 1 'otsolve: warning: checkpoint' "$big/b.out" "$big/b.err" | head -n 1)"
  else
    bad "$label: checkpoint_failures = '$failures' (want >= 1), checkpoint_error = '$reason' (want: no space), $warnings warning(s) (want 1 to $failures)"
    show "$big/b.out" "$big/b.err"
  fi
  if checkpoint_whole "$t/ck.h5"; then ok "$label: the last checkpoint written is whole"; else bad "$label: $t/ck.h5 is not a whole checkpoint"; fi
  no_temporaries "$label" "$t" "$big"
  unmount "$t"

  # c) SIGUSR1 while the checkpoint directory is full: exit 7, the previous checkpoint unchanged
  mount_tmpfs "c$np" 1m
  t=$tmpfs
  label="c) SIGUSR1 with the checkpoint directory full, $np rank(s)"
  run "$big/c1" "$np" "${endless[@]}" -ot_checkpoint "$t/ck.h5" -ot_max_it 20
  [ "$st" -eq 2 ] && [ -s "$t/ck.h5" ] || { bad "$label: the first run (-ot_max_it 20) exit $st (want 2) or no checkpoint"; show "$big/c1.out" "$big/c1.err"; }
  before=$(sha256sum < "$t/ck.h5")
  start "$big/c" "$np" "${endless[@]}" -ot_restart "$t/ck.h5" -ot_checkpoint "$t/ck.h5" -ot_checkpoint_interval 0
  if wait_for '^ +sinkhorn +[0-9]+ ' "$big/c.out" "$big/c.err"; then
    fill "$t"
    echo "     $(free_bytes "$t") bytes free on the checkpoint's file system; SIGUSR1 to mpiexec ($launcher)"
    kill -USR1 "$launcher"
  else
    bad "$label: no monitor line within 60 s, or the run ended first"
  fi
  finish
  if [ "$st" -eq 7 ] && [ "$(value interrupted "$big/c.out")" = 1 ] && [ "$(value checkpoint_written "$big/c.out")" = 0 ]; then
    ok "$label: exit status 7, summary with interrupted = 1, checkpoint_written = 0 after $(value iterations_sinkhorn "$big/c.out") sweeps"
  else
    bad "$label: exit $st (want 7), interrupted = '$(value interrupted "$big/c.out")' (want 1), checkpoint_written = '$(value checkpoint_written "$big/c.out")' (want 0)"
    show "$big/c.out" "$big/c.err"
  fi
  if grep -q "checkpoint $t/ck.h5 not written" "$big/c.out" "$big/c.err"; then
    ok "$label: $(grep -h -m 1 "checkpoint $t/ck.h5 not written" "$big/c.err" "$big/c.out" | head -n 1)"
  else
    bad "$label: no message saying that checkpoint $t/ck.h5 was not written"; show "$big/c.out" "$big/c.err"
  fi
  if [ "$(sha256sum < "$t/ck.h5")" = "$before" ]; then ok "$label: the previous checkpoint is unchanged"; else bad "$label: the previous checkpoint changed"; fi
  no_temporaries "$label" "$t"
  unmount "$t"

  # d) the up-front check: less than 8 (n + m) = 36,000 bytes free for the result or the checkpoint
  mount_tmpfs "d$np" 64k
  t=$tmpfs
  dd if=/dev/zero of="$t/fill" bs=4k count=12 2> /dev/null
  freed=$(free_bytes "$t")
  for option in -output -ot_checkpoint; do
    label="d) $option on a file system with $freed bytes free, $np rank(s)"
    t0=$(date +%s.%N)
    run "$big/d" "$np" "$option" "$t/r.h5"
    seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    message=$(grep -h 'otsolve: error' "$big/d.err" "$big/d.out" | head -n 1)
    # the byte counts in the message (the path, which may hold digits, taken out)
    read -r -a numbers <<< "$(sed "s|$t/r.h5||g" <<< "$message" | grep -oE '[0-9]+' | tr '\n' ' ')"
    need=0 have=-1
    for x in "${numbers[@]}"; do
      [ "$x" -ge 36000 ] && [ "$need" -eq 0 ] && need=$x
      [ "$x" -le "$freed" ] && [ "$x" -ge $((freed / 2)) ] && have=$x
    done
    if [ "$st" -eq 1 ] && [ "$(cat "$big/d.out" "$big/d.err" | grep -c 'otsolve: error')" -eq 1 ] && [ "$need" -gt 0 ] && [ "$have" -ge 0 ] &&
      ! grep -q '^iterations_sinkhorn = ' "$big/d.out" && grep -qF -- "$option" <<< "$message"; then
      ok "$label: exit 1 in $seconds s, before the solve: $message"
    else
      bad "$label: exit $st (want 1), want one message with $option and the bytes needed (>= 36000) and free (~$freed), and no solve"
      show "$big/d.out" "$big/d.err"
    fi
    no_temporaries "$label" "$t"
  done
  unmount "$t"

  # e) -pairs: the output's directory fills up while the pairs are solved
  mount_tmpfs "e$np" 256k
  t=$tmpfs
  label="e) -pairs output directory full, $np rank(s)"
  start "$big/e" "$np" -pairs "$work/measures/list.txt" -output "$t/D.h5" -ot_eps 1e-3
  if wait_for ' measures, [0-9]+ pairs' "$big/e.out" "$big/e.err"; then
    fill "$t"
    still=1
  else
    bad "$label: the -pairs run ended before its output directory could be filled (lengthen it)"; still=0
  fi
  finish
  if [ "$still" = 1 ] && [ "$st" -eq 6 ] && [ "$(value pairs "$big/e.out")" = 3 ] && [ "$(value output_written "$big/e.out")" = 0 ] &&
    grep -q "D.h5 not written" "$big/e.err"; then
    ok "$label: exit status 6, summary printed (pairs = 3, output_written = 0): $(grep -m 1 'D.h5 not written' "$big/e.err")"
  else
    bad "$label: exit $st (want 6), pairs = '$(value pairs "$big/e.out")' (want 3), output_written = '$(value output_written "$big/e.out")' (want 0), want a message '... D.h5 not written ...'"
    show "$big/e.out" "$big/e.err"
  fi
  [ ! -e "$t/D.h5" ] || bad "$label: $t/D.h5 exists although it was not written"
  no_temporaries "$label" "$t"
  unmount "$t"
done

echo "=== once"
big=$work/big
mkdir -p "$big"
# otgen into a full directory: /C of 400 x 400 is 1.28 MB, the tmpfs 256 KiB
mount_tmpfs otgen 256k
t=$tmpfs
label="otgen output directory full"
timeout 120 "$build/otgen" -gen_type gaussian -gen_n 400 -gen_m 400 -gen_output "$t/p.h5" < /dev/null > "$big/g.out" 2> "$big/g.err"
st=$?
message=$(grep -h "$t/p.h5" "$big/g.err" "$big/g.out" | head -n 1)
if [ "$st" -eq 6 ] && [ -n "$message" ] && grep -qi space <<< "$message"; then
  ok "$label: exit status 6: $message"
else
  bad "$label: exit $st (want 6), want a message naming $t/p.h5 and the reason (no space)"; show "$big/g.out" "$big/g.err"
fi
[ ! -e "$t/p.h5" ] || bad "$label: $t/p.h5 exists although it was not written"
no_temporaries "$label" "$t"
unmount "$t"

# jobs/solve.sbatch outside Slurm (mpirun on 2 ranks): status 6 keeps the checkpoint and says how to go on
mount_tmpfs job6 512k
t=$tmpfs
label="jobs/solve.sbatch, result directory full"
job() { # LOG, then VAR=value... for solve.sbatch
  local log=$1
  shift
  env OTSOLVE_ROOT="$source" OTSOLVE="$build/otsolve" LAUNCHER=mpirun NRANKS=2 OPTIONS_FILE= KEEP_CHECKPOINT=0 "$@" \
    timeout 150 bash "$source/jobs/solve.sbatch" < /dev/null > "$log" 2>&1
}
job "$big/job6.log" OUTPUT="$t/r.h5" CHECKPOINT="$big/job.ck.h5" OTSOLVE_OPTIONS="${small[*]} -ot_plan_threshold 0"
st=$?
if [ "$st" -eq 6 ] && checkpoint_whole "$big/job.ck.h5" && grep -q "^otsolve job: .*$big/job.ck.h5" "$big/job6.log" &&
  grep -q "^otsolve job: .*-ot_restart $big/job.ck.h5" "$big/job6.log"; then
  ok "$label: exit 6, checkpoint kept (KEEP_CHECKPOINT=0), the job says:"; grep '^otsolve job: ' "$big/job6.log" | tail -n 3 | sed 's/^/       /'
else
  bad "$label: exit $st (want 6), checkpoint $(ls -l "$big/job.ck.h5" 2>&1), want job lines naming it and the -ot_restart command"; show "$big/job6.log"
fi
no_temporaries "$label" "$t" "$big"
unmount "$t"
job "$big/job6b.log" OUTPUT="$big/r.h5" CHECKPOINT="$big/job.ck.h5" OTSOLVE_OPTIONS="${small[*]}"
st=$?
if [ "$st" -eq 0 ] && [ -s "$big/r.h5" ] && [ ! -e "$big/job.ck.h5" ] && grep -q '^otsolve: resuming from' "$big/job6b.log" &&
  [ "$(value iterations_sinkhorn "$big/job6b.log")" = "$(value iterations_sinkhorn "$big/job6.log")" ]; then
  ok "jobs/solve.sbatch again with OUTPUT elsewhere: resumed without iterating, exit 0, result written, checkpoint removed"
else
  bad "jobs/solve.sbatch again with OUTPUT elsewhere: exit $st (want 0), result $(ls "$big/r.h5" 2>&1), checkpoint $(ls "$big/job.ck.h5" 2>&1)"; show "$big/job6b.log"
fi
# status 7: SIGUSR1 to the job while its checkpoint directory is full: not requeued, exit 7
mount_tmpfs job7 1m
t=$tmpfs
label="jobs/solve.sbatch, SIGUSR1 with the checkpoint directory full"
env OTSOLVE_ROOT="$source" OTSOLVE="$build/otsolve" LAUNCHER=mpirun NRANKS=2 OPTIONS_FILE= OUTPUT="$big/r7.h5" CHECKPOINT="$t/ck.h5" \
  OTSOLVE_OPTIONS="${endless[*]}" timeout 150 bash "$source/jobs/solve.sbatch" < /dev/null > "$big/job7.log" 2>&1 &
pid=$!
background+=("$pid")
jobshell=
for _ in $(seq 100); do jobshell=$(pgrep -P "$pid" | head -n 1) && [ -n "$jobshell" ] && break; sleep 0.02; done
if wait_for '^ +sinkhorn +[0-9]+ ' "$big/job7.log"; then
  fill "$t"
  kill -USR1 "$jobshell"
else
  bad "$label: no monitor line within 60 s"
fi
finish
if [ "$st" -eq 7 ] && grep -q "^otsolve job: .*checkpoint $t/ck.h5 could not be written" "$big/job7.log" && ! grep -qi 'requeueing\|run the same command again' "$big/job7.log"; then
  ok "$label: exit 7, not requeued: $(grep "^otsolve job: .*could not be written" "$big/job7.log")"
else
  bad "$label: exit $st (want 7), want 'otsolve job: ... checkpoint $t/ck.h5 could not be written' and no requeue"; show "$big/job7.log"
fi
no_temporaries "$label" "$t"
unmount "$t"

[ "$fail" -eq 0 ] && echo "storage faults on $ranks rank(s): all ok"
exit "$fail"
