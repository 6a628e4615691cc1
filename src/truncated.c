/*
  Sinkhorn on a truncated kernel (-ot_sinkhorn_variant truncated, docs/design.md §1), after Schmitzer 2019,
  "Stabilized sparse scaling algorithms for entropy regularized transport problems".

  At small eps almost every entry of P = exp((f_i + g_j - C_ij)/eps) is far below anything that matters. The kernel
  (truncated_build.c) keeps, at reference potentials (f_ref, g_ref), the entries K_ij = exp((f_ref_i + g_ref_j -
  C_ij)/eps) above a floor, in segments of columns, and the sweeps run over them alone with scalings, as the absorbed
  variant does over all entries:
      u_i = a_i / sum_j K_ij v_j,   s_j += u_i K_ij,   v_j = b_j / s_j   (f = f_ref + eps log u, g = g_ref + eps log v),
  over-relaxed once they converge at a steady rate (Overrelaxation).
  Exactness. The build bounds the dropped entries of K by rows (t->drop_row) and by columns (t->drop_col), from the
  cell bounds and the values it computed; those of P at a state (u, v) then sum to less than min(max v sum_i
  drop_row_i u_i, max u sum_j drop_col_j v_j) (OTTruncatedDroppedBound, at most t->dropped max u max v, and far less
  when a few rows or columns moved far): the marginal error a sweep reports includes twice that, and the
  kernel is rebuilt at the current potentials (re-truncated) when it exceeds OT_TRUNCATION_SHARE (10%) of the larger
  of the tolerance and the error, at every eps stage, and at the start of a run of sweeps unless it still serves. The evaluation and the bounds that follow
  a solve use the kernel too (truncated_finish.c).
  Rescues. A row without kept entries (or whose sum underflows) takes f_i = eps log a_i - max_j (g_j - C_ij), its
  largest entry then a_i, and a column without any takes g_j = eps log b_j - max_i (f_i - C_ij) (reduced across
  ranks); the maxima are found by branch and bound on the trees. The kernel is then rebuilt.
*/
#include "otimpl.h"
#include "truncated.h"

enum { FLAG_BAD_ROW, FLAG_ROW_ERROR, FLAG_DROPPED_ROWS, FLAG_SAFE_POINT, FLAG_COUNT = FLAG_SAFE_POINT + OT_SAFE_POINT_FLAGS };
_Static_assert(1 + FLAG_COUNT <= OT_COLUMN_EXTRA, "the sweep's scalars must fit after the column sums");

/* The largest over-relaxation factor. */
#define OT_OMEGA_MAX 1.9

/* The solver's (f, g) from the reference potentials and the scalings (g in original order). */
static void Materialize(OTSolver s)
{
  OTTruncated *t = s->trunc;

  for (PetscInt i = 0; i < s->problem->n_local; i++) s->f[i] = t->f_ref[i] + s->eps * PetscLogReal(t->u[i]);
  for (PetscInt c = 0; c < s->problem->m; c++) s->g[OTTruncatedColumn(t, c)] = t->g_ref[c] + s->eps * PetscLogReal(t->v[c]);
}

/* Rows (local indices) given: f_i = eps log a_i - max_j (g_j - C_ij), at the solver's g. Rank-local. */
static void RescueRows(OTSolver s, PetscInt count, const PetscInt rows[])
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;

  if (!count) return;
  if (t->trees) OTCellTreeSetWeights(&t->yt, s->g);
  for (PetscInt k = 0; k < count; k++) {
    PetscInt  i = rows[k];
    PetscReal best;

    if (t->trees) {
      PetscInt st[OT_TREE_STACK];

      best = OTTruncatedTreeMax(pb, &t->yt, NULL, pb->x + (size_t)i * pb->dim, st);
    } else {
      OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

      best = -OTRowMinMinus(&cost, s->g);
    }
    s->f[i] = s->eps * PetscLogReal(pb->a[i]) - best;
  }
  t->rescued_rows += count;
}

/* Columns given (the same on every rank): g_j = eps log b_j - max_i (f_i - C_ij) over all ranks, at the solver's f.
   Collective. */
