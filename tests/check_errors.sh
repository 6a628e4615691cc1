#!/bin/bash
# Bad input must end otsolve on every rank with exit status 1 and one message naming the file and dataset or
# option, within the timeout (no rank left waiting in a collective).
# usage: check_errors.sh BUILD_DIR NP
set -uo pipefail
build=$1 np=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$dir" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
C = np.random.default_rng(1).random((7, 5))
def write(name, **datasets):
    with h5py.File("%s/%s.h5" % (d, name), "w") as f:
        for key, value in datasets.items():
            f[key] = value
write("no_cost", X=np.zeros((3, 2)))
write("cost_1d", C=np.ones(5))
write("cost_int", C=np.ones((7, 5), dtype=np.int32))
Cn = C.copy(); Cn[4, 3] = np.nan; write("cost_nan", C=Cn)
Ci = C.copy(); Ci[6, 0] = np.inf; write("cost_inf", C=Ci)
Cm = C.copy(); Cm[2, 2] = -1.0; write("cost_negative", C=Cm)
write("a_length", C=C, a=np.full(6, 1 / 6))
write("b_negative", C=C, b=np.array([0.5, 0.5, 0.2, -0.4, 0.2]))
write("mass_mismatch", C=C, a=np.full(7, 1 / 7), b=np.full(5, 0.3))
write("a_zero", C=C, a=np.zeros(7))
write("empty", C=np.zeros((0, 5)))
with h5py.File("%s/huge.h5" % d, "w") as f:  # declares 8 TB of costs, stores none of them
    f.create_dataset("C", shape=(10**6, 10**6), dtype="f8", chunks=(1000, 1000))
PY
printf 'this is not HDF5\n' > "$dir/not_hdf5.h5"
fail=0
expect() { # file, pattern, extra options...
  local file=$1 pattern=$2; shift 2
  timeout 60 mpiexec -n "$np" "$build/otsolve" -problem "$file" "$@" > "$dir/out" 2>&1
  local status=$?
  local lines; lines=$(grep -c "otsolve: error" "$dir/out")
  if [ "$status" -eq 1 ] && grep -q -- "$pattern" "$dir/out" && [ "$lines" -eq 1 ]; then
    echo "ok   $(basename "$file") $*: $(grep 'otsolve: error' "$dir/out")"
  else
    echo "FAIL $(basename "$file") $*: exit $status (want 1), $lines error lines, pattern '$pattern'"; cat "$dir/out"; fail=1
  fi
}
expect "$dir/missing.h5" "missing.h5: cannot open"
expect "$dir/not_hdf5.h5" "not an HDF5 file"
expect "$dir/no_cost.h5" "no dataset /C"
expect "$dir/cost_1d.h5" "/C has 1 dimension"
expect "$dir/cost_int.h5" "/C must hold floating-point"
expect "$dir/cost_nan.h5" "/C has a NaN or infinite entry at row 4, column 3"
expect "$dir/cost_inf.h5" "/C has a NaN or infinite entry at row 6, column 0"
expect "$dir/cost_negative.h5" "/C has a negative entry at row 2, column 2"
expect "$dir/a_length.h5" "/a has length 6; expected 7"
expect "$dir/b_negative.h5" "/b has a negative entry at index 3"
expect "$dir/mass_mismatch.h5" "total masses differ"
expect "$dir/a_zero.h5" "weights /a are all zero"
expect "$dir/empty.h5" "/C is 0 x 5"
expect "$dir/huge.h5" "needs 8e+03 GB in all"
expect "$dir/cost_negative.h5" "-ot_eps must be positive" -ot_eps -1
expect "$dir/cost_negative.h5" "-ot_tol must be positive" -ot_tol 0
expect "$dir/cost_negative.h5" "-output $dir/nodir/r.h5: cannot write" -output "$dir/nodir/r.h5"
expect "$dir/cost_negative.h5" "bad option: Input string abc has no numeric value" -ot_eps abc
expect "$dir/cost_negative.h5" "Unknown option newton for -ot_method" -ot_method newton
expect "$dir/cost_negative.h5" "-ot_monitor k needs k > 0" -ot_monitor 0
exit $fail
