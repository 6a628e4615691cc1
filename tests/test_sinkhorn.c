/* The fused one-pass Sinkhorn against a textbook log-domain Sinkhorn written here with libm. */
#include "test_common.h"
#include "truncated.h"

TestSuite(sinkhorn, .init = OTTestInit, .fini = OTTestFini);

/* Textbook alternating log-domain updates, each with its own max shift; returns <C,P>. */
static double ReferenceSinkhorn(int n, int m, const double *cost, const double *a, const double *b, double eps, int sweeps, double *f, double *g)
{
  double transport = 0.0;

  for (int i = 0; i < n; i++) f[i] = 0.0;
  for (int j = 0; j < m; j++) g[j] = 0.0;
  for (int it = 0; it < sweeps; it++) {
    for (int i = 0; i < n; i++) {
      double mx = -INFINITY, s = 0.0;
      for (int j = 0; j < m; j++) mx = fmax(mx, (g[j] - cost[i * m + j]) / eps);
      for (int j = 0; j < m; j++) s += exp((g[j] - cost[i * m + j]) / eps - mx);
      f[i] = eps * log(a[i]) - eps * (mx + log(s));
    }
    for (int j = 0; j < m; j++) {
      double mx = -INFINITY, s = 0.0;
      for (int i = 0; i < n; i++) mx = fmax(mx, (f[i] - cost[i * m + j]) / eps);
      for (int i = 0; i < n; i++) s += exp((f[i] - cost[i * m + j]) / eps - mx);
      g[j] = eps * log(b[j]) - eps * (mx + log(s));
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) transport += cost[i * m + j] * exp((f[i] + g[j] - cost[i * m + j]) / eps);
  return transport;
}

static OTSolver Compare(int n, int m, const double *given_cost, double cost_offset, double eps, double tol, unsigned seed, OTSinkhornVariant variant)
{
  double   *cost = malloc(sizeof(double) * n * m), *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * m);
  double   *f = malloc(sizeof(double) * n), *g = malloc(sizeof(double) * m), sa = 0, sb = 0, reference;
  OTProblem pb;
  OTSolver  solver;
  OTResult  result;

  for (int k = 0; k < n * m; k++) cost[k] = given_cost ? given_cost[k] : cost_offset + (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0;
  for (int i = 0; i < n; i++) sa += (a[i] = 0.5 + (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0);
  for (int j = 0; j < m; j++) sb += (b[j] = 0.5 + (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0);
  for (int i = 0; i < n; i++) a[i] /= sa;
  for (int j = 0; j < m; j++) b[j] /= sb;
  reference = ReferenceSinkhorn(n, m, cost, a, b, eps, 20000, f, g);

  pb = OTTestProblem(n, m, cost, a, b);
  cr_assert(OTSolverCreate(PETSC_COMM_SELF, &solver) == 0);
  cr_assert(OTSolverSetProblem(solver, pb) == 0);
  solver->eps     = eps;
  solver->tol     = tol;
  solver->max_it  = 20000;
  solver->variant = variant;
  solver->method  = OT_METHOD_SINKHORN; /* this file tests the sweeps themselves */
  cr_assert(OTSolverSolve(solver) == 0);
  cr_assert(OTSolverGetResult(solver, &result) == 0);
  cr_assert(result.converged, "%s", result.status);
  cr_assert(result.marginal_error <= tol);
  cr_assert_float_eq(result.transport_cost, reference, 1e-10 * reference, "otsolve %.17g, reference %.17g", result.transport_cost, reference);
  /* potentials agree up to the (c, -c) gauge: compare f_i + g_j on a few entries */
  for (int i = 0; i < n; i += 3)
    for (int j = 0; j < m; j += 5) cr_assert_float_eq(solver->f[i] + solver->g[j], f[i] + g[j], 1e-9);
  OTProblemDestroy(&pb);
  free(cost), free(a), free(b), free(f), free(g);
  return solver;
}

Test(sinkhorn, matches_textbook_square)
{
  for (int variant = OT_SINKHORN_LOG; variant <= OT_SINKHORN_TRUNCATED; variant++) {
    OTSolver solver = Compare(17, 17, NULL, 0.0, 0.05, 1e-12, 1, (OTSinkhornVariant)variant);

    cr_assert_eq(solver->absorptions > 0, variant == OT_SINKHORN_ABSORB);
    OTSolverDestroy(&solver);
  }
}

Test(sinkhorn, matches_textbook_rectangular)
{
  for (int variant = OT_SINKHORN_LOG; variant <= OT_SINKHORN_TRUNCATED; variant++) {
    OTSolver solver = Compare(23, 11, NULL, 0.0, 0.02, 1e-12, 2, (OTSinkhornVariant)variant);

    OTSolverDestroy(&solver);
  }
}

Test(sinkhorn, small_eps_needs_rescues_and_stays_finite)
{
  /* eps = 2e-3 with costs in [2, 3): exp(-C/eps) < 1e-434 underflows for every entry of the first sweep, so
     rows and columns need the exact shifts. Exponents reach C/eps ~ 1500, so one rounding in an exponent
     moves P by ~2e-13: 1e-12 is near the noise floor here, 1e-10 is not. */
  for (int variant = OT_SINKHORN_LOG; variant <= OT_SINKHORN_TRUNCATED; variant++) {
    OTSolver solver = Compare(12, 9, NULL, 2.0, 2e-3, 1e-10, 3, (OTSinkhornVariant)variant);

    PetscInt rows = variant == OT_SINKHORN_TRUNCATED ? solver->trunc->rescued_rows : solver->rescued_rows;

    cr_assert(rows > 0, "rows %d", (int)rows);
    OTSolverDestroy(&solver);
  }
}

Test(sinkhorn, column_underflow_is_rescued_exactly)
{
  /* every row's cheapest column is column 0, and column 3 costs at least 0.7 more than that in every row:
     at eps = 1e-3 its first column sum is below exp(-700) and needs the exact column log-sum-exp */
  const double cost[12] = {0, 0.5, 0.6, 1.0, 0.1, 0.4, 0.7, 1.2, 0.2, 0.3, 0.5, 0.9};
  for (int variant = OT_SINKHORN_LOG; variant <= OT_SINKHORN_TRUNCATED; variant++) {
    OTSolver solver = Compare(3, 4, cost, 0.0, 1e-3, 1e-10, 4, (OTSinkhornVariant)variant);

    cr_assert((variant == OT_SINKHORN_TRUNCATED ? solver->trunc->rescued_columns : solver->rescued_columns) > 0);
    OTSolverDestroy(&solver);
  }
}
