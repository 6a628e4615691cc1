"""otsolve's files (docs/design.md §3): the problem file and the measure files of -pairs, written from numpy
arrays; the result file and the -pairs output, read into Result and PairsResult."""
from dataclasses import dataclass, field
from typing import Optional

import h5py
import numpy as np

COSTS = ("sqeuclidean", "euclidean")


def check_cost(cost):
    """Raises ValueError unless `cost` is one of otsolve's point-cloud costs: 'sqeuclidean', 'euclidean' or
    'pnorm:P' with a number P > 0."""
    if cost in COSTS:
        return
    if isinstance(cost, str) and cost.startswith("pnorm:"):
        try:
            if float(cost[len("pnorm:"):]) > 0:
                return
        except ValueError:
            pass
    raise ValueError("cost must be 'sqeuclidean', 'euclidean' or 'pnorm:P' with a number P > 0, got %r" % (cost,))


def as_weights(w, name, size, size_name):
    """`w` as a float64 vector of length `size`, or None for uniform weights (None or an empty list, as in
    POT). Raises ValueError on another shape."""
    if w is None:
        return None
    w = np.asarray(w, dtype=np.float64)
    if w.size == 0:
        return None
    if w.ndim != 1:
        raise ValueError("%s must be a 1-D array of weights, got shape %s" % (name, w.shape))
    if w.shape[0] != size:
        raise ValueError("%s has %d weights but %s is %d" % (name, w.shape[0], size_name, size))
    return w


