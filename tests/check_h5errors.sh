#!/bin/bash
# Files that HDF5 cannot read (tests/make_damaged.py writes them): a dataset under a filter this HDF5 lacks (h5py's
# lzf) must end otsolve with exit status 1 and one message that names the file, the dataset and the filter and says
# how to rewrite the file (the rewrite it gives is run here and must then solve); gzip + shuffle must solve as the
# plain file does (the same transport cost); damaged copies (bytes overwritten, cut short) must end in 0 (the
# damage missed what is read), 1 with one message, or 2 or 5 only when h5py reads other numbers from the copy
# than from the original; never 3 (internal error, MPI_Abort), a signal or a hang. The same for the measure files
# of -pairs and a checkpoint given to -ot_restart, and for damage that only one rank's rows meet. Prints the tally of
# exit statuses over the damaged copies.
# usage: check_h5errors.sh BUILD_DIR NP [COUNT (damaged copies, 40)]
set -uo pipefail
build=$1 np=$2 count=${3:-40}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 "$here/make_damaged.py" "$dir" "$count" || { echo "FAIL: make_damaged.py"; exit 1; }
fail=0
solve() { # output file, options...: otsolve on NP ranks within 60 s; prints the exit status
  local out=$1; shift
  timeout 60 mpiexec -n "$np" "$build/otsolve" "$@" > "$out" 2>&1
  echo $?
}
cost() { sed -n 's/^transport_cost = //p' "$1"; }
verdict() { # ok, what, output to show on failure
  if [ "$1" = ok ]; then echo "ok   $2"; else echo "FAIL $2"; cat "$3"; fail=1; fi
}

# plain and gzip + shuffle: the same transport cost
for p in dense points; do
  status=$(solve "$dir/$p.out" -problem "$dir/$p.h5")
  reference=$(cost "$dir/$p.out")
  [ "$status" -eq 0 ] && [ -n "$reference" ] && ok=ok || ok=no
  verdict $ok "$p.h5: exit $status, transport_cost $reference" "$dir/$p.out"
  status=$(solve "$dir/${p}_gzip.out" -problem "$dir/${p}_gzip.h5")
  [ "$status" -eq 0 ] && [ "$(cost "$dir/${p}_gzip.out")" = "$reference" ] && ok=ok || ok=no
  verdict $ok "${p}_gzip.h5 (shuffle + gzip): exit $status, transport_cost $(cost "$dir/${p}_gzip.out") (plain: $reference)" "$dir/${p}_gzip.out"

  # lzf: exit 1, one message naming file, dataset, filter and h5repack; the rewrite it gives solves as the plain file
  status=$(solve "$dir/${p}_lzf.out" -problem "$dir/${p}_lzf.h5")
  message=$(grep "otsolve: error" "$dir/${p}_lzf.out")
  first=$([ $p = dense ] && echo /C || echo /X)
  [ "$status" -eq 1 ] && [ "$(grep -c "otsolve: error" "$dir/${p}_lzf.out")" -eq 1 ] &&
    [[ $message == *"${p}_lzf.h5: dataset $first is compressed with filter 32000 (lzf)"*h5repack* ]] && ok=ok || ok=no
  verdict $ok "${p}_lzf.h5: exit $status: $message" "$dir/${p}_lzf.out"
  rewrite=$(printf '%s' "$message" | sed -n 's/.*which has lzf: \(python3 .* new\.h5\) (h5repack.*/\1/p')
  (cd "$dir" && rm -f new.h5 && PATH=/usr/bin:$PATH bash -c "$rewrite") > "$dir/rewrite.out" 2>&1
  status=$(solve "$dir/new.out" -problem "$dir/new.h5")
  [ -n "$rewrite" ] && [ "$status" -eq 0 ] && [ "$(cost "$dir/new.out")" = "$reference" ] && ok=ok || ok=no
  cat "$dir/rewrite.out" >> "$dir/new.out"
  verdict $ok "${p}_lzf.h5 rewritten as the message says: exit $status, transport_cost $(cost "$dir/new.out")" "$dir/new.out"
done

# damage that only the last of the ranks meets (its rows of C): every rank ends with the one message
for p in partial_contiguous partial_gzip partial_address; do
  status=$(solve "$dir/$p.out" -problem "$dir/$p.h5")
  [ "$status" -eq 1 ] && [ "$(grep -c "otsolve: error" "$dir/$p.out")" -eq 1 ] &&
    grep -q "$p.h5: dataset /C .*the file is damaged (truncated or corrupted)" "$dir/$p.out" && ok=ok || ok=no
  verdict $ok "$p.h5: exit $status: $(grep "otsolve: error" "$dir/$p.out")" "$dir/$p.out"
done

# a filter HDF5 lacks, optional and skipped by the writer: solved as the plain file, or refused naming the filter
status=$(solve "$dir/blosc.out" -problem "$dir/dense_blosc.h5")
message=$(grep "otsolve: error" "$dir/blosc.out")
{ [ "$status" -eq 0 ] && [ "$(cost "$dir/blosc.out")" = "$(cost "$dir/dense.out")" ]; } ||
  { [ "$status" -eq 1 ] && [[ $message == *"dataset /C is compressed with filter 32001 (blosc)"*"HDF5_PLUGIN_PATH=FOLDER h5repack -f GZIP=4"* ]]; } && ok=ok || ok=no
