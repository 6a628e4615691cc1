#!/bin/bash
# Convergence plot of an otsolve run: reads the result file's /history (one row per iteration: stage
# sinkhorn/newton, iteration within the stage, time, marginal error, dual objective) and draws a PNG of
#   marginal error |P1 - a|_1 + |P^T 1 - b|_1            (log scale)
#   dual objective D                                      (linear)
#   D_final - D, what the dual objective has still to gain (log scale; the last row's gap is 0 and not drawn)
# each against iterations (Sinkhorn sweeps and Newton steps counted together, in order) and against
# wall-clock time since the solve began, with Sinkhorn sweeps and Newton steps in two colours, dashed
# lines where the stage changes and, with eps-scaling, dotted lines where eps changes (D_final - D is then
# drawn at the final eps only).
#
# usage: tools/plot_history.sh RESULT.h5 [PLOT.png] [--data TABLE.txt]
#   PLOT.png    default: RESULT with .h5 replaced by -history.png
#   --data      also keep the table that is plotted: one row per iteration, columns
#               iteration stage(0 sinkhorn, 1 newton) stage_iteration time marginal_error dual_objective gap
#               eps (nan: gap not defined, or no eps in the file)
# Needs /usr/bin/python3 with h5py (Debian: python3-h5py) and gnuplot with the pngcairo terminal (Debian:
# gnuplot-nox). Environment: PYTHON (default /usr/bin/python3), GNUPLOT (default gnuplot).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 1; }
result="" plot="" data=""
while [ $# -gt 0 ]; do
  case $1 in
    --data) [ $# -ge 2 ] || usage; data=$2; shift 2 ;;
    -h | --help) usage ;;
    *) if [ -z "$result" ]; then result=$1; elif [ -z "$plot" ]; then plot=$1; else usage; fi; shift ;;
  esac
