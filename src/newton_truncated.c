/*
  Newton's passes over the truncated kernel (-ot_sinkhorn_variant truncated; truncated.h, docs/design.md §1): the
  survey, the kept entries and the line search's trials read P = diag(u) K diag(v) from the kept entries of K alone,
  u_i = exp((f_i - f_ref_i)/eps) and v_c = exp((g_j - g_ref_c)/eps) (c: j's kernel column), so that a Newton step
  costs O(kept entries), not O(n m). The dropped entries of P sum to less than OTTruncatedDroppedBound: like the
  sweeps' (truncated.c), the marginal errors these passes report include twice that, so a step is never accepted
  on an error the full plan does not meet. The kernel is rebuilt at the current potentials before a step whose
  dropped entries could exceed OT_TRUNCATION_SHARE (10%) of the larger of the tolerance and the last error, and at a
  new eps.
*/
#include "newton.h"
#include "truncated.h"

PetscBool OTNewtonOnTruncated(OTSolver s)
{
  return (PetscBool)(s->variant == OT_SINKHORN_TRUNCATED && !s->problem->symmetric);
}

PetscErrorCode OTNewtonTruncatedPrepare(OTSolver s)
{
  PetscBool serves;

  PetscFunctionBegin;
  PetscCall(OTTruncatedCreate(s));
  PetscCall(OTTruncatedServes(s, s->history_len ? s->history[s->history_len - 1].marginal_error : PETSC_INFINITY, &serves));
  if (!serves) PetscCall(OTTruncatedBuild(s)); /* at (f, g): u = v = 1 */
  PetscFunctionReturn(0);
}

/* Scratch of length m in kernel order: column sums, column maxima and their rows, and the kernel column of each
   original column (point clouds). */
static PetscErrorCode Scratch(OTSolver s, PetscReal **col_sum, PetscReal **col_max, PetscReal **col_row, PetscInt **column_of)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt = s->newton;
  OTTruncated *t  = s->trunc;

  PetscFunctionBegin;
  if (!nt->t_col_sum) {
    PetscCall(PetscMalloc4(pb->m, &nt->t_col_sum, pb->m, &nt->t_col_max, pb->m, &nt->t_col_row, pb->m, &nt->t_column_of));
    for (PetscInt c = 0; c < pb->m; c++) nt->t_column_of[OTTruncatedColumn(t, c)] = c;
  }
  if (col_sum) *col_sum = nt->t_col_sum;
  if (col_max) *col_max = nt->t_col_max;
  if (col_row) *col_row = nt->t_col_row;
  if (column_of) *column_of = nt->t_column_of;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonTruncatedSurvey(OTSolver s, PetscInt sample_stride, PetscReal *dropped_now)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt = s->newton;
  OTTruncated *t  = s->trunc;
  PetscReal   *cs, *cm, *cr, log_max_u, log_max_v;
  const PetscReal *v = nt->v;

  PetscFunctionBegin;
  PetscCall(Scratch(s, &cs, &cm, &cr, NULL));
  PetscCall(OTTruncatedScalings(s, NULL, 0.0, s->g, nt->u, nt->v, &log_max_u, &log_max_v, dropped_now));
  for (PetscInt c = 0; c < pb->m; c++) {
    cs[c] = 0.0;
    cm[c] = -1.0;
    cr[c] = -1;
  }
  for (PetscInt b = 0; b < OT_HIST_BINS; b++) nt->hist[b] = 0;
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i = t->row_of[r], global_row = pb->row_start + i, arg = -1;
    PetscReal        u_i = nt->u[i], sum = 0.0, best = -1.0;
    const PetscReal *k      = OTTruncatedRow(pb, t, r);
    PetscBool        sample = (PetscBool)(global_row % sample_stride == 0);

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      PetscInt c0 = t->seg_col[sg];

      for (int q = 0; q < t->seg_len[sg]; q++) {
        PetscInt  c = c0 + q;
        PetscReal p = u_i * k[q] * v[c];

        sum += p;
        cs[c] += p;
        if (p > best) {
          best = p;
          arg  = c;
        }
        if (p > cm[c]) {
          cm[c] = p;
          cr[c] = global_row;
        }
        if (sample) nt->hist[OTHistBin(p)]++;
      }
      k += t->seg_len[sg];
    }
    nt->row_sum[i]    = sum;
    nt->row_argmax[i] = arg >= 0 ? OTTruncatedColumn(t, arg) : 0;
  }
  for (PetscInt c = 0; c < pb->m; c++) {
    PetscInt j = OTTruncatedColumn(t, c);

    nt->col_sum[j]       = cs[c];
    nt->col_max_value[j] = cm[c];
    nt->col_max_row[j]   = cr[c];
  }
  PetscFunctionReturn(0);
}

/* P_ij in stored row r for kernel column c, or 0 where the kernel drops it. */
static PetscReal ValueAt(const OTTruncated *t, PetscInt r, const PetscReal *row, PetscReal u_i, const PetscReal *v, PetscInt c)
{
  const PetscReal *k = row;

  for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
    if (c >= t->seg_col[sg] && c < t->seg_col[sg] + t->seg_len[sg]) return u_i * k[c - t->seg_col[sg]] * v[c];
    k += t->seg_len[sg];
  }
  return 0.0;
}

