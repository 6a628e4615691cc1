/*
  The end of a truncated solve (docs/design.md §1): the evaluation and the certified bounds over the kept entries,
  with the dropped ones accounted for, so that no pass touches all n x m pairs.

  The kernel is rebuilt at the final (f, g): its stored values are then entries of P, and the entries it drops sum to
  less than t->dropped (the cell bounds). Evaluation: transport cost, regularised cost and column sums over the kept
  entries; the marginal error reported is that of the kept entries plus twice the dropped bound, an upper bound on
  the full plan's. The transport cost leaves out the dropped entries' part, at most t->dropped x max C.
  Lower bound: the exact c-transforms g'_j = min_i (C_ij - f_i), f'_i = min_j (C_ij - g'_j), found by branch and
  bound on the cell trees (point clouds; for squared Euclidean costs with the nodes' linear models of the weights,
  OTTruncatedTreeLinear) or by scans (/C): <a, f'> + <b, g'> <= OT, as in bounds.c.
  Upper bound: the rounding of Altschuler, Weed and Rigollet applied to the kept entries (a nonnegative matrix like
  any other): <C, Y> over them plus err_a^T C err_b / |err_a|_1 over all pairs, which for the squared Euclidean cost
  is expanded as |err_b| <err_a, |x|^2> + |err_a| <err_b, |y|^2> - 2 <sum err_a x, sum err_b y> (O(n + m)), for /C
  summed over the stored rows, and for other costs bounded by max C x |err_b|_1.
*/
#include "truncated.h"

/* The costs of stored row r's segment sg into out (point clouds: recomputed in the order of OTKernelCostEntries). */
static void SegmentCosts(OTProblem pb, const OTTruncated *t, PetscInt i, int64_t sg, PetscReal *out)
{
  PetscInt c0 = t->seg_col[sg], len = t->seg_len[sg];

  if (!t->trees) {
    for (PetscInt q = 0; q < len; q++) out[q] = pb->cost[(size_t)i * (size_t)pb->m + t->col_perm[c0 + q]];
    return;
  }
  for (PetscInt q = 0; q < len; q++) {
    const PetscReal *x = pb->x + (size_t)i * pb->dim, *y = t->yt.points + (size_t)(c0 + q) * pb->dim;
    PetscReal        sq = 0.0;

    for (PetscInt k = 0; k < pb->dim; k++) {
      PetscReal diff = x[k] - y[k];

      sq = k ? sq + diff * diff : diff * diff;
    }
    out[q] = CostFromSquared(pb, sq);
  }
}

