#!/bin/bash
# Options that nothing in otsolve reads end the run before anything is loaded: exit status 1, one message
# `otsolve: error: unknown option -X (did you mean -Y?)` (printed once, on any number of ranks), no result file, no
# summary. Mistyped: a program option (-problme), a solver option (-ot_epss), a Newton KSP option
# (-ot_newton_ksp_rtoll), one in an -options_file, one of a checkpoint (-ot_checkpoint_intervall) and one with -pairs
# (refused before the list is read: the list does not exist); an argument that is not an option (otsolve pair.h5).
# Allowed (exit 0): the Newton KSP options where Newton never runs (-ot_method sinkhorn), nested solvers' options
# (-ot_newton_sub_pc_type with bjacobi), -log_view, -options_left (which still reports), -help (which lists the
# Newton KSP options). Then the periodic progress line (-ot_monitor_seconds) has its fields: eps_stage k/K and
# estimated_left (seconds, or "unknown"); no timing is asserted.
# usage: check_options.sh BUILD_DIR NP
set -uo pipefail
build=$1 np=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
small=(-ot_example_n 300 -ot_example_m 400)

# refused LABEL UNKNOWN SUGGESTION ARGS...: otsolve ARGS -output FILE exits 1, one message naming UNKNOWN (and
# "did you mean SUGGESTION?" unless it is empty), no result file, no summary, no solve
refused() {
  local label=$1 unknown=$2 suggestion=$3 status message
  shift 3
  rm -f "$dir/result.h5"
  timeout 120 mpiexec -n "$np" "$build/otsolve" "$@" -output "$dir/result.h5" < /dev/null > "$dir/out" 2>&1
  status=$?
  message=$(grep 'otsolve: error' "$dir/out")
  if [ "$status" -eq 1 ] && [ "$(grep -c 'otsolve: error' "$dir/out")" -eq 1 ] && grep -qF -- "$unknown" <<< "$message" &&
    { [ -z "$suggestion" ] || grep -qF -- "$unknown (did you mean $suggestion?)" <<< "$message"; } && [ ! -e "$dir/result.h5" ] &&
    ! grep -qE '^(status|converged|transport_cost) = |built-in example|^  (sinkhorn|newton) ' "$dir/out"; then
    echo "ok   $label: $message"
  else
    echo "FAIL $label, $np rank(s): exit $status (want 1; 124: hung), want one message naming $unknown${suggestion:+ and $suggestion}, no result, no solve: otsolve $*"
    cat "$dir/out"
    fail=1
  fi
}

# allowed LABEL PATTERN ARGS...: otsolve ARGS exits 0 and prints a line matching PATTERN
allowed() {
  local label=$1 pattern=$2 status
  shift 2
  timeout 120 mpiexec -n "$np" "$build/otsolve" "$@" < /dev/null > "$dir/out" 2>&1
  status=$?
  if [ "$status" -eq 0 ] && ! grep -q 'otsolve: error' "$dir/out" && grep -qE -- "$pattern" "$dir/out"; then
    echo "ok   $label"
  else
    echo "FAIL $label, $np rank(s): exit $status (want 0), or no line matching '$pattern': otsolve $*"
    tail -n 30 "$dir/out"
    fail=1
  fi
}

refused "program option" -problme -problem -problme "$dir/pair.h5"
refused "solver option" -ot_epss -ot_eps "${small[@]}" -ot_epss 0.01
refused "Newton KSP option" -ot_newton_ksp_rtoll -ot_newton_ksp_rtol "${small[@]}" -ot_newton_ksp_rtoll 1e-3
refused "Newton KSP option, Newton never runs" -ot_newton_ksp_rtoll -ot_newton_ksp_rtol "${small[@]}" -ot_method sinkhorn -ot_newton_ksp_rtoll 1e-3
refused "without the prefix" -ksp_rtol -ot_newton_ksp_rtol "${small[@]}" -ksp_rtol 1e-3
refused "nested solver" -ot_newton_sub_pc_typ -ot_newton_sub_pc_type "${small[@]}" -ot_newton_pc_type bjacobi -ot_newton_sub_pc_typ icc
refused "checkpoint option" -ot_checkpoint_intervall -ot_checkpoint_interval "${small[@]}" -ot_checkpoint "$dir/ck.h5" -ot_checkpoint_intervall 5
refused "-pairs, before the list is read" -pairs_cots -pairs_cost -pairs "$dir/no-such-list.txt" -pairs_cots euclidean
printf -- '-ot_tol 1e-6\n-ot_mehtod sinkhorn\n' > "$dir/typo.opts"
refused "in an options file" -ot_mehtod -ot_method "${small[@]}" -options_file "$dir/typo.opts"
refused "two at once" "-ot_epss (did you mean -ot_eps?)" "" "${small[@]}" -ot_epss 0.01 -problme "$dir/pair.h5"
grep -qF -- '-problme (did you mean -problem?)' "$dir/out" || { echo "FAIL: two at once: -problme not named"; fail=1; }
refused "an argument that is not an option" pair.h5 "" "${small[@]}" pair.h5

allowed "Newton KSP options, Newton never runs" '^converged = 1$' "${small[@]}" -ot_method sinkhorn -ot_newton_ksp_rtol 1e-3 -ot_newton_ksp_type minres
allowed "nested solver options" '^converged = 1$' "${small[@]}" -ot_newton_pc_type bjacobi -ot_newton_sub_pc_type icc -ot_newton_sub_pc_factor_levels 1
allowed "-log_view" 'Performance Summary' "${small[@]}" -log_view
allowed "-options_left" '^There are no unused options\.$' "${small[@]}" -options_left
allowed "-options_left names an option read only by Newton's KSP solve, when Newton never runs" 'Option left: name:-ot_newton_ksp_converged_reason' \
  "${small[@]}" -ot_method sinkhorn -ot_newton_ksp_converged_reason -options_left
allowed "-help" '-ot_newton_ksp_rtol <' -help -ot_epss 1

# the periodic progress line: a line every 0.01 s on a solve of a few hundred sweeps, with eps-scaling's stages
timeout 120 mpiexec -n "$np" "$build/otsolve" -ot_example_n 1500 -ot_example_m 1500 -ot_method sinkhorn -ot_tol 1e-11 \
  -ot_monitor_seconds 0.01 < /dev/null > "$dir/out" 2>&1
status=$?
lines=$(grep -E '^  sinkhorn ' "$dir/out")
if [ "$status" -eq 0 ] && [ -n "$lines" ] &&
  ! grep -vqE ' marginal_error [0-9.e+-]+ .* time [0-9.]+ s  eps_stage [0-9]+/[0-9]+  estimated_left ([0-9.]+ s|unknown) \(' <<< "$lines"; then
  echo "ok   progress line: $(wc -l <<< "$lines") lines, e.g. $(tail -n 1 <<< "$lines")"
else
  echo "FAIL progress line, $np rank(s): exit $status, want lines with eps_stage k/K and estimated_left S s (...) or unknown (...)"
  tail -n 30 "$dir/out"
  fail=1
fi
exit "$fail"
