/*
  The row-kernel layer (kernel.h): rows of C and of P from stored costs, point clouds or the stored absorbed kernel.

  A point-cloud problem keeps its owned points of X (n_local x d, row-major) and all of Y transposed
  (d x m), so that the costs of one row are passes over contiguous vectors of length m,
    s_j = sum_k (x_ik - Yt[k][j])^2   (four coordinates per pass, added in order),
  which gcc vectorises, and which is exact where |x|^2 + |y|^2 - 2 x.y would cancel. The row is built
  tile by tile (OT_COST_TILE columns, in L1 cache): the passes over a tile, then the transform (sqrt,
  or exp((P/2) log s) for pnorm:P), then, in OTKernelPlanRow, the exponentials of the tile and their
  sum; so a Sinkhorn sweep never writes a cost row to memory. Nothing of size n x m exists.

  This file is compiled with floating-point contraction (a*b + c as one FMA where the target has it: the
  AVX2 and AVX-512 clones of OT_HOT_LOOP): the exponential's polynomial is then a chain of FMAs, measured 1.3x faster
  per entry (tests/bench_costs.c) and no less accurate. The project is otherwise ISO C, where gcc does not
  contract. So a cost computed here may differ from the same formula elsewhere in its last bit: differences
  at the level of rounding, far below any tolerance.
*/
#pragma GCC optimize("fp-contract=fast")
#include "otimpl.h"
#include "kernels.h"
#include "celltree.h"
#include <float.h>

/* Columns per tile: 2 KiB of doubles, so that the tile stays in L1 through its d passes. */
#define OT_COST_TILE 256


/* out[jj] = cost(x, y_(j0 + jj)) for jj < len: the sum of squares over the d coordinates, then the transform. */
static inline void CostTile(const OTProblem pb, const PetscReal *x, PetscInt j0, PetscInt len, PetscReal *restrict out)
{
  const PetscInt   m = pb->m, d = pb->dim;
  const PetscReal *y = pb->y_t + j0;
  PetscInt         k;

  {
    const PetscReal x0 = x[0];

    for (PetscInt jj = 0; jj < len; jj++) {
      PetscReal t = x0 - y[jj];

      out[jj] = t * t;
    }
  }
  k = 1;
  /* four coordinates per pass (added in the same order as one at a time): a quarter of the loads and stores of out */
  for (; k + 4 <= d; k += 4) {
    const PetscReal  x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
    const PetscReal *y0 = y + (size_t)k * (size_t)m, *y1 = y0 + m, *y2 = y1 + m, *y3 = y2 + m;

    for (PetscInt jj = 0; jj < len; jj++) {
      PetscReal t0 = x0 - y0[jj], t1 = x1 - y1[jj], t2 = x2 - y2[jj], t3 = x3 - y3[jj];

      out[jj] = (((out[jj] + t0 * t0) + t1 * t1) + t2 * t2) + t3 * t3;
    }
  }
  for (; k < d; k++) {
    const PetscReal  xk = x[k];
    const PetscReal *yk = y + (size_t)k * (size_t)m;

    for (PetscInt jj = 0; jj < len; jj++) {
      PetscReal t = xk - yk[jj];

      out[jj] += t * t;
    }
  }
  switch (pb->cost_kind) {
  case OT_COST_EUCLIDEAN:
    for (PetscInt jj = 0; jj < len; jj++) out[jj] = PetscSqrtReal(out[jj]);
    break;
  case OT_COST_PNORM: {
    const PetscReal half_power = 0.5 * pb->cost_power; /* |x - y|^P = (|x - y|^2)^(P/2) */

    for (PetscInt jj = 0; jj < len; jj++) out[jj] = OTPnormFromSquared(out[jj], half_power);
  } break;
  default:
    break;
  }
}

OT_HOT_LOOP OTRow OTKernelCostRow(OTProblem pb, PetscInt i_local, PetscReal *buffer)
{
  OTRow            row = {pb->m, NULL, buffer, 0.0};
  const PetscReal *x;

  if (pb->cost_kind == OT_COST_DENSE) {
    row.val = pb->cost + (size_t)i_local * (size_t)pb->m;
    return row;
  }
  x = pb->x + (size_t)i_local * (size_t)pb->dim;
  for (PetscInt j0 = 0; j0 < pb->m; j0 += OT_COST_TILE) CostTile(pb, x, j0, PetscMin(OT_COST_TILE, pb->m - j0), buffer + j0);
  return row;
}

