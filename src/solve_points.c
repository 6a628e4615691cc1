/*
  One point-cloud problem built, solved and destroyed in one call: the unit of work of -pairs (pairs.c) and of
  the Sinkhorn divergence's symmetric problems (divergence.c). Written with the public API only.
*/
#include <otsolve.h>

PetscErrorCode OTSolvePoints(MPI_Comm comm, PetscInt n, PetscInt m, PetscInt d, const PetscReal X[], const PetscReal Y[], const PetscReal a[],
                             const PetscReal b[], const char cost[], const char source[], PetscReal eps, OTResult *result)
{
  OTProblem problem;
  OTSolver  solver;
  PetscReal interval;

  PetscFunctionBegin;
  PetscCall(OTProblemCreate(comm, &problem));
  PetscCall(OTProblemSetFromOptions(problem));
  PetscCall(OTProblemSetPoints(problem, n, m, d, X, Y, a, b, cost, source));
  PetscCall(OTSolverCreate(comm, &solver));
  PetscCall(OTSolverSetFromOptions(solver));
  if (eps > 0) {
    PetscCall(OTSolverSetEps(solver, eps));
    PetscCall(OTSolverSetEpsSchedule(solver, NULL));
  }
  /* one of many problems: the options' checkpoint, restart and plan belong to a single problem (-problem) */
  PetscCall(OTSolverGetCheckpoint(solver, NULL, &interval));
  PetscCall(OTSolverSetCheckpoint(solver, NULL, interval));
  PetscCall(OTSolverSetRestart(solver, NULL));
  PetscCall(OTSolverSetPlanThreshold(solver, -1.0));
  PetscCall(OTSolverSetProblem(solver, problem));
  PetscCall(OTProblemDestroy(&problem));
  PetscCall(OTSolverSolve(solver));
  PetscCall(OTSolverGetResult(solver, result));
  PetscCall(OTSolverDestroy(&solver));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolveSymmetric(MPI_Comm comm, PetscInt n, PetscInt d, const PetscReal X[], const PetscReal a[], const char cost[], const char source[],
                                PetscReal eps, OTResult *result)
{
  PetscFunctionBegin;
  /* the same arrays on both sides: OTProblemSetPoints marks the problem symmetric */
  PetscCall(OTSolvePoints(comm, n, n, d, X, X, a, a, cost, source, eps, result));
  PetscFunctionReturn(0);
}
