#!/bin/bash
# The built-in example converges on 2 ranks, with and without configs/default.opts; -ot_monitor prints its
# lines; -help lists every option; the summary's last lines are `key = value` lines.
# usage: check_example.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
out=$(mpiexec -n 2 "$build/otsolve")
echo "$out" | tail -16
echo "$out" | tail -1 | grep -q '^converged = 1$'
mpiexec -n 2 "$build/otsolve" -options_file "$source/configs/default.opts" -options_left > "${TMPDIR:-/tmp}/otsolve-opts.$$"
grep -q '^converged = 1$' "${TMPDIR:-/tmp}/otsolve-opts.$$"
! grep -q "Option left" "${TMPDIR:-/tmp}/otsolve-opts.$$" || { grep "Option left" "${TMPDIR:-/tmp}/otsolve-opts.$$"; exit 1; }
rm -f "${TMPDIR:-/tmp}/otsolve-opts.$$"
# -ot_monitor k: one line every k iterations, and the last one
monitored=$(mpiexec -n 2 "$build/otsolve" -ot_method sinkhorn -ot_monitor 50)
lines=$(echo "$monitored" | grep -c '^  sinkhorn ')
iterations=$(echo "$monitored" | awk -F' = ' '$1 == "iterations_sinkhorn" {print $2}')
[ "$lines" -eq $(( iterations / 50 + (iterations % 50 ? 1 : 0) )) ] || { echo "-ot_monitor 50 printed $lines lines for $iterations iterations"; exit 1; }
help=$(mpiexec -n 1 "$build/otsolve" -help)
for option in -problem -output -ot_eps -ot_tol -ot_max_it -ot_monitor -ot_sinkhorn_variant -ot_view -ot_example_n; do
  echo "$help" | grep -q -- "$option" || { echo "-help does not list $option"; exit 1; }
done
echo "example and -help OK"