OT_HOT_LOOP OTRow OTKernelPlanRow(OTProblem pb, PetscInt i_local, PetscReal f_i, const PetscReal *g, PetscReal inv_eps, PetscReal *out)
{
  OTRow            row = {pb->m, NULL, out, 0.0};
  const PetscReal *x;
  PetscReal        tile[OT_COST_TILE];

  if (pb->cost_kind == OT_COST_DENSE) {
    row.sum = OTRowPlan(pb->m, f_i, g, pb->cost + (size_t)i_local * (size_t)pb->m, inv_eps, out);
    return row;
  }
  x = pb->x + (size_t)i_local * (size_t)pb->dim;
  for (PetscInt j0 = 0; j0 < pb->m; j0 += OT_COST_TILE) {
    PetscInt len = PetscMin(OT_COST_TILE, pb->m - j0);

    CostTile(pb, x, j0, len, tile);
    row.sum += OTRowPlan(len, f_i, g + j0, tile, inv_eps, out + j0); /* summed while the tile is in L1 */
  }
  return row;
}

OT_HOT_LOOP OTRow OTKernelPlanFromCost(const OTRow *cost, PetscReal f_i, const PetscReal *g, PetscReal inv_eps, PetscReal *out)
{
  OTRow row = {cost->len, cost->cols, out, 0.0};

  if (!cost->cols) row.sum = OTRowPlan(cost->len, f_i, g, cost->val, inv_eps, out);
  else {
    for (PetscInt k = 0; k < cost->len; k++) out[k] = OTExp(((f_i + g[cost->cols[k]]) - cost->val[k]) * inv_eps);
    row.sum = OTSum(cost->len, out);
  }
  return row;
}

OT_HOT_LOOP OTRow OTKernelLogPlanFromCost(const OTRow *cost, PetscReal f_i, const PetscReal *g, PetscReal inv_eps, PetscReal *out)
{
  OTRow row = {cost->len, cost->cols, out, 0.0};

  if (!cost->cols)
    for (PetscInt j = 0; j < cost->len; j++) out[j] = ((f_i + g[j]) - cost->val[j]) * inv_eps;
  else
    for (PetscInt k = 0; k < cost->len; k++) out[k] = ((f_i + g[cost->cols[k]]) - cost->val[k]) * inv_eps;
  return row;
}

PetscReal *OTKernelStoredRow(const OTKernelStore *store, PetscInt i_local)
{
  return store->k + (size_t)i_local * (size_t)store->m;
}

OT_HOT_LOOP OTRow OTKernelScaledRow(const OTKernelStore *store, PetscInt i_local, PetscReal u_i, const PetscReal *v, PetscReal *out)
{
  const PetscReal *restrict k_row = OTKernelStoredRow(store, i_local);
  OTRow row                       = {store->m, NULL, out, 0.0};

  for (PetscInt j = 0; j < store->m; j++) out[j] = (u_i * k_row[j]) * v[j];
  row.sum = OTSum(store->m, out);
  return row;
}

OT_HOT_LOOP void OTKernelStoreSingle(OTKernelStore *store, PetscInt i_local, const OTRow *row)
{
  float *restrict ks_row = store->k_single + (size_t)i_local * (size_t)store->m;

  for (PetscInt j = 0; j < store->m; j++) ks_row[j] = row->val[j] >= (PetscReal)FLT_MIN ? (float)row->val[j] : 0.0f; /* no denormal floats in the sweeps */
}

OT_HOT_LOOP void OTKernelCostEntries(OTProblem pb, PetscInt i_local, PetscInt count, const PetscInt columns[], PetscReal out[])
{
  const PetscInt   m = pb->m, d = pb->dim;
  const PetscReal *x;

  if (pb->cost_kind == OT_COST_DENSE) {
    for (PetscInt k = 0; k < count; k++) out[k] = pb->cost[(size_t)i_local * (size_t)m + columns[k]];
    return;
  }
  x = pb->x + (size_t)i_local * (size_t)d;
  for (PetscInt c = 0; c < count; c++) {
    PetscReal s = 0.0;

    /* the same formula and order as CostTile */
    for (PetscInt k = 0; k < d; k++) {
      PetscReal t = x[k] - pb->y_t[(size_t)k * (size_t)m + columns[c]];

      s = k ? s + t * t : t * t;
    }
    out[c] = pb->cost_kind == OT_COST_EUCLIDEAN ? PetscSqrtReal(s) : (pb->cost_kind == OT_COST_PNORM ? OTPnormFromSquared(s, 0.5 * pb->cost_power) : s);
  }
}

