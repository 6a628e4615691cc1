/* The SNS direction: with every entry of P kept and no shift it is the Newton direction of the full
   system, which is solved here directly by dense Gaussian elimination. */
#include "test_common.h"
#include "newton.h"

TestSuite(newton, .init = OTTestInit, .fini = OTTestFini);

/* Solves the (n+m) x (n+m) system A x = rhs in place by Gaussian elimination with partial pivoting. */
static void DenseSolve(int size, double *A, double *rhs)
{
  for (int k = 0; k < size; k++) {
    int pivot = k;

    for (int r = k + 1; r < size; r++)
      if (fabs(A[r * size + k]) > fabs(A[pivot * size + k])) pivot = r;
    for (int c = 0; c < size; c++) {
      double t        = A[k * size + c];
      A[k * size + c] = A[pivot * size + c], A[pivot * size + c] = t;
    }
    double t = rhs[k];
    rhs[k] = rhs[pivot], rhs[pivot] = t;
    for (int r = k + 1; r < size; r++) {
      double factor = A[r * size + k] / A[k * size + k];

      for (int c = k; c < size; c++) A[r * size + c] -= factor * A[k * size + c];
      rhs[r] -= factor * rhs[k];
    }
  }
  for (int k = size - 1; k >= 0; k--) {
    for (int c = k + 1; c < size; c++) rhs[k] -= A[k * size + c] * rhs[c];
    rhs[k] /= A[k * size + k];
  }
}

/* Removes the (1_n, -1_m) component of x. */
static void Project(int n, int m, double *x)
{
  double dot = 0.0;

  for (int k = 0; k < n + m; k++) dot += (k < n ? 1.0 : -1.0) * x[k];
  for (int k = 0; k < n + m; k++) x[k] -= dot / (n + m) * (k < n ? 1.0 : -1.0);
}

Test(newton, full_density_direction_is_the_newton_direction)
{
  enum {
    N = 6,
    M = 5,
    S = N + M
  };
  double        cost[N * M], a[N], b[M], f[N], g[M], P[N * M], r[N] = {0}, c[M] = {0}, H[S * S] = {0}, x[S], ours[S];
  double        eps  = 0.3;
  unsigned      seed = 99;
  OTProblem     pb;
  OTSolver      solver;
  OTNewtonInfo  info;
  const double *df, *dg;

  for (int k = 0; k < N * M; k++) cost[k] = (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0;
  for (int i = 0; i < N; i++) a[i] = 1.0 / N, f[i] = 0.1 * sin(i);
  for (int j = 0; j < M; j++) b[j] = 1.0 / M, g[j] = 0.2 * cos(j);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < M; j++) {
      P[i * M + j] = exp((f[i] + g[j] - cost[i * M + j]) / eps);
      r[i] += P[i * M + j];
      c[j] += P[i * M + j];
    }
  /* H = [[diag(r), P], [P^T, diag(c)]] + n n^T / |n|^2 (which removes the null space and leaves the
     solution orthogonal to n unchanged, since the right-hand side is orthogonal to n) */
  for (int p = 0; p < S; p++)
    for (int q = 0; q < S; q++) H[p * S + q] = (p < N ? 1.0 : -1.0) * (q < N ? 1.0 : -1.0) / S;
  for (int i = 0; i < N; i++) {
    H[i * S + i] += r[i];
    for (int j = 0; j < M; j++) H[i * S + N + j] += P[i * M + j], H[(N + j) * S + i] += P[i * M + j];
  }
  for (int j = 0; j < M; j++) H[(N + j) * S + N + j] += c[j];
  for (int i = 0; i < N; i++) x[i] = eps * (a[i] - r[i]);
  for (int j = 0; j < M; j++) x[N + j] = eps * (b[j] - c[j]);
  Project(N, M, x);
  DenseSolve(S, H, x);
  Project(N, M, x);

  pb = OTTestProblem(N, M, cost, a, b);
  cr_assert(PetscOptionsSetValue(NULL, "-ot_newton_ksp_rtol", "1e-14") == 0);
  /* both assemblies: CSR blocks built by otsolve, and MatSetValues with PETSc's assembly */
  for (int assembly = OT_NEWTON_ASSEMBLY_SPLIT; assembly <= OT_NEWTON_ASSEMBLY_SETVALUES; assembly++) {
    cr_assert(OTSolverCreate(PETSC_COMM_SELF, &solver) == 0);
    cr_assert(OTSolverSetProblem(solver, pb) == 0);
    solver->eps              = eps;
    solver->newton->density  = 1e3; /* keep every entry */
    solver->newton->shift    = 0.0;
    solver->newton->assembly = (OTNewtonAssembly)assembly;
    cr_assert(OTSolverSetUp(solver) == 0);
    for (int i = 0; i < N; i++) solver->f[i] = f[i];
    for (int j = 0; j < M; j++) solver->g[j] = g[j];
    cr_assert(OTNewtonDirection(solver, &info) == 0);
    cr_assert_eq(info.kept, N * M);
    cr_assert(info.ksp_reason > 0, "KSP did not converge: %s (declined %d, error %g)", KSPConvergedReasons[info.ksp_reason], (int)info.declined, info.marginal_error);
    cr_assert(OTNewtonGetDirection(solver, &df, &dg) == 0);
    for (int i = 0; i < N; i++) ours[i] = df[i];
    for (int j = 0; j < M; j++) ours[N + j] = dg[j];
    Project(N, M, ours);
    for (int k = 0; k < S; k++)
      cr_assert_float_eq(ours[k], x[k], 1e-10, "%s assembly, component %d: SNS %.17g, direct %.17g", OTNewtonAssemblies[assembly], k, ours[k], x[k]);
    cr_assert(info.slope > 0); /* an ascent direction of D */
    OTSolverDestroy(&solver);
  }
  OTProblemDestroy(&pb);
}

Test(newton, sparsified_direction_keeps_rows_and_columns_and_ascends)
{
  enum {
    N = 40,
    M = 30
  };
  double       cost[N * M], a[N], b[M];
  unsigned     seed = 7;
  OTProblem    pb;
  OTSolver     solver;
  OTNewtonInfo info;

  for (int k = 0; k < N * M; k++) cost[k] = (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0;
  for (int i = 0; i < N; i++) a[i] = 1.0 / N;
  for (int j = 0; j < M; j++) b[j] = 1.0 / M;
  pb = OTTestProblem(N, M, cost, a, b);
  cr_assert(OTSolverCreate(PETSC_COMM_SELF, &solver) == 0);
  cr_assert(OTSolverSetProblem(solver, pb) == 0);
  solver->eps             = 0.01;
  solver->newton->density = 1.0; /* about n + m entries by threshold, plus every row's and column's largest */
  solver->newton->shift   = 1e-2;
  cr_assert(OTSolverSetUp(solver) == 0);
  cr_assert(OTNewtonDirection(solver, &info) == 0);
  cr_assert(info.kept >= N + M && info.kept <= 4 * (N + M), "kept %lld", (long long)info.kept);
  cr_assert(info.slope > 0);
  OTSolverDestroy(&solver);
  OTProblemDestroy(&pb);
}
