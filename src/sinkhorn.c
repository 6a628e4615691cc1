/*
  Stage 1: Sinkhorn (docs/design.md §1), one pass over the stored rows per iteration, in two variants that
  compute the same iterates.

  Log domain. For each owned row i the pass forms k_ij = exp((f_i + g_j - C_ij)/eps) once, while the row
  is in cache, and uses it twice:
    f-update:  u_i = a_i / sum_j k_ij,  f_i += eps log u_i     (the exact log-domain update, shifted by f_i)
    g-sums:    s_j += u_i k_ij                                 (= P_ij of the updated f_i)
  Then one MPI_Allreduce of (s, <a,f>, flags) gives every rank the column marginals of the state (f_new, g),
  hence its marginal error |s - b|_1 (its row marginals are exact) and its dual objective, and the
  g-update g_j += eps (log b_j - log s_j).
  Why no overflow: after a g-update the columns of P sum to b, so every exponent with the old f_i as shift
  is <= log b_j <= 0 (the first pass starts from f = g = 0 and C >= 0); after an f-update every P_ij <= a_i.
  What can happen for small eps is underflow (a row or column whose entries are all below 1e-308): such a
  row is recomputed with its exact max as shift, such a column by an exact column log-sum-exp reduced
  across ranks with the OTLogSum MPI operation. Both are exact: they only cost time, in the first sweeps.

  Absorbed kernel (Schmitzer 2019, "stabilized sparse scaling"). A log-domain pass also stores its k_ij:
  the kernel K of the reference potentials (f_ref, g_ref) = (shifts used, g before its update). Later
  passes are then multiplicative on scalings u, v with f = f_ref + eps log u, g = g_ref + eps log v:
    u_i = a_i / sum_j K_ij v_j,   s_j += u_i K_ij,   v_j = b_j / s_j,
  two multiply-adds per entry instead of an exponential. When a scaling leaves [1e-100, 1e100] (or a sum
  underflows) the scalings are absorbed into the potentials by the next log-domain pass, which rebuilds K.
  Entries of K below exp(-708) are stored as 0; with both scalings within 1e100 the plan entries this
  drops are below 1e-108, far under any tolerance, so both variants converge to the same answer. The
  kernel doubles the memory per rank; -ot_sinkhorn_variant auto uses it only where it fits. Its allocation, the
  variant choice and the float kernel's hand-over are in sinkhorn_store.c.
*/
#include "otimpl.h"
#include "kernels.h"
#include <float.h>

/* The single-precision phase hands over to double sweeps at this marginal error (times the mass), measured
   on the float kernel itself. Float's rounding (6e-8 relative per entry) moves the float iteration's fixed
   point: at most 1.2e-7 x mass in marginal error, about 2e-9 measured on 4000 x 4000 Gaussian clouds (the
   float sweeps there reach 1e-12 by their own measure, 1.8e-9 by the double evaluation). */
#define OT_SINGLE_PHASE_TOL 1e-7

/* FLAG_SAFE_POINT..: the safe-point requests (a signal arrived, a checkpoint is due), see checkpoint.c */
enum {
  FLAG_BAD_ROW,
  FLAG_RESCUED_ROW,
  FLAG_SCALING_OUT_OF_RANGE,
  FLAG_SAFE_POINT,
  FLAG_COUNT = FLAG_SAFE_POINT + OT_SAFE_POINT_FLAGS
};
_Static_assert(1 + FLAG_COUNT <= OT_COLUMN_EXTRA, "the sweep's scalars must fit after the column sums");

/* Log-domain pass over the owned rows: updates f (and, with a kernel, stores it, in double or in float, with
   f_ref and u), accumulates the column sums of the new plan into col_sum. Counts rows that needed an exact shift. */