static PetscErrorCode RescueColumns(OTSolver s, PetscInt count, const PetscInt columns[])
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;
  PetscReal   *best, *y;

  PetscFunctionBegin;
  if (!count) PetscFunctionReturn(0);
  PetscCall(PetscMalloc2(count, &best, pb->dim, &y));
  if (t->trees) OTCellTreeSetWeights(&t->xt, s->f);
  for (PetscInt k = 0; k < count; k++) {
    PetscInt j = columns[k];

    if (t->trees) {
      PetscInt st[OT_TREE_STACK];

      for (PetscInt c = 0; c < pb->dim; c++) y[c] = pb->y_t[(size_t)c * pb->m + j];
      best[k] = OTTruncatedTreeMax(pb, &t->xt, NULL, y, st);
    } else {
      best[k] = -INFINITY;
      for (PetscInt i = 0; i < pb->n_local; i++) best[k] = PetscMax(best[k], s->f[i] - pb->cost[(size_t)i * pb->m + j]);
    }
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, best, (PetscMPIInt)count, MPIU_REAL, MPIU_MAX, s->comm));
  for (PetscInt k = 0; k < count; k++) s->g[columns[k]] = s->eps * PetscLogReal(pb->b[columns[k]]) - best[k];
  t->rescued_columns += count;
  PetscCall(PetscFree2(best, y));
  PetscFunctionReturn(0);
}

/* One pass over the kept entries: u_i = a_i / (K v)_i (over-relaxed: u_i (a_i / (u_i (K v)_i))^omega), col_sum_c =
   sum_i u_i K_ic; rows whose sum underflows are listed in t->rescue (flag FLAG_BAD_ROW); the row error of the new
   state into flags[FLAG_ROW_ERROR], sum_i drop_row_i u_i into flags[FLAG_DROPPED_ROWS], the largest log u_i into
   *max_log_u. Returns this rank's <a, f>. */
OT_HOT_LOOP static PetscReal Sweep(OTSolver s, PetscReal omega, PetscReal *flags, PetscInt *bad_rows, PetscReal *max_log_u)
{
  OTProblem        pb = s->problem;
  OTTruncated     *t  = s->trunc;
  const PetscReal *v  = t->v;
  PetscReal       *col_sum = t->col_sum, af = 0.0;

  *bad_rows  = 0;
  *max_log_u = -INFINITY;
  for (PetscInt c = 0; c < pb->m; c++) col_sum[c] = 0.0;
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i   = t->row_of[r];
    PetscReal        sum = 0.0, u_i;
    const int       *chunk  = t->chunk_col + t->chunk_ptr[r];
    int64_t          chunks = t->chunk_ptr[r + 1] - t->chunk_ptr[r];
    PetscBool        by_chunks = (PetscBool)(4 * chunks == t->val_ptr[r + 1] - t->val_ptr[r]);
    const PetscReal *row = by_chunks ? OTTruncatedChunkRow(pb, t, r) : OTTruncatedRow(pb, t, r), *k = row;

    if (by_chunks) { /* one loop over the row's groups of 4 columns: no loop over segments of a few values each */
      OTVec4 acc = {0, 0, 0, 0};

      for (int64_t q = 0; q < chunks; q++) acc += OTLoad4(k + 4 * q) * OTLoad4(v + chunk[q]);
      sum = (acc[0] + acc[2]) + (acc[1] + acc[3]);
    } else
      for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
        const PetscReal *vs  = v + t->seg_col[sg];
        int              len = t->seg_len[sg];

        sum += OTDot(len, k, vs);
        k += len;
      }
    if (!(sum >= OT_TINY && sum <= 1e300)) {
      t->rescue[(*bad_rows)++] = i;
      continue;
    }
    u_i = pb->a[i] / sum;
    if (omega != 1.0) {
      u_i = t->u[i] * PetscPowReal(u_i / t->u[i], omega);
      flags[FLAG_ROW_ERROR] += PetscAbsReal(u_i * sum - pb->a[i]);
    }
    t->u[i]    = u_i;
    *max_log_u = PetscMax(*max_log_u, PetscLogReal(u_i));
    flags[FLAG_DROPPED_ROWS] += t->drop_row[i] * u_i;
    k = row;
    if (by_chunks)
      for (int64_t q = 0; q < chunks; q++) {
        OTVec4 c = OTLoad4(col_sum + chunk[q]) + u_i * OTLoad4(k + 4 * q);

        memcpy(col_sum + chunk[q], &c, sizeof(c));
      }
    else
      for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
        PetscReal *cs  = col_sum + t->seg_col[sg];
        int        len = t->seg_len[sg];

        OTAxpy(len, u_i, k, cs);
        k += len;
      }
  }
  flags[FLAG_BAD_ROW] = *bad_rows;
  for (PetscInt i = 0; i < pb->n_local; i++) af += pb->a[i] * (t->f_ref[i] + s->eps * PetscLogReal(t->u[i]));
  return af;
}

