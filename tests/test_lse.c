/* The (max, scaled sum) log-sum-exp and its merge, against log(sum(exp)) computed directly. */
#include "test_common.h"

TestSuite(lse, .init = OTTestInit, .fini = OTTestFini);

static OTLogSum Single(double x)
{
  OTLogSum s = {x, 1.0};
  return s;
}

Test(lse, merge_equals_direct_sum)
{
  const double xs[]   = {-3.0, 0.5, 2.25, -700.0, 1.0};
  OTLogSum     acc    = {-INFINITY, 0.0};
  double       direct = 0.0;

  for (int k = 0; k < 5; k++) {
    OTLogSum term = Single(xs[k]);
    OTLogSumMerge(&acc, &term);
    direct += exp(xs[k]);
  }
  cr_assert_float_eq(OTLogSumValue(&acc), log(direct), 1e-14);
}

Test(lse, merge_of_partial_sums_is_order_independent)
{
  /* two "ranks" hold halves of a column; merging either way gives the same value */
  OTLogSum left = {-INFINITY, 0.0}, right = {-INFINITY, 0.0}, lr, rl;
  double   direct = 0.0;

  for (int k = 0; k < 10; k++) {
    OTLogSum term = Single(0.37 * k - 2.0);
    OTLogSumMerge(k < 4 ? &left : &right, &term);
    direct += exp(0.37 * k - 2.0);
  }
  lr = left;
  OTLogSumMerge(&lr, &right);
  rl = right;
  OTLogSumMerge(&rl, &left);
  cr_assert_float_eq(OTLogSumValue(&lr), log(direct), 1e-14);
  cr_assert_float_eq(OTLogSumValue(&rl), log(direct), 1e-14);
}

Test(lse, no_overflow_or_underflow_far_from_zero)
{
  /* exp(1000) overflows and exp(-1000) underflows, but their log-sum-exp is representable */
  OTLogSum big = Single(1000.0), big2 = Single(1000.0 + log(3.0)), tiny = Single(-1000.0), tiny2 = Single(-1000.0);

  OTLogSumMerge(&big, &big2);
  cr_assert_float_eq(OTLogSumValue(&big), 1000.0 + log(4.0), 1e-12);
  OTLogSumMerge(&tiny, &tiny2);
  cr_assert_float_eq(OTLogSumValue(&tiny), -1000.0 + log(2.0), 1e-12);
}

Test(lse, empty_is_neutral)
{
  OTLogSum empty = {-INFINITY, 0.0}, one = Single(2.0), acc = {-INFINITY, 0.0};

  cr_assert(isinf(OTLogSumValue(&empty)) && OTLogSumValue(&empty) < 0);
  OTLogSumMerge(&one, &empty);
  cr_assert_float_eq(OTLogSumValue(&one), 2.0, 1e-15);
  OTLogSumMerge(&acc, &one);
  cr_assert_float_eq(OTLogSumValue(&acc), 2.0, 1e-15);
}