OT_HOT_LOOP static void LogSweepRows(OTProblem pb, PetscReal eps, PetscReal *f, const PetscReal *g, PetscReal *row_plan, PetscBool use_kernel,
                                     OTKernelStore *store, PetscReal scaling_max, PetscReal *u, PetscReal *col_sum, PetscReal flags[FLAG_COUNT])
{
  const PetscReal inv_eps = 1.0 / eps, *a = pb->a, damp = OTDamping(pb->rho_a, eps);

  for (PetscInt j = 0; j < pb->m; j++) col_sum[j] = 0.0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    PetscReal *out = use_kernel && store->k ? OTKernelStoredRow(store, i) : row_plan;
    PetscReal  f_i = f[i], scaling;
    OTRow      row = OTKernelPlanRow(pb, i, f_i, g, inv_eps, out); /* point clouds: costs computed here, in cache */

    if (!(row.sum >= OT_TINY && row.sum <= 1e300)) { /* underflow (or NaN): shift by the row's exact max */
      OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

      f_i = OTRowMinMinus(&cost, g); /* = -max_j (g_j - C_ij) */
      row = OTKernelPlanRow(pb, i, f_i, g, inv_eps, out);
      flags[FLAG_RESCUED_ROW] += 1;
    }
    f[i]    = damp * (f_i + eps * (PetscLogReal(a[i]) - PetscLogReal(row.sum))); /* damp < 1: relaxed marginal, unbalanced */
    scaling = damp == 1.0 ? a[i] / row.sum : PetscExpReal((f[i] - f_i) * inv_eps);
    if (use_kernel) {
      store->f_ref[i] = f_i;
      u[i]            = scaling;
      flags[FLAG_SCALING_OUT_OF_RANGE] += !OTScalingInRange(scaling, scaling_max);
      if (store->k_single) OTKernelStoreSingle(store, i, &row);
    }
    OTRowAxpy(&row, scaling, col_sum);
  }
}

/* Multiplicative pass on the stored kernel (double, or float while the single-precision phase lasts):
   u_i = a_i / (K v)_i, col_sum_j = sum_i u_i K_ij. Rows go four at a time (the sums of the four, then their column
   update while they are in cache): one pass over the matrix from memory. A row whose sum underflows is flagged
   (the pass is then discarded and redone in the log domain). */
OT_HOT_LOOP static void KernelSweepRows(PetscInt n_local, PetscInt m, const OTKernelStore *store, PetscReal scaling_max, const PetscReal *a, const PetscReal *v,
                                        PetscReal *u, PetscReal *col_sum, PetscReal flags[FLAG_COUNT])
{
  for (PetscInt j = 0; j < m; j++) col_sum[j] = 0.0;
  for (PetscInt i = 0; i < n_local; i += 4) {
    PetscInt  rows = PetscMin(4, n_local - i);
    PetscReal sums[4], scale[4] = {0, 0, 0, 0}; /* a flagged row adds nothing: its pass is discarded anyway */
    OTRowQuad quad;

    OTKernelStoredQuad(store, n_local, i, &quad);
    OTQuadDot(&quad, v, sums);
    for (PetscInt r = 0; r < rows; r++) {
      if (sums[r] >= OT_TINY && sums[r] <= 1e300) {
        u[i + r] = a[i + r] / sums[r];
        scale[r] = u[i + r];
        flags[FLAG_SCALING_OUT_OF_RANGE] += !OTScalingInRange(u[i + r], scaling_max);
      } else flags[FLAG_BAD_ROW] += 1;
    }
    OTQuadAxpy(&quad, scale, col_sum);
  }
}

/* Exact g_j = eps log b_j - eps LSE_i((f_i - C_ij)/eps) for the columns listed, reduced across ranks. */
static PetscErrorCode RescueColumns(OTSolver s, PetscInt count, const PetscInt columns[])
{
  OTProblem    pb = s->problem;
  OTLogSum    *col_lse;
  PetscReal   *costs;
  MPI_Datatype type;
  MPI_Op       op;

  PetscFunctionBegin;
  PetscCall(OTLogSumGetMPI(&type, &op));
  PetscCall(PetscMalloc2(count, &col_lse, count, &costs));
  for (PetscInt k = 0; k < count; k++) {
    col_lse[k].max = -INFINITY;
    col_lse[k].sum = 0.0;
  }
  for (PetscInt i = 0; i < pb->n_local; i++) {
    OTKernelCostEntries(pb, i, count, columns, costs); /* only these columns: point clouds need not compute whole rows */
    for (PetscInt k = 0; k < count; k++) {
      OTLogSum term = {(s->f[i] - costs[k]) / s->eps, 1.0};

      OTLogSumMerge(&col_lse[k], &term);
    }
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_lse, count, type, op, s->comm));
  for (PetscInt k = 0; k < count; k++) s->g[columns[k]] = OTDamping(pb->rho_b, s->eps) * s->eps * (PetscLogReal(pb->b[columns[k]]) - OTLogSumValue(&col_lse[k]));
  PetscCall(PetscFree2(col_lse, costs));
  PetscFunctionReturn(0);
}