PetscErrorCode OTTruncatedEvaluate(OTSolver s, OTResult *result)
{
  OTProblem    pb = s->problem;
  OTTruncated *t;
  PetscInt     m = pb->m;
  PetscReal   *col, *cost, sums[4] = {0, 0, 0, 0}; /* transport, row error, sum f_i (P1)_i, <a, f> */
  OTMarginals  marginals;

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_EVALUATE, 0, 0, 0, 0));
  PetscCall(OTTruncatedCreate(s));
  t = s->trunc;
  PetscCall(OTTruncatedBuild(s));
  PetscCall(PetscMalloc2(m + 4, &col, m, &cost));
  for (PetscInt c = 0; c < m; c++) col[c] = 0.0;
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i = t->row_of[r];
    const PetscReal *k = OTTruncatedRow(pb, t, r);
    PetscReal        row = 0.0, row_cost = 0.0; /* (sums per row, then over rows: fewer roundings in one chain) */

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      SegmentCosts(pb, t, i, sg, cost);
      row_cost += OTDot(t->seg_len[sg], k, cost);
      row += OTSum(t->seg_len[sg], k);
      OTAxpy(t->seg_len[sg], 1.0, k, col + t->seg_col[sg]);
      k += t->seg_len[sg];
    }
    sums[0] += row_cost;
    sums[1] += PetscAbsReal(row - pb->a[i]);
    sums[2] += s->f[i] * row;
    sums[3] += pb->a[i] * s->f[i];
  }
  for (int q = 0; q < 4; q++) col[m + q] = sums[q];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col, (PetscMPIInt)(m + 4), MPIU_REAL, MPIU_SUM, s->comm));
  for (PetscInt c = 0; c < m; c++) cost[OTTruncatedColumn(t, c)] = col[c]; /* the column sums in original order */
  OTMarginalsFromColumns(pb, s->eps, cost, s->g, col[m + 3], col[m + 1], &marginals);
  result->transport_cost = col[m];
  result->marginal_error = marginals.marginal_error + 2.0 * t->dropped;
  result->dropped_mass   = t->dropped;
  result->dual_objective = marginals.dual;
  result->entropic_cost  = col[m + 2] + marginals.g_colmass - s->eps * marginals.plan_mass;
  result->eps            = s->eps;
  PetscCall(PetscFree2(col, cost));
  PetscCall(PetscLogEventEnd(OT_EVENT_EVALUATE, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

/* g'_j = min_i (C_ij - f_i) over all ranks, and f'_i = min_j (C_ij - g'_j); returns <a, f'> + <b, g'>. Collective. */
static PetscErrorCode LowerBound(OTSolver s, PetscReal *lower)
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;
  PetscReal   *col_min, *y, sums = 0.0, *lin = NULL;
  PetscInt     stack[OT_TREE_STACK];

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(pb->m, &col_min, pb->dim, &y));
  if (t->trees) {
    OTCellTreeSetWeights(&t->xt, s->f);
    PetscCall(OTTruncatedTreeLinear(pb, &t->xt, &lin));
  }
  for (PetscInt j = 0; j < pb->m; j++) { /* -max_i (f_i - C_ij), reduced as a max */
    if (t->trees) {
      for (PetscInt c = 0; c < pb->dim; c++) y[c] = pb->y_t[(size_t)c * pb->m + j];
      col_min[j] = OTTruncatedTreeMax(pb, &t->xt, lin, y, stack);
    } else {
      col_min[j] = -INFINITY;
      for (PetscInt i = 0; i < pb->n_local; i++) col_min[j] = PetscMax(col_min[j], s->f[i] - pb->cost[(size_t)i * pb->m + j]);
    }
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_min, (PetscMPIInt)pb->m, MPIU_REAL, MPIU_MAX, s->comm));
  for (PetscInt j = 0; j < pb->m; j++) col_min[j] = -col_min[j];
  PetscCall(PetscFree(lin));
  if (t->trees) {
    OTCellTreeSetWeights(&t->yt, col_min);
    PetscCall(OTTruncatedTreeLinear(pb, &t->yt, &lin));
  }
  for (PetscInt i = 0; i < pb->n_local; i++) {
    PetscReal best;

    if (t->trees) best = OTTruncatedTreeMax(pb, &t->yt, lin, pb->x + (size_t)i * pb->dim, stack);
    else {
      OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

      best = -OTRowMinMinus(&cost, col_min);
    }
    sums += pb->a[i] * -best;
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &sums, 1, MPIU_REAL, MPIU_SUM, s->comm));
  for (PetscInt j = 0; j < pb->m; j++) sums += pb->b[j] * col_min[j];
  *lower = sums;
  PetscCall(PetscFree(lin));
  PetscCall(PetscFree2(col_min, y));
  PetscFunctionReturn(0);
}

/* err_a^T C err_b over all pairs (err_a: this rank's rows, err_b: all columns, original order), or an upper bound of
   it. Collective. */
