/* What a state (f, g) is worth: transport cost, dual objective, regularised cost, marginal error (docs/design.md §1). */
#include "otimpl.h"

enum {
  SUM_TRANSPORT,
  SUM_ROW_ERROR,
  SUM_F_ROWMASS,
  SUM_A_F,
  SUM_KL_A,
  SUM_COUNT
};

/* One pass over the owned rows: column sums of P into col_sum, the row-wise sums into sums[]. */
OT_HOT_LOOP static void EvaluateRows(OTProblem pb, PetscReal eps, const PetscReal *f, const PetscReal *g, PetscReal *row_plan, PetscReal *col_sum,
                                     PetscReal sums[SUM_COUNT])
{
  for (PetscInt j = 0; j < pb->m; j++) col_sum[j] = 0.0;
  for (int k = 0; k < SUM_COUNT; k++) sums[k] = 0.0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);
    OTRow plan = OTKernelPlanFromCost(&cost, f[i], g, 1.0 / eps, row_plan);

    sums[SUM_TRANSPORT] += OTRowDotRow(&plan, &cost);
    sums[SUM_ROW_ERROR] += PetscAbsReal(plan.sum - OTMarginalTarget(pb->rho_a, pb->a[i], f[i]));
    sums[SUM_F_ROWMASS] += f[i] * plan.sum;
    sums[SUM_A_F] += OTMarginalDualTerm(pb->rho_a, pb->a[i], f[i]);
    if (OTRelaxed(pb->rho_a)) sums[SUM_KL_A] += OTKLTerm(plan.sum, pb->a[i]);
    OTRowAxpy(&plan, 1.0, col_sum);
  }
}

void OTMarginalsFromColumns(OTProblem pb, PetscReal eps, const PetscReal col_sum[], const PetscReal g[], PetscReal a_f, PetscReal row_error, OTMarginals *out)
{
  PetscReal col_error = 0.0, b_g = 0.0, plan_mass = 0.0, g_colmass = 0.0;

  for (PetscInt j = 0; j < pb->m; j++) {
    col_error += PetscAbsReal(col_sum[j] - OTMarginalTarget(pb->rho_b, pb->b[j], g[j]));
    b_g += OTMarginalDualTerm(pb->rho_b, pb->b[j], g[j]);
    plan_mass += col_sum[j];
    g_colmass += g[j] * col_sum[j];
  }
  out->marginal_error = row_error + col_error;
  out->dual           = a_f + b_g - eps * plan_mass;
  out->dual_scale     = PetscAbsReal(a_f) + PetscAbsReal(b_g) + eps * plan_mass;
  out->plan_mass      = plan_mass;
  out->g_colmass      = g_colmass;
}

PetscErrorCode OTEvaluate(OTProblem pb, PetscReal eps, const PetscReal f[], const PetscReal g[], OTResult *result)
{
  PetscInt    m = pb->m;
  PetscReal  *row_plan, *col_sum;
  OTMarginals marginals;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_EVALUATE, 0, 0, 0, 0));
  PetscCall(PetscMalloc2(m, &row_plan, m + SUM_COUNT, &col_sum));
  EvaluateRows(pb, eps, f, g, row_plan, col_sum, col_sum + m);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_sum, (PetscMPIInt)(m + SUM_COUNT), MPIU_REAL, MPIU_SUM, pb->comm));
  OTMarginalsFromColumns(pb, eps, col_sum, g, col_sum[m + SUM_A_F], col_sum[m + SUM_ROW_ERROR], &marginals);
  result->transport_cost = col_sum[m + SUM_TRANSPORT];
  result->marginal_error = marginals.marginal_error;
  result->dual_objective = marginals.dual;
  /* <C,P> + eps sum P (log P - 1) with log P_ij = (f_i + g_j - C_ij)/eps */
  result->entropic_cost = col_sum[m + SUM_F_ROWMASS] + marginals.g_colmass - eps * marginals.plan_mass;
  result->eps           = eps;
  result->transported_mass = marginals.plan_mass;
  result->kl_a             = col_sum[m + SUM_KL_A];
  result->kl_b             = 0.0;
  for (PetscInt j = 0; j < m && OTRelaxed(pb->rho_b); j++) result->kl_b += OTKLTerm(col_sum[j], pb->b[j]);
  result->unbalanced_objective = NAN;
  if (OTProblemIsUnbalanced(pb))
    result->unbalanced_objective = result->entropic_cost + (OTRelaxed(pb->rho_a) ? pb->rho_a * result->kl_a : 0.0) + (OTRelaxed(pb->rho_b) ? pb->rho_b * result->kl_b : 0.0);
  PetscCall(PetscFree2(row_plan, col_sum));
  PetscCall(PetscLogEventEnd(OT_EVENT_EVALUATE, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
