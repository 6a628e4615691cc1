#!/bin/bash
# Output paths that collide with inputs are refused before anything is read or written: -output or
# -ot_checkpoint the same file as the -problem file, -output the same as the -ot_restart file or as
# -ot_checkpoint, the -pairs output the same as the list or a measure file in it; by the same path, a ./
# path, a symbolic link (to the file or to its directory), a hard link, and, for files that do not exist yet,
# the same resolved path. Each: exit status 1, one message naming both options, and no file in the
# directory changed, created or removed (sha256sum of everything before and after). Allowed: -ot_checkpoint
# and -ot_restart the same file (a job resuming and checkpointing again), and -output over an old result or
# a file of the same name in another directory.
# usage: check_collisions.sh BUILD_DIR [RANKS ...]   (default: 1 3)
set -uo pipefail
build=$(cd "$1" && pwd)
shift
ranks=${*:-1 3}
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
dir=$top/files
mkdir "$dir" && cd "$dir" || exit 1
fail=0

"$build/otgen" -gen_type gaussian -gen_n 60 -gen_m 50 -gen_seed 2 -gen_output problem.h5 > /dev/null || { echo "FAIL: otgen"; exit 1; }
mkdir measures sub
for k in 0 1 2; do
  "$build/otgen" -gen_type mixture -gen_n 40 -gen_m 5 -gen_dim 2 -gen_seed $((k + 1)) -gen_output "measures/m$k.h5" > /dev/null || { echo "FAIL: otgen"; exit 1; }
  echo "$dir/measures/m$k.h5" >> list.txt
done
ln -s problem.h5 link.h5          # a symbolic link to the problem file
ln problem.h5 hard.h5             # a hard link: the same inode
ln -s "$dir" alias                # a symbolic link to the directory
ln -s measures/m2.h5 mlink.h5     # a symbolic link to a measure file
timeout 120 mpiexec -n 1 "$build/otsolve" -problem problem.h5 -ot_max_it 3 -ot_checkpoint ck.h5 < /dev/null > ck.out 2>&1
[ $? -eq 2 ] && [ -s ck.h5 ] || { echo "FAIL: could not write the checkpoint used below"; cat ck.out; exit 1; }
cp ck.h5 old.h5                   # an existing file that is not an input
rm -f ck.out
tar -cf "$top/pristine.tar" . # to put the files back after a case that changed them, so that the next cases are valid

manifest() { find . -path ./out -prune -o \( -type f -o -type l \) -print | LC_ALL=C sort | while read -r f; do
  if [ -L "$f" ]; then echo "$f -> $(readlink "$f")"; else echo "$f $(sha256sum < "$f")"; fi; done; }
mkdir out

# refused NP LABEL OPTION1 OPTION2 ARGS...: otsolve ARGS on NP ranks exits 1 with one message naming OPTION1 and
# OPTION2, and the directory is as it was
refused() {
  local np=$1 label=$2 o1=$3 o2=$4 before status message
  shift 4
  before=$(manifest)
  timeout 120 mpiexec -n "$np" --oversubscribe "$build/otsolve" "$@" < /dev/null > out/log 2>&1
  status=$?
  message=$(grep 'otsolve: error' out/log)
  if [ "$status" -eq 1 ] && [ "$(grep -c 'otsolve: error' out/log)" -eq 1 ] && grep -qF -- "$o1" <<< "$message" &&
    grep -qF -- "$o2" <<< "$message" && ! grep -q '^iterations_sinkhorn = ' out/log; then
    echo "ok   $label, $np rank(s): $message"
  else
    echo "FAIL $label, $np rank(s): exit $status (want 1; 124: hung), want one message naming $o1 and $o2 and no solve: otsolve $*"
    cat out/log; fail=1
  fi
  if [ "$(manifest)" != "$before" ]; then
    echo "FAIL $label, $np rank(s): files changed:"; diff <(echo "$before") <(manifest); fail=1
    find . -mindepth 1 -maxdepth 1 ! -name out -exec rm -rf {} +
    tar -xf "$top/pristine.tar"
  fi
}
# allowed NP LABEL ARGS...: otsolve ARGS exits 0 (converged)
allowed() {
  local np=$1 label=$2 status
  shift 2
  timeout 120 mpiexec -n "$np" --oversubscribe "$build/otsolve" "$@" < /dev/null > out/log 2>&1
  status=$?
  if [ "$status" -eq 0 ]; then
    echo "ok   $label, $np rank(s): exit 0"
  else
    echo "FAIL $label, $np rank(s): exit $status (want 0): otsolve $*"; cat out/log; fail=1
  fi
}

