"""solve and pairs: write the input files to a temporary directory, run otsolve, read its output."""
import os
import shutil
import tempfile

from . import _io
from . import _run

# Options that solve and pairs set from their own arguments; giving them in **options too is refused.
SOLVE_ARGUMENTS = {"-problem": "the arrays", "-output": "output=", "-ot_eps": "eps=", "-ot_eps_rel": "eps_rel=",
                   "-ot_method": "method=", "-ot_plan_threshold": "plan=", "-pairs": "pairs()"}
PAIRS_ARGUMENTS = {"-problem": "solve()", "-output": "output=", "-ot_eps": "eps=", "-ot_eps_rel": "eps_rel=",
                   "-pairs": "the measures", "-pairs_cost": "cost=", "-ot_divergence": "divergence=",
                   "-pairs_eps_per_pair": "eps_per_pair="}


def check_options(arguments, reserved):
    """Refuses options in **options that an argument sets (`reserved`: option -> the argument)."""
    for word in arguments:
        if word in reserved:
            raise ValueError("give %s through %s, not as an option" % (word, reserved[word]))


def eps_arguments(eps, eps_rel, reg):
    """-ot_eps or -ot_eps_rel from eps (or POT's name for it, reg) and eps_rel."""
    if reg is not None:
        if eps is not None:
            raise ValueError("give eps or reg (POT's name for it), not both")
        eps = reg
    if eps is not None and eps_rel is not None:
        raise ValueError("give eps (in cost units) or eps_rel (relative to max C), not both")
    if eps is not None:
        return ["-ot_eps", _run.option_value(float(eps))]
    if eps_rel is not None:
        return ["-ot_eps_rel", _run.option_value(float(eps_rel))]
    return []


def check_ranks(ranks):
    """Raises ValueError unless `ranks` is a whole number >= 1."""
    if int(ranks) != ranks or ranks < 1:
        raise ValueError("ranks must be at least 1, got %r" % (ranks,))


def plan_arguments(plan):
    """-ot_plan_threshold from solve's plan: False/None none, True all entries (threshold 0), a number T the
    entries >= T x max P."""
    if plan is None or plan is False:
        return []
    if plan is True:
        return ["-ot_plan_threshold", "0"]
    threshold = float(plan)
    if threshold < 0:
        raise ValueError("plan must be True, False or a threshold >= 0 (relative to max P), got %r" % (plan,))
    return ["-ot_plan_threshold", _run.option_value(threshold)]


def working_directory(workdir):
    """A new temporary directory for the input and output files, under `workdir` where given (it must be seen
    by every node of a multi-node run), else under the system's temporary directory (TMPDIR)."""
    return tempfile.TemporaryDirectory(prefix="otsolve-", dir=workdir)


def keep(path, output):
    """Moves the finished output file to `output` (where asked for); returns the path the file now has."""
    if output is None:
        return path
    shutil.move(path, output)
    return os.path.abspath(output)


def collect(path, read, accepted, output, stdout, stderr, returncode):
    """The result file `path` read with `read` where the exit status is one of `accepted` and the file is there (else
    None), kept at `output` where asked for, with otsolve's summary lines and output attached."""
    if returncode not in accepted or not os.path.exists(path):
        return None
    result = read(path)
    result.path = keep(path, output) if output is not None else None
    result.summary = _run.parse_summary(stdout)
    result.stdout, result.stderr, result.returncode = stdout, stderr, returncode
    return result


