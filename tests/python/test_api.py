"""The Python front end (python/otsolve) against POT 0.8.2 and numpy, on OTSOLVE_TEST_RANKS ranks (1 if unset).

Run from the build (meson test -C build --suite python), or from the source tree:
    OTSOLVE_EXECUTABLE=build/otsolve OTSOLVE_TEST_RANKS=3 PYTHONPATH=python /usr/bin/python3 -m pytest tests/python

References are independent of otsolve: POT's log-domain Sinkhorn run far past otsolve's tolerance, its exact
ot.emd2 for the certified bounds, and numpy for plans and entropic values.
"""
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import ot
import pytest
import scipy.sparse
import scipy.special

import otsolve

RANKS = int(os.environ.get("OTSOLVE_TEST_RANKS", "1"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pot_plan(a, b, M, eps):
    """POT's entropic plan, log-domain Sinkhorn, stopped at 1e-12 (the L2 norm of its marginal error)."""
    return ot.sinkhorn(a, b, M, eps, method="sinkhorn_log", stopThr=1e-12, numItermax=200000)


def weights(rng, n):
    w = rng.uniform(0.5, 1.0, n)
    return w / w.sum()


@pytest.fixture
def problem():
    """40 x 30 squared Euclidean costs between two 2-D clouds, non-uniform weights."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    Y = rng.normal(size=(30, 2)) + 0.5
    return weights(rng, 40), weights(rng, 30), X, Y, ot.dist(X, Y)


def test_dense_matches_pot(problem):
    a, b, X, Y, M = problem
    eps = 0.05
    result = otsolve.solve(a, b, M, eps, ranks=RANKS, tol=1e-12)
    reference = ot.sinkhorn2(a, b, M, eps, method="sinkhorn_log", stopThr=1e-12, numItermax=200000)
    assert result.converged and result.returncode == 0
    assert result.transport_cost == pytest.approx(float(reference), rel=1e-7)
    assert result.eps == eps and result.attrs["ranks"] == RANKS
    # the potentials give POT's plan
    P = np.exp((result.f[:, None] + result.g[None, :] - M) / eps)
    assert np.abs(P - pot_plan(a, b, M, eps)).max() < 1e-9
    # certified bounds around the exact cost
    exact = ot.emd2(a, b, M)
    assert result.lower_bound <= exact * (1 + 1e-9) and exact <= result.upper_bound * (1 + 1e-9)
    # the summary lines agree with the file; history has one row per iteration
    assert result.summary["transport_cost"] == pytest.approx(result.transport_cost, rel=1e-15)
    assert result.summary["n"] == 40 and result.summary["m"] == 30
    assert len(result.history["marginal_error"]) == result.iterations
    assert result.history["marginal_error"][-1] <= 1e-12
    assert result.plan is None and result.wasserstein is None and result.path is None


def test_uniform_weights_and_sinkhorn_method(problem):
    _, _, X, Y, M = problem
    n, m = M.shape
    result = otsolve.solve(None, [], M, reg=0.1, method="sinkhorn", ranks=RANKS, tol=1e-12)
    reference = ot.sinkhorn2(np.full(n, 1 / n), np.full(m, 1 / m), M, 0.1, method="sinkhorn_log", stopThr=1e-12,
                             numItermax=200000)
    assert result.transport_cost == pytest.approx(float(reference), rel=1e-7)
    assert result.iterations_newton == 0


@pytest.mark.parametrize("cost, metric, p", [("sqeuclidean", "sqeuclidean", 2), ("euclidean", "euclidean", 1)])
def test_point_clouds_match_pot(problem, cost, metric, p):
    a, b, X, Y, _ = problem
    M = ot.dist(X, Y, metric=metric)
    eps = 0.02 * M.max()
    result = otsolve.solve(a, b, X=X, Y=Y, eps=eps, cost=cost, ranks=RANKS, tol=1e-12)
    reference = ot.sinkhorn2(a, b, M, eps, method="sinkhorn_log", stopThr=1e-12, numItermax=200000)
    assert result.transport_cost == pytest.approx(float(reference), rel=1e-7)
    exact_w = ot.emd2(a, b, M) ** (1 / p)
    assert result.wasserstein_lower <= exact_w * (1 + 1e-9) and exact_w <= result.wasserstein_upper * (1 + 1e-9)
    assert result.wasserstein == pytest.approx(result.transport_cost ** (1 / p), rel=1e-12)


def test_plan_is_sparse_with_the_marginals(problem):
    a, b, X, Y, M = problem
    eps = 0.05
    result = otsolve.solve(a, b, X=X, Y=Y, eps=eps, ranks=RANKS, plan=True, tol=1e-11)
    P = result.plan
    assert scipy.sparse.isspmatrix_csr(P) and P.shape == (40, 30) and P.nnz == 40 * 30
    assert np.abs(P.sum(axis=1).A1 - a).sum() + np.abs(P.sum(axis=0).A1 - b).sum() <= 1e-11
    assert np.abs(P.toarray() - pot_plan(a, b, M, eps)).max() < 1e-9
    assert float((P.multiply(M)).sum()) == pytest.approx(result.transport_cost, rel=1e-12)
    # a threshold keeps the large entries only
    kept = otsolve.solve(a, b, M, eps, ranks=RANKS, plan=1e-3).plan
    assert 0 < kept.nnz < 40 * 30 and kept.data.min() >= 1e-3 * P.max() * (1 - 1e-9)


@pytest.mark.parametrize("arguments, message", [
    (dict(a=np.ones(5) / 5, b=None, M=np.ones((4, 3))), "a has 5 weights but the number of rows of M is 4"),
    (dict(a=None, b=np.ones(4) / 4, M=np.ones((4, 3))), "b has 4 weights but the number of columns of M is 3"),
    (dict(a=np.ones((4, 1)), b=None, M=np.ones((4, 3))), "a must be a 1-D array"),
    (dict(a=None, b=None, M=np.ones(4)), "M must be a 2-D cost matrix"),
    (dict(a=None, b=None, M=np.ones((0, 3))), "M is empty"),
    (dict(a=None, b=None), "give the cost matrix M, or both point clouds X and Y"),
    (dict(a=None, b=None, X=np.ones((4, 2))), "give the cost matrix M, or both point clouds X and Y"),
    (dict(a=None, b=None, M=np.ones((4, 3)), X=np.ones((4, 2)), Y=np.ones((3, 2))), "not both"),
    (dict(a=None, b=None, X=np.ones((4, 2)), Y=np.ones((3, 3))), "the same dimension d"),
    (dict(a=None, b=None, X=np.ones(4), Y=np.ones(3)), "reshape"),
    (dict(a=None, b=np.ones(2), X=np.ones((4, 2)), Y=np.ones((3, 2))), "b has 2 weights but the number of points"),
    (dict(a=None, b=None, M=np.ones((4, 3)), cost="euclidean"), "cost is for point clouds"),
    (dict(a=None, b=None, X=np.ones((4, 2)), Y=np.ones((3, 2)), cost="manhattan"), "cost must be"),
    (dict(a=None, b=None, M=np.ones((4, 3)), eps=0.1, eps_rel=0.01), "not both"),
    (dict(a=None, b=None, M=np.ones((4, 3)), eps=0.1, reg=0.1), "not both"),
    (dict(a=None, b=None, M=np.ones((4, 3)), plan=-1.0), "plan must be"),
    (dict(a=None, b=None, M=np.ones((4, 3)), ranks=0), "ranks must be at least 1"),
    (dict(a=None, b=None, M=np.ones((4, 3)), **{"-output": "x.h5"}), "give -output through output="),
    (dict(a=None, b=None, M=np.ones((4, 3)), ot_eps=0.1), "give -ot_eps through eps="),
])
def test_bad_arguments_raise_value_error_without_a_run(monkeypatch, arguments, message):
    def no_process(*args, **kwargs):
        raise AssertionError("a process was started")
    monkeypatch.setattr(otsolve._run.subprocess, "Popen", no_process)
    a, b = arguments.pop("a"), arguments.pop("b")
    with pytest.raises(ValueError, match=re.escape(message)):
        otsolve.solve(a, b, **arguments)


@pytest.mark.parametrize("measures, arguments, message", [
    ([np.ones((3, 2))], {}, "at least 2 measures"),
    ([np.ones((3, 2)), np.ones((4, 3))], {}, "the same dimension d"),
    ([np.ones((3, 2)), (np.ones((4, 2)), np.ones(3))], {}, "measure 1's weights has 3 weights"),
    ([np.ones((3, 2)), np.ones((4, 2))], dict(cost="cosine"), "cost must be"),
    ([np.ones((3, 2)), np.ones((4, 2))], dict(divergence_x=1, **{"-pairs_cost": "euclidean"}), "through cost="),
])
def test_pairs_bad_arguments_raise_value_error_without_a_run(monkeypatch, measures, arguments, message):
    def no_process(*args, **kwargs):
        raise AssertionError("a process was started")
    monkeypatch.setattr(otsolve._run.subprocess, "Popen", no_process)
    with pytest.raises(ValueError, match=re.escape(message)):
        otsolve.pairs(measures, **arguments)


def check_clean_message(error, words):
    """otsolve's own message: its words, once, without its prefix or the launcher's frame."""
    text = str(error)
    assert words in text
    assert "otsolve: error:" not in text and "-----" not in text and "mpiexec" not in text
    assert text.count(words) == 1


def test_otsolve_errors_become_exceptions(problem):
    a, b, X, Y, M = problem
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.solve(a, b, M, 0.05, ranks=RANKS, tol=-1.0)
    assert caught.value.returncode == 1 and isinstance(caught.value, RuntimeError)
    check_clean_message(caught.value, "-ot_tol must be positive")
    assert caught.value.result is None and "otsolve: error:" in caught.value.stderr + caught.value.stdout
    # masses that differ: found by otsolve, the temporary file named by what it holds
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.solve(a, 2 * b, M, 0.05, ranks=RANKS)
    check_clean_message(caught.value, "total masses differ")
    assert "the problem file (written from the arrays)" in str(caught.value)
    # a NaN cost, and an option value otsolve refuses
    bad = M.copy()
    bad[3, 2] = np.nan
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.solve(a, b, bad, 0.05, ranks=RANKS)
    assert caught.value.returncode == 1 and "NaN" in str(caught.value)
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.solve(a, b, M, 0.05, method="sinkhorn_log", ranks=RANKS)
    check_clean_message(caught.value, "Unknown option sinkhorn_log for -ot_method")


def test_not_converged_returns_result_unless_check(problem):
    a, b, X, Y, M = problem
    result = otsolve.solve(a, b, M, 0.01, ranks=RANKS, max_it=3)
    assert result.converged is False and result.returncode == 2 and result.iterations == 3
    assert "not converged" in result.status and result.marginal_error > 1e-9 and len(result.f) == 40
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.solve(a, b, M, 0.01, ranks=RANKS, max_it=3, check=True)
    assert caught.value.returncode == 2 and caught.value.result.converged is False
    assert "not converged" in str(caught.value)


def test_unknown_option_raises(problem):
    """A POT argument otsolve does not have is otsolve's error (unknown option), not a silent default."""
    a, b, X, Y, M = problem
    with pytest.raises(otsolve.OTSolveError, match="unknown option -ot_numItermax") as caught:
        otsolve.solve(a, b, M, 0.05, ranks=RANKS, numItermax=10)
    assert caught.value.returncode == 1
    with pytest.raises(otsolve.OTSolveError, match=r"did you mean -ot_tol\?"):
        otsolve.solve(a, b, M, 0.05, ranks=RANKS, toll=1e-9)


def entropic_value(P, M, eps):
    """<M, P> + eps sum P (log P - 1): otsolve's regularised value (dual_objective at the optimum)."""
    return float((P * M).sum() + eps * (P * (np.log(P) - 1)).sum())


def self_plan(a, M, eps):
    """The entropic plan of the symmetric problem (a, a, M = M^T) by the averaged iteration f <- (f + T f)/2 in
    numpy (POT's alternating sweeps oscillate for 100,000 sweeps here), to marginal error 1e-13."""
    f = np.zeros(len(a))
    for _ in range(100000):
        f = 0.5 * (f + eps * np.log(a) - eps * scipy.special.logsumexp((f[None, :] - M) / eps, axis=1))
        P = np.exp((f[:, None] + f[None, :] - M) / eps)
        if np.abs(P.sum(axis=1) - a).sum() <= 1e-13:
            return P
    raise AssertionError("the symmetric reference did not converge")


def test_pairs_match_independent_solves():
    rng = np.random.default_rng(7)
    clouds = [rng.normal(size=(n, 2)) * s + shift for n, s, shift in [(25, 1.0, 0.0), (30, 0.7, 1.0), (35, 1.3, -0.5)]]
    w2 = weights(rng, 35)
    eps = 0.2
    result = otsolve.pairs([clouds[0], clouds[1], (clouds[2], w2)], eps, ranks=RANKS, divergence=True, tol=1e-12)
    K = 3
    assert result.transport_cost.shape == (K, K) and result.eps == eps and result.converged.all()
    assert result.divergence_converged.all() and result.summary["unconverged"] == 0
    masses = [np.full(25, 1 / 25), np.full(30, 1 / 30), w2]
    for i in range(K):
        assert result.transport_cost[i, i] == 0 and result.sinkhorn_divergence[i, i] == 0
        for j in range(i + 1, K):
            M = ot.dist(clouds[i], clouds[j])
            reference = ot.sinkhorn2(masses[i], masses[j], M, eps, method="sinkhorn_log", stopThr=1e-12,
                                     numItermax=200000)
            assert result.transport_cost[i, j] == pytest.approx(float(reference), rel=1e-7)
            assert result.transport_cost[j, i] == result.transport_cost[i, j]
            exact_w = ot.emd2(masses[i], masses[j], M) ** 0.5
            assert result.wasserstein_lower[i, j] <= exact_w * (1 + 1e-9) <= result.wasserstein_upper[i, j] * (1 + 2e-9)
            Mi, Mj = ot.dist(clouds[i], clouds[i]), ot.dist(clouds[j], clouds[j])
            divergence = entropic_value(pot_plan(masses[i], masses[j], M, eps), M, eps) - 0.5 * (
                entropic_value(self_plan(masses[i], Mi, eps), Mi, eps) +
                entropic_value(self_plan(masses[j], Mj, eps), Mj, eps))
            assert result.sinkhorn_divergence[i, j] == pytest.approx(divergence, rel=1e-7, abs=1e-10)


def test_pairs_errors_and_not_converged():
    rng = np.random.default_rng(3)
    clouds = [rng.normal(size=(20, 2)), rng.normal(size=(25, 2)), rng.normal(size=(15, 2))]
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.pairs([clouds[0], clouds[1], (clouds[2], np.full(15, 0.5))], ranks=RANKS)
    check_clean_message(caught.value, "total masses differ")
    assert "measures[2]" in str(caught.value)
    result = otsolve.pairs(clouds, ranks=RANKS, max_it=2)
    assert not result.converged[0, 1] and result.returncode == 2 and result.attrs["unconverged"] == 3


def test_write_problem_read_result_round_trip(tmp_path, problem):
    a, b, X, Y, M = problem
    path = str(tmp_path / "dense.h5")
    otsolve.write_problem(path, a, b, M)
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["C"][()], M) and np.array_equal(f["a"][()], a) and np.array_equal(f["b"][()], b)
    points = str(tmp_path / "points.h5")
    otsolve.write_problem(points, X=X, Y=Y, cost="euclidean")
    with h5py.File(points, "r") as f:
        assert f.attrs["cost"] == "euclidean" and "a" not in f and np.array_equal(f["Y"][()], Y)
    # the command line on the written file, read with read_result, against solve's result kept with output=
    kept = str(tmp_path / "kept.h5")
    result = otsolve.solve(a, b, M, 0.05, ranks=RANKS, output=kept, plan=True)
    assert result.path == kept and os.path.exists(kept)
    again = otsolve.read_result(kept)
    assert again.transport_cost == result.transport_cost and np.array_equal(again.f, result.f)
    assert (again.plan != result.plan).nnz == 0 and again.summary == {}
    command = otsolve._run.launcher_command(RANKS) + [otsolve.find_executable(), "-problem", path, "-output",
                                                      str(tmp_path / "cli.h5"), "-ot_eps", "0.05"]
    completed = subprocess.run(command, env=otsolve._run.launch_environment(), capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    cli = otsolve.read_result(str(tmp_path / "cli.h5"))
    assert cli.transport_cost == pytest.approx(result.transport_cost, rel=1e-13)
    assert cli.status == result.status and cli.iterations == result.iterations


def test_executable_lookup(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="otsolve program not found"):
        otsolve.find_executable(str(tmp_path / "missing"))
    monkeypatch.setenv("OTSOLVE_EXECUTABLE", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="OTSOLVE_EXECUTABLE"):
        otsolve.find_executable()
    with pytest.raises(FileNotFoundError):
        otsolve.solve(None, None, np.ones((3, 3)))


def test_launcher_choice(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert otsolve._run.launcher_command(3)[1:] == ["-n", "3"]
    monkeypatch.setenv("SLURM_JOB_ID", "12345")
    monkeypatch.setattr(otsolve._run.shutil, "which", lambda name: "/usr/bin/" + name)
    assert otsolve._run.launcher_command(4) == ["srun", "-n", "4"]
    assert otsolve._run.launcher_command(4, "mpirun -n 2 --bind-to none") == ["mpirun", "-n", "2", "--bind-to", "none"]
    assert otsolve._run.launcher_command(4, []) == []


def test_option_arguments():
    assert otsolve._run.option_arguments(dict(tol=1e-9, max_it=10, ot_view=True, multiscale=False,
                                              eps_schedule=[0.02, 0.01], **{"-log_view": None})) == [
        "-ot_tol", "1e-09", "-ot_max_it", "10", "-ot_view", "true", "-ot_multiscale", "false",
        "-ot_eps_schedule", "0.02,0.01", "-log_view"]


def test_launcher_failure_surfaces():
    """A launcher that fails before otsolve starts: its own words in the exception, not otsolve's."""
    with pytest.raises(otsolve.OTSolveError) as caught:
        otsolve.solve(None, None, np.ones((3, 3)), launcher=["sh", "-c", "echo 'no such partition' >&2; exit 9", "sh"])
    assert caught.value.returncode == 9 and "no such partition" in str(caught.value)
    assert "exit status 9" in str(caught.value)


def test_timeout_stops_the_run():
    started = time.time()
    with pytest.raises(otsolve.OTSolveError, match="timeout"):
        # a launcher that never returns stands in for a long solve
        otsolve.solve(None, None, np.ones((3, 3)), launcher=["sh", "-c", "sleep 60", "sh"], timeout=1)
    assert time.time() - started < 20


def test_readme_example_runs(tmp_path):
    """The README's "From Python" examples, as printed: POT's transport cost, the Python API's and the command
    line's agree to 1e-7 relative, and the pairs example runs and converges."""
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    start = readme.index("### From Python\n")
    section = readme[start:readme.index("\n### ", start + 1)]
    code = "".join(re.findall(r"```python\n(.*?)```", section, re.S))
    shell = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    env = dict(otsolve._run.launch_environment(), OTSOLVE_EXECUTABLE=otsolve.find_executable(),
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(otsolve.__file__))))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    pot_cost, api_cost = float(lines[0]), float(lines[1].split()[0])
    assert lines[1].split()[-1] == "True" and lines[-1].endswith("True")
    # the command line as printed, with the build's otsolve for build/otsolve
    command = shell.strip().replace("build/otsolve", otsolve.find_executable())
    cli = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    cli_cost = otsolve._run.parse_summary(cli.stdout)["transport_cost"]
    assert api_cost == pytest.approx(pot_cost, rel=1e-7) and cli_cost == pytest.approx(api_cost, rel=1e-7)


def test_unbalanced_against_pot():
    """unbalanced=rho (POT's reg_m): the plan and <M, P> of POT's sinkhorn_unbalanced, and the unbalanced fields."""
    import ot
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(60, 2)), rng.normal(size=(40, 2)) + 0.5
    a, b = np.full(60, 1 / 60), np.full(40, 1.5 / 40)
    M = ot.dist(X, Y)
    P_pot = ot.unbalanced.sinkhorn_unbalanced(a, b, M, 0.1, 1.0, method="sinkhorn_stabilized", numItermax=100000, stopThr=1e-15)
    res = otsolve.solve(a, b, M, 0.1, ranks=RANKS, unbalanced=1.0, tol=1e-12)
    P = np.exp((res.f[:, None] + res.g[None, :] - M) / 0.1)
    assert res.converged and res.lower_bound is None and res.upper_bound is None
    assert np.abs(P - P_pot).sum() <= 1e-9 * P_pot.sum()
    assert abs(res.transport_cost - (P_pot * M).sum()) <= 1e-9 * (P_pot * M).sum()
    assert abs(res.transported_mass - P_pot.sum()) <= 1e-9 * P_pot.sum()
    assert abs(res.unbalanced_objective - res.dual_objective) <= 1e-9 * abs(res.dual_objective)
