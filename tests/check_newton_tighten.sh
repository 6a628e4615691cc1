#!/bin/bash
# SNS on the truncated kernel keeps more of P where its Newton steps converge only linearly: a 2,000 x 2,000 /C of
# squared Euclidean costs between clustered 3-D points at eps = 1e-4 max C, tol 1e-9. Checks that
#   - two Newton steps in a row reducing the error by less than 4x each make SNS tighten the mass rule (its monitor
#     line), the next step's kept entries leave out less than 1e-6 of P's mass instead of 1e-4, and that step reduces
#     the marginal error at least 10x (the linear steps before it: 2-3x);
#   - the transport cost is that of SNS on the stored dense kernel (-ot_sinkhorn_variant absorb) to 1e-9 relative;
#   - a run stopped by -ot_max_it after the tightening and resumed from its checkpoint on other rank counts takes the
#     same path (the tightening is in the checkpoint): the same iteration counts, the same cost to 1e-10.
# usage: check_newton_tighten.sh BUILD_DIR NP
set -uo pipefail
build=$1 np=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail=0
value() { awk -v k="$1" '$1 == k {print $3}' "$2"; }
close() { # relative tolerance, a, b
  /usr/bin/python3 -c "import sys; a, b = float(sys.argv[2]), float(sys.argv[3]); sys.exit(0 if abs(a - b) <= float(sys.argv[1]) * abs(b) else 1)" "$@"
}

mpiexec -n 1 "$build/otgen" -gen_type mixture -gen_n 2000 -gen_m 2000 -gen_dim 3 -gen_components 10 -gen_sigma 0.03 -gen_seed 2 -gen_dense \
  -gen_output "$dir/c.h5" > /dev/null || { echo "FAIL: otgen"; exit 1; }
opts=(-problem "$dir/c.h5" -ot_eps_rel 1e-4 -ot_eps_schedule auto -ot_tol 1e-9)
mpiexec -n "$np" "$build/otsolve" "${opts[@]}" -ot_sinkhorn_variant truncated -ot_monitor 1000 > "$dir/full" 2>&1 || {
  echo "FAIL: truncated SNS run"; cat "$dir/full"; exit 1; }
mpiexec -n "$np" "$build/otsolve" "${opts[@]}" -ot_sinkhorn_variant absorb > "$dir/dense" 2>&1 || {
  echo "FAIL: stored dense kernel run"; cat "$dir/dense"; exit 1; }
grep -E "^  newton|SNS: two Newton steps in a row reduced the error by less than" "$dir/full"

# the Newton lines: error after the step, dropped mass; the tightening's position among them
/usr/bin/python3 - "$dir/full" << 'EOF' || fail=1
import re, sys
lines = open(sys.argv[1]).read().splitlines()
steps, tightened_before = [], None
for line in lines:
    m = re.match(r"\s+newton\s+(\d+)\s+marginal_error (\S+) .*\(dropped mass (\S+)\)", line)
    if m:
        steps.append((float(m.group(2)), float(m.group(3))))
    elif "SNS: two Newton steps in a row reduced the error by less than" in line and tightened_before is None:
        tightened_before = len(steps)
if tightened_before is None or tightened_before < 2 or tightened_before >= len(steps):
    print("FAIL: no tightening of the mass rule between two Newton steps"); sys.exit(1)
(e0, d0), (e1, d1), (e2, d2) = steps[tightened_before - 2], steps[tightened_before - 1], steps[tightened_before]
ok = d1 > 5e-5 and d2 <= 1.05e-6 and e1 > e0 / 4 and e2 < e1 / 10
print(("ok  " if ok else "FAIL") + " the step before the tightening: error %.3e -> %.3e (dropped mass %.1e); the step after: -> %.3e (dropped mass %.1e)"
      % (e0, e1, d1, e2, d2))
sys.exit(0 if ok else 1)
EOF
cost=$(value transport_cost "$dir/full") dense=$(value transport_cost "$dir/dense")
if close 1e-9 "$cost" "$dense"; then echo "ok   transport_cost $cost, the stored dense kernel's $dense"
else echo "FAIL: transport_cost $cost, the stored dense kernel's $dense (more than 1e-9 relative apart)"; fail=1; fi

# stopped one iteration before the end (after the tightening), resumed on 1 and 3 ranks
sweeps=$(value iterations_sinkhorn "$dir/full") steps=$(value iterations_newton "$dir/full")
stop=$((sweeps + steps - 1))
mpiexec -n "$np" "$build/otsolve" "${opts[@]}" -ot_sinkhorn_variant truncated -ot_checkpoint "$dir/ck.h5" -ot_max_it $stop > "$dir/part" 2>&1
[ $? -eq 2 ] || { echo "FAIL: the run stopped by -ot_max_it $stop"; cat "$dir/part"; fail=1; }
for rnp in 1 3; do
  mpiexec -n $rnp "$build/otsolve" "${opts[@]}" -ot_sinkhorn_variant truncated -ot_restart "$dir/ck.h5" > "$dir/resumed" 2>&1 || {
    echo "FAIL: resumed run"; cat "$dir/resumed"; fail=1; continue; }
  got="$(value iterations_sinkhorn "$dir/resumed") $(value iterations_newton "$dir/resumed")"
  if [ "$got" = "$sweeps $steps" ] && close 1e-10 "$(value transport_cost "$dir/resumed")" "$cost"; then
    echo "ok   stopped after $stop iterations, resumed on $rnp rank(s): $got (sweeps, Newton steps), transport_cost $(value transport_cost "$dir/resumed")"
  else
    echo "FAIL: stopped after $stop iterations, resumed on $rnp rank(s): $got, transport_cost $(value transport_cost "$dir/resumed"); uninterrupted $sweeps $steps, $cost"
    fail=1
  fi
done
exit $fail
