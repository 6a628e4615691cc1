/*
  The Newton stage of SNS (Tang et al., ICLR 2024; docs/design.md §1): its options and life cycle, and one step:
    1-3. sparsify: survey P at (f, g), threshold, kept entries Ps (newton_sparsify.c);
    4.   assemble [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] with a relative Levenberg-Marquardt shift (newton_assembly.c);
    5.   solve it for eps (a - P1, b - P^T 1) with KSP (prefix -ot_newton_, CG + Jacobi by default, inexact);
    6.   backtracking (Armijo) line search on D, each trial one pass over the rows and one allreduce.
  (1, -1) spans the null space of the unsparsified matrix and changes neither P nor D: it is removed from the
  right-hand side (MatNullSpaceRemove), so the system is consistent, and any (1, -1) part of the computed step is
  harmless. It is not attached with MatSetNullSpace: KSP then also projects the preconditioned residual, and with
  Jacobi that made CG report DIVERGED_INDEFINITE_PC on Fashion-MNIST. Instead the small shift, proportional to the
  relative marginal error, keeps the sparsified matrix definite and vanishes as the iteration converges. A failed
  search is reported, and the driver (sns.c) falls back to Sinkhorn sweeps.
*/
#include "newton.h"

PetscErrorCode OTNewtonCreate(OTNewton **newton)
{
  PetscFunctionBegin;
  PetscCall(PetscNew(newton));
  (*newton)->density  = 16.0;
  (*newton)->drop     = 1e-4;
  (*newton)->shift    = 1e-2;
  (*newton)->assembly = OT_NEWTON_ASSEMBLY_SPLIT;
  PetscFunctionReturn(0);
}

/* A Newton step's bytes on this rank: the fixed work arrays and OT_NEWTON_ENTRY_BYTES per kept entry, for the entries
   -ot_newton_density asks for (each row's largest and each column's largest included); where P is not sparse the
   mass rule (-ot_newton_drop) and the density raises may keep more, never more than the budget (-ot_newton_memory)
   allows: the step is declined rather (OTNewtonSparsify). */
