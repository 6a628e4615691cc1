#!/bin/bash
# -pairs, in one of two modes, on NP ranks (pairs spread over groups of ranks):
#  fmnist6 (the default): the K x K matrix among K = 6 Fashion-MNIST test images (measures: /X the 28 x 28 grid of
#    [0,1]^2, /a the pixel values + 0.01, normalised), squared Euclidean ground cost, eps = 2e-3 (-ot_eps: the root
#    attribute eps), against 15 single runs of otsolve on the same pairs as point-cloud problems (1e-10 relative)
#    and, for the pair (0, 1), against POT's value in tests/data/references.txt (1e-7);
#  points: four 2-D point clouds (60-150 points, random weights in one), squared Euclidean and Euclidean costs
#    with -ot_divergence, and -pairs_eps_per_pair, against POT's exact costs and a numpy Sinkhorn
#    (tests/check_pairs_pot.py: the certified Wasserstein bounds, the eps rule, transport_cost, the divergences,
#    the exact diagonal, integer datasets); the eps in the summary lines; refused option combinations and a
#    measure with a NaN coordinate (solved by a group without rank 0 on 3 ranks): exit 1, one message naming
#    the options or the file, on every rank count, and no hang.
# usage: check_pairs.sh BUILD_DIR NP [fmnist6|points]
set -uo pipefail
build=$1 np=$2 mode=${3:-fmnist6}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# refused LABEL OPTION... -- ARGS...: otsolve ARGS exits 1 within 60 s with one error line naming every OPTION
refused() {
  local label=$1 names=() out="$dir/refused.out" status
  shift
  while [ "$1" != -- ]; do names+=("$1"); shift; done
  shift
  timeout 60 mpiexec -n "$np" "$build/otsolve" "$@" > "$out" 2>&1
  status=$?
  local line
  line=$(grep 'otsolve: error:' "$out")
  local good=1
  [ "$status" -eq 1 ] && [ "$(grep -c 'otsolve: error:' "$out")" -eq 1 ] || good=0
  for name in "${names[@]}"; do grep -qF -- "$name" <<< "$line" || good=0; done
  if [ "$good" = 1 ]; then
    echo "ok   $label: exit 1, $line"
  else
    echo "FAIL $label: exit $status (want 1, 124 is a hang), want one 'otsolve: error:' line naming ${names[*]}"
    cat "$out"
    exit 1
  fi
}

if [ "$mode" = points ]; then
  /usr/bin/python3 "$here/check_pairs_pot.py" make "$dir" || { echo "FAIL: making the measures"; exit 1; }
  solve() {
    local name=$1
    shift
    timeout 120 mpiexec -n "$np" "$build/otsolve" -pairs "$dir/list.txt" -output "$dir/$name.h5" "$@" > "$dir/$name.out" 2>&1 ||
      { echo "FAIL: otsolve -pairs $*"; cat "$dir/$name.out"; exit 1; }
  }
  solve sq -ot_divergence
  solve eu -pairs_cost euclidean -ot_divergence
  solve per -pairs_eps_per_pair
  cat "$dir/sq.out"
  # the eps in the summary lines: the common eps (printed to 17 digits, as numpy reads it back) or "per pair"
  /usr/bin/python3 - "$dir" << 'PY' || exit 1
import sys, h5py
d = sys.argv[1]
lines = {n: dict(l.split(" = ", 1) for l in open("%s/%s.out" % (d, n)).read().splitlines() if " = " in l and not l.startswith(("otsolve", " "))) for n in ("sq", "eu", "per")}
ok = all(float(lines[n]["eps"]) == h5py.File("%s/%s.h5" % (d, n), "r").attrs["eps"] for n in ("sq", "eu")) and lines["per"]["eps"] == "per pair"
ok = ok and lines["sq"]["unconverged_self"] == "0" and "unconverged_self" not in lines["per"]
print("%s summary lines: eps = %s (sq), %s (eu), %s (-pairs_eps_per_pair); unconverged_self with -ot_divergence only" %
      ("ok  " if ok else "FAIL", lines["sq"]["eps"], lines["eu"]["eps"], lines["per"]["eps"]))
sys.exit(0 if ok else 1)
PY
  list=$dir/list.txt
  refused "-ot_eps with -ot_eps_rel" -ot_eps -ot_eps_rel -- -pairs "$list" -output "$dir/x.h5" -ot_eps 0.1 -ot_eps_rel 0.02
  refused "-ot_divergence with -pairs_eps_per_pair" -ot_divergence -pairs_eps_per_pair -- -pairs "$list" -output "$dir/x.h5" -ot_divergence -pairs_eps_per_pair
  refused "-ot_eps with -pairs_eps_per_pair" -ot_eps -pairs_eps_per_pair -- -pairs "$list" -output "$dir/x.h5" -ot_eps 0.1 -pairs_eps_per_pair
  refused "-ot_eps_schedule without -ot_eps" -ot_eps_schedule -ot_eps -- -pairs "$list" -output "$dir/x.h5" -ot_eps_schedule 1:0.5
  refused "-ot_eps_rel not positive" -ot_eps_rel -- -pairs "$list" -output "$dir/x.h5" -ot_eps_rel 0
  refused "-pairs with -ot_plan_threshold" -pairs -ot_plan_threshold -- -pairs "$list" -output "$dir/x.h5" -ot_plan_threshold 0.1
  refused "a NaN coordinate in the last measure" bad3.h5 NaN -- -pairs "$dir/bad.txt" -output "$dir/x.h5" -ot_divergence
  [ ! -e "$dir/x.h5" ] || { echo "FAIL: a refused run wrote its output"; exit 1; }
  /usr/bin/python3 "$here/check_pairs_pot.py" check "$dir" "$dir/sq.h5" "$dir/eu.h5" "$dir/per.h5"
  exit
fi
[ "$mode" = fmnist6 ] || { echo "check_pairs.sh: unknown mode $mode (fmnist6 or points)"; exit 1; }
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
grep -E "^(pairs|measures|eps|unconverged|seconds) =" "$dir/out"
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
# -ot_eps: one eps, the given one, as the root attribute; integer counts and flags
ok = ok and D.attrs["eps"] == 2e-3 and "eps" not in D and D["converged"].dtype.kind == "i" and D["iterations"].dtype.kind == "i"
worst = 0.0
for line in open(sys.argv[2]):
    l, k, cost = line.split()
    worst = max(worst, abs(T[int(l), int(k)] - float(cost)) / float(cost))
pot = float(sys.argv[3])
ok = ok and worst <= 1e-10 and abs(T[0, 1] - pot) <= 1e-7 * pot
print("%s 6 x 6 matrix: symmetric, zero diagonal, all converged, wasserstein = sqrt(cost), eps attribute 2e-3, integer /converged and /iterations; 15 single runs agree to %.1e (<= 1e-10); "
      "pair (0, 1) %.17g vs POT %.17g (%.1e)" % ("ok  " if ok else "FAIL", worst, T[0, 1], pot, abs(T[0, 1] - pot) / pot))
sys.exit(0 if ok else 1)
PY