/* f = f_ref + eps log u (owned rows) and g = g_ref + eps log v: the potentials of the absorbed state. */
static void Materialize(OTSolver s, const PetscReal *u)
{
  for (PetscInt i = 0; i < s->problem->n_local; i++) s->f[i] = s->store.f_ref[i] + s->eps * PetscLogReal(u[i]);
  for (PetscInt j = 0; j < s->problem->m; j++) s->g[j] = s->store.g_ref[j] + s->eps * PetscLogReal(s->v[j]);
}

/* The log-domain g-update g_j += eps (log b_j - log s_j) from the reduced column sums s; columns whose sum underflowed
   are recomputed exactly (RescueColumns). Collective. */
static PetscErrorCode LogUpdateG(OTSolver s, PetscInt *rescue_columns)
{
  OTProblem pb           = s->problem;
  PetscInt  rescue_count = 0;
  PetscReal damp         = OTDamping(pb->rho_b, s->eps);

  PetscFunctionBegin;
  for (PetscInt j = 0; j < pb->m; j++) {
    if (s->col_sum[j] >= OT_TINY) s->g[j] = damp * (s->g[j] + s->eps * (PetscLogReal(pb->b[j]) - PetscLogReal(s->col_sum[j])));
    else rescue_columns[rescue_count++] = j;
  }
  if (rescue_count) PetscCall(RescueColumns(s, rescue_count, rescue_columns));
  s->rescued_columns += rescue_count;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSinkhornSetFromOptions(OTSolver s)
{
  PetscBool truncation_set = PETSC_FALSE;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "Sinkhorn stage (otsolve)", NULL);
  PetscCall(PetscOptionsEnum("-ot_sinkhorn_variant",
                             "log, absorb (stored n x m kernel, faster), or truncated (only the entries that can matter; Sinkhorn sweeps and SNS's Newton steps); auto: absorb where the kernel fits in a quarter of the node's memory (less the problem's, shared among its ranks), else log", NULL,
                             OTSinkhornVariants, (PetscEnum)s->variant, (PetscEnum *)&s->variant, NULL));
  PetscCall(PetscOptionsReal("-ot_truncation",
                             "truncated: drop entries of P below tau x mass / (n m), together < tau x mass; 0 (auto): as many as the cell bounds show hold < 1% of -ot_tol",
                             NULL, s->truncation, &s->truncation, &truncation_set));
  PetscCall(PetscOptionsEnum("-ot_truncation_values",
                             "truncated: stored (8 bytes an entry), computed from the points or C in each pass (about 2 bytes an entry, slower sweeps), or auto: stored while they fit in a quarter of the node's memory (less the problem's, shared among its ranks)",
                             NULL, OTTruncationValuesNames, (PetscEnum)s->truncation_values, (PetscEnum *)&s->truncation_values, NULL));
  PetscCall(PetscOptionsBool("-ot_sinkhorn_overrelax", "truncated: over-relaxed sweeps once the plain ones converge at a steady rate", NULL, s->overrelax,
                             &s->overrelax, NULL));
  PetscCall(PetscOptionsBool("-ot_multiscale", "truncated, point clouds: early eps stages on coarsened measures (cells of nearby points)", NULL,
                             s->multiscale, &s->multiscale, NULL));
  PetscCall(PetscOptionsInt("-ot_multiscale_cells", "multiscale: the coarsest level's cells a side, at most", NULL, s->multiscale_cells, &s->multiscale_cells,
                            NULL));
  PetscCheck(s->multiscale_cells >= 1, s->comm, OT_ERR_INPUT, "-ot_multiscale_cells must be at least 1, got %" PetscInt_FMT, s->multiscale_cells);
  PetscCall(PetscOptionsEnum("-ot_kernel_precision", "absorb: kernel in double, or in single until error 1e-7 x mass", NULL, OTKernelPrecisions,
                             (PetscEnum)s->kernel_precision, (PetscEnum *)&s->kernel_precision, NULL));
  PetscOptionsEnd();
  PetscCheck(!truncation_set || (s->truncation >= 0 && s->truncation < 1), s->comm, OT_ERR_INPUT,
             "-ot_truncation: tau must be in (0, 1), or 0 for auto (the default); got %g", (double)s->truncation);
  PetscFunctionReturn(0);
}

