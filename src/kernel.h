/*
  The row-kernel layer (kernel.c): the only code that knows how the entries of a row of C or of
  P = exp((f_i + g_j - C_ij)/eps) are obtained: from the stored rows of /C, from point clouds (costs computed in
  cache-sized tiles, never stored), or from the stored absorbed kernel K = exp((f_ref + g_ref - C)/eps) in double
  or float precision, where P = diag(u) K diag(v). Every pass over the rows (Sinkhorn's sweeps, Newton's survey,
  kept entries and line-search trials, the evaluation, both bounds, the plan writer) asks this layer for its rows
  and works on them with the row operations below.

  A row is a view (OTRow): len entries at columns cols[0..len) (cols = NULL: all m columns in order, a dense row)
  with values val. The row operations take both forms, so a representation with sparse rows (a truncated
  kernel, a column list per row) serves every pass without changing it; the dense form keeps the vectorised
  kernels of kernels.h. Rows of C and P asked for the same row i have the same columns.
*/
#ifndef OTKERNEL_H
#define OTKERNEL_H

#include "kernels.h"
#include <float.h>

/* A view of one row: len entries, at columns cols (NULL: columns 0..len-1, len = m), values val; sum is the sum of
   the values where the producing call says so. */
typedef struct {
  PetscInt         len;
  const PetscInt  *cols;
  const PetscReal *val;
  PetscReal        sum;
} OTRow;

/* Scalings of the stored kernel beyond this (or below its inverse) are absorbed into the potentials. A float kernel
   stores entries below FLT_MIN (1.2e-38) as 0: with scalings within 1e10 the plan entries it drops are below 1.2e-18. */
#define OT_SCALING_MAX        1e100
#define OT_SCALING_MAX_SINGLE 1e10

static inline PetscBool OTScalingInRange(PetscReal x, PetscReal scaling_max)
{
  return (PetscBool)(x >= 1.0 / scaling_max && x <= scaling_max);
}

/* The stored absorbed kernel of a solver: n_local x m rows of K = exp((f_ref + g_ref - C)/eps), in double (k) or,
   while the single-precision phase lasts, in float (k_single); eps is the eps k was built for (0: not built). */
typedef struct {
  PetscInt   m;
  PetscReal *k;
  float     *k_single;
  PetscReal *f_ref, *g_ref;
  PetscReal  eps;
} OTKernelStore;

/* Four rows of a stored kernel, taken together by the sweeps (past the last row: the last row again, with scale 0). */
typedef struct {
  PetscInt         len[4];  /* entries of each row (dense: all m) */
  const PetscInt  *cols[4]; /* their columns; NULL: dense */
  const PetscReal *k[4];
  const float     *k_single[4];
} OTRowQuad;

/* |x - y|^P from s = |x - y|^2 as exp((P/2) log s), with the vectorisable OTExp and OTLog of kernels.h
   (libm's pow would make the loop scalar, 7x slower measured): within a few ulp of pow for the costs
   below 1e300 that a problem may have (checked at load). s below DBL_MIN (points closer than 1.5e-154)
   counts as coincident: cost 0. */
static inline PetscReal OTPnormFromSquared(PetscReal s, PetscReal half_power)
{
  return s >= DBL_MIN ? OTExp(half_power * OTLog(s)) : 0.0;
}

/* The cost of a point-cloud pair from its squared distance s, as the rows compute it (half_power: P/2 of pnorm:P). */
static inline PetscReal OTKernelCostFromSquared(OTCostKind kind, PetscReal half_power, PetscReal s)
{
  return kind == OT_COST_EUCLIDEAN ? PetscSqrtReal(s) : (kind == OT_COST_PNORM ? OTPnormFromSquared(s, half_power) : s);
}

/* --- rows (kernel.c) --- */
/* Row i_local of C: the stored row of /C, or computed into buffer (m entries) from the points. Rank-local. */
PETSC_EXTERN OTRow OTKernelCostRow(OTProblem problem, PetscInt i_local, PetscReal *buffer);
/* Row i_local of P at (f_i, g) by exponentials into out, with its sum; for point clouds the costs are computed tile
   by tile in cache, fused with the exponentials. Rank-local. */