verdict $ok "dense_blosc.h5 (optional filter 32001, skipped by the writer): exit $status ${message:+: $message}" "$dir/blosc.out"
# the same filter mandatory: refused when the dataset is opened, the filter named, h5repack with the plugin's folder
status=$(solve "$dir/blosc_mandatory.out" -problem "$dir/dense_blosc_mandatory.h5")
message=$(grep "otsolve: error" "$dir/blosc_mandatory.out")
[ "$status" -eq 1 ] && [ "$(grep -c "otsolve: error" "$dir/blosc_mandatory.out")" -eq 1 ] &&
  [[ $message == *"dense_blosc_mandatory.h5: dataset /C is compressed with filter 32001 (blosc)"*"HDF5_PLUGIN_PATH=FOLDER h5repack -f GZIP=4 $dir/dense_blosc_mandatory.h5 new.h5"* ]] && ok=ok || ok=no
verdict $ok "dense_blosc_mandatory.h5 (mandatory filter 32001): exit $status: $message" "$dir/blosc_mandatory.out"

# -pairs: good measures, an lzf one, one whose data cannot be read
printf '%s\n' "$dir/measure_0.h5" "$dir/measure_1.h5" > "$dir/good.txt"
printf '%s\n' "$dir/measure_0.h5" "$dir/measure_lzf.h5" "$dir/measure_1.h5" > "$dir/lzf.txt"
printf '%s\n' "$dir/measure_0.h5" "$dir/measure_1.h5" "$dir/measure_broken.h5" > "$dir/broken.txt"
status=$(solve "$dir/pairs.out" -pairs "$dir/good.txt" -output "$dir/pairs.h5")
[ "$status" -eq 0 ] && ok=ok || ok=no
verdict $ok "-pairs of 2 good measures: exit $status" "$dir/pairs.out"
for list in lzf:"measure_lzf.h5: dataset /X is compressed with filter 32000 (lzf)" broken:"measure_broken.h5: dataset /X could not be read: the file is damaged"; do
  name=${list%%:*} pattern=${list#*:}
  status=$(solve "$dir/pairs_$name.out" -pairs "$dir/$name.txt" -output "$dir/pairs_$name.h5")
  [ "$status" -eq 1 ] && [ "$(grep -c "otsolve: error" "$dir/pairs_$name.out")" -eq 1 ] && grep -q -- "$pattern" "$dir/pairs_$name.out" && ok=ok || ok=no
  verdict $ok "-pairs with measure_$name.h5: exit $status: $(grep "otsolve: error" "$dir/pairs_$name.out")" "$dir/pairs_$name.out"
done

# -ot_restart from a checkpoint whose /f cannot be read
solve "$dir/ck.out" -problem "$dir/dense.h5" -ot_max_it 3 -ot_checkpoint "$dir/ck.h5" > /dev/null
/usr/bin/python3 "$here/make_damaged.py" --break-checkpoint "$dir/ck.h5" >> "$dir/ck.out" 2>&1
status=$(solve "$dir/restart.out" -problem "$dir/dense.h5" -ot_restart "$dir/ck.h5")
[ "$status" -eq 1 ] && [ "$(grep -c "otsolve: error" "$dir/restart.out")" -eq 1 ] &&
  grep -q "ck.h5: dataset /f could not be read: the file is damaged" "$dir/restart.out" && ok=ok || ok=no
verdict $ok "-ot_restart from a checkpoint with a damaged /f: exit $status: $(grep "otsolve: error" "$dir/restart.out")" "$dir/restart.out"

# damaged copies, three at a time; each verdict in $dir/copy.K
changed() { # damaged copy, its source: h5py reads every dataset of the copy, and some differ from the source's
  /usr/bin/python3 - "$1" "$2" <<'PY' > /dev/null 2>&1
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as copy, h5py.File(sys.argv[2], "r") as source:
    sys.exit(0 if any(not np.array_equal(copy[k][()], source[k][()], equal_nan=True) for k in source) else 1)
PY
}
check_copy() { # K
  local k=$1 file=$dir/damaged_$1.h5 out=$dir/damaged_$1.out
  local source; source=$(awk -v f="damaged_$k.h5" '$1 == f {print $2}' "$dir/damaged.txt")
  local status; status=$(solve "$out" -problem "$file")
  local lines; lines=$(grep -c "otsolve: error" "$out")
  local ok=no
  case $status in
    0) ok=ok ;;
    1) [ "$lines" -eq 1 ] && ok=ok ;;
    2 | 5) changed "$file" "$dir/$source" && ok=ok ;;
  esac
  { echo "$status $ok $(grep "otsolve: error" "$out" | head -1)"; [ $ok = ok ] || { grep "damaged_$k.h5 " "$dir/damaged.txt"; cat "$out"; }; } > "$dir/copy.$k"
}
for k in $(seq 0 $((count - 1))); do
  while [ "$(jobs -rp | wc -l)" -ge 3 ]; do sleep 0.1; done
  check_copy "$k" &
done
wait
declare -A tally
for k in $(seq 0 $((count - 1))); do
  read -r status ok message < "$dir/copy.$k"
  tally[$status]=$((${tally[$status]:-0} + 1))
  if [ "$ok" = ok ]; then
    [ "$status" -eq 0 ] || echo "ok   damaged_$k.h5: exit $status${message:+: $message}"
  else
    echo "FAIL damaged_$k.h5: exit $status (want 0, 1 with one message, or 2 or 5 from changed numbers)"
    tail -n +2 "$dir/copy.$k"
    fail=1
  fi
done
summary=""
for status in $(printf '%s\n' "${!tally[@]}" | sort -n); do summary+=" exit $status: ${tally[$status]},"; done
echo "damaged copies on $np rank(s), $count in all:${summary%,} (124: timeout, 3: internal error)"
exit $fail
