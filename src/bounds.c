/*
  Certified bounds on the unregularised OT cost min_{P in U(a,b)} <C,P> from a Sinkhorn state (f, g).

  Lower bound: any (f', g') with f'_i + g'_j <= C_ij gives <a,f'> + <b,g'> <= OT. Take the c-transform
  g'_j = min_i (C_ij - f_i), then f'_i = min_j (C_ij - g'_j) (which can only raise the bound).

  Upper bound: the rounding of Altschuler, Weed and Rigollet (2017, Algorithm 2) makes P feasible:
  X = diag(min(a / P1, 1)) P, Y = X diag(min(b / X^T 1, 1)), then add the rank-one correction
  err_a err_b^T / |err_a|_1 with err_a = a - Y1, err_b = b - Y^T 1. The result is in U(a,b), so its cost
  <C,Y> + err_a^T C err_b / |err_a|_1 is >= OT.
*/
#include "otimpl.h"

/* Pass 1: row scalings x_i = min(a_i / (P1)_i, 1) and the column sums of X = diag(x) P; also col_min_j = min_i (C_ij - f_i). */
OT_HOT_LOOP static void RoundRows(OTProblem pb, PetscReal eps, const PetscReal *f, const PetscReal *g, PetscReal *row_plan, PetscReal *row_scale,
                                  PetscReal *col_x, PetscReal *col_min)
{
  for (PetscInt j = 0; j < pb->m; j++) {
    col_x[j]   = 0.0;
    col_min[j] = INFINITY;
  }
  for (PetscInt i = 0; i < pb->n_local; i++) {
    OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);
    OTRow plan = OTKernelPlanFromCost(&cost, f[i], g, 1.0 / eps, row_plan);

    row_scale[i] = plan.sum > pb->a[i] ? pb->a[i] / plan.sum : 1.0;
    OTRowAxpy(&plan, row_scale[i], col_x);
    OTRowColumnMin(&cost, f[i], col_min);
  }
}

/* Pass 2: Y = diag(x) P diag(y): its row sums into row_y, column sums into col_y, and <C,Y>. */
OT_HOT_LOOP static PetscReal RoundedRows(OTProblem pb, PetscReal eps, const PetscReal *f, const PetscReal *g, const PetscReal *row_scale,
                                         const PetscReal *col_scale, PetscReal *row_plan, PetscReal *row_y, PetscReal *col_y)
{
  PetscReal transport = 0.0;

  for (PetscInt j = 0; j < pb->m; j++) col_y[j] = 0.0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);
    OTRow plan = OTKernelPlanFromCost(&cost, f[i], g, 1.0 / eps, row_plan);

    for (PetscInt k = 0; k < plan.len; k++) row_plan[k] *= row_scale[i] * col_scale[OT_ROW_COLUMN(&plan, k)];
    row_y[i] = 0.0;
    for (PetscInt k = 0; k < plan.len; k++) row_y[i] += row_plan[k];
    transport += OTRowDotRow(&plan, &cost);
    OTRowAxpy(&plan, 1.0, col_y);
  }
  return transport;
}

PetscErrorCode OTComputeBounds(OTProblem pb, PetscReal eps, const PetscReal f[], const PetscReal g[], PetscReal *lower, PetscReal *upper)
{
  PetscInt   n_local = pb->n_local, m = pb->m;
  PetscReal *row_plan, *row_scale, *row_err, *col_scale, *col_y, *col_min, *col_err;
  PetscReal  sums[4] = {0, 0, 0, 0}; /* <C,Y>, |err_a|_1, err_a^T C err_b, <a,f'> */
  PetscReal  b_g     = 0.0;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_BOUNDS, 0, 0, 0, 0));
  PetscCall(PetscMalloc4(m, &row_plan, n_local, &row_scale, n_local, &row_err, m, &col_scale));
  PetscCall(PetscMalloc3(m + 1, &col_y, m, &col_min, m, &col_err));

  RoundRows(pb, eps, f, g, row_plan, row_scale, col_scale, col_min);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_scale, (PetscMPIInt)m, MPIU_REAL, MPIU_SUM, pb->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_min, (PetscMPIInt)m, MPIU_REAL, MPIU_MIN, pb->comm));
  for (PetscInt j = 0; j < m; j++) col_scale[j] = col_scale[j] > pb->b[j] ? pb->b[j] / col_scale[j] : 1.0;

  col_y[m] = RoundedRows(pb, eps, f, g, row_scale, col_scale, row_plan, row_err, col_y);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_y, (PetscMPIInt)(m + 1), MPIU_REAL, MPIU_SUM, pb->comm));
  sums[0] = col_y[m];
  for (PetscInt j = 0; j < m; j++) col_err[j] = PetscMax(0.0, pb->b[j] - col_y[j]);

  /* Pass 3: err_a^T C err_b, and f'_i = min_j (C_ij - g'_j) for the lower bound */
  for (PetscInt i = 0; i < n_local; i++) {
    OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

    row_err[i] = PetscMax(0.0, pb->a[i] - row_err[i]);
    sums[1] += row_err[i];
    if (row_err[i] > 0) sums[2] += row_err[i] * OTRowDot(&cost, col_err);
    sums[3] += pb->a[i] * OTRowMinMinus(&cost, col_min);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &sums[1], 3, MPIU_REAL, MPIU_SUM, pb->comm));
  for (PetscInt j = 0; j < m; j++) b_g += pb->b[j] * col_min[j];
  *lower = sums[3] + b_g;
  *upper = sums[0] + (sums[1] > 0 ? sums[2] / sums[1] : 0.0);
  PetscCall(PetscFree4(row_plan, row_scale, row_err, col_scale));
  PetscCall(PetscFree3(col_y, col_min, col_err));
  PetscCall(PetscLogEventEnd(OT_EVENT_BOUNDS, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
