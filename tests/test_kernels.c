/* The vectorisable exponential, logarithm and row kernels, against libm. */
#include "test_common.h"
#include "kernels.h"
#include "kernel.h"
#include <float.h>

TestSuite(kernels, .init = OTTestInit, .fini = OTTestFini);

Test(kernels, exp_within_two_ulp_of_libm)
{
  double worst = 0.0;

  for (long k = 0; k <= 2000000; k++) {
    double x = -708.0 + 1417.0 * (double)k / 2000000.0, want = exp(x), got = OTExp(x);
    double ulp = nextafter(want, INFINITY) - want;

    if (fabs(got - want) / ulp > worst) worst = fabs(got - want) / ulp;
  }
  cr_assert(worst <= 2.0, "OTExp is %.2f ulp from libm's exp", worst);
}

Test(kernels, exp_edges)
{
  cr_assert_eq(OTExp(-708.5), 0.0);
  cr_assert_eq(OTExp(-1e6), 0.0);
  cr_assert_eq(OTExp(0.0), 1.0);
  cr_assert(isnan(OTExp(NAN)));
  cr_assert(OTExp(1e6) > 1e300);
}

/* OTLog over the whole normal range (log-spaced, plus the neighbourhood of 1, of sqrt(2) and of powers of
   two, where the reduction switches), against libm, in ulp of the result (or of 1e-300 near log = 0). */
Test(kernels, log_within_a_few_ulp_of_libm)
{
  double worst = 0.0, worst_x = 0.0;

  for (long k = 0; k <= 2000000; k++) {
    double xs[4] = {exp(-708.3 + 1417.0 * (double)k / 2000000.0), 1.0 + (k - 1000000) * 1e-12, 1.4142135623730951 + (k - 1000000) * 1e-12,
                    ldexp(1.0 + (k % 1000 - 500) * 1e-13, (int)(k % 2000) - 1000)};

    for (int q = 0; q < 4; q++) {
      double x = xs[q], want = log(x), got = OTLog(x);
      double ulp = fmax(nextafter(fabs(want), INFINITY) - fabs(want), 1e-300);

      if (fabs(got - want) / ulp > worst) {
        worst   = fabs(got - want) / ulp;
        worst_x = x;
      }
    }
  }
  cr_assert(worst <= 4.0, "OTLog is %.2f ulp from libm's log (at x = %.17g)", worst, worst_x);
  cr_assert_eq(OTLog(1.0), 0.0);
  cr_assert_float_eq(OTLog(DBL_MIN), log(DBL_MIN), 1e-15 * 708);
  cr_assert_float_eq(OTLog(DBL_MAX), log(DBL_MAX), 1e-15 * 710);
}

Test(kernels, row_plan_matches_direct)
{
  enum {
    M = 1003
  };
  double g[M], cost[M], out[M], eps = 0.05, f = 0.3, direct = 0.0, sum, dot_direct = 0.0;

  for (int j = 0; j < M; j++) {
    g[j]    = sin(0.1 * j);
    cost[j] = 1.0 + cos(0.37 * j);
  }
  sum = OTRowPlan(M, f, g, cost, 1.0 / eps, out);
  for (int j = 0; j < M; j++) {
    double p = exp(((f + g[j]) - cost[j]) * (1.0 / eps)); /* the same argument, rounded the same way */

    cr_assert_float_eq(out[j], p, 5e-16 * p);
    direct += p;
    dot_direct += p * cost[j];
  }
  cr_assert_float_eq(sum, direct, 1e-13 * direct);
  cr_assert_float_eq(OTDot(M, out, cost), dot_direct, 1e-13 * dot_direct);
}

Test(kernels, row_min_minus_is_minus_the_row_shift)
{
  double g[5] = {1, 2, 3, 4, 5}, cost[5] = {0.5, 0.1, 4.0, 1.0, 7.0};
  OTRow  row = {5, NULL, cost, 0.0};

  cr_assert_eq(OTRowMinMinus(&row, g), -3.0); /* min(-0.5, -1.9, 1, -3, 2): -max_j (g_j - C_ij) */
}

/* Every row operation on a sparse row (a column list) against the same operation on the dense row that holds its
   entries at those columns and zeros (or, for minima and maxima, neutral values) elsewhere: the row layer's two
   forms must agree, so that a sparse representation serves the passes unchanged. */
