#!/bin/bash
# The built-in example converges on 2 ranks, with and without configs/default.opts; -help lists every option
# with its default; the summary's last lines are `key = value` lines.
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
help=$(mpiexec -n 1 "$build/otsolve" -help)
for option in -problem -output -ot_eps -ot_tol -ot_max_it -ot_monitor -ot_sinkhorn_variant -ot_view -ot_example_n; do
  echo "$help" | grep -q -- "$option" || { echo "-help does not list $option"; exit 1; }
done
echo "example and -help OK"