PETSC_EXTERN OTRow OTKernelPlanRow(OTProblem problem, PetscInt i_local, PetscReal f_i, const PetscReal *g, PetscReal inv_eps, PetscReal *out);
/* The row of P over the columns of a row of C already at hand, into out, with its sum. Rank-local. */
PETSC_EXTERN OTRow OTKernelPlanFromCost(const OTRow *cost, PetscReal f_i, const PetscReal *g, PetscReal inv_eps, PetscReal *out);
/* log P over the columns of a row of C: (f_i + g_j - C_ij) * inv_eps, into out (no sum). Rank-local. */
PETSC_EXTERN OTRow OTKernelLogPlanFromCost(const OTRow *cost, PetscReal f_i, const PetscReal *g, PetscReal inv_eps, PetscReal *out);
/* Row i_local of P = u_i K_i diag(v) on the stored double kernel, into out, with its sum. Rank-local. */
PETSC_EXTERN OTRow OTKernelScaledRow(const OTKernelStore *store, PetscInt i_local, PetscReal u_i, const PetscReal *v, PetscReal *out);
/* Row i_local of the stored double kernel as it is (out is where a kernel pass writes it when it rebuilds it). */
PETSC_EXTERN PetscReal *OTKernelStoredRow(const OTKernelStore *store, PetscInt i_local);
/* Stores row i_local of the float kernel from a double row (entries below FLT_MIN as 0). */
PETSC_EXTERN void OTKernelStoreSingle(OTKernelStore *store, PetscInt i_local, const OTRow *row);
/* out[k] = C(i_local, columns[k]). Rank-local. */
PETSC_EXTERN void OTKernelCostEntries(OTProblem problem, PetscInt i_local, PetscInt count, const PetscInt columns[], PetscReal out[]);
/* Sets cost_max of a point-cloud problem to the exact largest cost over all pairs. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemComputePointsCostMax(OTProblem problem);

/* --- row operations (inline: the passes' inner loops) --- */
#define OT_ROW_COLUMN(row, k) ((row)->cols ? (row)->cols[k] : (k))

/* col_sum[j] += scale * P_ij over the row */
static inline void OTRowAxpy(const OTRow *row, PetscReal scale, PetscReal *restrict col_sum)
{
  if (!row->cols) OTAxpy(row->len, scale, row->val, col_sum);
  else
    for (PetscInt k = 0; k < row->len; k++) col_sum[row->cols[k]] += scale * row->val[k];
}

/* sum_j row_j y[j] (y indexed by column) */
static inline PetscReal OTRowDot(const OTRow *row, const PetscReal *restrict y)
{
  PetscReal sum = 0.0;

  if (!row->cols) return OTDot(row->len, row->val, y);
  for (PetscInt k = 0; k < row->len; k++) sum += row->val[k] * y[row->cols[k]];
  return sum;
}

/* sum_k x_k y_k of two rows with the same columns (a row of P and the row of C it came from) */
static inline PetscReal OTRowDotRow(const OTRow *x, const OTRow *y)
{
  return OTDot(x->len, x->val, y->val);
}

/* The row's largest value and its column (a row with at least one entry, values >= 0); in eight interleaved
   partial maxima so that it vectorises (one running maximum is a chain of dependent comparisons). */
static inline PetscReal OTRowMax(const OTRow *row, PetscInt *column)
{
  const PetscReal *x       = row->val;
  PetscReal        part[8] = {x[0], x[0], x[0], x[0], x[0], x[0], x[0], x[0]}, best = x[0];
  PetscInt         j = 0, k;

  for (; j + 8 <= row->len; j += 8)
    for (int q = 0; q < 8; q++) part[q] = x[j + q] > part[q] ? x[j + q] : part[q];
  for (; j < row->len; j++) best = x[j] > best ? x[j] : best;
  for (int q = 0; q < 8; q++) best = part[q] > best ? part[q] : best;
  for (k = 0; x[k] != best; k++) { }
  *column = OT_ROW_COLUMN(row, k);
  return best;
}

/* Each column's largest entry so far and its row (a double: the blend then vectorises; mixed widths did not). */
static inline void OTRowColumnMax(const OTRow *row, PetscReal row_value, PetscReal *restrict col_max_value, PetscReal *restrict col_max_row)
{
  if (!row->cols) {
    for (PetscInt j = 0; j < row->len; j++) { /* branch-free, so that it vectorises */
      PetscBool larger = (PetscBool)(row->val[j] > col_max_value[j]);

      col_max_value[j] = larger ? row->val[j] : col_max_value[j];
      col_max_row[j]   = larger ? row_value : col_max_row[j];
    }
    return;
  }
  for (PetscInt k = 0; k < row->len; k++) {
    PetscInt j = row->cols[k];

    if (row->val[k] > col_max_value[j]) {
      col_max_value[j] = row->val[k];
      col_max_row[j]   = row_value;
    }
  }
}