def as_points(X, name):
    """`X` as a 2-D float64 array of points (one a row). Raises ValueError otherwise."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError("%s must be a 2-D array of points (n, d), got shape %s; for points on a line use "
                         "%s.reshape(-1, 1)" % (name, X.shape, name))
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError("%s is empty: shape %s" % (name, X.shape))
    return X


def check_problem(a=None, b=None, M=None, X=None, Y=None, cost=None):
    """Checks the shapes of a problem and returns (a, b, M, X, Y) as numpy arrays (a, b None for uniform;
    M float32 stays float32, other types become float64). Exactly one of M and (X, Y) must be given; `cost`
    belongs with X, Y. Raises ValueError with a message naming the argument. The values (NaN, negative
    weights, masses that differ) are otsolve's to check."""
    if M is not None and (X is not None or Y is not None):
        raise ValueError("give either the cost matrix M or the points X and Y, not both")
    if M is None and (X is None or Y is None):
        raise ValueError("give the cost matrix M, or both point clouds X and Y")
    if M is not None:
        if cost is not None:
            raise ValueError("cost is for point clouds X, Y; M is already the cost matrix")
        M = np.asarray(M)
        if M.dtype != np.float32:
            M = np.asarray(M, dtype=np.float64)
        if M.ndim != 2:
            raise ValueError("M must be a 2-D cost matrix (n, m), got shape %s" % (M.shape,))
        if M.shape[0] == 0 or M.shape[1] == 0:
            raise ValueError("M is empty: shape %s" % (M.shape,))
        n, m = M.shape
        a = as_weights(a, "a", n, "the number of rows of M")
        b = as_weights(b, "b", m, "the number of columns of M")
        return a, b, M, None, None
    X = as_points(X, "X")
    Y = as_points(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise ValueError("X and Y must have the same dimension d: X is %s, Y is %s" % (X.shape, Y.shape))
    if cost is not None:
        check_cost(cost)
    a = as_weights(a, "a", X.shape[0], "the number of points in X")
    b = as_weights(b, "b", Y.shape[0], "the number of points in Y")
    return a, b, None, X, Y


def write_problem(path, a=None, b=None, M=None, X=None, Y=None, cost=None):
    """Writes an otsolve problem file (docs/design.md §3): the cost matrix `/C` = M (n x m), or point clouds
    `/X` (n x d) and `/Y` (m x d) with the root attribute `cost` ('sqeuclidean' where None, 'euclidean' or
    'pnorm:P'), and the weights `/a`, `/b` where given (uniform where None). Arguments as in `solve`.
    Raises ValueError on shapes that do not fit together."""
    a, b, M, X, Y = check_problem(a, b, M, X, Y, cost)
    with h5py.File(path, "w") as f:
        if M is not None:
            f["C"] = M
        else:
            f["X"] = X
            f["Y"] = Y
            f.attrs["cost"] = cost if cost is not None else "sqeuclidean"
        if a is not None:
            f["a"] = a
        if b is not None:
            f["b"] = b


def split_measure(measure, index):
    """One measure of `pairs`: X, or (X, weights). Returns (X, weights or None), checked."""
    if isinstance(measure, (tuple, list)) and len(measure) == 2 and np.ndim(measure[0]) == 2:
        X, w = measure
    else:
        X, w = measure, None
    X = as_points(X, "measure %d's points" % index)
    w = as_weights(w, "measure %d's weights" % index, X.shape[0], "its number of points")
    return X, w


def write_measure(path, X, a=None):
    """Writes one measure file for `-pairs`: points `/X` (k x d) and, where given, weights `/a` (k)."""
    X = as_points(X, "X")
    a = as_weights(a, "a", X.shape[0], "the number of points in X")
    with h5py.File(path, "w") as f:
        f["X"] = X
        if a is not None:
            f["a"] = a


def attribute_value(value):
    """An HDF5 attribute as a plain Python value (numpy scalars to int or float, bytes to str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass
class Result:
    """One otsolve solve, read from its result file (docs/design.md §3).

    transport_cost: <M, P> of the entropic plan P, the value of POT's `ot.sinkhorn2` with reg = eps.
    dual_objective, entropic_cost: the regularised value (entropy sum P (log P - 1), see the README's
        Conventions).
    lower_bound, upper_bound: certified bounds on the exact, unregularised cost (POT's `ot.emd2`); None for
        unbalanced transport (option unbalanced=rho), which has unbalanced_objective, transported_mass, kl_a and
        kl_b instead (docs/design.md §1), else None.
    wasserstein, wasserstein_lower, wasserstein_upper: for point-cloud costs |x - y|^p, transport_cost^(1/p)
        (an estimate above W_p) and the certified bounds on W_p; None for a cost matrix M.
    f, g: the dual potentials in cost units: P_ij = exp((f_i + g_j - M_ij) / eps). (POT's `log=True` returns
        the same potentials as log_u = f / eps, log_v = g / eps.)
    eps: the final eps; marginal_error: |P 1 - a|_1 + |P^T 1 - b|_1 at the end.
    converged, status: whether the marginal error reached the tolerance, and otsolve's sentence on it.
    iterations_sinkhorn, iterations_newton: sweeps and Newton steps (`iterations`: both together).
    history: one array per field of `/history` (stage: 0 Sinkhorn sweep, 1 Newton step; iteration, time,
        marginal_error, dual_objective, eps), one entry per iteration.
    plan: P as a scipy.sparse.csr_matrix (n x m) where asked for (solve's `plan`), else None.
    sinkhorn_divergence: with the option divergence=True (point clouds), else None.
    attrs: every root attribute of the result file; summary: otsolve's `key = value` lines (empty when read
        with read_result); path: the result file, where it was kept (solve's `output`), else None;
        stdout, stderr: what otsolve printed; returncode: its exit status.
    """
    transport_cost: float
    dual_objective: float
    entropic_cost: float
    marginal_error: float
    eps: float
    converged: bool
    status: str
    iterations_sinkhorn: int
    iterations_newton: int
    f: np.ndarray
    g: np.ndarray
    history: dict
    attrs: dict
    lower_bound: Optional[float] = None
    upper_bound: Optional[float] = None
    unbalanced_objective: Optional[float] = None
    transported_mass: Optional[float] = None
    kl_a: Optional[float] = None
    kl_b: Optional[float] = None
    wasserstein: Optional[float] = None
    wasserstein_lower: Optional[float] = None
    wasserstein_upper: Optional[float] = None
    sinkhorn_divergence: Optional[float] = None
    plan: Optional[object] = None
    summary: dict = field(default_factory=dict)
    path: Optional[str] = None
    stdout: str = ""
    stderr: str = ""
    returncode: Optional[int] = None

    @property
    def iterations(self):
        """Sinkhorn sweeps and Newton steps together."""
        return self.iterations_sinkhorn + self.iterations_newton


def read_plan(group):
    """`/plan` (CSR arrays and its shape attribute) as a scipy.sparse.csr_matrix."""
    import scipy.sparse
    shape = tuple(int(s) for s in group.attrs["shape"])
    return scipy.sparse.csr_matrix((group["data"][()], group["indices"][()], group["indptr"][()]), shape=shape)


def read_result(path):
    """Reads an otsolve result file (written by `-output`, docs/design.md §3) into a Result; the plan too where
    the file has `/plan` (written with `-ot_plan_threshold`)."""
    with h5py.File(path, "r") as f:
        attrs = {key: attribute_value(value) for key, value in f.attrs.items()}
        history = {}
        if "history" in f:
            rows = f["history"][()]
            history = {name: np.asarray(rows[name]) for name in rows.dtype.names}
        plan = read_plan(f["plan"]) if "plan" in f else None
        f_potential = f["f"][()]
        g_potential = f["g"][()]
    return Result(
        transport_cost=attrs["transport_cost"],
        dual_objective=attrs["dual_objective"],
        entropic_cost=attrs["entropic_cost"],
        lower_bound=attrs.get("lower_bound"),
        upper_bound=attrs.get("upper_bound"),
        unbalanced_objective=attrs.get("unbalanced_objective"),
        transported_mass=attrs.get("transported_mass"),
        kl_a=attrs.get("kl_a"),
        kl_b=attrs.get("kl_b"),
        marginal_error=attrs["marginal_error"],
        eps=attrs["eps"],
        converged=bool(attrs["converged"]),
        status=attrs["status"],
        iterations_sinkhorn=attrs["iterations_sinkhorn"],
        iterations_newton=attrs["iterations_newton"],
        f=f_potential,
        g=g_potential,
        history=history,
        attrs=attrs,
        wasserstein=attrs.get("wasserstein"),
        wasserstein_lower=attrs.get("wasserstein_lower"),
        wasserstein_upper=attrs.get("wasserstein_upper"),
        sinkhorn_divergence=attrs.get("sinkhorn_divergence"),
        plan=plan,
        path=str(path),
    )


@dataclass
class PairsResult:
    """The K x K matrices among K measures (`pairs`, `-pairs`; docs/design.md §3), all symmetric with an exact
    diagonal (0 in every distance and bound).

    transport_cost: <C, P> of each pair's entropic plan; lower_bound, upper_bound: certified bounds on the exact
    cost; wasserstein_lower, wasserstein_upper: certified bounds on W_p; wasserstein: transport_cost^(1/p), an
    entropic estimate; marginal_error, seconds, iterations; converged (bool).
    sinkhorn_divergence, divergence_converged (bool), self_dual_objective (K): with divergence=True, else None.
    eps: the one eps of all pairs (a float), or the K x K matrix of eps with eps_per_pair=True.
    datasets: every dataset of the file by name; attrs: its root attributes; files: the K measure files;
    summary: otsolve's `key = value` lines; path: the output file, where it was kept, else None.
    """
    transport_cost: np.ndarray
    lower_bound: np.ndarray
    upper_bound: np.ndarray
    wasserstein: np.ndarray
    wasserstein_lower: np.ndarray
    wasserstein_upper: np.ndarray
    marginal_error: np.ndarray
    seconds: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    eps: object
    datasets: dict
    attrs: dict
    files: list
    sinkhorn_divergence: Optional[np.ndarray] = None
    divergence_converged: Optional[np.ndarray] = None
    self_dual_objective: Optional[np.ndarray] = None
    summary: dict = field(default_factory=dict)
    path: Optional[str] = None
    stdout: str = ""
    stderr: str = ""
    returncode: Optional[int] = None


def read_pairs(path):
    """Reads the output of `otsolve -pairs LIST -output FILE` into a PairsResult."""
    with h5py.File(path, "r") as f:
        attrs = {key: attribute_value(value) for key, value in f.attrs.items()}
        datasets = {name: f[name][()] for name in f if name != "files"}
        files = [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in f["files"][()]]
    divergence_converged = datasets.get("divergence_converged")
    return PairsResult(
        transport_cost=datasets["transport_cost"],
        lower_bound=datasets["lower_bound"],
        upper_bound=datasets["upper_bound"],
        wasserstein=datasets["wasserstein"],
        wasserstein_lower=datasets["wasserstein_lower"],
        wasserstein_upper=datasets["wasserstein_upper"],
        marginal_error=datasets["marginal_error"],
        seconds=datasets["seconds"],
        iterations=datasets["iterations"],
        converged=datasets["converged"].astype(bool),
        eps=datasets["eps"] if "eps" in datasets else attrs["eps"],
        datasets=datasets,
        attrs=attrs,
        files=files,
        sinkhorn_divergence=datasets.get("sinkhorn_divergence"),
        divergence_converged=None if divergence_converged is None else divergence_converged.astype(bool),
        self_dual_objective=datasets.get("self_dual_objective"),
        path=str(path),
    )