/* One pass over the owned rows: on the stored kernel (absorbed) or in the log domain; the column sums into
   s->col_sum, the flags counted; returns this rank's <a, f> of the new state. */
static PetscReal Sweep(OTSolver s, PetscBool absorbed, PetscBool use_kernel, PetscBool single, PetscReal scaling_max, PetscReal *u_next, PetscReal *flags)
{
  OTProblem pb      = s->problem;
  PetscInt  n_local = pb->n_local, m = pb->m;
  PetscReal af = 0.0;

  if (absorbed) {
    KernelSweepRows(n_local, m, &s->store, scaling_max, pb->a, s->v, u_next, s->col_sum, flags);
    for (PetscInt i = 0; i < n_local; i++) af += pb->a[i] * (s->store.f_ref[i] + s->eps * PetscLogReal(u_next[i]));
  } else {
    if (use_kernel) memcpy(s->store.g_ref, s->g, sizeof(PetscReal) * (size_t)m);
    LogSweepRows(pb, s->eps, s->f, s->g, s->row_plan, use_kernel, &s->store, scaling_max, s->u, s->col_sum, flags);
    if (use_kernel && !single) s->store.eps = s->eps; /* (f_ref, g_ref, kernel) are consistent again */
    for (PetscInt i = 0; i < n_local; i++) af += OTMarginalDualTerm(pb->rho_a, pb->a[i], s->f[i]);
  }
  return af;
}

PetscErrorCode OTSinkhornVerdict(OTSolver s, PetscInt iteration, PetscReal marginal_error, PetscReal dual, PetscBool stop_when_close, PetscBool *converged,
                                 PetscBool *leave)
{
  PetscFunctionBegin;
  PetscCall(OTSolverHistoryAppend(s, OT_STAGE_SINKHORN, iteration, marginal_error, dual));
  if (PetscIsInfOrNanReal(marginal_error) || PetscIsInfOrNanReal(dual)) {
    PetscCall(PetscSNPrintf(s->result.status, sizeof(s->result.status), "NaN or Inf in the Sinkhorn iterates at iteration %" PetscInt_FMT, iteration));
    s->result.reason = OT_REASON_BREAKDOWN;
    *leave           = PETSC_TRUE;
  } else if (marginal_error <= s->tol) {
    *converged = PETSC_TRUE;
    *leave     = PETSC_TRUE;
  } else if (stop_when_close && iteration >= s->close_after && marginal_error <= s->newton_switch * s->problem->mass) {
    *leave = PETSC_TRUE; /* close enough for Newton */
  }
  PetscCall(OTSolverMonitor(s, OT_STAGE_SINKHORN, iteration, marginal_error, dual, *leave));
  PetscFunctionReturn(0);
}

/* The g-update as scalings on the stored kernel: v_j *= b_j / (column sum of P) (from v_j = 1 where the state is not
   absorbed yet), into s->v if every scaling, and u (u_in_range), stay in range; otherwise false, and the state must
   return to potentials and take the log-domain update. Rank-local (the same verdict on every rank: the column sums
   and u's count are reduced). */
