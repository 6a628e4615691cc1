#!/bin/bash
# Every configs/*.opts file, loaded with -options_file on 2 ranks with -options_left, on a Fashion-MNIST
# reference case of tests/data/references.txt (fmnist01_sq at eps = 2e-3; fmnist01_sq_3e-4 at eps = 3e-4 for
# small_eps.opts; the point clouds points_euclidean for *point_clouds*.opts), eps given after the file: PETSc must report
# "There are no unused options." and no "Option left"; the run must converge to the file's -ot_tol (or the
# default 1e-9) with a transport cost within max(1e-7, 10 tol) of POT's sinkhorn_log, and make Newton steps if and only if
# the file's -ot_method (sns if it has none) is sns. Then a copy of default.opts with a
# misspelt option must be refused by otsolve (exit 1, nothing solved) and reported by -options_left.
# usage: check_configs.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
# shellcheck source=tests/cases.sh
. "$source/tests/cases.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# run_config FILE LOG CASE: otsolve with FILE and -options_left on CASE; sets case_*; returns otsolve's exit status
run_config() {
  local status=0
  mkdir -p "$dir/$3"
  [ -f "$dir/$3/problem.h5" ] || load_case "$build" "$3" "$dir/$3"
  read -r _ _ _ case_eps case_sinkhorn_cost _ <<< "$(awk -v n="$3" '$1 == n' "$source/tests/data/references.txt")"
  mpiexec -n 2 "$build/otsolve" -options_file "$1" -problem "$dir/$3/problem.h5" -ot_eps "$case_eps" -options_left > "$2" 2>&1 || status=$?
  return "$status"
}

bad=0
for config in "$source"/configs/*.opts; do
  name=$(basename "$config")
  log=$dir/$name.log
  case $name in
    small_eps.opts) case_name=fmnist01_sq_3e-4 ;;
    *point_clouds*) case_name=points_euclidean ;; # /X, /Y only: no /C in the file
    *) case_name=fmnist01_sq ;;
  esac
  status=0
  run_config "$config" "$log" "$case_name" || status=$?
  tol=$(awk '$1 == "-ot_tol" {t = $2} END {print t ? t : "1e-9"}' "$config")
  method=$(awk '$1 == "-ot_method" {m = $2} END {print m ? m : "sns"}' "$config")
  result=$(awk -F' = ' -v ref="$case_sinkhorn_cost" -v tol="$tol" -v method="$method" '
    $1 == "converged" {c = $2} $1 == "marginal_error" {e = $2} $1 == "transport_cost" {t = $2} $1 == "iterations_newton" {nw = $2}
    /^There are no unused options\.$/ {clean = 1} /Option left/ {left = left " " $0}
    END { rel = (t - ref) / ref; if (rel < 0) rel = -rel
          rtol = (10 * tol > 1e-7) ? 10 * tol : 1e-7
          ok = (c == 1 && e + 0 <= tol + 0 && rel <= rtol && clean && left == "" && (method == "sinkhorn") == (nw == 0))
          printf "%s %s, %d Newton steps, converged %s, marginal error %s (tol %s), transport cost %.17g (POT %.3g relative), unused options:%s\n",
                 ok ? "OK  " : "FAIL", method, nw, c, e, tol, t, rel, left == "" ? (clean ? " none" : " (no report)") : left }' "$log")
  echo "$name on $case_name (eps $case_eps): exit $status; $result"
  if [ "$status" -ne 0 ] || [[ $result != OK* ]]; then
    bad=1
    tail -n 30 "$log"
  fi
done

# the check must catch an option that nothing reads: otsolve itself refuses it before loading (exit 1, one
# message with the option it meant), and -options_left, still honoured, names it at the end
cp "$source/configs/default.opts" "$dir/misspelt.opts"
echo "-ot_sinkhorn_varaint log" >> "$dir/misspelt.opts"
status=0
run_config "$dir/misspelt.opts" "$dir/misspelt.log" fmnist01_sq || status=$?
if [ "$status" -eq 1 ] && grep -q 'otsolve: error: unknown option -ot_sinkhorn_varaint (did you mean -ot_sinkhorn_variant?)' "$dir/misspelt.log" &&
  grep -q 'Option left: name:-ot_sinkhorn_varaint' "$dir/misspelt.log" && ! grep -q '^converged = ' "$dir/misspelt.log"; then
  echo "a misspelt option is refused: $(grep 'otsolve: error' "$dir/misspelt.log")"
else
  echo "FAIL: the misspelt option -ot_sinkhorn_varaint was not refused (exit $status, want 1 and no solve)"
  cat "$dir/misspelt.log"
  bad=1
fi
exit "$bad"
