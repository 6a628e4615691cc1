/*
  Stage 1: log-domain Sinkhorn (DESIGN.md §1), one pass over the stored rows per iteration.

  For each owned row i the pass forms p_ij = exp((f_i + g_j - C_ij)/eps) once, while the row is in
  cache, and uses it twice:
    f-update:  f_i += eps (log a_i - log sum_j p_ij)     (the exact log-domain update, shifted by f_i)
    g-sums:    s_j += (a_i / sum_j p_ij) p_ij             (= P_ij of the updated f_i)
  Then one MPI_Allreduce of (s, <a,f>) gives every rank the column marginals of the state (f_new, g),
  hence its marginal error |s - b|_1 (its row marginals are exact) and its dual objective, and the
  g-update g_j += eps (log b_j - log s_j).

  Why no overflow: after a g-update the columns of P sum to b, so every exponent with the old f_i as
  shift is <= log b_j <= 0 (the first pass starts from f = g = 0 and C >= 0); after an f-update every
  P_ij <= a_i. What can happen for small eps is underflow (a row or column whose entries are all below
  1e-308): such a row is recomputed with its exact max as shift, such a column by an exact column
  log-sum-exp reduced across ranks with the OTLogSum MPI operation. Both are exact, so the iteration is
  the textbook log-domain one; they only cost time, in the first sweeps.
*/
#include "otimpl.h"
#include "kernels.h"

/* One pass over the owned rows: updates f, accumulates the column sums of the new plan into col_sum.
   Returns the number of rows that needed an exact shift. */
OT_HOT_LOOP static PetscInt SweepRows(PetscInt n_local, PetscInt m, const PetscReal *cost, const PetscReal *a, PetscReal eps, PetscReal *f,
                                      const PetscReal *g, PetscReal *row_plan, PetscReal *col_sum)
{
  const PetscReal inv_eps = 1.0 / eps;
  PetscInt        rescued = 0;

  for (PetscInt j = 0; j < m; j++) col_sum[j] = 0.0;
  for (PetscInt i = 0; i < n_local; i++) {
    const PetscReal *cost_row = cost + (size_t)i * (size_t)m;
    PetscReal        f_i      = f[i];
    PetscReal        row_sum  = OTRowPlan(m, f_i, g, cost_row, inv_eps, row_plan);

    if (!(row_sum >= OT_TINY && row_sum <= 1e300)) { /* underflow (or NaN): shift by the row's exact max */
      f_i     = -OTRowShift(m, g, cost_row);
      row_sum = OTRowPlan(m, f_i, g, cost_row, inv_eps, row_plan);
      rescued++;
    }
    f[i] = f_i + eps * (PetscLogReal(a[i]) - PetscLogReal(row_sum));
    OTAxpy(m, a[i] / row_sum, row_plan, col_sum);
  }
  return rescued;
}

