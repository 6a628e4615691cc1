/* Costs computed from point clouds (cost.c) against brute force written here with libm. */
#include "test_common.h"
#include <float.h>

TestSuite(cost, .init = OTTestInit, .fini = OTTestFini);

static double Uniform(unsigned *seed)
{
  return (double)(*seed = *seed * 1103515245u + 12345u) / 4294967296.0;
}

/* A one-rank point-cloud problem with random points (n x d, m x d) in [-1, 1)^d and the given cost. */
static OTProblem PointProblem(PetscInt n, PetscInt m, PetscInt d, OTCostKind kind, double power, unsigned seed, double **x, double **y)
{
  OTProblem pb;

  *x = malloc(sizeof(double) * n * d);
  *y = malloc(sizeof(double) * m * d);
  for (PetscInt k = 0; k < n * d; k++) (*x)[k] = 2 * Uniform(&seed) - 1;
  for (PetscInt k = 0; k < m * d; k++) (*y)[k] = 2 * Uniform(&seed) - 1;
  cr_assert(OTProblemCreate(PETSC_COMM_SELF, &pb) == 0);
  pb->n = pb->n_local = pb->row_end = n;
  pb->m                             = m;
  pb->dim                           = d;
  pb->cost_kind                     = kind;
  pb->cost_power                    = power;
  cr_assert(PetscMalloc1(n * d, &pb->x) == 0);
  cr_assert(PetscMalloc1(m * d, &pb->y_t) == 0);
  cr_assert(PetscMalloc1(m, &pb->cost_row) == 0);
  for (PetscInt i = 0; i < n * d; i++) pb->x[i] = (*x)[i];
  for (PetscInt j = 0; j < m; j++)
    for (PetscInt k = 0; k < d; k++) pb->y_t[k * m + j] = (*y)[j * d + k];
  return pb;
}

static double BruteCost(const double *x, const double *y, PetscInt d, OTCostKind kind, double power)
{
  double s = 0.0;

  for (PetscInt k = 0; k < d; k++) s += (x[k] - y[k]) * (x[k] - y[k]);
  return kind == OT_COST_SQEUCLIDEAN ? s : (kind == OT_COST_EUCLIDEAN ? sqrt(s) : pow(sqrt(s), power));
}

/* m = 700 spans several tiles and a partial one; d from 1 to 9 covers the four-coordinate passes and their remainders */
Test(cost, rows_entries_and_plans_match_brute_force)
{
  const OTCostKind kinds[3] = {OT_COST_SQEUCLIDEAN, OT_COST_EUCLIDEAN, OT_COST_PNORM};
  const PetscInt   n = 5, m = 700;
  double           g[700], buffer[700], plan[700], entries[3];
  PetscInt         columns[3] = {0, 699, 256};

  for (PetscInt j = 0; j < m; j++) g[j] = 0.3 * sin(0.1 * j);
  for (PetscInt d = 1; d <= 9; d++) {
    for (int q = 0; q < 3; q++) {
      double   *x, *y;
      OTProblem pb = PointProblem(n, m, d, kinds[q], 1.5, 7u + (unsigned)d, &x, &y);

      for (PetscInt i = 0; i < n; i++) {
        const double *row = OTKernelCostRow(pb, i, buffer).val;
        double        sum, direct = 0.0;

        cr_assert(row == buffer);
        for (PetscInt j = 0; j < m; j++) {
          double want = BruteCost(x + i * d, y + j * d, d, kinds[q], 1.5);

          /* pnorm is exp((P/2) log s) with kernels.h's exp and log: a few ulp of the exponent (|(P/2) log s| < 30 here) */
          double tol = (kinds[q] == OT_COST_PNORM ? 64 : 8) * DBL_EPSILON * want;

          cr_assert(fabs(row[j] - want) <= tol, "d=%d kind %d (%d,%d): %.17g, brute force %.17g", (int)d, q, (int)i, (int)j, row[j], want);
        }
        sum = OTKernelPlanRow(pb, i, 0.2, g, 1.0 / 0.07, plan).sum;
        for (PetscInt j = 0; j < m; j++) {
          double want = exp((0.2 + g[j] - row[j]) / 0.07);

          direct += want;
          cr_assert(fabs(plan[j] - want) <= 1e-13 * want, "d=%d kind %d plan (%d,%d): %.17g, libm %.17g", (int)d, q, (int)i, (int)j, plan[j], want);
        }
        cr_assert(fabs(sum - direct) <= 1e-13 * direct);
        OTKernelCostEntries(pb, i, 3, columns, entries);
        for (int c = 0; c < 3; c++) cr_assert(fabs(entries[c] - row[columns[c]]) <= 4 * DBL_EPSILON * row[columns[c]]);
      }
      cr_assert(OTProblemDestroy(&pb) == 0);
      free(x);
      free(y);
    }
  }
}

