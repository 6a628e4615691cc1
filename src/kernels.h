/* Rank-local numerical kernels, written so that gcc vectorises them (no libm calls in the loops). */
#ifndef OTKERNELS_H
#define OTKERNELS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Below this a sum of exponentials is treated as underflowed and recomputed with an exact shift. */
#define OT_TINY 1e-280

/* Attribute that compiles a hot loop three times, for AVX-512 (x86-64-v4: 8 doubles a vector), AVX2+FMA and baseline
   x86-64, chosen at load time. On this project's machine (a Xeon with AVX-512, 2 ranks) the AVX-512 clones took a
   log-domain sweep over 10k x 10k 3-D points from 0.092 s to 0.059 s and a truncated kernel's sweep with computed
   values (30k + 30k) from 68 ms to 54 ms; sweeps at memory bandwidth (stored kernels, /C) gain nothing (30k + 30k
   with stored values, the scale benchmark's command: solve 13.2-13.4 s against 12.8 s, mostly in PETSc's CG). Elementwise
   results are the same in every clone; sums may be added in another order (their last bits). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
  #define OT_HOT_LOOP __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
  #define OT_HOT_LOOP
#endif

/* c[0] x^(n-1) + c[1] x^(n-2) + ... + c[n-1] by Horner's scheme, unrolled: a chain of multiply-adds (of FMAs where
   contraction is on), as written out by hand. */
static inline double OTHorner(double x, const double *c, size_t n)
{
  double p = c[0];

#pragma GCC unroll 16
  for (size_t k = 1; k < n; k++) p = p * x + c[k];
  return p;
}

/*
  exp(x) in double precision without libm, so that loops over it vectorise.
  Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, then the degree-13 Taylor polynomial of exp(r)
  (truncation error below 0.3466^14/14! < 4e-18 relative), then scaling by 2^k through the exponent
  bits. Measured error against libm's exp: at most 2 ulp on [-708, 709] (tests/test_kernels.c).
  Returns 0 for x < -708 (where exp(x) is below 3.3e-308 and would be denormal), exp(709) ~ 8.2e307 for
  x > 709 (callers treat sums above 1e300 as overflow), NaN for NaN.
*/
static inline double OTExp(double x)
{
  const double log2e = 1.4426950408889634074, ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double shifter = 0x1.8p52;
  double       xc      = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  double       kd      = xc * log2e + shifter;
  union
  {
    double   d;
    uint64_t u;
  } bits;
  double r, p;
  /* 1/13!, 1/12!, ..., 1/2!, 1, 1 */
  static const double ot_exp_taylor[] = {1.0 / 6227020800.0,
                                         1.0 / 479001600.0,
                                         1.0 / 39916800.0,
                                         1.0 / 3628800.0,
                                         1.0 / 362880.0,
                                         1.0 / 40320.0,
                                         1.0 / 5040.0,
                                         1.0 / 720.0,
                                         1.0 / 120.0,
                                         1.0 / 24.0,
                                         1.0 / 6.0,
                                         0.5,
                                         1.0,
                                         1.0};

  bits.d = kd;
  kd -= shifter;
  r      = (xc - kd * ln2_hi) - kd * ln2_lo;
  p      = OTHorner(r, ot_exp_taylor, sizeof(ot_exp_taylor) / sizeof(ot_exp_taylor[0]));
  bits.u = (bits.u + 1023) << 52;
  p *= bits.d;
  return x < -708.0 ? 0.0 : p;
}

/*
  log(x) for a normal positive double x (DBL_MIN <= x < inf), without libm, so that loops over it
  vectorise (with AVX2 too: no 64-bit integer to double conversion; the exponent becomes a double through
  the bits of 2^52 + e). x = 2^e r with r in [sqrt(1/2), sqrt(2)); log r = 2 atanh(t), t = (r - 1)/(r + 1),
  |t| <= 0.1716, by its odd Taylor series to t^21 (truncation below t^22/23 < 6e-19 relative); e log 2 in
  two parts. Measured error against libm's log: a few ulp (tests/test_kernels.c). Zero, subnormal, infinite
  and NaN arguments give meaningless results: callers exclude them.
*/
static inline double OTLog(double x)
{
  const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10, sqrt2 = 1.4142135623730951;
  union
  {
    double   d;
    uint64_t u;
  } bits, exponent;
  double              r, e, t, t2, p, big;
  static const double ot_atanh_taylor[] = {1.0 / 21, 1.0 / 19, 1.0 / 17, 1.0 / 15, 1.0 / 13,
                                           1.0 / 11, 1.0 / 9,  1.0 / 7,  1.0 / 5,  1.0 / 3}; /* odd series of atanh / t, in t^2 */

  bits.d     = x;
  exponent.u = 0x4330000000000000ULL | (bits.u >> 52); /* 2^52 + biased exponent, exactly */
  e          = exponent.d - (4503599627370496.0 + 1023.0);
  bits.u     = (bits.u & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL; /* r in [1, 2) */
  r          = bits.d;
  big        = r > sqrt2 ? 1.0 : 0.0;
  r          = r * (1.0 - 0.5 * big); /* r / 2 (exact) when above sqrt(2) */
  e          = e + big;
  t          = (r - 1.0) / (r + 1.0);
  t2         = t * t;
  p          = OTHorner(t2, ot_atanh_taylor, sizeof(ot_atanh_taylor) / sizeof(ot_atanh_taylor[0])) * t2;
  return e * ln2_hi + (e * ln2_lo + (2.0 * t + 2.0 * t * p));
}

/* sum_j x[j], in eight interleaved partial sums so that it vectorises without -ffast-math. */
static inline double OTSum(int64_t m, const double *restrict x)
{
  double  part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0.0;
  int64_t j = 0;

  for (; j + 8 <= m; j += 8)
    for (int k = 0; k < 8; k++) part[k] += x[j + k];
  for (; j < m; j++) sum += x[j];
  return sum + (((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7])));
}