/*
  The largest cost over all pairs, exactly: the maximum of the costs as OTKernelCostEntries (and so the rows)
  computes them. The costs grow with the squared distance s. Rows are taken from the largest bound on their
  farthest s (the farthest corner of Y's bounding box) down, and the scan stops at the first row whose bound is
  below (1 - 1e-9) times the best s found so far. For each row, a branch and bound over a cell tree of Y
  (OTCellTreeFarthest) finds the points within that factor of the best; only their costs are computed. The bounds
  are raised by a relative 4 (d + 2) DBL_EPSILON or more (more than the rounding of a sum of d squares, with or
  without FMA), and the factor 1 - 1e-9 leaves room for the last-bit wobble of sqrt and of exp((P/2) log s) for
  P >= 1e-3, so no pair that could hold the largest cost is skipped. On 10^6 + 10^6 3-D points this takes seconds
  where a scan of whole rows took minutes. Collective.
*/
PetscErrorCode OTProblemComputePointsCostMax(OTProblem pb)
{
  const PetscInt m = pb->m, d = pb->dim;
  PetscReal     *bound, *squared, *cost, best_squared = 0.0, best = 0.0;
  PetscInt      *order, *index, scanned = 0;
  OTCellTree     tree;

  PetscFunctionBegin;
  PetscCall(OTCellTreeCreate(pb->y_t, m, d, 1, (size_t)m, 32, &tree));
  PetscCall(PetscMalloc5(pb->n_local, &bound, pb->n_local, &order, m, &index, m, &squared, m, &cost));
  for (PetscInt i = 0; i < pb->n_local; i++) {
    bound[i] = -OTCellTreePointFarthest(&tree, 0, pb->x + (size_t)i * (size_t)d); /* negated: sorted ascending, the largest bound comes first */
    order[i] = i;
  }
  PetscCall(PetscSortRealWithPermutation(pb->n_local, bound, order));
  for (PetscInt r = 0; r < pb->n_local; r++) {
    PetscInt i = order[r], found, kept = 0;

    if (-bound[i] < (1.0 - 1e-9) * best_squared) break;
    found = OTCellTreeFarthest(&tree, pb->x + (size_t)i * (size_t)d, &best_squared, index, squared);
    for (PetscInt c = 0; c < found; c++)
      if (squared[c] >= (1.0 - 1e-9) * best_squared) index[kept++] = index[c];
    OTKernelCostEntries(pb, i, kept, index, cost);
    for (PetscInt c = 0; c < kept; c++) best = PetscMax(best, cost[c]);
    scanned++;
  }
  /* costs up to 1e300 keep every exponent of exp((f + g - C)/eps) and every sum of a row within what the sweeps
     handle; pnorm is checked with libm's pow, which overflows where OTExp would clamp */
  if (pb->cost_kind == OT_COST_PNORM && !(PetscPowReal(best_squared, 0.5 * pb->cost_power) <= 1e300)) best = INFINITY;
  if (!(best_squared <= 1e300)) best = INFINITY;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPIU_REAL, MPIU_MAX, pb->comm));
  pb->cost_max = best;
  PetscCall(PetscInfo(NULL, "max cost %g: scanned %" PetscInt_FMT " of %" PetscInt_FMT " rows on rank %d\n", (double)pb->cost_max, scanned, pb->n_local,
                      pb->rank));
  PetscCall(PetscFree5(bound, order, index, squared, cost));
  PetscCall(OTCellTreeDestroy(&tree));
  PetscCheck(pb->cost_max <= 1e300, pb->comm, OT_ERR_INPUT,
             "%s: the largest cost between points of /X and /Y is above 1e300 (or overflows); rescale the points", pb->source);
  PetscFunctionReturn(0);
}
