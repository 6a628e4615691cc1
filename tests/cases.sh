# Sourced by the check_*.sh scripts: reads case NAME of tests/data/references.txt into
# case_n, case_m, case_eps, case_sinkhorn_cost, case_emd_cost and writes its problem file to DIR/problem.h5
# with otgen. usage: load_case BUILD_DIR NAME DIR
load_case() {
  local build=$1 name=$2 dir=$3 refs gen_args line
  refs=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/data/references.txt
  line=$(awk -v n="$name" '$1 == n' "$refs")
  [ -n "$line" ] || { echo "no case $name in $refs"; return 1; }
  gen_args=$(awk -v n="$name" '/^# otgen: / {a = substr($0, 10)} $1 == n {print a}' "$refs")
  read -r _ case_n case_m case_eps case_sinkhorn_cost case_emd_cost <<< "$line"
  # shellcheck disable=SC2086
  mpiexec -n 1 "$build/otgen" $gen_args -gen_output "$dir/problem.h5" > /dev/null
}

# load_case in a new temporary folder $dir, removed when the calling script exits. usage: load_case_tmp BUILD_DIR NAME
load_case_tmp() {
  dir=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$dir'" EXIT
  load_case "$1" "$2" "$dir"
}