/* Over-relaxation (Thibault, Chizat, Dossal and Papadakis 2017): the updates u_i (a_i / (u_i (K v)_i))^omega and
   v_j (b_j / (P^T 1)_j)^omega with 1 < omega < 2. A run starts with omega = 1; once the marginal error is below 1% of
   the mass and 10 plain sweeps in a row have each reduced it, at a rate rho per sweep, omega = 2 / (1 + sqrt(1 -
   rho)), the optimal factor of successive over-relaxation for a method converging at rate rho, capped. Should the
   error rise tenfold above the least seen, the sweeps return to omega = 1, and the cap is halved towards 1 for the
   next estimate. The decisions read only the marginal errors, which every rank has alike. */
typedef struct {
  PetscReal omega, cap, best, window[11];
  PetscInt  count;
} Relaxation;

static PetscReal Overrelaxation(PetscReal error, PetscReal mass, Relaxation *r)
{
  r->best = PetscMin(r->best, error);
  if (r->omega > 1.0) {
    if (!(error <= 100.0 * r->best)) {
      r->cap   = 1.0 + 0.5 * (r->omega - 1.0);
      r->omega = 1.0;
      r->best  = error;
      r->count = 0;
      (void)PetscInfo(NULL, "over-relaxation: the error rose tenfold above the least, to %g: plain sweeps, then omega at most %g\n", (double)error,
                      (double)r->cap);
    }
    return r->omega;
  }
  if (!(error <= 0.1 * mass) || (r->count > 0 && !(error < r->window[r->count - 1]))) { /* not steady yet */
    r->count = 0;
    return 1.0;
  }
  if (r->count == 11) { /* slide the window */
    for (int k = 0; k < 10; k++) r->window[k] = r->window[k + 1];
    r->count = 10;
  }
  r->window[r->count++] = error;
  if (r->count == 11) {
    PetscReal rho = PetscPowReal(r->window[10] / r->window[0], 0.1);

    if (rho > 0.5 && rho < 1.0) {
      r->omega = PetscMin(r->cap, 2.0 / (1.0 + PetscSqrtReal(1.0 - rho)));
      (void)PetscInfo(NULL, "over-relaxation: plain sweeps converge at %g a sweep: omega %g\n", (double)rho, (double)r->omega);
    }
  }
  return r->omega;
}

/* The g-update on the scalings, v_j (b_j / (P^T 1)_j)^omega, from the column sums of P in s->col_sum; the largest log
   v_j into *max_log_v, sum_c drop_col_c v_c into *col_part; the columns without kept entries listed in t->rescue.
   Returns how many. Rank-local (the same on every rank). */
static PetscInt UpdateColumns(OTSolver s, PetscReal omega, PetscReal *max_log_v, PetscReal *col_part)
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;
  PetscInt     bad_columns = 0;

  *max_log_v = -INFINITY;
  *col_part  = 0.0;
  for (PetscInt c = 0; c < pb->m; c++) {
    PetscInt j = OTTruncatedColumn(t, c);

    if (s->col_sum[j] >= OT_TINY) {
      t->v[c] *= omega == 1.0 ? pb->b[j] / s->col_sum[j] : PetscPowReal(pb->b[j] / s->col_sum[j], omega);
      *max_log_v = PetscMax(*max_log_v, PetscLogReal(t->v[c]));
      *col_part += t->drop_col[c] * t->v[c];
    } else t->rescue[bad_columns++] = j;
  }
  return bad_columns;
}