void OTNewtonTruncatedKeepRoom(OTSolver s, PetscReal threshold, const PetscInt *extra_ptr, PetscInt *start_of)
{
  OTProblem        pb = s->problem;
  OTNewton        *nt = s->newton;
  OTTruncated     *t  = s->trunc;
  const PetscReal *v  = nt->v;

  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i = t->row_of[r], count = 0;
    const PetscReal *k = OTTruncatedRow(pb, t, r);

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      for (int q = 0; q < t->seg_len[sg]; q++) count += nt->u[i] * k[q] * v[t->seg_col[sg] + q] >= threshold;
      k += t->seg_len[sg];
    }
    start_of[i + 1] = count + 1 + (extra_ptr[i + 1] - extra_ptr[i]); /* at most: the row's largest and its column maxima */
  }
  start_of[0] = 0;
  for (PetscInt i = 0; i < pb->n_local; i++) start_of[i + 1] += start_of[i];
}

PetscErrorCode OTNewtonTruncatedKeep(OTSolver s, PetscReal threshold, const PetscInt *extra_ptr, const PetscInt *extra_col, const PetscInt *start_of,
                                     PetscInt *row_ptr, PetscInt *col_local)
{
  OTProblem        pb = s->problem;
  OTNewton        *nt = s->newton;
  OTTruncated     *t  = s->trunc;
  PetscInt        *column_of, kept = 0;
  const PetscReal *v = nt->v;

  PetscFunctionBegin;
  PetscCall(Scratch(s, NULL, NULL, NULL, &column_of));
  /* rows in stored order, each written at its room start_of[i] (owned order), then compacted */
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i = t->row_of[r], at = start_of[i], first = at, arg_c = column_of[nt->row_argmax[i]];
    PetscReal        u_i = nt->u[i];
    const PetscReal *row = OTTruncatedRow(pb, t, r), *k = row;
    PetscBool        have_arg = PETSC_FALSE;

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      PetscInt c0 = t->seg_col[sg];

      for (int q = 0; q < t->seg_len[sg]; q++) {
        PetscReal p = u_i * k[q] * v[c0 + q];

        if (p >= threshold) {
          nt->kept_col[at]   = OTTruncatedColumn(t, c0 + q);
          nt->kept_val[at++] = p;
          have_arg           = (PetscBool)(have_arg || c0 + q == arg_c);
        }
      }
      k += t->seg_len[sg];
    }
    if (!have_arg) {
      nt->kept_col[at]   = nt->row_argmax[i];
      nt->kept_val[at++] = ValueAt(t, r, row, u_i, v, arg_c);
    }
    for (PetscInt e = extra_ptr[i]; e < extra_ptr[i + 1]; e++) {
      PetscInt  j = extra_col[e];
      PetscReal p = ValueAt(t, r, row, u_i, v, column_of[j]);

      if (!(p >= threshold) && j != nt->row_argmax[i]) {
        nt->kept_col[at]   = j;
        nt->kept_val[at++] = p;
      }
    }
    for (PetscInt q = first; q < at; q++) col_local[nt->kept_col[q]]++;
    row_ptr[i + 1] = at - first; /* a count for now */
  }
  /* compact: the rows' counts into offsets, the entries moved down over the unused room */
  row_ptr[0] = 0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    PetscInt count = row_ptr[i + 1];

    if (kept != start_of[i]) {
      PetscCall(PetscArraymove(nt->kept_col + kept, nt->kept_col + start_of[i], count));
      PetscCall(PetscArraymove(nt->kept_val + kept, nt->kept_val + start_of[i], count));
    }
    kept += count;
    row_ptr[i + 1] = kept;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonTruncatedTrial(OTSolver s, PetscReal alpha, PetscReal sums[3], PetscReal *dropped_now)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt = s->newton;
  OTTruncated *t  = s->trunc;
  PetscReal   *cs, log_max_u, log_max_v;
  const PetscReal *v = nt->v;

  PetscFunctionBegin;
  PetscCall(Scratch(s, &cs, NULL, NULL, NULL));
  PetscCall(OTTruncatedScalings(s, nt->df, alpha, nt->g_trial, nt->u, nt->v, &log_max_u, &log_max_v, dropped_now));
  for (PetscInt c = 0; c < pb->m; c++) cs[c] = 0.0;
  sums[0] = sums[1] = sums[2] = 0.0;
  for (PetscInt i = 0; i < pb->n_local; i++) sums[0] += OTMarginalDualTerm(pb->rho_a, pb->a[i], s->f[i] + alpha * nt->df[i]);
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i   = t->row_of[r];
    PetscReal        sum = 0.0;
    const PetscReal *row = OTTruncatedRow(pb, t, r), *k = row;

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      sum += OTDot(t->seg_len[sg], k, v + t->seg_col[sg]);
      k += t->seg_len[sg];
    }
    k = row;
    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      OTAxpy(t->seg_len[sg], nt->u[i], k, cs + t->seg_col[sg]);
      k += t->seg_len[sg];
    }
    sum *= nt->u[i];
    sums[1] += PetscAbsReal(sum - OTMarginalTarget(pb->rho_a, pb->a[i], s->f[i] + alpha * nt->df[i]));
    sums[2] += sum;
  }
  for (PetscInt c = 0; c < pb->m; c++) nt->col_sum[OTTruncatedColumn(t, c)] = cs[c] * v[c];
  PetscFunctionReturn(0);
}