/* The pruned search for max C must find exactly the brute-force maximum, on clouds where the farthest pair
   is anywhere (uniform points) and where one outlier holds it. */
Test(cost, exact_max_cost)
{
  for (int trial = 0; trial < 12; trial++) {
    PetscInt   n = 40 + 7 * trial, m = 55, d = 1 + trial % 4;
    OTCostKind kind = trial % 3 == 0 ? OT_COST_SQEUCLIDEAN : (trial % 3 == 1 ? OT_COST_EUCLIDEAN : OT_COST_PNORM);
    double    *x, *y, best = 0.0, row[55];
    OTProblem  pb = PointProblem(n, m, d, kind, 0.7, 100u + (unsigned)trial, &x, &y);

    if (trial >= 6) { /* an outlier in X */
      pb->x[(n / 2) * d] = x[(n / 2) * d] = 5.0 + trial;
    }
    for (PetscInt i = 0; i < n; i++) {
      (void)OTKernelCostRow(pb, i, row);
      for (PetscInt j = 0; j < m; j++) best = fmax(best, row[j]);
    }
    cr_assert(OTProblemComputePointsCostMax(pb) == 0);
    cr_assert_eq(pb->cost_max, best, "trial %d: max cost %.17g, brute force over the computed rows %.17g", trial, pb->cost_max, best);
    cr_assert(OTProblemDestroy(&pb) == 0);
    free(x);
    free(y);
  }
}

/* A case built so that the row with the largest bound (X_0, whose farthest bounding-box corner (1,1) is not
   a point of Y) does not hold the maximum: the scan must go on to X_1 (bound 5.84 > 5 found in X_0). */
Test(cost, exact_max_cost_needs_the_second_row)
{
  const double X[6] = {-1.0, -1.0, -1.2, 1.0, 0.5, 0.5}, Y[6] = {0.0, 0.0, 1.0, 0.0, 0.0, 1.0};
  double      *x, *y;
  OTProblem    pb = PointProblem(3, 3, 2, OT_COST_SQEUCLIDEAN, 2.0, 1u, &x, &y);

  for (int k = 0; k < 6; k++) pb->x[k] = X[k];
  for (int j = 0; j < 3; j++)
    for (int k = 0; k < 2; k++) pb->y_t[k * 3 + j] = Y[j * 2 + k];
  cr_assert(OTProblemComputePointsCostMax(pb) == 0);
  cr_assert_float_eq(pb->cost_max, 2.2 * 2.2 + 1.0, 1e-15, "max cost %.17g, expected |(-1.2, 1) - (1, 0)|^2 = 5.84", pb->cost_max);
  cr_assert(OTProblemDestroy(&pb) == 0);
  free(x);
  free(y);
}

Test(cost, parses_the_cost_attribute)
{
  OTCostKind kind;
  PetscReal  power;
  PetscBool  valid;

  cr_assert(OTCostParse("sqeuclidean", &kind, &power, &valid) == 0 && valid && kind == OT_COST_SQEUCLIDEAN);
  cr_assert(OTCostParse("euclidean", &kind, &power, &valid) == 0 && valid && kind == OT_COST_EUCLIDEAN);
  cr_assert(OTCostParse("pnorm:1.5", &kind, &power, &valid) == 0 && valid && kind == OT_COST_PNORM && power == 1.5);
  cr_assert(OTCostParse("pnorm:2", &kind, &power, &valid) == 0 && valid && kind == OT_COST_SQEUCLIDEAN);
  cr_assert(OTCostParse("pnorm:1", &kind, &power, &valid) == 0 && valid && kind == OT_COST_EUCLIDEAN);
  cr_assert(OTCostParse("pnorm:0.25", &kind, &power, &valid) == 0 && valid && kind == OT_COST_PNORM && power == 0.25);
  const char *bad[] = {"foo", "pnorm:-1", "pnorm:0", "pnorm:", "pnorm:1.5x", "pnorm:inf", "pnorm:nan", "Euclidean", "", "sqeuclidean "};
  for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
    cr_assert(OTCostParse(bad[k], &kind, &power, &valid) == 0);
    cr_assert(!valid, "'%s' accepted", bad[k]);
  }
}