/* out[j] = exp((f_i + g[j] - cost[j]) / eps) for one row; returns the row's sum. */
static inline double OTRowPlan(int64_t m, double f_i, const double *restrict g, const double *restrict cost, double inv_eps, double *restrict out)
{
  for (int64_t j = 0; j < m; j++) out[j] = OTExp(((f_i + g[j]) - cost[j]) * inv_eps);
  return OTSum(m, out);
}

/*
  Row kernels over stored rows whose entries are TYPE (double, or float for a single-precision kernel),
  accumulated in double:
    OTAxpy:  col_sum[j] += scale * row[j]
    OTDot:   sum_j x[j] y[j], in eight interleaved partial sums so that it vectorises without -ffast-math
    OTDot4:  the sums of four rows at once, sum_j row_r[j] v[j]: each v[j] is loaded once for the four rows
    OTAxpy4: col_sum[j] += sum_r scale[r] row_r[j], one load and store of col_sum[j] for four rows
  The kernel sweep takes its rows four at a time: OTDot4 streams them from memory, then OTAxpy4 reads them
  again from cache (4 rows of m entries: 256 kB at m = 8000, within a 512 kB L2), so v and the column sums
  cross the cache a quarter as often as row by row.
*/
/* Four doubles as one value (GCC and Clang vector extensions): the four-row kernels are written with it because
   gcc's vectoriser turns their loops into shuffles (measured: half the speed of one row at a time in cache). */
typedef double       OTVec4 __attribute__((vector_size(4 * sizeof(double))));
typedef float        OTVec4Float __attribute__((vector_size(4 * sizeof(float))));
static inline OTVec4 OTLoad4(const double *p)
{
  OTVec4 x;

  memcpy(&x, p, sizeof(x)); /* unaligned */
  return x;
}
static inline OTVec4 OTLoad4Single(const float *p)
{
  OTVec4Float x;

  memcpy(&x, p, sizeof(x));
  return __builtin_convertvector(x, OTVec4);
}

#define OT_DEFINE_ROW_KERNELS(SUFFIX, TYPE) \
  static inline void OTAxpy##SUFFIX(int64_t m, double scale, const TYPE *restrict row, double *restrict col_sum) \
  { \
    for (int64_t j = 0; j < m; j++) col_sum[j] += scale * (double)row[j]; \
  } \
  static inline double OTDot##SUFFIX(int64_t m, const TYPE *restrict x, const double *restrict y) \
  { \
    double  part[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0.0; \
    int64_t j = 0; \
    for (; j + 8 <= m; j += 8) \
      for (int k = 0; k < 8; k++) part[k] += (double)x[j + k] * y[j + k]; \
    for (; j < m; j++) sum += (double)x[j] * y[j]; \
    return sum + (((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]))); \
  } \
  static inline void OTDot4##SUFFIX(int64_t m, const TYPE *restrict r0, const TYPE *restrict r1, const TYPE *restrict r2, const TYPE *restrict r3, \
                                    const double *restrict v, double sums[4]) \
  { \
    OTVec4  p0 = {0, 0, 0, 0}, p1 = {0, 0, 0, 0}, p2 = {0, 0, 0, 0}, p3 = {0, 0, 0, 0}; \
    double  t[4] = {0, 0, 0, 0}; \
    int64_t j    = 0; \
    for (; j + 4 <= m; j += 4) { \
      OTVec4 vj = OTLoad4(v + j); \
      p0 += OTLoad4##SUFFIX(r0 + j) * vj; \
      p1 += OTLoad4##SUFFIX(r1 + j) * vj; \
      p2 += OTLoad4##SUFFIX(r2 + j) * vj; \
      p3 += OTLoad4##SUFFIX(r3 + j) * vj; \
    } \
    for (; j < m; j++) { \
      t[0] += (double)r0[j] * v[j]; \
      t[1] += (double)r1[j] * v[j]; \
      t[2] += (double)r2[j] * v[j]; \
      t[3] += (double)r3[j] * v[j]; \
    } \
    sums[0] = ((p0[0] + p0[2]) + (p0[1] + p0[3])) + t[0]; \
    sums[1] = ((p1[0] + p1[2]) + (p1[1] + p1[3])) + t[1]; \
    sums[2] = ((p2[0] + p2[2]) + (p2[1] + p2[3])) + t[2]; \
    sums[3] = ((p3[0] + p3[2]) + (p3[1] + p3[3])) + t[3]; \
  } \
  static inline void OTAxpy4##SUFFIX(int64_t m, const double scale[4], const TYPE *restrict r0, const TYPE *restrict r1, const TYPE *restrict r2, \
                                     const TYPE *restrict r3, double *restrict col_sum) \
  { \
    int64_t j = 0; \
    for (; j + 4 <= m; j += 4) { \
      OTVec4 c = OTLoad4(col_sum + j); \
      c += (scale[0] * OTLoad4##SUFFIX(r0 + j) + scale[1] * OTLoad4##SUFFIX(r1 + j)) + \
           (scale[2] * OTLoad4##SUFFIX(r2 + j) + scale[3] * OTLoad4##SUFFIX(r3 + j)); \
      memcpy(col_sum + j, &c, sizeof(c)); \
    } \
    for (; j < m; j++) col_sum[j] += (scale[0] * (double)r0[j] + scale[1] * (double)r1[j]) + (scale[2] * (double)r2[j] + scale[3] * (double)r3[j]); \
  }

OT_DEFINE_ROW_KERNELS(, double)
OT_DEFINE_ROW_KERNELS(Single, float)

#endif