def solve(a, b, M=None, eps=None, *, X=None, Y=None, reg=None, eps_rel=None, ranks=1, method=None, cost=None,
          plan=False, output=None, check=False, executable=None, launcher=None, timeout=None, workdir=None,
          **options):
    """Entropic optimal transport between the weights a and b, computed by otsolve on `ranks` MPI processes.

    The arguments follow POT's `ot.sinkhorn2(a, b, M, reg)`: `otsolve.solve(a, b, M, reg).transport_cost` is
    the number `ot.sinkhorn2` returns (<M, P> of the entropic plan), solved to marginal error 1e-9.

    Parameters
    ----------
    a, b : array-like (n,), (m,), or None
        Weights of the source and target measures; None or [] for uniform weights (1/n, 1/m). Their masses must
        agree (to 1e-6 relative; option normalize=True rescales both to 1).
    M : array-like (n, m), optional
        The cost matrix (float64, or float32 which is kept as such in the file). Give M, or X and Y.
    eps : float, optional
        The entropic regularisation in cost units, POT's `reg` (also accepted as reg=). Default: eps_rel x max M,
        and eps_rel defaults to 0.01.
    X, Y : array-like (n, d), (m, d), optional (keyword only)
        Point clouds instead of M: the costs are computed by otsolve as needed, never stored.
    eps_rel : float, optional
        eps relative to the largest cost (eps = eps_rel x max C).
    ranks : int
        Number of MPI processes (default 1).
    method : str, optional
        'sns' (otsolve's default: Sinkhorn sweeps, then sparse Newton steps) or 'sinkhorn' (sweeps only).
    cost : str, optional
        With X, Y: 'sqeuclidean' (the default, |x - y|^2, as POT's `ot.dist`), 'euclidean' or 'pnorm:P'.
    plan : bool or float
        True: return the plan P as a scipy.sparse.csr_matrix (n, m) with all its entries; a number T: only the
        entries >= T x max P; False (default): no plan.
    output : str, optional
        Keep the result file here (else it is removed with the temporary directory).
    check : bool
        False (default): a run that stops at the iteration limit (otsolve's exit status 2) returns its result
        with converged=False; True: it raises OTSolveError.
    executable : str, optional
        The otsolve program (else OTSOLVE_EXECUTABLE, the build's, or otsolve on PATH).
    launcher : list or str, optional
        The MPI launcher, used as given (e.g. ['srun', '-n', '8', '--mpi=pmix']); [] runs otsolve as one
        process. Default: `srun -n ranks` inside a Slurm allocation, else `mpiexec -n ranks`.
    timeout : float, optional
        Seconds after which the run is stopped and OTSolveError raised.
    workdir : str, optional
        Where the temporary directory for the files is made (default: TMPDIR). Runs on several nodes need a
        directory that all of them see.
    **options
        Any otsolve option without its `-ot_` prefix: tol=1e-9 (-ot_tol), max_it=1000, sinkhorn_variant='log',
        eps_schedule='auto', divergence=True (point clouds: the Sinkhorn divergence), normalize=True, ...
        (`otsolve -help` lists them). Names starting with '-' are passed as they are. An option that no part of
        otsolve reads (misspelt) raises OTSolveError with otsolve's suggestion; one that is read but not used by
        the method that ran gives a UserWarning (from -options_left).

    Returns
    -------
    Result
        transport_cost, dual_objective, entropic_cost, lower_bound, upper_bound, f, g, eps, marginal_error,
        converged, status, iterations, history, plan, the wasserstein values for point clouds, summary, ...

    Raises
    ------
    ValueError
        Shapes that do not fit (a's length against M's rows, X and Y of different d, ...) or arguments that
        exclude each other; nothing is run.
    OTSolveError
        otsolve failed: bad input or options (exit status 1; the message is otsolve's), not converged with
        check=True (2), NaN or Inf in the iterates (5, the result is in the exception's `result`), any other
        failure, or the timeout.
    """
    a, b, M, X, Y = _io.check_problem(a, b, M, X, Y, cost)
    check_ranks(ranks)
    extra = _run.option_arguments(options)
    check_options(extra, SOLVE_ARGUMENTS)
    arguments = eps_arguments(eps, eps_rel, reg) + plan_arguments(plan)
    if method is not None:
        arguments += ["-ot_method", str(method)]
    with working_directory(workdir) as directory:
        problem = os.path.join(directory, "problem.h5")
        result_path = os.path.join(directory, "result.h5")
        _io.write_problem(problem, a, b, M, X, Y, cost)
        arguments = ["-problem", problem, "-output", result_path] + arguments + extra
        returncode, stdout, stderr, command = _run.run(arguments, ranks, executable, launcher, timeout)
        result = collect(result_path, _io.read_result, (0, 2, 5), output, stdout, stderr, returncode)
        if returncode == 0 or (returncode == 2 and not check and result is not None):
            return result
        if returncode == 2 and result is not None:
            message = result.status
        else:
            names = {problem: "the problem file (written from the arrays)", result_path: "the result file"}
            message = _run.error_message(returncode, stdout, stderr, names)
        raise _run.OTSolveError(message, returncode, stdout, stderr, command, result)


