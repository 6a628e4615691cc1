"""otsolve from Python: entropic optimal transport solved by the otsolve program on MPI ranks.

    import otsolve
    result = otsolve.solve(a, b, M, 1e-2)            # as ot.sinkhorn2(a, b, M, 1e-2), on 1 rank
    result.transport_cost, result.lower_bound, result.upper_bound, result.f, result.g

    otsolve.solve(None, None, X=X, Y=Y, eps=1e-3, ranks=4, plan=True)   # point clouds, the plan as scipy.sparse
    otsolve.pairs([X0, X1, (X2, w2)], eps=1e-2, ranks=3)                 # K x K matrices

Each call writes the problem to a temporary directory, runs `mpiexec -n RANKS otsolve ...` (`srun` inside a
Slurm allocation) and reads the result file. Pure Python on numpy and h5py (scipy for the plan). See
docs/python.md.
"""
from ._api import pairs, solve
from ._io import PairsResult, Result, read_pairs, read_result, write_measure, write_problem
from ._run import OTSolveError, find_executable

__all__ = ["solve", "pairs", "read_result", "read_pairs", "write_problem", "write_measure", "Result",
           "PairsResult", "OTSolveError", "find_executable"]