/* col_min[j] = min(col_min[j], C_ij - shift) over the row (a row of C) */
static inline void OTRowColumnMin(const OTRow *row, PetscReal shift, PetscReal *restrict col_min)
{
  for (PetscInt k = 0; k < row->len; k++) {
    PetscInt j = OT_ROW_COLUMN(row, k);

    col_min[j] = PetscMin(col_min[j], row->val[k] - shift);
  }
}

/* min_j (C_ij - y[j]) over the row (a row of C); +inf for an empty row */
static inline PetscReal OTRowMinMinus(const OTRow *row, const PetscReal *restrict y)
{
  PetscReal least = INFINITY;

  for (PetscInt k = 0; k < row->len; k++) least = PetscMin(least, row->val[k] - y[OT_ROW_COLUMN(row, k)]);
  return least;
}

/* The columns whose value is >= bound, appended to kept (room for row->len); returns how many. Branch-free:
   which entries pass is unpredictable. */
static inline PetscInt OTRowSelect(const OTRow *row, PetscReal bound, PetscInt *restrict kept)
{
  PetscInt count = 0;

  for (PetscInt k = 0; k < row->len; k++) {
    kept[count] = OT_ROW_COLUMN(row, k);
    count += (row->val[k] >= bound);
  }
  return count;
}

/* The value of the row at column j (a dense row: val[j]; a sparse row: found in cols, 0 if absent). */
static inline PetscReal OTRowValueAt(const OTRow *row, PetscInt j, PetscReal absent)
{
  if (!row->cols) return row->val[j];
  for (PetscInt k = 0; k < row->len; k++)
    if (row->cols[k] == j) return row->val[k];
  return absent;
}

/* Rows i_local .. i_local + 3 of the stored kernel (double or float), for the four-row sweeps (inline: the sweeps
   take one quad per four rows, and on small problems a call per quad shows in the sweep's time). */
static inline void OTKernelStoredQuad(const OTKernelStore *store, PetscInt n_local, PetscInt i_local, OTRowQuad *quad)
{
  const size_t m = (size_t)store->m;

  for (PetscInt r = 0; r < 4; r++) { /* past the last row: repeat it (the sweeps give it scale 0) */
    size_t row = (size_t)(i_local + PetscMin(r, n_local - 1 - i_local));

    quad->len[r]      = store->m;
    quad->cols[r]     = NULL;
    quad->k[r]        = store->k ? store->k + row * m : NULL;
    quad->k_single[r] = store->k_single ? store->k_single + row * m : NULL;
  }
}

/* The four-row sweep kernels on a quad: sums[r] = sum_j K_rj v_j, then col_sum[j] += sum_r scale[r] K_rj. */
static inline void OTQuadDot(const OTRowQuad *q, const PetscReal *restrict v, PetscReal sums[4])
{
  if (!q->cols[0]) {
    if (q->k_single[0]) OTDot4Single(q->len[0], q->k_single[0], q->k_single[1], q->k_single[2], q->k_single[3], v, sums);
    else OTDot4(q->len[0], q->k[0], q->k[1], q->k[2], q->k[3], v, sums);
    return;
  }
  for (int r = 0; r < 4; r++) {
    sums[r] = 0.0;
    for (PetscInt k = 0; k < q->len[r]; k++) sums[r] += (q->k_single[r] ? (PetscReal)q->k_single[r][k] : q->k[r][k]) * v[q->cols[r][k]];
  }
}
static inline void OTQuadAxpy(const OTRowQuad *q, const PetscReal scale[4], PetscReal *restrict col_sum)
{
  if (!q->cols[0]) {
    if (q->k_single[0]) OTAxpy4Single(q->len[0], scale, q->k_single[0], q->k_single[1], q->k_single[2], q->k_single[3], col_sum);
    else OTAxpy4(q->len[0], scale, q->k[0], q->k[1], q->k[2], q->k[3], col_sum);
    return;
  }
  for (int r = 0; r < 4; r++)
    for (PetscInt k = 0; k < q->len[r]; k++) col_sum[q->cols[r][k]] += scale[r] * (q->k_single[r] ? (PetscReal)q->k_single[r][k] : q->k[r][k]);
}

#endif