PetscErrorCode OTTruncatedRun(OTSolver s, PetscInt max_sweeps, PetscInt first_iteration, PetscBool stop_when_close, PetscInt *sweeps, PetscBool *converged)
{
  OTProblem    pb = s->problem;
  OTTruncated *t;
  PetscInt     m = pb->m, it, rescues_in_a_row = 0;
  PetscReal   *flags, safe_point[OT_SAFE_POINT_FLAGS] = {0, 0};
  PetscBool    stop = PETSC_FALSE, rebuild = PETSC_TRUE;
  PetscReal    omega = 1.0, max_log_u, max_log_v = 0.0, col_part = 0.0, dropped_now;
  Relaxation   relax = {.omega = 1.0, .cap = OT_OMEGA_MAX, .best = INFINITY};

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  PetscCall(OTTruncatedCreate(s));
  t     = s->trunc;
  flags = t->col_sum + m + 1;
  if (s->g_update_pending && s->g_update_eps == s->eps) /* the g-update the last run left out (its column sums in col_sum) */
    for (PetscInt j = 0; j < m; j++)
      if (s->col_sum[j] >= OT_TINY) s->g[j] += s->eps * (PetscLogReal(pb->b[j]) - PetscLogReal(s->col_sum[j]));
  s->g_update_pending = PETSC_FALSE;
  { /* a kernel that serves the state as it is (a Newton step's, at this eps) is kept: its scalings are the state's */
    PetscBool serves;

    PetscCall(OTTruncatedServes(s, s->history_len ? s->history[s->history_len - 1].marginal_error : PETSC_INFINITY, &serves));
    if (serves) { /* (t->u, t->v: the state's scalings) */
      max_log_v = -INFINITY;
      for (PetscInt c = 0; c < m; c++) {
        max_log_v = PetscMax(max_log_v, PetscLogReal(t->v[c]));
        col_part += t->drop_col[c] * t->v[c];
      }
      rebuild = PETSC_FALSE;
    }
  }
  for (it = 1; it <= max_sweeps; it++) {
    PetscReal   marginal_error, dual;
    OTMarginals marginals;
    PetscBool   leave = PETSC_FALSE;
    PetscInt    bad_rows, bad_columns;

    if (safe_point[0] > 0 || safe_point[1] > 0) { /* the state after it - 1 sweeps */
      Materialize(s);
      PetscCall(OTSolverSafePoint(s, safe_point, first_iteration + it - 1, s->result.iterations_newton, &stop));
      safe_point[0] = safe_point[1] = 0;
      if (stop) break;
    }
    if (rebuild) {
      PetscCall(OTTruncatedBuild(s));
      rebuild   = PETSC_FALSE;
      max_log_v = 0.0; /* v = 1 */
      col_part  = 0.0;
      for (PetscInt c = 0; c < m; c++) col_part += t->drop_col[c];
    }
    PetscCall(PetscLogEventBegin(OT_EVENT_SWEEP, 0, 0, 0, 0));
    for (int k = 0; k < FLAG_COUNT; k++) flags[k] = 0.0;
    if (s->checkpoint_file[0]) OTSolverSafePointRequests(s, flags + FLAG_SAFE_POINT);
    t->col_sum[m] = Sweep(s, omega, flags, &bad_rows, &max_log_u);
    PetscCall(PetscLogEventEnd(OT_EVENT_SWEEP, 0, 0, 0, 0));
    PetscCall(PetscLogEventBegin(OT_EVENT_COLUMN_REDUCE, 0, 0, 0, 0));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, t->col_sum, (PetscMPIInt)(m + 1 + FLAG_COUNT), MPIU_REAL, MPIU_SUM, s->comm));
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &max_log_u, 1, MPIU_REAL, MPIU_MAX, s->comm));
    PetscCall(PetscLogEventEnd(OT_EVENT_COLUMN_REDUCE, 0, 0, 0, 0));
    for (int k = 0; k < OT_SAFE_POINT_FLAGS; k++) safe_point[k] = flags[FLAG_SAFE_POINT + k];
    if (flags[FLAG_BAD_ROW] > 0) { /* discard the pass: rescue the rows (at the state before it), rebuild, redo it */
      PetscCheck(++rescues_in_a_row <= 3, s->comm, PETSC_ERR_PLIB, "truncated kernel: rows without kept entries after 3 rescues");
      Materialize(s);
      RescueRows(s, bad_rows, t->rescue);
      rebuild = PETSC_TRUE;
      it--;
      continue;
    }
    rescues_in_a_row = 0;
    /* the state (f_new, g): the column sums of P = diag(u) K diag(v), and g, in original order */
    for (PetscInt c = 0; c < m; c++) {
      PetscInt j = OTTruncatedColumn(t, c);

      s->col_sum[j]   = t->col_sum[c] * t->v[c];
      t->g_scratch[j] = t->g_ref[c] + s->eps * PetscLogReal(t->v[c]);
    }
    OTMarginalsFromColumns(pb, s->eps, s->col_sum, t->g_scratch, t->col_sum[m], flags[FLAG_ROW_ERROR], &marginals);
    /* the dropped entries at this state, u_i K_ij v_j, sum to less than OTTruncatedDroppedBound (at most t->dropped max u
       max v); they move each marginal by less */
    dropped_now    = OTTruncatedDroppedBound(flags[FLAG_DROPPED_ROWS], col_part, max_log_u, max_log_v);
    marginal_error = marginals.marginal_error + 2.0 * dropped_now;
    dual           = marginals.dual;
    PetscCall(OTSinkhornVerdict(s, first_iteration + it, marginal_error, dual, stop_when_close, converged, &leave));
    if (leave) {
      Materialize(s);
      s->g_update_pending = (PetscBool)(s->result.reason == OT_REASON_NONE);
      s->g_update_eps     = s->eps;
      break;
    }
    if (s->overrelax) omega = Overrelaxation(marginal_error, pb->mass, &relax);
    bad_columns = UpdateColumns(s, omega, &max_log_v, &col_part);
    /* rebuild where the dropped entries could hold more than OT_TRUNCATION_SHARE of the tolerance or of the error now, whichever is larger
       (far from the answer the kernel need not be as exact, and the first sweeps after a change of eps or of level move
       the scalings far); the same verdict on every rank */
    dropped_now = OTTruncatedDroppedBound(flags[FLAG_DROPPED_ROWS], col_part, max_log_u, max_log_v);
    if (bad_columns || dropped_now > OT_TRUNCATION_SHARE * PetscMax(s->tol, marginal_error)) {
      PetscCall(PetscInfo(NULL, "rebuild after %" PetscInt_FMT " sweeps: %" PetscInt_FMT " columns without kept entries, dropped entries of P < %g (%g by max u max v), error %g\n",
                          it, bad_columns, (double)dropped_now, (double)(t->dropped * PetscExpReal(max_log_u + max_log_v)), (double)marginal_error));
      Materialize(s);
      PetscCall(RescueColumns(s, bad_columns, t->rescue));
      rebuild = PETSC_TRUE;
    }
  }
  if (!stop && !rebuild && it > max_sweeps) Materialize(s); /* (with a rebuild pending, (f, g) hold the state already) */
  *sweeps = stop ? it - 1 : PetscMin(it, max_sweeps);
  PetscCall(PetscInfo(NULL,
                      "Truncated Sinkhorn: %" PetscInt_FMT " sweeps, %" PetscInt_FMT " builds, %.6g entries kept at the last, %" PetscInt_FMT
                      " row rescues on rank %d, %" PetscInt_FMT " column rescues\n",
                      *sweeps, t->builds, t->kept_global, t->rescued_rows, s->rank, t->rescued_columns));
  PetscFunctionReturn(0);
}
