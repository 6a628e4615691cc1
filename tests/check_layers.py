#!/usr/bin/env python3
"""No cycle among the library's object files: for each object (nm --defined-only) the global symbols it defines,
for each (nm -u) those it uses; an edge a.c -> b.c when a.c uses a symbol of b.c. Prints the edges, then "no cycle"
or every cycle found, and exits 1 on a cycle. usage: check_layers.py OBJECT_DIR (e.g. build/libotsolve.so.p)"""
import subprocess, sys, glob, os

objdir = sys.argv[1]
objs = sorted(glob.glob(os.path.join(objdir, "*.o")))
name = lambda o: os.path.basename(o)[len("src_"):-len(".o")] if os.path.basename(o).startswith("src_") else os.path.basename(o)
defined, undefined = {}, {}
for o in objs:
    out = subprocess.run(["nm", "--defined-only", "-g", o], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            defined[parts[2]] = name(o)
    out = subprocess.run(["nm", "-u", o], capture_output=True, text=True, check=True).stdout
    undefined[name(o)] = {l.split()[-1] for l in out.splitlines() if l.strip()}
edges = {}
for f, syms in undefined.items():
    for s in syms:
        g = defined.get(s)
        if g and g != f:
            edges.setdefault(f, {}).setdefault(g, set()).add(s)
for f in sorted(edges):
    for g in sorted(edges[f]):
        print(f"{f} -> {g}: {', '.join(sorted(edges[f][g]))}")
# cycle search (DFS with colours)
colour, stack, cycles = {}, [], []
def visit(u):
    colour[u] = 1; stack.append(u)
    for v in sorted(edges.get(u, {})):
        if colour.get(v, 0) == 1:
            cycles.append(stack[stack.index(v):] + [v])
        elif colour.get(v, 0) == 0:
            visit(v)
    stack.pop(); colour[u] = 2
for u in sorted(set(edges) | {g for f in edges for g in edges[f]}):
    if colour.get(u, 0) == 0:
        visit(u)
if cycles:
    for c in cycles: print("CYCLE: " + " -> ".join(c))
    sys.exit(1)
print("no cycle")