def pairs(measures, eps=None, *, eps_rel=None, ranks=1, cost="sqeuclidean", divergence=False, eps_per_pair=False,
          output=None, check=False, executable=None, launcher=None, timeout=None, workdir=None, **options):
    """The K x K matrices of transport costs, certified Wasserstein bounds (and Sinkhorn divergences) among K
    measures, by one run of `otsolve -pairs` on `ranks` processes (pairs spread over groups of ranks).

    Parameters
    ----------
    measures : list of K point clouds
        Each is X (k x d, uniform weights) or a pair (X, weights); the same d for all.
    eps : float, optional
        One eps for every pair, in cost units; default eps_rel x the largest max C over all pairs.
    eps_rel : float, optional
        R in that default (0.01 when not given).
    ranks : int
        Number of MPI processes.
    cost : str
        'sqeuclidean' (default, p = 2), 'euclidean' (p = 1) or 'pnorm:P'.
    divergence : bool
        Also the Sinkhorn divergences (GeomLoss's debiased value, in otsolve's units).
    eps_per_pair : bool
        Each pair at eps_rel x its own max C (then `eps` of the result is a K x K matrix).
    output, check, executable, launcher, timeout, workdir, **options
        As in `solve`. check=True raises OTSolveError when a pair or a self term did not converge (exit 2).

    Returns
    -------
    PairsResult
        K x K arrays transport_cost, wasserstein_lower, wasserstein_upper, wasserstein, lower_bound,
        upper_bound, converged, iterations, ... and sinkhorn_divergence with divergence=True.
    """
    if len(measures) < 2:
        raise ValueError("pairs needs at least 2 measures, got %d" % len(measures))
    _io.check_cost(cost)
    check_ranks(ranks)
    split = [_io.split_measure(measure, k) for k, measure in enumerate(measures)]
    dimensions = {X.shape[1] for X, _ in split}
    if len(dimensions) > 1:
        raise ValueError("all measures must have points of the same dimension d, got %s" % sorted(dimensions))
    extra = _run.option_arguments(options)
    check_options(extra, PAIRS_ARGUMENTS)
    arguments = eps_arguments(eps, eps_rel, None) + ["-pairs_cost", cost]
    if divergence:
        arguments.append("-ot_divergence")
    if eps_per_pair:
        arguments.append("-pairs_eps_per_pair")
    with working_directory(workdir) as directory:
        names = []
        for k, (X, w) in enumerate(split):
            names.append(os.path.join(directory, "measure%d.h5" % k))
            _io.write_measure(names[-1], X, w)
        list_path = os.path.join(directory, "measures.txt")
        with open(list_path, "w") as f:
            f.write("\n".join(names) + "\n")
        output_path = os.path.join(directory, "pairs.h5")
        arguments = ["-pairs", list_path, "-output", output_path] + arguments + extra
        returncode, stdout, stderr, command = _run.run(arguments, ranks, executable, launcher, timeout)
        result = collect(output_path, _io.read_pairs, (0, 2), output, stdout, stderr, returncode)
        if returncode == 0 or (returncode == 2 and not check and result is not None):
            return result
        if returncode == 2 and result is not None:
            message = "not converged: %s pair(s) and %s self term(s)" % (
                result.attrs.get("unconverged"), result.attrs.get("unconverged_self", 0))
        else:
            words = {path: "measures[%d]" % k for k, path in enumerate(names)}
            words.update({list_path: "the list of measure files", output_path: "the output file"})
            message = _run.error_message(returncode, stdout, stderr, words)
        raise _run.OTSolveError(message, returncode, stdout, stderr, command, result)
