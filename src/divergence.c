/*
  The debiased Sinkhorn divergence (Genevay et al. 2018; Feydy et al. 2019) of two point clouds:

    S_eps(a, b) = OT_eps(a, b) - OT_eps(a, a) / 2 - OT_eps(b, b) / 2,

  with OT_eps the regularised value at the optimum, taken here as the dual objective D = <a,f> + <b,g> -
  eps sum P (its error is quadratic in the marginal error, where the primal value's is linear). The
  entropy convention drops out: with KL(P | a x b) instead of sum P (log P - 1), each OT_eps changes by
  terms in sum a log a, sum b log b and the masses that cancel in S. S is >= 0, zero when a = b, and
  tends to the transport cost's debiased value as eps -> 0.

  The two symmetric problems need all of X (resp. Y) as columns: the owned rows of X are gathered on
  every rank (n x d numbers, small next to the problem), Y is already there. Both are solved on the same
  ranks with the same options and the same eps as the main problem.
*/
#include <otsolve.h>

/* Solves the problem of points (points, points) with weights w and returns its dual objective. */
static PetscErrorCode SolveSymmetric(MPI_Comm comm, PetscReal eps, const char main_source[], PetscInt count, PetscInt d, const PetscReal points[],
                                     const PetscReal weights[], const char cost[], const char what[], PetscReal *dual, PetscBool *converged)
{
  OTResult result;
  char     source[PETSC_MAX_PATH_LEN + 32];
  double   start = MPI_Wtime();

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(source, sizeof(source), "%s (%s, %s)", main_source, what, what));
  /* the main problem's eps, not this problem's default */
  PetscCall(OTSolveSymmetric(comm, count, d, points, weights, cost, source, eps, &result));
  PetscCall(PetscPrintf(comm, "otsolve: divergence term OT(%s, %s): dual_objective %.17g, %" PetscInt_FMT " iterations, %.3f s, %s\n", what, what,
                        (double)result.dual_objective, result.iterations_sinkhorn + result.iterations_newton, MPI_Wtime() - start, result.status));
  *dual      = result.dual_objective;
  *converged = result.converged;
  PetscFunctionReturn(0);
}

/* The unbalanced Sinkhorn divergence (Séjourné et al. 2019, Proposition 12, as GeomLoss computes it):

     S = (rho + eps/2) (<a, exp(-F_aa/rho) - exp(-F_ba/rho)> + <b, exp(-G_bb/rho) - exp(-G_ab/rho)>),

   with the potentials of the problems regularised by eps KL(P | a x b). Those plans are the plans of this solver's
   problems (regularised by eps sum P (log P - 1)) for the weights a^(1 + eps/rho), b^(1 + eps/rho): the damped
   update of f = F + eps log a then has the same fixed point. And <a, exp(-F/rho)> is the mass of the plan (its row
   marginal is a exp(-F/rho)), so S = (rho + eps/2) (m_aa + m_bb - 2 m_ab) with m the transported masses of the
   three problems with those weights. Collective. */
static PetscErrorCode UnbalancedDivergence(MPI_Comm comm, const char source[], PetscReal eps, PetscReal rho, PetscInt n, PetscInt m, PetscInt d,
                                           const PetscReal x[], const PetscReal a[], const PetscReal y[], const PetscReal b[], const char cost[], PetscReal *value,
                                           PetscBool *all_converged)
{
  PetscReal *a_kl, *b_kl, mass[3];
  PetscBool  converged[3];
  OTResult   r;
  char       what[PETSC_MAX_PATH_LEN + 64];
  double     start = MPI_Wtime();

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n, &a_kl, m, &b_kl));
  for (PetscInt i = 0; i < n; i++) a_kl[i] = PetscPowReal(a[i], 1.0 + eps / rho);
  for (PetscInt j = 0; j < m; j++) b_kl[j] = PetscPowReal(b[j], 1.0 + eps / rho);
  PetscCall(PetscSNPrintf(what, sizeof(what), "%s (X, Y; weights to the power 1 + eps/rho)", source));
  PetscCall(OTSolvePoints(comm, n, m, d, x, y, a_kl, b_kl, cost, what, eps, &r));
  mass[0] = r.transported_mass, converged[0] = r.converged;
  PetscCall(PetscSNPrintf(what, sizeof(what), "%s (X, X; weights to the power 1 + eps/rho)", source));
  PetscCall(OTSolveSymmetric(comm, n, d, x, a_kl, cost, what, eps, &r));
  mass[1] = r.transported_mass, converged[1] = r.converged;
  PetscCall(PetscSNPrintf(what, sizeof(what), "%s (Y, Y; weights to the power 1 + eps/rho)", source));
  PetscCall(OTSolveSymmetric(comm, m, d, y, b_kl, cost, what, eps, &r));
  mass[2] = r.transported_mass, converged[2] = r.converged;
  PetscCall(PetscPrintf(comm, "otsolve: unbalanced divergence terms (KL(P | a x b) convention): transported masses m_ab %.17g, m_aa %.17g, m_bb %.17g, %.3f s\n",
                        (double)mass[0], (double)mass[1], (double)mass[2], MPI_Wtime() - start));
  *value         = (rho + 0.5 * eps) * (mass[1] + mass[2] - 2.0 * mass[0]);
  *all_converged = (PetscBool)(converged[0] && converged[1] && converged[2]);
  PetscCall(PetscFree2(a_kl, b_kl));
  PetscFunctionReturn(0);
}

