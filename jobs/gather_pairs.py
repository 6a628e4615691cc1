#!/usr/bin/python3
"""Gathers the result files of jobs/pairs.sbatch into one HDF5 distance matrix (run by jobs/gather.sbatch).

usage: gather_pairs.py PAIR_LIST RESULTS_DIR OUTPUT.h5
PAIR_LIST holds 'I J PROBLEM' lines (jobs/otsolve_job.sh's ot_pairs_list); the result of pair (I, J) is
RESULTS_DIR/pair-I-J.h5. OUTPUT.h5 gets K x K float64 datasets (K = largest index + 1) /transport_cost,
/lower_bound, /upper_bound, /marginal_error, /eps (and /wasserstein, /wasserstein_lower, /wasserstein_upper where
the results have them: transport_cost^(1/p), an entropic estimate, and the certified bounds to the power 1/p),
an int8 /converged (1, 0; -1 where no result) and an int64 /iterations (Sinkhorn sweeps + Newton steps), each
filled at (I, J) and, unless the list has the pair (J, I) too, at (J, I); NaN (or -1) where no pair was
solved, the diagonal included. Root attributes:
pairs, missing, not_converged, results_dir, and /pairs (the list as an n x 2 int64 table). The file is
written to OUTPUT.tmp.PID and renamed. Exit status: 0 every pair converged; 2 some did not; 1 some result
is missing or unreadable (the file is written all the same).
"""
import os
import sys

import h5py
import numpy as np


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pair_list, results_dir, output = sys.argv[1:]
    pairs = []
    with open(pair_list) as f:
        for line in f:
            words = line.split("#")[0].split()
            if words:
                pairs.append((int(words[0]), int(words[1])))
    if not pairs:
        sys.exit("gather: the pair list %s is empty" % pair_list)
    k = 1 + max(max(i, j) for i, j in pairs)
    listed = set(pairs)
    fields = ("transport_cost", "lower_bound", "upper_bound", "marginal_error", "eps")
    optional = ("wasserstein", "wasserstein_lower", "wasserstein_upper")  # written by otsolve for costs |x - y|^p
    tables = {name: np.full((k, k), np.nan) for name in fields + optional}
    converged = np.full((k, k), -1, dtype=np.int8)
    iterations = np.full((k, k), -1, dtype=np.int64)
    missing, not_converged = [], []
    for i, j in pairs:
        path = os.path.join(results_dir, "pair-%d-%d.h5" % (i, j))
        try:
            with h5py.File(path, "r") as r:
                values = {name: float(r.attrs[name]) for name in fields}
                values.update({name: float(r.attrs[name]) for name in optional if name in r.attrs})
                done = int(r.attrs["converged"])
                its = int(r.attrs["iterations_sinkhorn"]) + int(r.attrs["iterations_newton"])
        except (OSError, KeyError) as error:
            print("gather: pair %d %d: no usable result %s (%s)" % (i, j, path, error))
            missing.append((i, j))
            continue
        places = [(i, j)] if (j, i) in listed and i != j else [(i, j), (j, i)]
        for a, b in places:
            for name in values:
                tables[name][a, b] = values[name]
            converged[a, b] = done
            iterations[a, b] = its
        if not done:
            not_converged.append((i, j))
    tmp = "%s.tmp.%d" % (output, os.getpid())
    with h5py.File(tmp, "w") as out:
        for name in fields:
            out[name] = tables[name]
        for name in optional:
            if not np.all(np.isnan(tables[name])):
                out[name] = tables[name]
        out["converged"] = converged
        out["iterations"] = iterations
        out["pairs"] = np.array(pairs, dtype=np.int64)
        out.attrs["pairs"] = len(pairs)
        out.attrs["missing"] = len(missing)
        out.attrs["not_converged"] = len(not_converged)
        out.attrs["results_dir"] = os.path.abspath(results_dir)
    os.replace(tmp, output)
    print("gather: %d pairs, %d missing, %d not converged -> %s (%d x %d)" % (len(pairs), len(missing), len(not_converged), output, k, k))
    with np.printoptions(precision=6, linewidth=160):
        print("transport_cost =\n%s" % tables["transport_cost"])
    if missing:
        return 1
    return 2 if not_converged else 0


if __name__ == "__main__":
    sys.exit(main())
