/* Certified bounds on tiny problems whose exact OT cost is known. */
#include "test_common.h"

TestSuite(bounds, .init = OTTestInit, .fini = OTTestFini);

/* 2 x 2, a = b = (1/2, 1/2), C = [[0, 1], [2, 0]], eps = 1, f = g = 0: P = [[1, e^-1], [e^-2, 1]].
   The Altschuler-Weed-Rigollet rounding worked by hand:
     x = a / P1 = (1/(2(1+e^-1)), 1/(2(1+e^-2))),  X = diag(x) P,
     y = min(1, b / X^T 1) = (1, y1) with y1 = 1/(2 X_01 + 2 X_11),  Y = X diag(y),
     err_a = a - Y1, err_b = (b_0 - Y_00 - Y_10, 0), and the correction puts err_a into column 0,
   so the rounded cost is Y_01 + 2 Y_10 + 2 err_a1. The exact OT cost is 0 (the diagonal plan). */
Test(bounds, two_by_two_by_hand)
{
  const double cost[4] = {0, 1, 2, 0}, half[2] = {0.5, 0.5}, zero[2] = {0, 0};
  OTProblem    pb = OTTestProblem(2, 2, cost, half, half);
  double       e1 = exp(-1.0), e2 = exp(-2.0);
  double       x0 = 0.5 / (1 + e1), x1 = 0.5 / (1 + e2);
  double       X01 = x0 * e1, X10 = x1 * e2, X11 = x1;
  double       y1  = 0.5 / (X01 + X11);
  double       Y01 = X01 * y1, Y10 = X10, Y11 = X11 * y1;
  double       err_a1         = 0.5 - (Y10 + Y11);
  double       expected_upper = Y01 + 2 * Y10 + 2 * err_a1;
  double       lower, upper;

  cr_assert(y1 < 1.0 && x0 < 1.0); /* the case the hand computation assumes */
  cr_assert(OTComputeBounds(pb, 1.0, zero, zero, &lower, &upper) == 0);
  cr_assert_float_eq(upper, expected_upper, 1e-14, "upper %.17g, by hand %.17g", upper, expected_upper);
  cr_assert_float_eq(lower, 0.0, 1e-15);
  OTProblemDestroy(&pb);
}

/* 3 x 3 with uniform weights: the exact OT cost is the best permutation / 3 (Birkhoff). For arbitrary
   potentials the bounds must bracket it. */
Test(bounds, bracket_the_assignment_optimum)
{
  const double third[3]    = {1.0 / 3, 1.0 / 3, 1.0 / 3};
  const int    perms[6][3] = {
       {0, 1, 2},
       {0, 2, 1},
       {1, 0, 2},
       {1, 2, 0},
       {2, 0, 1},
       {2, 1, 0}
  };
  unsigned seed = 12345;

  for (int trial = 0; trial < 50; trial++) {
    double    cost[9], f[3], g[3], lower, upper, best = INFINITY;
    OTProblem pb;

    for (int k = 0; k < 9; k++) cost[k] = (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0;
    for (int k = 0; k < 3; k++) {
      f[k] = (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0 - 0.5;
      g[k] = (double)(seed = seed * 1103515245u + 12345u) / 4294967296.0 - 0.5;
    }
    for (int p = 0; p < 6; p++) best = fmin(best, (cost[perms[p][0]] + cost[3 + perms[p][1]] + cost[6 + perms[p][2]]) / 3.0);
    pb = OTTestProblem(3, 3, cost, third, third);
    cr_assert(OTComputeBounds(pb, 0.1, f, g, &lower, &upper) == 0);
    cr_assert(lower <= best + 1e-14 && best <= upper + 1e-14, "trial %d: %.17g <= %.17g <= %.17g fails", trial, lower, best, upper);
    OTProblemDestroy(&pb);
  }
}
