#!/bin/bash
# -pairs: the K x K matrix among K = 6 Fashion-MNIST test images (measures: /X the 28 x 28 grid of [0,1]^2,
# /a the pixel values + 0.01, normalised), squared Euclidean ground cost, eps = 2e-3, on NP ranks (pairs
# spread over groups of ranks), against 15 single runs of otsolve on the same pairs as point-cloud problems
# (1e-10 relative) and, for the pair (0, 1), against POT's value in tests/data/references.txt (1e-7).
# usage: check_pairs.sh BUILD_DIR NP
set -uo pipefail
build=$1 np=$2
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pot01=$(awk '$1 == "fmnist01_sq" {print $5}' "$here/data/references.txt")
/usr/bin/python3 - "$dir" << 'PY'
import gzip, sys, h5py, numpy as np
d = sys.argv[1]
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()
images = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:6]
r, c = np.divmod(np.arange(784), 28)
X = np.column_stack([c / 27.0, r / 27.0])
with open("%s/list.txt" % d, "w") as listing:
    listing.write("# six Fashion-MNIST test images\n\n")
    for k, img in enumerate(images):
        w = img / 255.0 + 0.01
        with h5py.File("%s/m%d.h5" % (d, k), "w") as f:
            f["X"], f["a"] = X, w / w.sum()
        listing.write("%s/m%d.h5\n" % (d, k))
        for l in range(k):
            wl = images[l] / 255.0 + 0.01
            with h5py.File("%s/p%d_%d.h5" % (d, l, k), "w") as f:
                f["X"], f["Y"], f["a"], f["b"] = X, X, wl / wl.sum(), w / w.sum()
                f.attrs["cost"] = "sqeuclidean"
PY
mpiexec -n "$np" "$build/otsolve" -pairs "$dir/list.txt" -output "$dir/D.h5" -ot_eps 2e-3 -ot_sinkhorn_variant absorb -ot_newton_time_check false > "$dir/out" 2>&1 ||
  { echo "FAIL: otsolve -pairs"; cat "$dir/out"; exit 1; }
grep -E "^(pairs|measures|unconverged|seconds) =" "$dir/out"
# options that belong to one problem are refused with -pairs, on every rank, before any solve
mpiexec -n "$np" "$build/otsolve" -pairs "$dir/list.txt" -output "$dir/D2.h5" -ot_checkpoint "$dir/ck.h5" > "$dir/out2" 2>&1
[ $? -eq 1 ] && [ "$(grep -c 'otsolve: error: -pairs solves many problems' "$dir/out2")" -eq 1 ] ||
  { echo "FAIL: -pairs with -ot_checkpoint"; cat "$dir/out2"; exit 1; }
for k in 1 2 3 4 5; do
  for l in $(seq 0 $((k - 1))); do
    mpiexec -n 1 "$build/otsolve" -problem "$dir/p${l}_$k.h5" -ot_eps 2e-3 -ot_sinkhorn_variant absorb -ot_newton_time_check false > "$dir/single" 2>&1 || { echo "FAIL: single run $l $k"; cat "$dir/single"; exit 1; }
    echo "$l $k $(awk '$1 == "transport_cost" {print $3}' "$dir/single")" >> "$dir/singles"
  done
done
/usr/bin/python3 - "$dir/D.h5" "$dir/singles" "$pot01" << 'PY'
import sys, h5py, numpy as np
D = h5py.File(sys.argv[1], "r")
T, W = D["transport_cost"][:], D["wasserstein"][:]
ok = T.shape == (6, 6) and np.allclose(T, T.T, rtol=0, atol=0) and np.all(np.diag(T) == 0) and D.attrs["unconverged"] == 0 and np.all(D["converged"][:][~np.eye(6, dtype=bool)] == 1)
ok = ok and np.allclose(W, np.sqrt(T), rtol=1e-15) and np.all(D["lower_bound"][:] <= D["upper_bound"][:] + 1e-15)
worst = 0.0
for line in open(sys.argv[2]):
    l, k, cost = line.split()
    worst = max(worst, abs(T[int(l), int(k)] - float(cost)) / float(cost))
pot = float(sys.argv[3])
ok = ok and worst <= 1e-10 and abs(T[0, 1] - pot) <= 1e-7 * pot
print("%s 6 x 6 matrix: symmetric, zero diagonal, all converged, wasserstein = sqrt(cost); 15 single runs agree to %.1e (<= 1e-10); "
      "pair (0, 1) %.17g vs POT %.17g (%.1e)" % ("ok  " if ok else "FAIL", worst, T[0, 1], pot, abs(T[0, 1] - pot) / pot))
sys.exit(0 if ok else 1)
PY
