/* What a state (f, g) is worth: transport cost, dual objective, regularised cost, marginal error (DESIGN.md §1). */
#include "otimpl.h"
#include "kernels.h"

enum { SUM_TRANSPORT, SUM_ROW_ERROR, SUM_F_ROWMASS, SUM_A_F, SUM_COUNT };

/* One pass over the owned rows: column sums of P into col_sum, the row-wise sums into sums[]. */
OT_HOT_LOOP static void EvaluateRows(OTProblem pb, PetscInt n_local, PetscInt m, const PetscReal *a, PetscReal eps, const PetscReal *f,
                                     const PetscReal *g, PetscReal *row_plan, PetscReal *col_sum, PetscReal sums[SUM_COUNT])
{
  for (PetscInt j = 0; j < m; j++) col_sum[j] = 0.0;
  for (int k = 0; k < SUM_COUNT; k++) sums[k] = 0.0;
  for (PetscInt i = 0; i < n_local; i++) {
    const PetscReal *cost_row = OTProblemCostRow(pb, i, pb->cost_row);
    PetscReal        row_mass = OTRowPlan(m, f[i], g, cost_row, 1.0 / eps, row_plan);

    sums[SUM_TRANSPORT] += OTDot(m, row_plan, cost_row);
    sums[SUM_ROW_ERROR] += PetscAbsReal(row_mass - a[i]);
    sums[SUM_F_ROWMASS] += f[i] * row_mass;
    sums[SUM_A_F] += a[i] * f[i];
    OTAxpy(m, 1.0, row_plan, col_sum);
  }
}

PetscErrorCode OTEvaluate(OTProblem pb, PetscReal eps, const PetscReal f[], const PetscReal g[], OTResult *result)
{
  PetscInt   m = pb->m;
  PetscReal *row_plan, *col_sum, col_error = 0.0, g_colmass = 0.0, b_g = 0.0, plan_mass = 0.0;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_EVALUATE, 0, 0, 0, 0));
  PetscCall(PetscMalloc2(m, &row_plan, m + SUM_COUNT, &col_sum));
  EvaluateRows(pb, pb->n_local, m, pb->a, eps, f, g, row_plan, col_sum, col_sum + m);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_sum, (PetscMPIInt)(m + SUM_COUNT), MPIU_REAL, MPIU_SUM, pb->comm));
  for (PetscInt j = 0; j < m; j++) {
    col_error += PetscAbsReal(col_sum[j] - pb->b[j]);
    g_colmass += g[j] * col_sum[j];
    b_g += pb->b[j] * g[j];
    plan_mass += col_sum[j];
  }
  result->transport_cost = col_sum[m + SUM_TRANSPORT];
  result->marginal_error = col_sum[m + SUM_ROW_ERROR] + col_error;
  result->dual_objective = col_sum[m + SUM_A_F] + b_g - eps * plan_mass;
  /* <C,P> + eps sum P (log P - 1) with log P_ij = (f_i + g_j - C_ij)/eps */
  result->entropic_cost = col_sum[m + SUM_F_ROWMASS] + g_colmass - eps * plan_mass;
  result->eps           = eps;
  PetscCall(PetscFree2(row_plan, col_sum));
  PetscCall(PetscLogEventEnd(OT_EVENT_EVALUATE, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