Test(kernels, sparse_rows_agree_with_dense_rows)
{
  enum {
    M = 37,
    K = 11
  };
  PetscInt cols[K], kept[M], kept_dense[M], count, count_dense, arg, arg_dense;
  double   val[K], dense[M], y[M], axpy[M], axpy_dense[M], cmax[M], crow[M], cmax_d[M], crow_d[M], cmin[M], cmin_d[M], min_dense[M];
  OTRow    sparse, full;

  for (int k = 0; k < K; k++) {
    cols[k] = (PetscInt)(3 * k + 1); /* 1, 4, ..., 31 */
    val[k]  = 0.25 + 0.5 * sin(1.7 * k) * sin(1.7 * k);
  }
  for (int j = 0; j < M; j++) {
    dense[j]     = 0.0;
    min_dense[j] = INFINITY;
    y[j]         = cos(0.3 * j);
    axpy[j] = axpy_dense[j] = 0.1 * j;
    cmax[j] = cmax_d[j] = 0.3;
    crow[j] = crow_d[j] = -1;
    cmin[j] = cmin_d[j] = 0.6;
  }
  for (int k = 0; k < K; k++) dense[cols[k]] = min_dense[cols[k]] = val[k];
  sparse = (OTRow){K, cols, val, 0.0};
  full   = (OTRow){M, NULL, dense, 0.0};
  OTRowAxpy(&sparse, 0.7, axpy);
  OTRowAxpy(&full, 0.7, axpy_dense);
  for (int j = 0; j < M; j++) cr_assert_float_eq(axpy[j], axpy_dense[j], 1e-15);
  cr_assert_float_eq(OTRowDot(&sparse, y), OTRowDot(&full, y), 1e-14);
  cr_assert_eq(OTRowMax(&sparse, &arg), OTRowMax(&full, &arg_dense));
  cr_assert_eq(arg, arg_dense);
  OTRowColumnMax(&sparse, 5.0, cmax, crow);
  OTRowColumnMax(&full, 5.0, cmax_d, crow_d);
  for (int j = 0; j < M; j++) cr_assert(cmax[j] == cmax_d[j] && crow[j] == crow_d[j], "column %d", j);
  {
    OTRow full_min = {M, NULL, min_dense, 0.0}; /* absent entries as +inf: they never lower a minimum */

    OTRowColumnMin(&sparse, 0.1, cmin);
    OTRowColumnMin(&full_min, 0.1, cmin_d);
    for (int j = 0; j < M; j++) cr_assert_eq(cmin[j], cmin_d[j]);
    cr_assert_eq(OTRowMinMinus(&sparse, y), OTRowMinMinus(&full_min, y));
  }
  count       = OTRowSelect(&sparse, 0.5, kept);
  count_dense = OTRowSelect(&full, 0.5, kept_dense);
  cr_assert_eq(count, count_dense);
  cr_assert(count > 0 && count < K);
  for (PetscInt k = 0; k < count; k++) cr_assert_eq(kept[k], kept_dense[k]);
  for (int j = 0; j < M; j++) cr_assert_eq(OTRowValueAt(&sparse, j, 0.0), dense[j]);
  {
    double g[M], cost_val[K], cost_dense[M], out[M], out_dense[M];
    OTRow  cost_sparse, cost_full, plan, plan_dense;

    for (int j = 0; j < M; j++) {
      g[j]          = 0.2 * sin(0.5 * j);
      cost_dense[j] = 1.0 + cos(0.37 * j);
    }
    for (int k = 0; k < K; k++) cost_val[k] = cost_dense[cols[k]];
    cost_sparse = (OTRow){K, cols, cost_val, 0.0};
    cost_full   = (OTRow){M, NULL, cost_dense, 0.0};
    plan        = OTKernelPlanFromCost(&cost_sparse, 0.1, g, 1.0 / 0.3, out);
    plan_dense  = OTKernelPlanFromCost(&cost_full, 0.1, g, 1.0 / 0.3, out_dense);
    for (int k = 0; k < K; k++) cr_assert_float_eq(plan.val[k], plan_dense.val[cols[k]], 1e-15 * plan_dense.val[cols[k]]);
    {
      double sum = 0.0;

      for (int k = 0; k < K; k++) sum += out_dense[cols[k]];
      cr_assert_float_eq(plan.sum, sum, 1e-14 * sum);
    }
    cr_assert_float_eq(OTRowDotRow(&plan, &cost_sparse), OTRowDot(&plan, cost_dense), 1e-14);
    plan = OTKernelLogPlanFromCost(&cost_sparse, 0.1, g, 1.0 / 0.3, out);
    for (int k = 0; k < K; k++) cr_assert_float_eq(plan.val[k], ((0.1 + g[cols[k]]) - cost_dense[cols[k]]) / 0.3, 1e-14);
  }
}

/* The four-row sweep kernels on sparse rows against the same rows stored densely. */
Test(kernels, sparse_quads_agree_with_dense_quads)
{
  enum {
    M = 29,
    K = 9
  };
  PetscInt  cols[4][K];
  double    val[4][K], dense[4][M], v[M], sums[4], sums_dense[4], col[M], col_dense[M], scale[4] = {0.5, 1.5, -0.25, 2.0};
  OTRowQuad quad, quad_dense;

  memset(&quad, 0, sizeof(quad));
  memset(&quad_dense, 0, sizeof(quad_dense));

  for (int r = 0; r < 4; r++) {
    for (int j = 0; j < M; j++) dense[r][j] = 0.0;
    for (int k = 0; k < K; k++) {
      cols[r][k]           = (PetscInt)((r + 3 * k) % M);
      val[r][k]            = 1.0 + 0.1 * (r + k);
      dense[r][cols[r][k]] = val[r][k];
    }
    quad.len[r]       = K;
    quad.cols[r]      = cols[r];
    quad.k[r]         = val[r];
    quad_dense.len[r] = M;
    quad_dense.k[r]   = dense[r];
  }
  for (int j = 0; j < M; j++) {
    v[j]   = 0.5 + sin(0.2 * j);
    col[j] = col_dense[j] = 0.0;
  }
  OTQuadDot(&quad, v, sums);
  OTQuadDot(&quad_dense, v, sums_dense);
  for (int r = 0; r < 4; r++) cr_assert_float_eq(sums[r], sums_dense[r], 1e-13);
  OTQuadAxpy(&quad, scale, col);
  OTQuadAxpy(&quad_dense, scale, col_dense);
  for (int j = 0; j < M; j++) cr_assert_float_eq(col[j], col_dense[j], 1e-13);
}
