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
#include "otimpl.h"

/* Solves the problem of points (points, points) with weights w and returns its dual objective. */
static PetscErrorCode SolveSymmetric(OTSolver s, PetscInt count, const PetscReal points[], const PetscReal weights[], const char what[], PetscReal *dual,
                                     PetscBool *converged)
{
  OTProblem problem;
  OTSolver  solver;
  OTResult  result;
  char      source[PETSC_MAX_PATH_LEN + 32];

  PetscFunctionBegin;
  PetscCall(PetscSNPrintf(source, sizeof(source), "%s (%s, %s)", s->problem->source, what, what));
  PetscCall(OTProblemCreate(s->comm, &problem));
  PetscCall(OTProblemSetFromOptions(problem));
  PetscCall(OTProblemSetPoints(problem, count, count, s->problem->dim, points, points, weights, weights, s->problem->cost_name, source));
  PetscCall(OTSolverCreate(s->comm, &solver));
  PetscCall(OTSolverSetFromOptions(solver));
  solver->eps                = s->eps; /* the main problem's eps, not this problem's default */
  solver->eps_schedule_spec[0] = '\0';
  solver->checkpoint_file[0] = solver->restart_file[0] = '\0';
  solver->plan_threshold     = -1;
  PetscCall(OTSolverSetProblem(solver, problem));
  PetscCall(OTProblemDestroy(&problem));
  PetscCall(OTSolverSolve(solver));
  PetscCall(OTSolverGetResult(solver, &result));
  PetscCall(PetscPrintf(s->comm, "otsolve: divergence term OT(%s, %s): dual_objective %.17g, %" PetscInt_FMT " iterations, %s\n", what, what, (double)result.dual_objective,
                        result.iterations_sinkhorn + result.iterations_newton, result.status));
  *dual      = result.dual_objective;
  *converged = result.converged;
  PetscCall(OTSolverDestroy(&solver));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverComputeDivergence(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTResult    *r  = &s->result;
  PetscInt     d  = pb->dim;
  PetscMPIInt *counts, *displs;
  PetscReal   *x, *a, *y, dual_xx, dual_yy;
  PetscBool    converged_xx, converged_yy;

  PetscFunctionBegin;
  PetscCheck(pb->cost_kind != OT_COST_DENSE, s->comm, OT_ERR_INPUT,
             "-ot_divergence needs a point-cloud problem (/X, /Y): the costs among the points of one side are not in a dense /C");
  PetscCheck(r->reason != OT_REASON_NONE, s->comm, PETSC_ERR_ARG_WRONGSTATE, "OTSolverSolve() must come before OTSolverComputeDivergence()");
  PetscCall(PetscMalloc4((size_t)pb->n * d, &x, pb->n, &a, s->size, &counts, s->size, &displs));
  for (PetscMPIInt r_ = 0; r_ < s->size; r_++) {
    PetscInt start, end;

    PetscCall(OTRowSplit(pb->n, s->size, r_, &start, &end));
    counts[r_] = (PetscMPIInt)((end - start) * d);
    displs[r_] = (PetscMPIInt)(start * d);
  }
  PetscCallMPI(MPI_Allgatherv(pb->x, (PetscMPIInt)(pb->n_local * d), MPIU_REAL, x, counts, displs, MPIU_REAL, s->comm));
  for (PetscMPIInt r_ = 0; r_ < s->size; r_++) {
    counts[r_] /= (PetscMPIInt)d;
    displs[r_] /= (PetscMPIInt)d;
  }
  PetscCallMPI(MPI_Allgatherv(pb->a, (PetscMPIInt)pb->n_local, MPIU_REAL, a, counts, displs, MPIU_REAL, s->comm));
  PetscCall(PetscMalloc1((size_t)pb->m * d, &y));
  for (PetscInt j = 0; j < pb->m; j++)
    for (PetscInt k = 0; k < d; k++) y[(size_t)j * d + k] = pb->y_t[(size_t)k * pb->m + j];

  PetscCall(SolveSymmetric(s, pb->n, x, a, "X", &dual_xx, &converged_xx));
  PetscCall(SolveSymmetric(s, pb->m, y, pb->b, "Y", &dual_yy, &converged_yy));
  r->sinkhorn_divergence = r->dual_objective - 0.5 * (dual_xx + dual_yy);
  r->divergence_converged = (PetscBool)(r->converged && converged_xx && converged_yy);
  PetscCall(PetscFree4(x, a, counts, displs));
  PetscCall(PetscFree(y));
  PetscFunctionReturn(0);
}
