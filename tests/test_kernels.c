/* The vectorisable exponential, logarithm and row kernels, against libm. */
#include "test_common.h"
#include "kernels.h"
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
  enum { M = 1003 };
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

Test(kernels, row_shift_is_row_max)
{
  double g[5] = {1, 2, 3, 4, 5}, cost[5] = {0.5, 0.1, 4.0, 1.0, 7.0};

  cr_assert_eq(OTRowShift(5, g, cost), 3.0); /* max(0.5, 1.9, -1, 3, -2) */
}