/* All of X (n x d, row-major) and all of a on every rank, from each rank's rows; freed with PetscFree2(x, a). */
static PetscErrorCode GatherRows(MPI_Comm comm, OTProblem pb, PetscInt d, PetscReal **x, PetscReal **a)
{
  PetscMPIInt      size, rows;
  PetscMPIInt     *counts, *displs;
  PetscInt         n, row_start, row_end;
  const PetscReal *x_local, *a_local;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(OTProblemGetSizes(pb, &n, NULL, &row_start, &row_end));
  PetscCall(OTProblemGetPoints(pb, NULL, &x_local, NULL, NULL));
  PetscCall(OTProblemGetWeights(pb, &a_local, NULL));
  PetscCall(PetscMalloc2((size_t)n * d, x, n, a));
  PetscCall(PetscMalloc2(size, &counts, size, &displs));
  rows = (PetscMPIInt)(row_end - row_start);
  PetscCallMPI(MPI_Allgather(&rows, 1, MPI_INT, counts, 1, MPI_INT, comm));
  displs[0] = 0;
  for (PetscMPIInt r = 1; r < size; r++) displs[r] = displs[r - 1] + counts[r - 1];
  PetscCallMPI(MPI_Allgatherv(a_local, rows, MPIU_REAL, *a, counts, displs, MPIU_REAL, comm));
  for (PetscMPIInt r = 0; r < size; r++) {
    counts[r] *= (PetscMPIInt)d;
    displs[r] *= (PetscMPIInt)d;
  }
  PetscCallMPI(MPI_Allgatherv(x_local, rows * (PetscMPIInt)d, MPIU_REAL, *x, counts, displs, MPIU_REAL, comm));
  PetscCall(PetscFree2(counts, displs));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverComputeDivergence(OTSolver s)
{
  MPI_Comm         comm;
  OTProblem        pb;
  OTResult         r;
  PetscInt         d, n, m;
  PetscReal        eps, *x, *a, *y, dual_xx, dual_yy;
  const PetscReal *y_t, *b;
  const char      *cost, *source;
  PetscBool        converged_xx, converged_yy;
  PetscReal        rho_a, rho_b;

  PetscFunctionBegin;
  PetscCall(OTSolverGetComm(s, &comm));
  PetscCall(OTSolverGetProblem(s, &pb));
  PetscCall(OTSolverGetResult(s, &r));
  PetscCall(OTProblemGetPoints(pb, &d, NULL, &y_t, &cost));
  PetscCheck(d > 0, comm, OT_ERR_INPUT, "-ot_divergence needs a point-cloud problem (/X, /Y): the costs among the points of one side are not in a dense /C");
  PetscCheck(r.reason != OT_REASON_NONE, comm, PETSC_ERR_ARG_WRONGSTATE, "OTSolverSolve() must come before OTSolverComputeDivergence()");
  PetscCall(OTProblemGetSizes(pb, &n, &m, NULL, NULL));
  PetscCall(OTProblemGetWeights(pb, NULL, &b));
  PetscCall(OTProblemGetSource(pb, &source));
  PetscCall(OTSolverGetEps(s, &eps));
  PetscCall(GatherRows(comm, pb, d, &x, &a));
  PetscCall(PetscMalloc1((size_t)m * d, &y));
  for (PetscInt j = 0; j < m; j++)
    for (PetscInt k = 0; k < d; k++) y[(size_t)j * d + k] = y_t[(size_t)k * m + j];

  PetscCall(OTProblemGetRelaxation(pb, &rho_a, &rho_b));
  if (isinf(rho_a) && isinf(rho_b)) {
    PetscCall(SolveSymmetric(comm, eps, source, n, d, x, a, cost, "X", &dual_xx, &converged_xx));
    PetscCall(SolveSymmetric(comm, eps, source, m, d, y, b, cost, "Y", &dual_yy, &converged_yy));
    PetscCall(OTSolverSetDivergence(s, r.dual_objective - 0.5 * (dual_xx + dual_yy), (PetscBool)(r.converged && converged_xx && converged_yy)));
  } else {
    PetscCheck(rho_a == rho_b, comm, OT_ERR_INPUT,
               "-ot_divergence with unbalanced transport needs one rho for both sides (-ot_unbalanced RHO); got rho_a = %g, rho_b = %g", (double)rho_a, (double)rho_b);
    PetscReal value = NAN;
    PetscBool converged = PETSC_FALSE;

    PetscCall(UnbalancedDivergence(comm, source, eps, rho_a, n, m, d, x, a, y, b, cost, &value, &converged));
    PetscCall(OTSolverSetDivergence(s, value, (PetscBool)(r.converged && converged)));
  }
  PetscCall(PetscFree2(x, a));
  PetscCall(PetscFree(y));
  PetscFunctionReturn(0);
}