/* Exact g_j = eps log b_j - eps LSE_i((f_i - C_ij)/eps) for the columns listed, reduced across ranks. */
static PetscErrorCode RescueColumns(OTSolver s, PetscInt count, const PetscInt columns[])
{
  OTProblem    pb = s->problem;
  OTLogSum    *col_lse;
  MPI_Datatype type;
  MPI_Op       op;

  PetscFunctionBegin;
  PetscCall(OTLogSumGetMPI(&type, &op));
  PetscCall(PetscMalloc1(count, &col_lse));
  for (PetscInt k = 0; k < count; k++) {
    col_lse[k].max = -INFINITY;
    col_lse[k].sum = 0.0;
  }
  for (PetscInt i = 0; i < pb->n_local; i++) {
    const PetscReal *cost_row = pb->cost + (size_t)i * (size_t)pb->m;

    for (PetscInt k = 0; k < count; k++) {
      OTLogSum term = {(s->f[i] - cost_row[columns[k]]) / s->eps, 1.0};

      OTLogSumMerge(&col_lse[k], &term);
    }
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_lse, count, type, op, s->comm));
  for (PetscInt k = 0; k < count; k++) s->g[columns[k]] = s->eps * (PetscLogReal(pb->b[columns[k]]) - OTLogSumValue(&col_lse[k]));
  PetscCall(PetscFree(col_lse));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSinkhornRun(OTSolver s, PetscInt max_sweeps, PetscInt first_iteration, PetscInt *sweeps, PetscBool *converged)
{
  OTProblem pb = s->problem;
  PetscInt  m  = pb->m, it, rescued_rows = 0, *rescue_columns;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  PetscCall(PetscMalloc1(m, &rescue_columns));
  for (it = 1; it <= max_sweeps; it++) {
    PetscReal marginal_error = 0.0, plan_mass = 0.0, dual, bg = 0.0, af = 0.0;
    PetscInt  rescue_count = 0;

    PetscCall(PetscLogEventBegin(OT_EVENT_SWEEP, 0, 0, 0, 0));
    rescued_rows += SweepRows(pb->n_local, m, pb->cost, pb->a, s->eps, s->f, s->g, s->row_plan, s->col_sum);
    for (PetscInt i = 0; i < pb->n_local; i++) af += pb->a[i] * s->f[i];
    s->col_sum[m] = af;
    PetscCall(PetscLogEventEnd(OT_EVENT_SWEEP, 0, 0, 0, 0));
    PetscCall(PetscLogEventBegin(OT_EVENT_COLUMN_REDUCE, 0, 0, 0, 0));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, s->col_sum, (PetscMPIInt)(m + 1), MPIU_REAL, MPIU_SUM, s->comm));
    PetscCall(PetscLogEventEnd(OT_EVENT_COLUMN_REDUCE, 0, 0, 0, 0));

    /* the state (f_new, g): row marginals exact, column marginals col_sum */
    for (PetscInt j = 0; j < m; j++) {
      marginal_error += PetscAbsReal(s->col_sum[j] - pb->b[j]);
      plan_mass += s->col_sum[j];
      bg += pb->b[j] * s->g[j];
    }
    dual = s->col_sum[m] + bg - s->eps * plan_mass;
    PetscCall(OTSolverHistoryAppend(s, OT_STAGE_SINKHORN, first_iteration + it, marginal_error, dual));
    if (PetscIsInfOrNanReal(marginal_error) || PetscIsInfOrNanReal(dual)) {
      PetscCall(PetscSNPrintf(s->result.status, sizeof(s->result.status), "NaN or Inf in the Sinkhorn iterates at iteration %" PetscInt_FMT, first_iteration + it));
      PetscCall(OTSolverMonitor(s, OT_STAGE_SINKHORN, first_iteration + it, marginal_error, dual, PETSC_TRUE));
      break;
    }
    if (marginal_error <= s->tol) {
      *converged = PETSC_TRUE;
      PetscCall(OTSolverMonitor(s, OT_STAGE_SINKHORN, first_iteration + it, marginal_error, dual, PETSC_TRUE));
      break;
    }
    PetscCall(OTSolverMonitor(s, OT_STAGE_SINKHORN, first_iteration + it, marginal_error, dual, PETSC_FALSE));
    for (PetscInt j = 0; j < m; j++) {
      if (s->col_sum[j] >= OT_TINY) s->g[j] += s->eps * (PetscLogReal(pb->b[j]) - PetscLogReal(s->col_sum[j]));
      else rescue_columns[rescue_count++] = j;
    }
    if (rescue_count) PetscCall(RescueColumns(s, rescue_count, rescue_columns));
    s->rescued_columns += rescue_count;
  }
  *sweeps = PetscMin(it, max_sweeps);
  s->rescued_rows += rescued_rows;
  PetscCall(PetscFree(rescue_columns));
  PetscCall(PetscInfo(NULL, "Sinkhorn: %" PetscInt_FMT " sweeps, %" PetscInt_FMT " row rescues on rank %d, %" PetscInt_FMT " column rescues\n", *sweeps,
                      rescued_rows, s->rank, s->rescued_columns));
  PetscFunctionReturn(0);
}
