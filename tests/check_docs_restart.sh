#!/bin/bash
# The restart examples of the documentation, run as printed: README's "Checkpoint and restart" block (otgen, a run
# stopped by -ot_max_it with a checkpoint, the restart on another number of ranks without -ot_eps) and the mpiexec
# lines of docs/hpc.md that resume from result.checkpoint.h5. Each resumed run must converge to the transport cost
# of an uninterrupted run to 1e-10 relative, and say how much of solve_time came before the restart.
# usage: check_docs_restart.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
ln -s "$build" build # the README's commands name build/otsolve, docs/hpc.md's an installed otsolve
export PATH="$build:$PATH"
fail=0
value() { awk -v k="$1" '$1 == k {print $3}' "$2"; }
same_cost() { /usr/bin/python3 -c "import sys; a, b = map(float, sys.argv[1:3]); sys.exit(0 if abs(a - b) <= 1e-10 * abs(b) else 1)" "$1" "$2"; }
# runs one documented line; checks its exit status and, for a restart, the answer
run_line() { # label, expected status, line
  bash -c "$3" > out 2>&1 < /dev/null # (mpiexec would read the loop's input)
  local status=$?
  if [ "$status" -ne "$2" ]; then
    echo "FAIL $1: exit status $status (want $2): $3"; cat out; fail=1; return
  fi
  case $3 in
  *-ot_restart*)
    local cost restored
    cost=$(value transport_cost out) restored=$(value solve_time_restored out)
    if [ "$(value converged out)" = 1 ] && same_cost "$cost" "$full" && [ -n "$restored" ] && grep -q "^otsolve: resuming from" out; then
      echo "ok   $1: converged, transport_cost $cost (uninterrupted $full), solve_time_restored $restored s: $3"
    else
      echo "FAIL $1: not the uninterrupted answer $full (or no solve_time_restored): $3"; cat out; fail=1
    fi
    ;;
  *) echo "ok   $1: exit status $status: $3" ;;
  esac
}

readme=$(awk '/^### Checkpoint and restart/ {s = 1} s && /^```sh/ {b = 1; next} b && /^```/ {exit} b && !/^#/' "$src/README.md")
[ "$(grep -c 'mpiexec' <<< "$readme")" -eq 2 ] || { echo "FAIL: README's restart block should hold two mpiexec lines:"; echo "$readme"; exit 1; }
k=0
while IFS= read -r line; do
  k=$((k + 1))
  case $line in
  *-ot_max_it*) run_line "README line $k (stopped by -ot_max_it)" 2 "$line"
    [ -s ck.h5 ] || { echo "FAIL: no checkpoint ck.h5 after: $line"; exit 1; }
    cp ck.h5 result.checkpoint.h5 # docs/hpc.md's names for the checkpoint and the problem
    ln -sf gauss.h5 pair.h5
    mpiexec -n 3 build/otsolve -problem gauss.h5 -ot_eps 1e-3 -output full.h5 > full.out 2>&1 < /dev/null || { echo "FAIL: uninterrupted run"; cat full.out; exit 1; }
    full=$(value transport_cost full.out)
    ;;
  *) run_line "README line $k" 0 "$line" ;;
  esac
done <<< "$readme"

hpc=$(grep -E '^ *(mkdir -p [a-z]+ && )?mpiexec .*-ot_restart result\.checkpoint\.h5' "$src/docs/hpc.md")
[ -n "$hpc" ] || { echo "FAIL: no restart command in docs/hpc.md"; exit 1; }
while IFS= read -r line; do
  cp ck.h5.copy result.checkpoint.h5 2> /dev/null || true
  cp result.checkpoint.h5 ck.h5.copy
  run_line "docs/hpc.md" 0 "$line"
done <<< "$hpc"
# a restart that asks for another eps is refused, naming both
mpiexec -n 2 build/otsolve -problem gauss.h5 -ot_eps 2e-3 -ot_restart ck.h5.copy -output other.h5 > out 2>&1
if [ $? -eq 1 ] && grep -q "checkpoint was written for eps = 0.001.*asks for eps = 0.002" out; then
  echo "ok   a restart with another -ot_eps is refused"
else
  echo "FAIL: a restart with -ot_eps 2e-3 from a checkpoint at 1e-3 was not refused as it should"; cat out; fail=1
fi
exit $fail
