#!/bin/bash
# SNS on the truncated kernel (-ot_method sns -ot_sinkhorn_variant truncated): check_case.sh against POT (transport
# cost, marginal error, the certified bounds around ot.emd2, the result file), and Newton steps must have been
# taken (with -ot_newton_time_check false, so that the path does not depend on the counted work).
# usage: check_truncated_sns.sh BUILD_DIR CASE NP [extra otsolve options...]
set -euo pipefail
build=$1 name=$2 np=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
out=$(bash "$here/check_case.sh" "$build" "$name" "$np" 1e-7 -ot_method sns -ot_sinkhorn_variant truncated -ot_newton_time_check false "$@") || {
  echo "$out"; exit 1; }
echo "$out"
steps=$(awk -F' = ' '$1 == "iterations_newton" {print $2}' <<< "$out")
echo "Newton steps on the truncated kernel: $steps"
[ "${steps:-0}" -ge 1 ] || { echo "FAIL: no Newton step was taken"; exit 1; }