static PetscErrorCode RankOneCost(OTSolver s, const PetscReal *err_a, const PetscReal *err_b, PetscReal *value)
{
  OTProblem pb = s->problem;
  PetscInt  d  = pb->dim;
  PetscReal local = 0.0, total_b = 0.0;

  PetscFunctionBegin;
  for (PetscInt j = 0; j < pb->m; j++) total_b += err_b[j];
  if (pb->cost_kind == OT_COST_DENSE) {
    for (PetscInt i = 0; i < pb->n_local; i++) {
      OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

      if (err_a[i] > 0) local += err_a[i] * OTRowDot(&cost, err_b);
    }
    PetscCallMPI(MPI_Allreduce(&local, value, 1, MPIU_REAL, MPIU_SUM, s->comm));
  } else if (pb->cost_kind == OT_COST_SQEUCLIDEAN) {
    /* sum_ij ea_i eb_j |x_i - y_j|^2 = |eb| <ea, |x|^2> + |ea| <eb, |y|^2> - 2 <sum ea x, sum eb y>, plus a margin
       for the cancellation of these sums of nonnegative terms */
    PetscReal *sx, ea = 0.0, ex2 = 0.0, ey2 = 0.0, cross = 0.0, scale;

    PetscCall(PetscCalloc1(d + 2, &sx));
    for (PetscInt i = 0; i < pb->n_local; i++) {
      PetscReal x2 = 0.0;

      for (PetscInt k = 0; k < d; k++) {
        PetscReal x = pb->x[(size_t)i * d + k];

        x2 += x * x;
        sx[k] += err_a[i] * x;
      }
      sx[d] += err_a[i];
      sx[d + 1] += err_a[i] * x2;
    }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, sx, (PetscMPIInt)(d + 2), MPIU_REAL, MPIU_SUM, s->comm));
    ea  = sx[d];
    ex2 = sx[d + 1];
    for (PetscInt j = 0; j < pb->m; j++) {
      PetscReal y2 = 0.0, dot = 0.0;

      for (PetscInt k = 0; k < d; k++) {
        PetscReal y = pb->y_t[(size_t)k * pb->m + j];

        y2 += y * y;
        dot += sx[k] * y;
      }
      ey2 += err_b[j] * y2;
      cross += err_b[j] * dot;
    }
    scale  = total_b * ex2 + ea * ey2;
    *value = PetscMax(0.0, scale - 2.0 * cross) + 1e-12 * (scale + 2.0 * PetscAbsReal(cross));
    PetscCall(PetscFree(sx));
  } else {
    PetscReal total_a = 0.0;

    for (PetscInt i = 0; i < pb->n_local; i++) local += err_a[i];
    PetscCallMPI(MPI_Allreduce(&local, &total_a, 1, MPIU_REAL, MPIU_SUM, s->comm));
    *value = pb->cost_max * total_a * total_b;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedBounds(OTSolver s, PetscReal *lower, PetscReal *upper)
{
  OTProblem    pb = s->problem;
  OTTruncated *t;
  PetscInt     m = pb->m;
  PetscReal   *row_scale, *row_y, *col, *col_y, *cost, sums[2] = {0, 0}, rank_one; /* <C,Y>, |err_a|_1 */

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_BOUNDS, 0, 0, 0, 0));
  PetscCall(OTTruncatedCreate(s));
  t = s->trunc;
  if (t->eps != s->eps) PetscCall(OTTruncatedBuild(s)); /* (OTTruncatedEvaluate built it at this state) */
  PetscCall(LowerBound(s, lower));
  PetscCall(PetscMalloc5(pb->n_local, &row_scale, pb->n_local, &row_y, m, &col, m + 2, &col_y, m, &cost));
  /* x_i = min(a_i / (P1)_i, 1), the column sums of diag(x) P, y_j = min(b_j / them, 1) */
  for (PetscInt c = 0; c < m; c++) col[c] = 0.0;
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i   = t->row_of[r];
    PetscReal        row = 0.0;
    const PetscReal *k   = OTTruncatedRow(pb, t, r);

    for (int64_t e = 0; e < t->val_ptr[r + 1] - t->val_ptr[r]; e++) row += k[e];
    row_scale[i] = row > pb->a[i] ? pb->a[i] / row : 1.0;
    for (int64_t sg = t->seg_ptr[r], e = 0; sg < t->seg_ptr[r + 1]; sg++)
      for (int q = 0; q < t->seg_len[sg]; q++) col[t->seg_col[sg] + q] += row_scale[i] * k[e++];
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col, (PetscMPIInt)m, MPIU_REAL, MPIU_SUM, s->comm));
  for (PetscInt c = 0; c < m; c++) {
    PetscReal b_j = pb->b[OTTruncatedColumn(t, c)];

    col[c] = col[c] > b_j ? b_j / col[c] : 1.0;
  }
  /* Y = diag(x) P diag(y): its row sums, column sums and <C, Y> */
  for (PetscInt c = 0; c < m + 2; c++) col_y[c] = 0.0;
  for (PetscInt r = 0; r < t->rows; r++) {
    PetscInt         i = t->row_of[r];
    const PetscReal *k = OTTruncatedRow(pb, t, r);

    PetscReal        row_cost = 0.0;

    row_y[i] = 0.0;
    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      SegmentCosts(pb, t, i, sg, cost);
      for (int q = 0; q < t->seg_len[sg]; q++) {
        PetscReal y_ij = row_scale[i] * k[q] * col[t->seg_col[sg] + q];

        row_y[i] += y_ij;
        col_y[t->seg_col[sg] + q] += y_ij;
        row_cost += y_ij * cost[q];
      }
      k += t->seg_len[sg];
    }
    sums[0] += row_cost;
  }
  col_y[m] = sums[0];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_y, (PetscMPIInt)(m + 1), MPIU_REAL, MPIU_SUM, s->comm));
  /* err_a (this rank's rows) into row_y, err_b (original order) into col */
  for (PetscInt i = 0; i < pb->n_local; i++) {
    row_y[i] = PetscMax(0.0, pb->a[i] - row_y[i]);
    sums[1] += row_y[i];
  }
  for (PetscInt c = 0; c < m; c++) {
    PetscInt j = OTTruncatedColumn(t, c);

    cost[j] = PetscMax(0.0, pb->b[j] - col_y[c]);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &sums[1], 1, MPIU_REAL, MPIU_SUM, s->comm));
  PetscCall(RankOneCost(s, row_y, cost, &rank_one));
  *upper = col_y[m] + (sums[1] > 0 ? rank_one / sums[1] : 0.0);
  PetscCall(PetscFree5(row_scale, row_y, col, col_y, cost));
  PetscCall(PetscLogEventEnd(OT_EVENT_BOUNDS, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}