done
[ -n "$result" ] || usage
[ -r "$result" ] || { echo "plot_history: cannot read $result" >&2; exit 1; }
plot=${plot:-${result%.h5}-history.png}
PYTHON=${PYTHON:-/usr/bin/python3}
GNUPLOT=${GNUPLOT:-gnuplot}
command -v "$GNUPLOT" > /dev/null || { echo "plot_history: no $GNUPLOT (Debian package gnuplot-nox)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/plot_history.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The table, the stage switches (as gnuplot arrows) and a title, from the result file.
"$PYTHON" - "$result" "$work" << 'EOF'
import os
import sys

import h5py
import numpy as np

result, work = sys.argv[1], sys.argv[2]
with h5py.File(result, "r") as r:
    if "history" not in r:
        sys.exit("plot_history: %s has no /history (not an otsolve result file?)" % result)
    history = r["history"][...]
    attrs = {key: r.attrs[key] for key in r.attrs}
if len(history) == 0:
    sys.exit("plot_history: %s: /history is empty" % result)
for field in ("stage", "iteration", "time", "marginal_error", "dual_objective"):
    if field not in history.dtype.names:
        sys.exit("plot_history: %s: /history has no field %s" % (result, field))
# the stage enum's own names (sinkhorn = 0, newton = 1 in otsolve's files)
names = h5py.check_enum_dtype(history.dtype["stage"]) or {"sinkhorn": 0, "newton": 1}
newton = names.get("newton", 1)
stage = (history["stage"] == newton).astype(int)
dual = history["dual_objective"].astype(float)
# with eps-scaling (an eps field that changes), D is another function at each eps: the gap to the final D
# means something only at the final eps
eps = history["eps"].astype(float) if "eps" in history.dtype.names else np.full(len(history), np.nan)
gap = np.where((eps == eps[-1]) | np.isnan(eps), dual[-1] - dual, np.nan)
with open(os.path.join(work, "table.txt"), "w") as out:
    out.write("# iteration stage(0 sinkhorn, 1 newton) stage_iteration time_s marginal_error dual_objective gap_to_final_dual eps\n")
    for k in range(len(history)):
        out.write("%d %d %d %.9g %.17g %.17g %.17g %.17g\n" % (k + 1, stage[k], history["iteration"][k], history["time"][k],
                                                             history["marginal_error"][k], dual[k], gap[k], eps[k]))
switches = [k for k in range(1, len(stage)) if stage[k] != stage[k - 1]]
eps_changes = [k for k in range(1, len(eps)) if eps[k] != eps[k - 1] and not (np.isnan(eps[k]) and np.isnan(eps[k - 1]))]
with open(os.path.join(work, "switches.gp"), "w") as out:
    for name, rows in (("switches", switches), ("eps_changes", eps_changes)):
        out.write("%s_iteration = \"%s\"\n" % (name, " ".join("%.9g" % (k + 0.5) for k in rows)))
        out.write("%s_time = \"%s\"\n" % (name, " ".join("%.9g" % (0.5 * (history["time"][k - 1] + history["time"][k])) for k in rows)))
    out.write("has_newton = %d\n" % int(stage.any()))


def text(key, fmt="%s"):
    value = attrs.get(key)
    if value is None:
        return "?"
    if isinstance(value, bytes):
        value = value.decode()
    return fmt % value


title = "%s: n = %s, m = %s, eps = %s, %s ranks; %s Sinkhorn sweeps + %s Newton steps; transport cost %s; %s" % (
    os.path.basename(text("problem")), text("n"), text("m"), text("eps", "%.3g"), text("ranks"), text("iterations_sinkhorn"),
    text("iterations_newton"), text("transport_cost", "%.10g"), "converged" if int(attrs.get("converged", 0)) else "NOT converged")
if eps_changes:
    title += "\\neps-scaling, eps = %s (dotted green lines); D_final - D at the final eps only" % ", ".join(
        "%.3g" % eps[k] for k in [0] + eps_changes)
with open(os.path.join(work, "title.txt"), "w") as out:
    out.write(title.replace('"', "'"))
print("plot_history: %d iterations (%d Sinkhorn, %d Newton), %d stage changes, %d eps changes"
      % (len(stage), (stage == 0).sum(), stage.sum(), len(switches), len(eps_changes)))
EOF

cat > "$work/plot.gp" << EOF
load "$work/switches.gp"
set terminal pngcairo size 1500,1200 font "sans,10"
set output "$plot"
set datafile commentschars "#"
set multiplot layout 3,2 title "$(cat "$work/title.txt")" font "sans,11"
set grid
set key top right
set style line 1 lc rgb "#1f77b4" lw 1.5 pt 7 ps 0.4
set style line 2 lc rgb "#d62728" lw 1.5 pt 9 ps 1.2
sink(y) = (column(2) == 0 ? y : NaN)
newt(y) = (column(2) == 1 ? y : NaN)
pos(y) = (y > 0 ? y : NaN)
# dashed vertical lines where the stage changes, dotted green ones where eps changes (eps-scaling)
mark(stages, epss) = sprintf("unset arrow; do for [x in \"%s\"] { set arrow from x+0, graph 0 to x+0, graph 1 nohead dt 2 lc rgb \"gray40\" }; do for [x in \"%s\"] { set arrow from x+0, graph 0 to x+0, graph 1 nohead dt 3 lw 1.5 lc rgb \"#2ca02c\" }", stages, epss)
newton_title = has_newton ? "Newton steps" : ""

do for [axis = 1:2] {
  xcol = (axis == 1 ? 1 : 4)
  eval mark(axis == 1 ? switches_iteration : switches_time, axis == 1 ? eps_changes_iteration : eps_changes_time)
  set xlabel (axis == 1 ? "iteration (Sinkhorn sweeps and Newton steps, in order)" : "time since the solve began (s)")
  set logscale y
  set format y "10^{%L}"
  set ylabel "marginal error |P1-a|_1 + |P^T1-b|_1"
  plot "$work/table.txt" using (column(xcol)):(sink(\$5)) with linespoints ls 1 title "Sinkhorn sweeps", \
       "" using (column(xcol)):(newt(\$5)) with linespoints ls 2 title newton_title
}
do for [axis = 1:2] {
  xcol = (axis == 1 ? 1 : 4)
  eval mark(axis == 1 ? switches_iteration : switches_time, axis == 1 ? eps_changes_iteration : eps_changes_time)
  set xlabel (axis == 1 ? "iteration" : "time since the solve began (s)")
  unset logscale y
  set format y "%g"
  set key bottom right
  set ylabel "dual objective D(f, g)"
  plot "$work/table.txt" using (column(xcol)):(sink(\$6)) with linespoints ls 1 title "Sinkhorn sweeps", \
       "" using (column(xcol)):(newt(\$6)) with linespoints ls 2 title newton_title
}
do for [axis = 1:2] {
  xcol = (axis == 1 ? 1 : 4)
  eval mark(axis == 1 ? switches_iteration : switches_time, axis == 1 ? eps_changes_iteration : eps_changes_time)
  set xlabel (axis == 1 ? "iteration" : "time since the solve began (s)")
  set logscale y
  set format y "10^{%L}"
  set key top right
  set ylabel "D_{final} - D (dual objective still to gain)"
  plot "$work/table.txt" using (column(xcol)):(sink(pos(\$7))) with linespoints ls 1 title "Sinkhorn sweeps", \
       "" using (column(xcol)):(newt(pos(\$7))) with linespoints ls 2 title newton_title
}
unset multiplot
EOF
"$GNUPLOT" "$work/plot.gp"
[ -s "$plot" ] || { echo "plot_history: gnuplot wrote no $plot" >&2; exit 1; }
if [ -n "$data" ]; then cp "$work/table.txt" "$data"; fi
echo "plot_history: wrote $plot"
