#!/bin/bash
# Bad point-cloud input (/X, /Y, attribute cost) must end otsolve on every rank with exit status 1 and one
# message naming the file and the dataset or attribute, within the timeout (no rank left waiting in a
# collective); good variants of the attribute must be accepted.
# usage: check_errors_points.sh BUILD_DIR NP
set -uo pipefail
build=$1 np=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$dir" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(2)
X, Y = rng.random((5, 2)), rng.random((4, 2))
def write(name, cost=None, **datasets):
    with h5py.File("%s/%s.h5" % (d, name), "w") as f:
        for key, value in datasets.items():
            f[key] = value
        if cost is not None:
            f.attrs["cost"] = cost
write("x_only", X=X)
write("y_only", Y=Y)
write("weights_only", a=np.full(5, 0.2))
write("x_1d", X=np.ones(5), Y=Y)
write("y_int", X=X, Y=np.ones((4, 2), dtype=np.int32))
write("dim_mismatch", X=X, Y=rng.random((4, 3)))
Xn = X[:2].copy(); Xn[1, 1] = np.nan; write("x_nan", X=Xn, Y=Y)  # 2 rows: on 3 ranks one rank has none
Yi = Y.copy(); Yi[2, 0] = np.inf; write("y_inf", X=X, Y=Yi)
write("x_empty", X=np.zeros((0, 2)), Y=Y)
write("d_zero", X=np.zeros((5, 0)), Y=np.zeros((4, 0)))
write("cost_foo", "foo", X=X, Y=Y)
write("cost_pnorm_negative", "pnorm:-1", X=X, Y=Y)
write("cost_number", 3.0, X=X, Y=Y)
write("a_length", X=X, Y=Y, a=np.full(6, 1 / 6))
write("b_negative", X=X, Y=Y, b=np.array([0.5, -0.2, 0.4, 0.3]))
write("mass_mismatch", X=X, Y=Y, a=np.full(5, 0.2), b=np.full(4, 0.3))
write("overflow", X=X * 1e200, Y=-Y * 1e200)
# accepted: a fixed-length (bytes) attribute, as numpy.bytes_ writes it, and pnorm:2 (= sqeuclidean)
write("cost_bytes", np.bytes_(b"euclidean"), X=X, Y=Y)
write("cost_pnorm2", "pnorm:2", X=X, Y=Y)
PY
fail=0
expect() { # file, pattern, extra options...
  local file=$1 pattern=$2; shift 2
  timeout 60 mpiexec -n "$np" "$build/otsolve" -problem "$file" "$@" > "$dir/out" 2>&1
  local status=$?
  local lines; lines=$(grep -c "otsolve: error" "$dir/out")
  if [ "$status" -eq 1 ] && grep -q -- "$pattern" "$dir/out" && [ "$lines" -eq 1 ] && grep -q -- "$(basename "$file")" "$dir/out"; then
    echo "ok   $(basename "$file") $*: $(grep 'otsolve: error' "$dir/out")"
  else
    echo "FAIL $(basename "$file") $*: exit $status (want 1), $lines error lines, pattern '$pattern'"; cat "$dir/out"; fail=1
  fi
}
accept() { # file, grep pattern on the output
  timeout 60 mpiexec -n "$np" "$build/otsolve" -problem "$1" -ot_view > "$dir/out" 2>&1
  local status=$?
  if [ "$status" -eq 0 ] && grep -q '^converged = 1$' "$dir/out" && grep -q -- "$2" "$dir/out"; then echo "ok   $(basename "$1") accepted"
  else echo "FAIL $(basename "$1"): exit $status, or no '$2'"; cat "$dir/out"; fail=1; fi
}
expect "$dir/x_only.h5" "no dataset /C, and of the point clouds only /X is there: dataset /Y is missing"
expect "$dir/y_only.h5" "only /Y is there: dataset /X is missing"
expect "$dir/weights_only.h5" "no dataset /C (the n x m cost matrix) and no point clouds /X (n x d) and /Y (m x d)"
expect "$dir/x_1d.h5" "dataset /X has 1 dimension(s); expected 2"
expect "$dir/y_int.h5" "dataset /Y must hold floating-point"
expect "$dir/dim_mismatch.h5" "dataset /X holds points of dimension 2 (columns) but /Y of dimension 3"
expect "$dir/x_nan.h5" "dataset /X has a NaN or infinite entry at row 1, column 1"
expect "$dir/y_inf.h5" "dataset /Y has a NaN or infinite entry at row 2, column 0"
expect "$dir/x_empty.h5" "dataset /X is 0 x 2; both sizes must be positive"
expect "$dir/d_zero.h5" "dataset /X is 5 x 0; both sizes must be positive"
expect "$dir/cost_foo.h5" "root attribute cost = 'foo' is not supported"
expect "$dir/cost_pnorm_negative.h5" "root attribute cost = 'pnorm:-1' is not supported"
expect "$dir/cost_number.h5" "the root attribute cost must be one string"
expect "$dir/a_length.h5" "dataset /a has length 6; expected 5 to match the points of /X"
expect "$dir/b_negative.h5" "dataset /b has a negative entry at index 1"
expect "$dir/mass_mismatch.h5" "total masses differ"
expect "$dir/overflow.h5" "the largest cost between points of /X and /Y is above 1e300"
accept "$dir/cost_bytes.h5" "max C = "
accept "$dir/cost_pnorm2.h5" "max C = "
exit $fail