PetscErrorCode OTNewtonMemoryEstimate(OTSolver s, double *bytes, double *most_bytes)
{
  OTProblem pb   = s->problem;
  double    kept = s->newton->density * ((double)pb->n + (double)pb->m) / s->size + 2.0 * pb->n_local;
  double    all  = (double)pb->n_local * (double)pb->m + pb->n_local;

  PetscFunctionBegin;
  PetscCall(OTNewtonSetUp(s));
  *bytes      = OTNewtonFixedBytes(s) + OT_NEWTON_ENTRY_BYTES * PetscMin(kept, all);
  *most_bytes = PetscMin(PetscMax(*bytes, s->newton->budget), OTNewtonFixedBytes(s) + OT_NEWTON_ENTRY_BYTES * all);
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonSetFromOptions(OTSolver s)
{
  OTNewton *nt = s->newton;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "Newton stage of SNS (otsolve)", NULL);
  PetscCall(PetscOptionsReal("-ot_newton_density", "SNS: entries of P kept in the sparsified Hessian, per unit of n + m", NULL, nt->density, &nt->density,
                             NULL));
  PetscCheck(nt->density > 0, s->comm, OT_ERR_INPUT, "-ot_newton_density must be positive, got %g", (double)nt->density);
  PetscCall(PetscOptionsReal("-ot_newton_drop", "SNS: keep more entries (up to 16x; on the truncated kernel up to the budget, and this / 100 after two linear steps) while the kept ones carry less than 1 - this of P's mass", NULL, nt->drop,
                             &nt->drop, NULL));
  PetscCheck(nt->drop >= 0 && nt->drop < 1, s->comm, OT_ERR_INPUT, "-ot_newton_drop must be in [0, 1), got %g", (double)nt->drop);
  PetscCall(PetscOptionsReal("-ot_newton_shift", "SNS: Levenberg-Marquardt shift, relative to the diagonal, times the relative marginal error", NULL, nt->shift,
                             &nt->shift, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_memory",
                             "SNS: MB per rank for a Newton step's kept entries and matrix; a step that needs more is declined and Sinkhorn finishes the "
                             "stage (0: a quarter of the node's memory less the problem's, shared among its ranks)",
                             NULL, nt->memory, &nt->memory, NULL));
  PetscCheck(nt->memory >= 0, s->comm, OT_ERR_INPUT, "-ot_newton_memory must be >= 0 (MB per rank; 0: automatic), got %g", (double)nt->memory);
  PetscCall(PetscOptionsEnum("-ot_newton_assembly", "SNS: split (CSR blocks, faster) or setvalues (MatSetValues)", NULL, OTNewtonAssemblies,
                             (PetscEnum)nt->assembly, (PetscEnum *)&nt->assembly, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonSetUp(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt;
  PetscInt    *counts, *starts, *g_starts, local;
  PetscMPIInt  size = s->size;
  IS           is;
  Vec          null_vec;
  PetscScalar *nv;

  PetscFunctionBegin;
  nt = s->newton;
  if (nt->setup) PetscFunctionReturn(0);
  nt->setup = PETSC_TRUE;
  if (nt->memory > 0) nt->budget = 1e6 * nt->memory;
  else nt->budget = s->memory_share;
  PetscCall(OTRowSplit(pb->m, size, s->rank, &nt->g_start, &nt->g_end));
  local = pb->n_local + nt->g_end - nt->g_start;
  PetscCall(PetscMalloc3(size, &counts, size + 1, &starts, size + 1, &g_starts));
  PetscCallMPI(MPI_Allgather(&local, 1, MPIU_INT, counts, 1, MPIU_INT, s->comm));
  starts[0] = 0;
  for (PetscMPIInt r = 0; r < size; r++) starts[r + 1] = starts[r] + counts[r];
  nt->vec_start = starts[s->rank];
  PetscCall(PetscMalloc2(pb->m, &nt->g_index, pb->m, &nt->g_owner));
  for (PetscMPIInt r = 0; r < size; r++) {
    PetscInt rs, re, gs, ge;

    PetscCall(OTRowSplit(pb->n, size, r, &rs, &re));
    PetscCall(OTRowSplit(pb->m, size, r, &gs, &ge));
    for (PetscInt j = gs; j < ge; j++) {
      nt->g_index[j] = starts[r] + (re - rs) + (j - gs);
      nt->g_owner[j] = r;
    }
  }
  PetscCall(PetscFree3(counts, starts, g_starts));

  PetscCall(VecCreateMPI(s->comm, local, pb->n + pb->m, &nt->x));
  PetscCall(VecDuplicate(nt->x, &nt->rhs));
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, pb->m, &nt->g_all));
  PetscCall(ISCreateGeneral(PETSC_COMM_SELF, pb->m, nt->g_index, PETSC_COPY_VALUES, &is));
  PetscCall(VecScatterCreate(nt->x, is, nt->g_all, NULL, &nt->g_scatter));
  PetscCall(ISDestroy(&is));

  /* null space: (1_n, -1_m) / sqrt(n + m) */
  PetscCall(VecDuplicate(nt->x, &null_vec));
  PetscCall(VecGetArray(null_vec, &nv));
  for (PetscInt k = 0; k < local; k++) nv[k] = (k < pb->n_local ? 1.0 : -1.0) / PetscSqrtReal((PetscReal)(pb->n + pb->m));
  PetscCall(VecRestoreArray(null_vec, &nv));
  PetscCall(MatNullSpaceCreate(s->comm, PETSC_FALSE, 1, &null_vec, &nt->null_space));
  PetscCall(VecDestroy(&null_vec));

  PetscCall(KSPCreate(s->comm, &nt->ksp));
  PetscCall(KSPSetOptionsPrefix(nt->ksp, "ot_newton_"));
  PetscCall(KSPSetType(nt->ksp, KSPCG));
  {
    PC pc;

    PetscCall(KSPGetPC(nt->ksp, &pc));
    PetscCall(PCSetType(pc, PCJACOBI));
  }
  PetscCall(KSPSetTolerances(nt->ksp, 1e-6, 1e-300, PETSC_DEFAULT, 1000));
  PetscCall(KSPSetFromOptions(nt->ksp));
  /* inexact Newton unless -ot_newton_ksp_rtol is given: see OTNewtonDirection */
  PetscCall(PetscOptionsHasName(NULL, "ot_newton_", "-ksp_rtol", &nt->rtol_given));

  PetscCall(PetscMalloc1(OT_HIST_BINS, &nt->hist));
  PetscCall(PetscMalloc1(2 * pb->m, &nt->col_max));
  PetscCall(PetscMalloc1(pb->n_local, &nt->row_argmax));
  PetscCall(PetscMalloc2(pb->m, &nt->col_max_value, pb->m, &nt->col_max_row));
  PetscCall(PetscMalloc5(pb->n_local, &nt->df, pb->m, &nt->dg, pb->m, &nt->g_trial, pb->n_local, &nt->row_sum, pb->m + 4, &nt->col_sum));
  PetscCall(PetscMalloc2(pb->n_local, &nt->u, pb->m, &nt->v));
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonDestroy(OTNewton **newton)
{
  OTNewton *nt = *newton;

  PetscFunctionBegin;
  if (!nt) PetscFunctionReturn(0);
  PetscCall(PetscFree2(nt->g_index, nt->g_owner));
  PetscCall(VecDestroy(&nt->x));
  PetscCall(VecDestroy(&nt->rhs));
  PetscCall(VecDestroy(&nt->g_all));
  PetscCall(VecScatterDestroy(&nt->g_scatter));
  PetscCall(MatNullSpaceDestroy(&nt->null_space));
  PetscCall(KSPDestroy(&nt->ksp));
  PetscCall(PetscFree(nt->hist));
  PetscCall(PetscFree(nt->col_max));
  PetscCall(PetscFree(nt->row_argmax));
  PetscCall(PetscFree2(nt->col_max_value, nt->col_max_row));
  PetscCall(PetscFree5(nt->df, nt->dg, nt->g_trial, nt->row_sum, nt->col_sum));
  PetscCall(PetscFree2(nt->u, nt->v));
  PetscCall(PetscFree(nt->kept_col));
  PetscCall(PetscFree(nt->kept_val));
  for (int w = 0; w < 8; w++) PetscCall(PetscFree(nt->work[w]));
  PetscCall(PetscFree4(nt->t_col_sum, nt->t_col_max, nt->t_col_row, nt->t_column_of));
  PetscCall(PetscFree(*newton));
  PetscFunctionReturn(0);
}

/* Sum of P at the trial potentials (f + alpha df, g_trial), with its column sums (nt->col_sum) and row error; on the
   stored kernel (u, v given) four rows at a time, as a Sinkhorn sweep. sums: <a, f + alpha df>, row error, sum P. */
OT_HOT_LOOP static void TrialRows(OTSolver s, PetscReal alpha, const PetscReal *u, const PetscReal *v, PetscReal sums[3])
{
  OTProblem        pb = s->problem;
  OTNewton        *nt = s->newton;
  const PetscReal *a = pb->a, *f = s->f, *df = nt->df;
  PetscInt         n_local = pb->n_local, m = pb->m;

  for (PetscInt j = 0; j < m; j++) nt->col_sum[j] = 0.0;
  sums[0] = sums[1] = sums[2] = 0.0;
  for (PetscInt i = 0; i < n_local; i++) sums[0] += OTMarginalDualTerm(pb->rho_a, a[i], f[i] + alpha * df[i]);
  if (u) {
    for (PetscInt i = 0; i < n_local; i += 4) {
      PetscInt  rows = PetscMin(4, n_local - i);
      PetscReal dots[4], scale[4] = {0, 0, 0, 0};
      OTRowQuad quad;

      OTKernelStoredQuad(&s->store, n_local, i, &quad);
      OTQuadDot(&quad, v, dots);
      for (PetscInt r = 0; r < rows; r++) {
        PetscReal row_sum = u[i + r] * dots[r];

        scale[r] = u[i + r];
        sums[1] += PetscAbsReal(row_sum - OTMarginalTarget(pb->rho_a, a[i + r], f[i + r] + alpha * df[i + r]));
        sums[2] += row_sum;
      }
      OTQuadAxpy(&quad, scale, nt->col_sum);
    }
    for (PetscInt j = 0; j < m; j++) nt->col_sum[j] *= v[j];
    return;
  }
  for (PetscInt i = 0; i < n_local; i++) {
    OTRow row = OTKernelPlanRow(pb, i, f[i] + alpha * df[i], nt->g_trial, 1.0 / s->eps, s->row_plan);

    OTRowAxpy(&row, 1.0, nt->col_sum);
    sums[1] += PetscAbsReal(row.sum - OTMarginalTarget(pb->rho_a, a[i], f[i] + alpha * df[i]));
    sums[2] += row.sum;
  }
}

/* D and the marginal error at the trial point (f + alpha df, g + alpha dg), and what the truncated kernel's dropped
   entries may add to the error (a bound, loose after a long step: the next step's survey rebuilds the kernel where it
   matters). Collective. */
static PetscErrorCode EvaluateTrial(OTSolver s, PetscReal alpha, PetscReal *dual, PetscReal *marginal_error, PetscReal *dropped)
{
  OTProblem   pb = s->problem;
  OTNewton   *nt = s->newton;
  PetscInt    m  = pb->m;
  PetscBool   use_kernel;
  PetscReal   dropped_now = 0.0;
  OTMarginals marginals;

  PetscFunctionBegin;
  for (PetscInt j = 0; j < m; j++) nt->g_trial[j] = s->g[j] + alpha * nt->dg[j];
  if (OTNewtonOnTruncated(s)) PetscCall(OTNewtonTruncatedTrial(s, alpha, nt->col_sum + m, &dropped_now));
  else {
    use_kernel = OTNewtonKernelScalings(s, s->f, nt->df, alpha, nt->g_trial, nt->u, nt->v);
    TrialRows(s, alpha, use_kernel ? nt->u : NULL, nt->v, nt->col_sum + m);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->col_sum, (PetscMPIInt)(m + 3), MPIU_REAL, MPIU_SUM, s->comm));
  OTMarginalsFromColumns(pb, s->eps, nt->col_sum, nt->g_trial, nt->col_sum[m], nt->col_sum[m + 1], &marginals);
  *dual           = marginals.dual;
  *marginal_error = marginals.marginal_error;
  *dropped        = 2.0 * dropped_now; /* the truncated kernel's dropped entries move each marginal by less than half this */
  PetscFunctionReturn(0);
}

/* Step 5: solves the assembled system for eps (a - P1, b - P^T 1) into (df, dg), every rank getting all of dg. */
static PetscErrorCode SolveDirection(OTSolver s, Mat A, OTNewtonInfo *info)
{
  OTProblem          pb = s->problem;
  OTNewton          *nt = s->newton;
  PetscInt           m = pb->m, n_local = pb->n_local;
  PetscScalar       *rhs;
  const PetscScalar *x;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_KSP, 0, 0, 0, 0));
  PetscCall(VecGetArray(nt->rhs, &rhs));
  for (PetscInt i = 0; i < n_local; i++) rhs[i] = s->eps * (OTMarginalTarget(pb->rho_a, pb->a[i], s->f[i]) - nt->row_sum[i]);
  for (PetscInt j = nt->g_start; j < nt->g_end; j++)
    rhs[n_local + j - nt->g_start] = s->eps * (OTMarginalTarget(pb->rho_b, pb->b[j], s->g[j]) - nt->col_sum[j]);
  PetscCall(VecRestoreArray(nt->rhs, &rhs));
  /* (1, -1) is a null direction only when both marginals are hard: a relaxed one adds its curvature to the diagonal */
  if (!OTProblemIsUnbalanced(pb)) PetscCall(MatNullSpaceRemove(nt->null_space, nt->rhs));
  PetscCall(KSPSetOperators(nt->ksp, A, A));
  if (!nt->rtol_given) {
    /* inexact Newton (Eisenstat-Walker's choice 2 with exponent 2 would track the same): solve to the relative
       marginal error, between 1e-6 and 1e-1. Far from the solution a rough direction is as good as an exact one
       (the line search takes care of it) at a few CG iterations; close to it the direction stays accurate to the
       order of the error, so convergence stays quadratic. Never tighter than the step needs to reach -ot_tol: the
       error after an inexact step is about rtol times the error before (30k + 30k 3-D points on the truncated kernel:
       the last step's CG iterations 814 -> 300) */
    PetscReal rtol = PetscMin(1e-1, PetscMax(1e-6, PetscMax(info->marginal_error / pb->mass, 0.1 * s->tol / info->marginal_error)));

    PetscCall(KSPSetTolerances(nt->ksp, rtol, PETSC_DEFAULT, PETSC_DEFAULT, PETSC_DEFAULT));
  }
  PetscCall(VecZeroEntries(nt->x));
  PetscCall(KSPSolve(nt->ksp, nt->rhs, nt->x));
  PetscCall(KSPGetIterationNumber(nt->ksp, &info->ksp_iterations));
  PetscCall(KSPGetConvergedReason(nt->ksp, &info->ksp_reason));
  PetscCall(VecGetArrayRead(nt->x, &x));
  for (PetscInt i = 0; i < n_local; i++) nt->df[i] = x[i];
  PetscCall(VecRestoreArrayRead(nt->x, &x));
  PetscCall(VecScatterBegin(nt->g_scatter, nt->x, nt->g_all, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterEnd(nt->g_scatter, nt->x, nt->g_all, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecGetArrayRead(nt->g_all, &x));
  for (PetscInt j = 0; j < m; j++) nt->dg[j] = x[j];
  PetscCall(VecRestoreArrayRead(nt->g_all, &x));
  PetscCall(PetscLogEventEnd(OT_EVENT_KSP, 0, 0, 0, 0));

  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonDirection(OTSolver s, OTNewtonInfo *info)
{
  OTProblem     pb = s->problem;
  OTNewton     *nt = s->newton;
  OTKept        kept;
  OTSplitArrays split = {NULL, NULL, NULL, NULL, NULL, NULL};
  Mat           A;
  PetscReal     slope = 0.0;

  PetscFunctionBegin;
  PetscCall(OTNewtonSetUp(s));
  PetscCall(PetscLogEventBegin(OT_EVENT_SPARSIFY, 0, 0, 0, 0));
  PetscCall(OTNewtonSparsify(s, info, &kept));
  PetscCall(PetscLogEventEnd(OT_EVENT_SPARSIFY, 0, 0, 0, 0));
  if (!info->declined && s->newton_kept_cap > 0 && info->kept > s->newton_kept_cap) info->declined = OT_DECLINED_WORK; /* info->kept: the same on every rank */
  if (info->declined || info->marginal_error <= s->tol) {
    PetscCall(OTNewtonKeptFree(&kept));
    PetscFunctionReturn(0);
  }

  PetscCall(PetscLogEventBegin(OT_EVENT_ASSEMBLE, 0, 0, 0, 0));
  PetscCall(OTNewtonAssemble(s, &kept, nt->shift * PetscMin(1.0, info->marginal_error / pb->mass), &A, &split));
  PetscCall(OTNewtonKeptFree(&kept));
  PetscCall(PetscLogEventEnd(OT_EVENT_ASSEMBLE, 0, 0, 0, 0));

  PetscCall(SolveDirection(s, A, info));
  PetscCall(MatDestroy(&A));
  PetscCall(OTSplitArraysFree(&split));

  /* directional derivative of D along the step: grad . (df, dg) */
  for (PetscInt i = 0; i < pb->n_local; i++) slope += (OTMarginalTarget(pb->rho_a, pb->a[i], s->f[i]) - nt->row_sum[i]) * nt->df[i];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &slope, 1, MPIU_REAL, MPIU_SUM, s->comm));
  for (PetscInt j = 0; j < pb->m; j++) slope += (OTMarginalTarget(pb->rho_b, pb->b[j], s->g[j]) - nt->col_sum[j]) * nt->dg[j];
  info->slope = slope;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonStep(OTSolver s, OTNewtonInfo *info)
{
  OTNewton *nt;
  PetscReal alpha = 1.0, dual, marginal_error, dropped;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(info, sizeof(*info)));
  PetscCall(OTNewtonDirection(s, info));
  nt             = s->newton;
  info->accepted = PETSC_FALSE;
  info->step     = 0.0;
  if (info->marginal_error <= s->tol || info->declined) { /* nothing to do, or too costly */
    info->dual_after           = info->dual;
    info->marginal_error_after = info->marginal_error;
    PetscFunctionReturn(0);
  }
  if (!(info->slope > 0)) PetscFunctionReturn(0); /* not an ascent direction (a failed solve) */
  PetscCall(PetscLogEventBegin(OT_EVENT_LINE_SEARCH, 0, 0, 0, 0));
  for (int trial = 0; trial < 40; trial++, alpha *= 0.5) {
    PetscCall(EvaluateTrial(s, alpha, &dual, &marginal_error, &dropped));
    info->trials++;
    /* Armijo on D, which is concave: accept a step that gains at least 1e-4 of the linear prediction. Near
       the solution that gain falls below the rounding error of D itself (a sum of terms of size dual_scale):
       there a step is accepted if it reduces the marginal error, the norm of D's gradient. */
    PetscBool gain_below_rounding = (PetscBool)(alpha * info->slope <= 1e-12 * info->dual_scale);
    PetscBool armijo              = (PetscBool)(dual >= info->dual + 1e-4 * alpha * info->slope);

    /* on the truncated kernel, D and the error are those of its kept entries: a trial is taken only where the dropped ones
       stay below a tenth of the error before the step (a trust region: beyond it, the entries the kernel dropped could
       hold mass that D does not see) */
    PetscBool trusted = (PetscBool)(dropped <= 0.1 * PetscMax(info->marginal_error, s->tol));

    if (PetscIsNormalReal(marginal_error) && trusted && (gain_below_rounding ? marginal_error < info->marginal_error : armijo)) {
      for (PetscInt i = 0; i < s->problem->n_local; i++) s->f[i] += alpha * nt->df[i];
      for (PetscInt j = 0; j < s->problem->m; j++) s->g[j] = nt->g_trial[j];
      info->accepted             = PETSC_TRUE;
      info->step                 = alpha;
      info->dual_after           = dual;
      info->marginal_error_after = marginal_error;
      info->dropped_after        = dropped;
      break;
    }
  }
  PetscCall(PetscLogEventEnd(OT_EVENT_LINE_SEARCH, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonGetDirection(OTSolver s, const PetscReal **df, const PetscReal **dg)
{
  PetscFunctionBegin;
  PetscCheck(s->newton, s->comm, PETSC_ERR_ARG_WRONGSTATE, "no Newton direction computed yet");
  *df = s->newton->df;
  *dg = s->newton->dg;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonView(OTSolver s, PetscViewer viewer)
{
  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "Newton: density %g, drop %g, shift %g, assembly %s\n", (double)s->newton->density, (double)s->newton->drop,
                                   (double)s->newton->shift, OTNewtonAssemblies[s->newton->assembly]));
  PetscCall(OTNewtonSetUp(s));
  PetscCall(KSPView(s->newton->ksp, viewer));
  PetscFunctionReturn(0);
}