for np in $ranks; do
  refused "$np" "-output the problem file (same path)" -output -problem -problem "$dir/problem.h5" -output "$dir/problem.h5"
  refused "$np" "-output the problem file (./ path)" -output -problem -problem "$dir/problem.h5" -output ./problem.h5
  refused "$np" "-output a symbolic link to the problem file" -output -problem -problem problem.h5 -output link.h5
  refused "$np" "-problem a symbolic link to -output" -output -problem -problem link.h5 -output "$dir/problem.h5"
  refused "$np" "-output a hard link to the problem file" -output -problem -problem problem.h5 -output hard.h5
  refused "$np" "-output the problem file through a linked directory" -output -problem -problem problem.h5 -output alias/problem.h5
  refused "$np" "-ot_checkpoint the problem file" -ot_checkpoint -problem -problem problem.h5 -ot_checkpoint ./problem.h5
  refused "$np" "-ot_checkpoint a symbolic link to the problem file" -ot_checkpoint -problem -problem "$dir/problem.h5" -ot_checkpoint link.h5
  refused "$np" "-output the -ot_restart file" -output -ot_restart -problem problem.h5 -ot_restart ck.h5 -output ./ck.h5
  refused "$np" "-output = -ot_checkpoint (neither exists)" -output -ot_checkpoint -problem problem.h5 -output new.h5 -ot_checkpoint "$dir/new.h5"
  refused "$np" "-output = -ot_checkpoint (not existing, through a linked directory)" -output -ot_checkpoint -problem problem.h5 -output alias/sub/new.h5 -ot_checkpoint sub/./new.h5
  refused "$np" "-output = -ot_checkpoint (an existing file)" -output -ot_checkpoint -problem problem.h5 -output old.h5 -ot_checkpoint "$dir/old.h5"
  refused "$np" "-pairs: -output a measure file of the list" -output -pairs -pairs list.txt -output measures/m1.h5 -ot_eps 1e-2
  refused "$np" "-pairs: -output a symbolic link to a measure file" -output -pairs -pairs list.txt -output mlink.h5 -ot_eps 1e-2
  refused "$np" "-pairs: -output the list file" -output -pairs -pairs list.txt -output ./list.txt -ot_eps 1e-2
done

# allowed: the checkpoint that is resumed is the one written (work on a copy, so that the cases above stay valid)
np=${ranks##* }
cp ck.h5 out/ck.h5
allowed "$np" "-ot_checkpoint = -ot_restart" -problem problem.h5 -ot_checkpoint out/ck.h5 -ot_restart out/ck.h5 -output out/r.h5
[ -s out/r.h5 ] || { echo "FAIL: -ot_checkpoint = -ot_restart: no result out/r.h5"; fail=1; }
allowed "$np" "-output over an old result" -problem problem.h5 -output out/r.h5
allowed "$np" "-output the name of the problem file in another directory" -problem problem.h5 -output sub/problem.h5
allowed "$np" "-pairs with an output beside the measures" -pairs list.txt -output measures/D.h5 -ot_eps 1e-2
[ "$fail" -eq 0 ] && echo "colliding paths on $ranks rank(s): all refused, the allowed ones run"
exit "$fail"