static PetscBool KernelUpdateG(OTSolver s, PetscBool absorbed, PetscReal scaling_max, PetscBool u_in_range, PetscReal *v_next)
{
  OTProblem pb       = s->problem;
  PetscBool in_range = u_in_range;

  for (PetscInt j = 0; j < pb->m; j++) {
    v_next[j] = s->col_sum[j] >= OT_TINY ? (absorbed ? s->v[j] : 1.0) * (pb->b[j] / s->col_sum[j]) : 0.0;
    in_range  = (PetscBool)(in_range && OTScalingInRange(v_next[j], scaling_max));
  }
  if (in_range) memcpy(s->v, v_next, sizeof(PetscReal) * (size_t)pb->m);
  return in_range;
}

/* After an absorbed sweep: the column sums of P (not of diag(u) K) into col_sum, the new u, and g of the state (f_new,
   g) in row_plan (free in an absorbed sweep), which is returned. Rank-local. */
static PetscReal *AbsorbedState(OTSolver s, const PetscReal *u_next)
{
  PetscReal *g_now = s->row_plan;

  for (PetscInt j = 0; j < s->problem->m; j++) {
    s->col_sum[j] *= s->v[j];
    g_now[j] = s->store.g_ref[j] + s->eps * PetscLogReal(s->v[j]);
  }
  if (s->problem->n_local) memcpy(s->u, u_next, sizeof(PetscReal) * (size_t)s->problem->n_local); /* (a rank without rows has NULL arrays) */
  return g_now;
}

/* The start of a run: the g-update the last run left out when it stopped (without it, this run's first sweep would
   repeat that run's last), then the stored kernel where it still serves the state. Collective. */
static PetscErrorCode ResumeRun(OTSolver s, PetscBool use_kernel, PetscBool single, PetscInt *rescue_columns, PetscBool *absorbed)
{
  PetscFunctionBegin;
  if (s->g_update_pending && s->g_update_eps == s->eps) PetscCall(LogUpdateG(s, rescue_columns));
  s->g_update_pending = PETSC_FALSE;
  PetscCall(OTSinkhornResumeAbsorbed(s, use_kernel, single, absorbed));
  PetscFunctionReturn(0);
}

