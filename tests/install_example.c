/*
  A program built against the installed otsolve (tests/check_install.sh compiles it with
  `pkg-config --cflags --libs otsolve` and runs it on 2 ranks). It uses only the public header and checks
  two tiny 2-D point-cloud problems, squared Euclidean cost, uniform weights, whose unregularised optimal
  transport cost is known in closed form:

  1. three points against two on a horizontal line, the two raised by h:
       X = {(0,0), (1,0), (2,0)}, weights 1/3;  Y = {(0.5,h), (1.5,h)}, weights 1/2.
     The vertical part adds h^2 to every pair. The horizontal part is a 1-D problem, whose optimal plan is the
     monotone one: cost = integral over u in (0,1) of (F^-1(u) - G^-1(u))^2 with the quantile functions
     F^-1 = 0, 1, 2 on thirds and G^-1 = 0.5, 1.5 on halves: |0 - 0.5|^2 on (0,1/3), |1 - 0.5|^2 on (1/3,1/2),
     |1 - 1.5|^2 on (1/2,2/3), |2 - 1.5|^2 on (2/3,1), all 1/4: cost = 1/4 + h^2.
  2. a cloud and its translate by v: X = {(0,0), (1,0), (0,2)}, Y = X + v. For the squared Euclidean cost,
     E|X - Y|^2 >= |E(X - Y)|^2 = |v|^2 for every coupling, with equality for the translation: cost = |v|^2.

  At -ot_eps 1e-3 (set here unless given) the certified bounds must enclose the exact cost (to rounding,
  1e-12) and both lie within 1e-2 of it; the solve must have converged. Exit status 0 when both problems pass, 1 otherwise.
*/
#include <otsolve.h>

#define TOLERANCE 1e-2
/* the bounds are certified in exact arithmetic; the costs and sums are rounded (on this problem the two bounds
   can differ from 0.29 by an ulp in either direction) */
#define ROUNDING 1e-12

static PetscErrorCode CheckProblem(const char name[], PetscInt n, PetscInt m, const PetscReal X[], const PetscReal Y[], PetscReal exact, PetscBool *ok)
{
  OTProblem problem;
  OTSolver  solver;
  OTResult  result;

  PetscFunctionBeginUser;
  PetscCall(OTProblemCreate(PETSC_COMM_WORLD, &problem));
  PetscCall(OTProblemSetPoints(problem, n, m, 2, X, Y, NULL, NULL, "sqeuclidean", name));
  PetscCall(OTSolverCreate(PETSC_COMM_WORLD, &solver));
  PetscCall(OTSolverSetProblem(solver, problem));
  PetscCall(OTSolverSetFromOptions(solver));
  PetscCall(OTSolverSolve(solver));
  PetscCall(OTSolverGetResult(solver, &result));
  *ok = (PetscBool)(result.converged && result.lower_bound <= exact + ROUNDING && exact - ROUNDING <= result.upper_bound &&
                    PetscAbsReal(result.lower_bound - exact) <= TOLERANCE && PetscAbsReal(result.upper_bound - exact) <= TOLERANCE);
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "%s: exact %.17g, transport_cost %.17g, lower_bound %.17g, upper_bound %.17g, eps %g, converged %d: %s\n", name,
                        (double)exact, (double)result.transport_cost, (double)result.lower_bound, (double)result.upper_bound, (double)result.eps,
                        (int)result.converged, *ok ? "OK" : "FAILED"));
  PetscCall(OTSolverDestroy(&solver));
  PetscCall(OTProblemDestroy(&problem));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  const PetscReal h = 0.2, v[2] = {0.3, -0.2};
  const PetscReal X1[] = {0.0, 0.0, 1.0, 0.0, 2.0, 0.0}, Y1[] = {0.5, h, 1.5, h};
  const PetscReal X2[] = {0.0, 0.0, 1.0, 0.0, 0.0, 2.0};
  PetscReal       Y2[6];
  PetscBool       ok1, ok2, given;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-ot_eps", &given));
  if (!given) PetscCall(PetscOptionsSetValue(NULL, "-ot_eps", "1e-3"));
  for (int i = 0; i < 3; i++) {
    Y2[2 * i]     = X2[2 * i] + v[0];
    Y2[2 * i + 1] = X2[2 * i + 1] + v[1];
  }
  PetscCall(CheckProblem("three points against two", 3, 2, X1, Y1, 0.25 + h * h, &ok1));
  PetscCall(CheckProblem("a cloud and its translate", 3, 3, X2, Y2, v[0] * v[0] + v[1] * v[1], &ok2));
  PetscCall(PetscFinalize());
  return ok1 && ok2 ? 0 : 1;
}
