#!/bin/bash
# tools/plot_history.sh on a Fashion-MNIST SNS run (fmnist01_sq, 2 ranks, -ot_method sns): the PNG must be a
# 1500 x 1200 PNG image, and the table it plotted (--data) must be the result file's /history read
# independently with h5py: one row per iteration (Sinkhorn sweeps + Newton steps), the Newton rows as many as
# iterations_newton, the same marginal errors and dual objectives. With eps-scaling, the eps changes are marked
# and the gap to the final dual is only at the final eps. A file without /history must be refused.
# usage: check_plot.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
# shellcheck source=tests/cases.sh
. "$source/tests/cases.sh"
load_case_tmp "$build" fmnist01_sq
mpiexec -n 2 "$build/otsolve" -problem "$dir/problem.h5" -output "$dir/result.h5" -ot_eps "$case_eps" -ot_method sns > "$dir/out.txt"
tail -n 4 "$dir/out.txt"
"$source/tools/plot_history.sh" "$dir/result.h5" "$dir/history.png" --data "$dir/table.txt"
/usr/bin/python3 - "$dir/result.h5" "$dir/history.png" "$dir/table.txt" << 'PY'
import struct
import sys

import h5py
import numpy as np

result, png, table = sys.argv[1:]
with open(png, "rb") as f:
    head = f.read(24)
assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", "not a PNG file"
width, height = struct.unpack(">II", head[16:24])
assert (width, height) == (1500, 1200), (width, height)
with h5py.File(result, "r") as r:
    history = r["history"][...]
    sweeps, steps = int(r.attrs["iterations_sinkhorn"]), int(r.attrs["iterations_newton"])
rows = np.loadtxt(table, ndmin=2)
assert steps > 0, "the SNS run made no Newton step"
assert len(rows) == len(history) == sweeps + steps, (len(rows), len(history), sweeps, steps)
assert np.array_equal(rows[:, 0], np.arange(1, len(rows) + 1))
assert int(rows[:, 1].sum()) == steps and np.array_equal(rows[:, 1], history["stage"])
assert np.array_equal(rows[:, 2], history["iteration"])
assert np.allclose(rows[:, 4], history["marginal_error"], rtol=1e-15, atol=0)
assert np.allclose(rows[:, 5], history["dual_objective"], rtol=1e-15, atol=0)
print("plot: %d x %d PNG of %d rows (%d Sinkhorn sweeps, %d Newton steps)" % (width, height, len(rows), sweeps, steps))
PY
# eps-scaling (1e-2, 3e-3, 9e-4, then 3e-4): the eps changes are found, and the gap to the final dual objective is
# drawn only at the final eps
mpiexec -n 2 "$build/otsolve" -problem "$dir/problem.h5" -output "$dir/scaled.h5" -ot_eps 3e-4 -ot_eps_schedule 1e-2:0.3 -ot_method sns > "$dir/out.txt"
"$source/tools/plot_history.sh" "$dir/scaled.h5" "$dir/scaled.png" --data "$dir/scaled.txt" | tee "$dir/plot.txt"
grep -q ', 3 eps changes$' "$dir/plot.txt" || { echo "FAIL: expected 3 eps changes"; exit 1; }
/usr/bin/python3 - "$dir/scaled.h5" "$dir/scaled.txt" << 'PY'
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as r:
    eps = r["history"]["eps"]
rows = np.loadtxt(sys.argv[2], ndmin=2)
assert np.array_equal(rows[:, 7], eps)
final = eps == eps[-1]
assert np.all(np.isnan(rows[~final, 6])) and not np.any(np.isnan(rows[final, 6])), "gap drawn outside the final eps"
assert rows[-1, 6] == 0.0
print("eps-scaling plot: %d rows at eps %s, gap at the final eps only" % (len(rows), sorted(set(eps), reverse=True)))
PY
# a file that is not a result file
/usr/bin/python3 -c "import h5py, sys; h5py.File(sys.argv[1], 'w')['x'] = [1.0]" "$dir/empty.h5"
if "$source/tools/plot_history.sh" "$dir/empty.h5" "$dir/empty.png" 2> "$dir/err.txt"; then
  echo "FAIL: plot_history.sh accepted a file without /history"; exit 1
fi
grep -q 'has no /history' "$dir/err.txt" || { cat "$dir/err.txt"; echo "FAIL: no clear message"; exit 1; }
echo "plot_history.sh: OK"