/* The sweep's one reduction: the m column sums, <a, f> and the flags. Collective. */
static PetscErrorCode ReduceColumns(OTSolver s)
{
  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_COLUMN_REDUCE, 0, 0, 0, 0));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, s->col_sum, (PetscMPIInt)(s->problem->m + 1 + FLAG_COUNT), MPIU_REAL, MPIU_SUM, s->comm));
  PetscCall(PetscLogEventEnd(OT_EVENT_COLUMN_REDUCE, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSinkhornRun(OTSolver s, PetscInt max_sweeps, PetscInt first_iteration, PetscBool stop_when_close, PetscInt *sweeps, PetscBool *converged)
{
  OTProblem  pb = s->problem;
  PetscInt   m = pb->m, n_local = pb->n_local, it, *rescue_columns;
  PetscBool  absorbed = PETSC_FALSE, use_kernel = PETSC_FALSE, single = PETSC_FALSE; /* absorbed: the state is (f_ref, u, g_ref, v) on the stored kernel */
  PetscReal *u_next, *v_next, *flags = s->col_sum + m + 1, safe_point[OT_SAFE_POINT_FLAGS] = {0, 0}, scaling_max;
  PetscBool  stop = PETSC_FALSE;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  if (first_iteration == 0 && s->monitor_every) PetscCall(OTSolverMonitorMemory(s));
  PetscCall(OTSinkhornSetUpKernel(s, &use_kernel, &single));
  scaling_max = single ? OT_SCALING_MAX_SINGLE : OT_SCALING_MAX;
  PetscCall(PetscMalloc3(m, &rescue_columns, n_local, &u_next, m, &v_next));
  PetscCall(ResumeRun(s, use_kernel, single, rescue_columns, &absorbed));
  for (it = 1; it <= max_sweeps; it++) {
    PetscReal   marginal_error, dual;
    OTMarginals marginals;
    PetscReal  *g_now = s->g; /* the potentials g of the state */
    PetscBool   leave = PETSC_FALSE;

    /* a safe point: the state after it - 1 sweeps; the requests came with the last sweep's reduction */
    if (safe_point[0] > 0 || safe_point[1] > 0) {
      if (absorbed) Materialize(s, s->u);
      PetscCall(OTSolverSafePoint(s, safe_point, first_iteration + it - 1, s->result.iterations_newton, &stop));
      safe_point[0] = safe_point[1] = 0;
      if (stop) break;
    }
    PetscCall(PetscLogEventBegin(OT_EVENT_SWEEP, 0, 0, 0, 0));
    for (int k = 0; k < FLAG_COUNT; k++) flags[k] = 0.0;
    if (s->checkpoint_file[0]) OTSolverSafePointRequests(s, flags + FLAG_SAFE_POINT);
    s->col_sum[m] = Sweep(s, absorbed, use_kernel, single, scaling_max, u_next, flags);
    PetscCall(PetscLogEventEnd(OT_EVENT_SWEEP, 0, 0, 0, 0));
    PetscCall(ReduceColumns(s));
    s->rescued_rows += (PetscInt)flags[FLAG_RESCUED_ROW];
    for (int k = 0; k < OT_SAFE_POINT_FLAGS; k++) safe_point[k] = flags[FLAG_SAFE_POINT + k];

    if (absorbed) {
      if (flags[FLAG_BAD_ROW] > 0) { /* a row sum underflowed: discard the pass, absorb, redo it in the log domain */
        Materialize(s, s->u);
        absorbed = PETSC_FALSE;
        it--;
        s->absorptions++;
        continue;
      }
      g_now = AbsorbedState(s, u_next);
    }

    /* the state (f_new, g): row marginals exact, column marginals col_sum */
    OTMarginalsFromColumns(pb, s->eps, s->col_sum, g_now, s->col_sum[m], 0.0, &marginals);
    marginal_error = marginals.marginal_error;
    dual           = marginals.dual;
    PetscCall(OTSinkhornVerdict(s, first_iteration + it, marginal_error, dual, stop_when_close, converged, &leave));
    if (leave) {
      s->g_update_pending = (PetscBool)(s->result.reason == OT_REASON_NONE);
      s->g_update_eps     = s->eps;
      break;
    }

    if (single && marginal_error <= OT_SINGLE_PHASE_TOL * pb->mass) {
      /* the float kernel has done its part: the state returns to potentials, takes the log-domain g-update
         below, and the next pass rebuilds the kernel in double */
      PetscCall(OTSinkhornHandOverToDouble(s, first_iteration + it, marginal_error));
      s->single_phase_over = PETSC_TRUE;
      single               = PETSC_FALSE;
      scaling_max          = OT_SCALING_MAX;
      if (absorbed) Materialize(s, s->u);
      absorbed = PETSC_FALSE;
    } else if (use_kernel) {
      /* u's range was counted over all ranks by the sweep's reduction */
      if (KernelUpdateG(s, absorbed, scaling_max, (PetscBool)(flags[FLAG_SCALING_OUT_OF_RANGE] == 0), v_next)) {
        if (!absorbed) s->absorptions++;
        absorbed = PETSC_TRUE;
        continue;
      }
      if (absorbed) Materialize(s, s->u); /* (f_new, g_old) as potentials */
      absorbed = PETSC_FALSE;
    }
    PetscCall(LogUpdateG(s, rescue_columns));
  }
  if (absorbed) Materialize(s, s->u);
  *sweeps = stop ? it - 1 : PetscMin(it, max_sweeps);
  PetscCall(PetscFree3(rescue_columns, u_next, v_next));
  PetscCall(PetscInfo(NULL,
                      "Sinkhorn: %" PetscInt_FMT " sweeps, %" PetscInt_FMT " absorptions, %" PetscInt_FMT " row rescues on rank %d, %" PetscInt_FMT
                      " column rescues\n",
                      *sweeps, s->absorptions, s->rescued_rows, s->rank, s->rescued_columns));
  PetscFunctionReturn(0);
}
