/*
  The truncated kernel's construction (truncated.h, docs/design.md §1): which entries of
  K = exp((f_ref + g_ref - C)/eps) it keeps and how they are found without scanning all n x m pairs.

  Kept: every entry with log K_ij >= log_floor (and the few below it inside a segment). Point clouds: cell trees
  (celltree.c) over the owned points of X and all points of Y; a leaf of X skips every cell of Y whose largest g,
  plus the leaf's largest f, minus the least cost between the two cells is below the floor; a row then skips the
  remaining leaves by the same test with its own f_i, and for squared Euclidean costs also by a linear bound of
  g - |y|^2 over the leaf (LinearModels), much tighter where the potentials vary over a cell by many eps; only the
  pairs in leaves that pass are computed. A stored /C is scanned row by row, its columns in the order of
  truncated_order.c. Every skipped cell pair and every computed entry below the floor is added to a bound on the
  dropped entries (t->dropped), from which the floor is chosen (OTTruncatedBuild) and the exactness of the sweeps,
  the evaluation and the bounds is accounted for.
*/
#include "otimpl.h"
#include "truncated.h"

/* Columns between two kept entries of a row that are stored with them (one segment instead of two). */
#define OT_TRUNCATION_GAP 4

/* The scalings may move by this factor (log) from the reference before the kernel is rebuilt. */
#define OT_TRUNCATION_SLACK 4.605170185988091 /* log 100 */

PetscErrorCode OTTruncatedCreate(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTTruncated *t;

  PetscFunctionBegin;
  if (s->trunc) PetscFunctionReturn(0);
  PetscCall(PetscNew(&t));
  t->rows        = pb->n_local;
  t->slack       = OT_TRUNCATION_SLACK;
  t->floor_shift = PetscLogReal(64.0); /* a first guess: each row drops as much as 64 entries at the floor */
  PetscCall(PetscMalloc6(pb->n_local, &t->row_of, pb->n_local + 1, &t->seg_ptr, pb->n_local + 1, &t->val_ptr, pb->n_local, &t->f_ref, pb->n_local, &t->u, pb->m,
                         &t->g_ref));
  PetscCall(PetscMalloc6(pb->m, &t->v, pb->m + OT_COLUMN_EXTRA, &t->col_sum, pb->m, &t->g_scratch, pb->m, &t->e_row, pb->m, &t->x_row, PetscMax(pb->m, pb->n_local),
                         &t->rescue));
  PetscCall(PetscCalloc2(pb->n_local, &t->drop_row, pb->m, &t->drop_col));
  PetscCall(PetscMalloc2(pb->n_local + 1, &t->chunk_ptr, pb->n_local, &t->row_point));
  t->values   = s->truncation_values;
  t->computed = (PetscBool)(t->values == OT_TRUNCATION_VALUES_COMPUTED);
  t->value_budget = s->memory_share;
  if (pb->cost_kind != OT_COST_DENSE) {
    PetscCall(OTCellTreeCreate(pb->x, pb->n_local, pb->dim, (size_t)pb->dim, 1, OT_TRUNCATION_LEAF, &t->xt));
    PetscCall(OTCellTreeCreate(pb->y_t, pb->m, pb->dim, 1, (size_t)pb->m, OT_TRUNCATION_LEAF, &t->yt));
    PetscCall(PetscMalloc1(t->yt.nodes, &t->drop_node));
    t->trees = PETSC_TRUE;
  } else {
    PetscCall(PetscMalloc2(pb->m, &t->col_perm, pb->m, &t->c_row));
    PetscCall(OTTruncatedColumnOrder(pb, t->col_perm));
  }
  s->trunc = t;
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedDestroy(OTTruncated **trunc)
{
  OTTruncated *t = *trunc;

  PetscFunctionBegin;
  if (!t) PetscFunctionReturn(0);
  if (t->trees) {
    PetscCall(OTCellTreeDestroy(&t->xt));
    PetscCall(OTCellTreeDestroy(&t->yt));
  }
  PetscCall(PetscFree6(t->row_of, t->seg_ptr, t->val_ptr, t->f_ref, t->u, t->g_ref));
  PetscCall(PetscFree6(t->v, t->col_sum, t->g_scratch, t->e_row, t->x_row, t->rescue));
  PetscCall(PetscFree2(t->drop_row, t->drop_col));
  PetscCall(PetscFree(t->drop_node));
  PetscCall(PetscFree2(t->chunk_ptr, t->row_point));
  PetscCall(PetscFree(t->chunk_zeros));
  PetscCall(PetscFree(t->seg_zeros));
  PetscCall(PetscFree(t->y_soa));
  PetscCall(PetscFree(t->chunk_col));
  PetscCall(PetscFree(t->seg_col));
  PetscCall(PetscFree(t->seg_len));
  PetscCall(PetscFree(t->k));
  PetscCall(PetscFree(t->lin));
  PetscCall(PetscFree2(t->col_perm, t->c_row));
  PetscCall(PetscFree(*trunc));
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedScalings(OTSolver s, const PetscReal *df, PetscReal alpha, const PetscReal *g, PetscReal *u, PetscReal *v, PetscReal *log_max_u,
                                   PetscReal *log_max_v, PetscReal *dropped)
{
  OTTruncated *t       = s->trunc;
  PetscReal    inv_eps = 1.0 / s->eps, row_part = 0.0, col_part = 0.0;

  PetscFunctionBegin;
  *log_max_u = *log_max_v = -INFINITY;
  for (PetscInt i = 0; i < s->problem->n_local; i++) {
    PetscReal e = ((df ? s->f[i] + alpha * df[i] : s->f[i]) - t->f_ref[i]) * inv_eps;

    u[i]       = PetscExpReal(e);
    *log_max_u = PetscMax(*log_max_u, e);
    row_part += t->drop_row[i] * u[i];
  }
  for (PetscInt c = 0; c < s->problem->m; c++) {
    PetscReal e = (g[OTTruncatedColumn(t, c)] - t->g_ref[c]) * inv_eps;

    v[c]       = PetscExpReal(e);
    *log_max_v = PetscMax(*log_max_v, e);
    col_part += t->drop_col[c] * v[c];
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, log_max_u, 1, MPIU_REAL, MPIU_MAX, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &row_part, 1, MPIU_REAL, MPIU_SUM, s->comm));
  *dropped = OTTruncatedDroppedBound(row_part, col_part, *log_max_u, *log_max_v);
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedServes(OTSolver s, PetscReal error, PetscBool *serves)
{
  OTTruncated *t = s->trunc;
  PetscReal    log_max_u, log_max_v, dropped;

  PetscFunctionBegin;
  *serves = PETSC_FALSE;
  if (!t || t->eps != s->eps || t->builds == 0) PetscFunctionReturn(0);
  PetscCall(OTTruncatedScalings(s, NULL, 0.0, s->g, t->u, t->v, &log_max_u, &log_max_v, &dropped));
  *serves = (PetscBool)(dropped <= OT_TRUNCATION_SHARE * PetscMax(s->tol, error));
  PetscFunctionReturn(0);
}

/* Appends a segment: columns col .. col + len + zeros - 1 with values x[0 .. len) then zeros zeros, growing the arrays
   by half (with realloc, which moves large blocks by remapping their pages: no second copy of the kernel at the
   peak). With -ot_truncation_values auto, values that would pass the budget are given up (this build's and the
   stored ones): the rank's kernel keeps their positions only, and the passes compute them (OTTruncatedRow); the
   first build stores none (BuildOnce). */
static PetscErrorCode AppendSegment(OTTruncated *t, PetscInt col, const PetscReal *x, PetscInt len, PetscInt zeros)
{
  int64_t need = t->kept + len + zeros;

  PetscFunctionBegin;
  if (t->segs + 1 > t->seg_cap) {
    t->seg_cap = PetscMax(t->seg_cap + t->seg_cap / 2, 1024);
    PetscCall(PetscRealloc(sizeof(PetscInt) * (size_t)t->seg_cap, &t->seg_col));
    PetscCall(PetscRealloc(sizeof(int) * (size_t)t->seg_cap, &t->seg_len));
    PetscCall(PetscRealloc(sizeof(unsigned char) * (size_t)t->seg_cap, &t->seg_zeros));
  }
  if (!t->computed && need > t->cap) {
    double most = t->values == OT_TRUNCATION_VALUES_AUTO ? t->value_budget / sizeof(PetscReal) : INFINITY;

    if ((double)need > most) {
      PetscCall(PetscFree(t->k));
      t->cap      = 0;
      t->computed = PETSC_TRUE;
      PetscCall(PetscInfo(NULL, "Truncated kernel: its values would pass %.3g MB on this rank (-ot_truncation_values auto): computed in each pass instead\n", t->value_budget / 1e6));
    } else {
      t->cap = (int64_t)PetscMin(most, (double)PetscMax(t->cap + t->cap / 2, need + 4096));
      PetscCall(PetscRealloc(sizeof(PetscReal) * (size_t)t->cap, &t->k));
    }
  }
  t->seg_col[t->segs]   = col;
  t->seg_zeros[t->segs] = (unsigned char)zeros;
  t->seg_len[t->segs++] = (int)(len + zeros);
  if (!t->computed) {
    PetscCall(PetscArraycpy(t->k + t->kept, x, len));
    for (PetscInt q = 0; q < zeros; q++) t->k[t->kept + len + q] = 0.0;
  }
  t->kept = need;
  PetscFunctionReturn(0);
}

/* Ends stored row r: where each of its segments holds a multiple of 4 columns, the first column of each group of 4
   into t->chunk_col, for the sweep (truncated.c Sweep); else none (the sweep then takes the row segment by segment). */
static PetscErrorCode EndRow(OTTruncated *t, PetscInt r)
{
  int64_t count = (t->kept - t->val_ptr[r]) / 4;

  PetscFunctionBegin;
  t->chunk_ptr[r] = t->chunks;
  for (int64_t sg = t->seg_ptr[r]; sg < t->segs; sg++)
    if (t->seg_len[sg] % 4) PetscFunctionReturn(0);
  if (t->chunks + count > t->chunk_cap) {
    t->chunk_cap = PetscMax(t->chunk_cap + t->chunk_cap / 2, t->chunks + count + 1024);
    PetscCall(PetscRealloc(sizeof(int) * (size_t)t->chunk_cap, &t->chunk_col));
  }
  for (int64_t sg = t->seg_ptr[r]; sg < t->segs; sg++)
    for (int q = 0; q < t->seg_len[sg]; q += 4) t->chunk_col[t->chunks++] = (int)(t->seg_col[sg] + q);
  PetscFunctionReturn(0);
}

/* x[q] = exp(e[q]), in one vectorised loop. */
OT_HOT_LOOP static void ExpRun(PetscInt len, const PetscReal *restrict e, PetscReal *restrict x)
{
  for (PetscInt q = 0; q < len; q++) x[q] = OTExp(e[q]);
}

/* Stores the entries of exponents e[0 .. len) (columns col0 ..; m columns in all) at or above the floor, in segments
   (gaps of at most OT_TRUNCATION_GAP columns are stored with them: a segment costs more than a few values), each
   padded to a multiple of 4 columns for the sweep's chunks: with the run's next values, then past the run's end
   with zeros (pairs the cell bounds dropped: the next run of the row starts a cell later); a segment that would pass
   column m starts earlier instead, where the run's values before it are not stored already (else it stays as it
   is). Adds the entries left out to *dropped (the row's) and to their columns' t->drop_col. The
   exponentials go through t->x_row. */
static PetscErrorCode StoreRun(OTTruncated *t, PetscInt m, PetscInt col0, const PetscReal *e, PetscInt len, PetscReal *dropped)
{
  PetscReal *x = t->x_row, *drop_col = t->drop_col + col0;
  PetscInt   j = 0, prev_end = 0;

  PetscFunctionBegin;
  ExpRun(len, e, x);
  while (j < len) {
    PetscInt first, last, end, stored;

    for (; j < len && e[j] < t->log_floor; j++) {
      *dropped += x[j];
      drop_col[j] += x[j];
    }
    if (j == len) break;
    first = last = j;
    for (j++; j < len && j - last <= OT_TRUNCATION_GAP; j++)
      if (e[j] >= t->log_floor) last = j;
    end = first + (last - first + 4) / 4 * 4;
    if (col0 + end > m) { /* (at column m: padded to the left with the run's values, already counted as dropped) */
      PetscInt start = last + 1 - (last - first + 4) / 4 * 4;

      if (start >= prev_end) first = start;
      end = last + 1;
    }
    stored = PetscMin(end, len);
    for (PetscInt q = stored; q < j; q++) {
      *dropped += x[q];
      drop_col[q] += x[q];
    }
    j        = PetscMax(j, stored);
    prev_end = end;
    PetscCall(AppendSegment(t, col0 + first, x + first, stored - first, end - stored));
  }
  PetscFunctionReturn(0);
}

/* The exponents e[q] = (f_i + w[q] - C(x, y_q)) inv_eps over len points y (row-major, d coordinates), the squared
   distances summed in the order of OTKernelCostEntries; vectorised over the points for d = 2 and 3. */
OT_HOT_LOOP static void LeafExponents(OTProblem pb, const PetscReal *restrict x, const PetscReal *restrict y, const PetscReal *restrict w, PetscInt len,
                                      PetscReal f_i, PetscReal inv_eps, PetscReal *restrict e)
{
  const PetscInt d = pb->dim;

  if (d == 3)
    for (PetscInt q = 0; q < len; q++) {
      PetscReal d0 = x[0] - y[3 * q], d1 = x[1] - y[3 * q + 1], d2 = x[2] - y[3 * q + 2];

      e[q] = d0 * d0 + d1 * d1 + d2 * d2;
    }
  else if (d == 2)
    for (PetscInt q = 0; q < len; q++) {
      PetscReal d0 = x[0] - y[2 * q], d1 = x[1] - y[2 * q + 1];

      e[q] = d0 * d0 + d1 * d1;
    }
  else
    for (PetscInt q = 0; q < len; q++) {
      PetscReal sq = 0.0;

      for (PetscInt k = 0; k < d; k++) {
        PetscReal diff = x[k] - y[(size_t)q * d + k];

        sq = k ? sq + diff * diff : diff * diff;
      }
      e[q] = sq;
    }
  if (pb->cost_kind == OT_COST_SQEUCLIDEAN)
    for (PetscInt q = 0; q < len; q++) e[q] = (f_i + w[q] - e[q]) * inv_eps;
  else
    for (PetscInt q = 0; q < len; q++) e[q] = (f_i + w[q] - CostFromSquared(pb, e[q])) * inv_eps;
}

/* The exponents e[j] = (f_i + g[j] - c[j]) inv_eps of len stored costs c (a row of /C), for builds and computed rows
   alike. */
static void CostExponents(PetscInt len, const PetscReal *restrict c, const PetscReal *restrict g, PetscReal f_i, PetscReal inv_eps, PetscReal *restrict e)
{
  for (PetscInt j = 0; j < len; j++) e[j] = (f_i + g[j] - c[j]) * inv_eps;
}

/* /C: the costs of row i (owned) at kernel columns c0 .. c0 + len - 1 into t->c_row. */
static inline void GatherCosts(OTProblem pb, OTTruncated *t, PetscInt i, PetscInt c0, PetscInt len)
{
  const PetscReal *c = pb->cost + (size_t)i * (size_t)pb->m;

  for (PetscInt q = 0; q < len; q++) t->c_row[q] = c[t->col_perm[c0 + q]];
}

/* Squared Euclidean costs: for each leaf B of a tree (every node with all_nodes), a linear upper bound
   G_j <= c0 + L . y_j of G_j = w_j - |y_j|^2 over its points (w: the tree's weights; L by least squares, c0 then raised
   to hold at every point), into lin[B (d + 2) ..]: L, c0, and the size of the terms for the rounding margin (lin is
   allocated at the first call). Then for a point x,
     max_(j in B) (w_j - |x - y_j|^2) = max_j (G_j + 2 x . y_j) - |x|^2 <= c0 + max_(y in box B) (L + 2 x) . y - |x|^2,
   which is tight where the row's mass goes (L ~ -2x there: the potentials of squared Euclidean costs are |y|^2 minus a
   convex function, whose gradient is the transport map), where the largest w over the cell is not (the potentials
   vary over a cell by their gradient times the cell's size, many times eps at small eps). Not collective. */
static PetscErrorCode LinearModels(OTProblem pb, const OTCellTree *yt, PetscBool all_nodes, PetscReal **lin)
{
  const PetscInt d = pb->dim;
  PetscReal     *S, *r, *mean;

  PetscFunctionBegin;
  if (!*lin) PetscCall(PetscMalloc1((size_t)yt->nodes * (d + 2), lin));
  PetscCall(PetscMalloc3((size_t)d * d, &S, d, &r, d, &mean));
  for (PetscInt b = 0; b < yt->nodes; b++) {
    const OTCellNode *nd = &yt->node[b];
    PetscReal        *L = *lin + (size_t)b * (d + 2), G_mean = 0.0, c0 = -INFINITY, size = 0.0, trace = 0.0;
    PetscInt          count = nd->end - nd->start;

    if (nd->left >= 0 && !all_nodes) continue;
    for (PetscInt k = 0; k < d; k++) mean[k] = r[k] = 0.0;
    for (PetscInt k = 0; k < d * d; k++) S[k] = 0.0;
    for (PetscInt c = nd->start; c < nd->end; c++) {
      const PetscReal *y = yt->points + (size_t)c * d;
      PetscReal        y2 = 0.0;

      for (PetscInt k = 0; k < d; k++) {
        mean[k] += y[k] / count;
        y2 += y[k] * y[k];
      }
      G_mean += (yt->w[c] - y2) / count;
    }
    for (PetscInt c = nd->start; c < nd->end; c++) {
      const PetscReal *y = yt->points + (size_t)c * d;
      PetscReal        y2 = 0.0;

      for (PetscInt k = 0; k < d; k++) y2 += y[k] * y[k];
      for (PetscInt k = 0; k < d; k++) {
        r[k] += (y[k] - mean[k]) * (yt->w[c] - y2 - G_mean);
        for (PetscInt l = 0; l < d; l++) S[k * d + l] += (y[k] - mean[k]) * (y[l] - mean[l]);
      }
    }
    for (PetscInt k = 0; k < d; k++) trace += S[k * d + k];
    for (PetscInt k = 0; k < d; k++) S[k * d + k] += 1e-9 * trace + 1e-300; /* a cell of coincident or coplanar points */
    for (PetscInt k = 0; k < d; k++) { /* Gaussian elimination with partial pivoting: S L = r */
      PetscInt pivot = k;

      for (PetscInt l = k + 1; l < d; l++)
        if (PetscAbsReal(S[l * d + k]) > PetscAbsReal(S[pivot * d + k])) pivot = l;
      for (PetscInt l = 0; l < d; l++) {
        PetscReal tmp = S[k * d + l];

        S[k * d + l]     = S[pivot * d + l];
        S[pivot * d + l] = tmp;
      }
      {
        PetscReal tmp = r[k];

        r[k]     = r[pivot];
        r[pivot] = tmp;
      }
      for (PetscInt l = k + 1; l < d; l++) {
        PetscReal factor = S[l * d + k] / S[k * d + k];

        for (PetscInt q = k; q < d; q++) S[l * d + q] -= factor * S[k * d + q];
        r[l] -= factor * r[k];
      }
    }
    for (PetscInt k = d - 1; k >= 0; k--) {
      PetscReal sum = r[k];

      for (PetscInt l = k + 1; l < d; l++) sum -= S[k * d + l] * L[l];
      L[k] = PetscIsInfOrNanReal(sum / S[k * d + k]) ? 0.0 : sum / S[k * d + k];
    }
    for (PetscInt c = nd->start; c < nd->end; c++) { /* c0: the least offset with G_j <= c0 + L . y_j at every point */
      const PetscReal *y = yt->points + (size_t)c * d;
      PetscReal        y2 = 0.0, ly = 0.0;

      for (PetscInt k = 0; k < d; k++) {
        y2 += y[k] * y[k];
        ly += L[k] * y[k];
      }
      c0   = PetscMax(c0, yt->w[c] - y2 - ly);
      size = PetscMax(size, PetscAbsReal(yt->w[c]) + y2 + PetscAbsReal(ly));
    }
    L[d]     = c0;
    L[d + 1] = size;
  }
  PetscCall(PetscFree3(S, r, mean));
  PetscFunctionReturn(0);
}

/* The linear bound of LinearModels on max_(j in node b of tree) (f_i + w_j - |x - y_j|^2), with a margin for its
   rounding. */
static inline PetscReal LinearBound(const OTCellTree *tree, const PetscReal *lin, PetscInt d, PetscInt b, const PetscReal *x, PetscReal f_i)
{
  const PetscReal *L = lin + (size_t)b * (d + 2), *lo = tree->lo + (size_t)b * d, *hi = tree->hi + (size_t)b * d;
  PetscReal        sum = f_i + L[d], x2 = 0.0, size = PetscAbsReal(f_i) + L[d + 1];

  for (PetscInt k = 0; k < d; k++) {
    PetscReal slope = L[k] + 2.0 * x[k], center = 0.5 * (lo[k] + hi[k]), half = 0.5 * (hi[k] - lo[k]);

    sum += slope * center + PetscAbsReal(slope) * half;
    x2 += x[k] * x[k];
    size += PetscAbsReal(slope) * (PetscAbsReal(center) + half) + x[k] * x[k];
  }
  return sum - x2 + 1e-12 * (d + 4) * size;
}

/* The rows of leaf a of X's tree (tree order), over the cells of Y that its bounds keep; the sum of what the bounds
   drop is added to *dropped, each row's to t->drop_row, and each cell's of Y to t->drop_node (per column under it). */
static PetscErrorCode BuildPointsLeaf(OTProblem pb, OTTruncated *t, PetscInt a, PetscReal eps, PetscInt *cells, PetscInt *stack, PetscInt *row, PetscReal *dropped)
{
  const OTCellTree *xt = &t->xt, *yt = &t->yt;
  const PetscInt    d       = pb->dim;
  const PetscReal   inv_eps = 1.0 / eps, floor = t->log_floor * eps, size_a = (PetscReal)(xt->node[a].end - xt->node[a].start);
  PetscInt          top = 0, ncells = 0;
  PetscReal         leaf_row = 0.0; /* what the cells dropped whole hold in each row of the leaf */

  PetscFunctionBegin;
  stack[top++] = 0;
  while (top > 0) {
    PetscInt  b     = stack[--top];
    PetscReal bound = xt->wmax[a] + yt->wmax[b] - CostFromSquared(pb, OTCellTreeNodeDistance(xt, a, yt, b));

    if (bound < floor - 1e-12 * (PetscAbsReal(xt->wmax[a]) + PetscAbsReal(yt->wmax[b]) + PetscAbsReal(floor))) {
      PetscReal x = OTExp(bound * inv_eps);

      leaf_row += (PetscReal)(yt->node[b].end - yt->node[b].start) * x;
      t->drop_node[b] += size_a * x;
      continue;
    }
    if (yt->node[b].left < 0) cells[ncells++] = b;
    else {
      stack[top++] = yt->node[b].left;
      stack[top++] = yt->node[b].right;
    }
  }
  for (PetscInt q = 0; q < ncells; q++) stack[q] = yt->node[cells[q]].start;
  PetscCall(PetscSortIntWithArray(ncells, stack, cells)); /* in tree order */
  for (PetscInt p = xt->node[a].start; p < xt->node[a].end; p++) {
    const PetscReal *x   = xt->points + (size_t)p * d;
    PetscReal        f_i = xt->w[p], row_dropped = leaf_row;

    t->row_of[*row]    = xt->perm[p];
    t->row_point[*row] = p;
    t->seg_ptr[*row] = t->segs;
    t->val_ptr[*row] = t->kept;
    for (PetscInt q = 0; q < ncells;) { /* cells that follow each other in tree order make one run of columns */
      PetscInt start = yt->node[cells[q]].start, end = start;

      for (; q < ncells && yt->node[cells[q]].start == end; q++) {
        PetscInt  b = cells[q], len = yt->node[b].end - yt->node[b].start;
        PetscReal bound = f_i + yt->wmax[b] - CostFromSquared(pb, OTCellTreePointDistance(yt, b, x));

        if (t->lin) bound = PetscMin(bound, LinearBound(yt, t->lin, d, b, x, f_i));

        if (bound < floor - 1e-12 * (PetscAbsReal(f_i) + PetscAbsReal(yt->wmax[b]) + PetscAbsReal(floor))) {
          PetscReal x_b = OTExp(bound * inv_eps);

          row_dropped += (PetscReal)len * x_b;
          t->drop_node[b] += x_b;
          q++;
          break; /* the run ends before this cell */
        }
        LeafExponents(pb, x, yt->points + (size_t)yt->node[b].start * d, yt->w + yt->node[b].start, len, f_i, inv_eps, t->e_row + (yt->node[b].start - start));
        end += len;
      }
      t->computed_pairs += end - start;
      PetscCall(StoreRun(t, pb->m, start, t->e_row, end - start, &row_dropped));
    }
    t->drop_row[xt->perm[p]] = row_dropped;
    *dropped += row_dropped;
    PetscCall(EndRow(t, *row));
    (*row)++;
  }
  PetscFunctionReturn(0);
}

/* Computed values: each chunk's padding zeros (the last chunk of a segment holds its segment's), and for squared
   Euclidean point clouds Y's coordinates coordinate after coordinate, for the sweep (OTTruncatedChunkRow). */
static PetscErrorCode ComputedLayout(OTProblem pb, OTTruncated *t)
{
  PetscFunctionBegin;
  if (t->chunks > t->chunk_zeros_cap) {
    t->chunk_zeros_cap = t->chunk_cap;
    PetscCall(PetscRealloc(sizeof(unsigned char) * (size_t)t->chunk_zeros_cap, &t->chunk_zeros));
  }
  for (PetscInt r = 0; r < t->rows; r++) {
    int64_t q = t->chunk_ptr[r];

    if (q == t->chunk_ptr[r + 1]) continue;
    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
      int64_t last = q + t->seg_len[sg] / 4 - 1;

      for (; q < last; q++) t->chunk_zeros[q] = 0;
      t->chunk_zeros[q++] = t->seg_zeros[sg];
    }
  }
  if (t->trees && pb->cost_kind == OT_COST_SQEUCLIDEAN && !t->y_soa) {
    PetscCall(PetscMalloc1((size_t)pb->dim * (size_t)pb->m, &t->y_soa));
    for (PetscInt c = 0; c < pb->m; c++)
      for (PetscInt k = 0; k < pb->dim; k++) t->y_soa[(size_t)k * pb->m + c] = t->yt.points[(size_t)c * pb->dim + k];
  }
  PetscFunctionReturn(0);
}

/* Below OTExp's range: its exponential is exactly 0 (a padding zero). */
#define OT_EXPONENT_ZERO (-1000.0)

const PetscReal *OTTruncatedRow(OTProblem pb, OTTruncated *t, PetscInt r)
{
  PetscReal *e = t->e_row, inv_eps = 1.0 / t->value_eps, f_i = t->f_ref[t->row_of[r]];
  int64_t    at = 0;

  if (!t->computed) return t->k + t->val_ptr[r];
  for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
    PetscInt c0 = t->seg_col[sg], len = t->seg_len[sg], values = len - t->seg_zeros[sg];

    if (t->trees)
      LeafExponents(pb, t->xt.points + (size_t)t->row_point[r] * pb->dim, t->yt.points + (size_t)c0 * pb->dim, t->g_ref + c0, values, f_i, inv_eps, e + at);
    else {
      GatherCosts(pb, t, t->row_of[r], c0, values);
      CostExponents(values, t->c_row, t->g_ref + c0, f_i, inv_eps, e + at);
    }
    for (PetscInt q = values; q < len; q++) e[at + q] = OT_EXPONENT_ZERO;
    at += len;
  }
  ExpRun(at, e, t->x_row);
  return t->x_row;
}

/* The exponents of 4 columns a chunk, from Y's coordinates in t->y_soa (squared Euclidean), as LeafExponents sums
   them: in the same order, and rounded alike (the project compiles in ISO C mode, where gcc contracts no a * b + c
   into an FMA; unit_truncated compares the values bit for bit). */
OT_HOT_LOOP static void ChunkExponents(PetscInt d, PetscInt m, const PetscReal *restrict x, const PetscReal *restrict y_soa, const PetscReal *restrict g_ref,
                                       const int *restrict chunk, const unsigned char *restrict zeros, int64_t chunks, PetscReal f_i, PetscReal inv_eps,
                                       PetscReal *restrict e)
{
  for (int64_t q = 0; q < chunks; q++) {
    const PetscInt c = chunk[q];
    OTVec4         sq, ev;

    if (d == 3) {
      OTVec4 d0 = x[0] - OTLoad4(y_soa + c), d1 = x[1] - OTLoad4(y_soa + m + c), d2 = x[2] - OTLoad4(y_soa + 2 * m + c);

      sq = d0 * d0 + d1 * d1 + d2 * d2;
    } else if (d == 2) {
      OTVec4 d0 = x[0] - OTLoad4(y_soa + c), d1 = x[1] - OTLoad4(y_soa + m + c);

      sq = d0 * d0 + d1 * d1;
    } else {
      OTVec4 diff = x[0] - OTLoad4(y_soa + c);

      sq = diff * diff;
      for (PetscInt k = 1; k < d; k++) {
        diff = x[k] - OTLoad4(y_soa + (size_t)k * m + c);
        sq   = sq + diff * diff;
      }
    }
    ev = (f_i + OTLoad4(g_ref + c) - sq) * inv_eps;
    memcpy(e + 4 * q, &ev, sizeof(ev));
    for (int l = 4 - zeros[q]; l < 4; l++) e[4 * q + l] = OT_EXPONENT_ZERO;
  }
}

const PetscReal *OTTruncatedChunkRow(OTProblem pb, OTTruncated *t, PetscInt r)
{
  int64_t first = t->chunk_ptr[r], chunks = t->chunk_ptr[r + 1] - first;

  if (!t->computed) return t->k + t->val_ptr[r];
  if (!t->y_soa) return OTTruncatedRow(pb, t, r);
  ChunkExponents(pb->dim, pb->m, t->xt.points + (size_t)t->row_point[r] * pb->dim, t->y_soa, t->g_ref, t->chunk_col + first, t->chunk_zeros + first, chunks,
                 t->f_ref[t->row_of[r]], 1.0 / t->value_eps, t->e_row);
  ExpRun(4 * chunks, t->e_row, t->x_row);
  return t->x_row;
}

/* Stores the values of a kernel built with positions only: each row's as a pass computes it (OTTruncatedRow), so bit
   for bit what a build that stored them would hold. Not collective. */
static PetscErrorCode FillValues(OTProblem pb, OTTruncated *t)
{
  PetscReal *k;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1((size_t)PetscMax(t->kept, 1), &k));
  for (PetscInt r = 0; r < t->rows; r++) PetscCall(PetscArraycpy(k + t->val_ptr[r], OTTruncatedRow(pb, t, r), t->val_ptr[r + 1] - t->val_ptr[r]));
  PetscCall(PetscFree(t->k));
  t->k        = k;
  t->cap      = PetscMax(t->kept, 1);
  t->computed = PETSC_FALSE;
  PetscFunctionReturn(0);
}

/* One build at the current floor. Collective (the counts are reduced). */
static PetscErrorCode BuildOnce(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;
  PetscInt     row = 0;
  PetscReal    sums[5], dropped = 0.0;

  PetscFunctionBegin;
  /* auto: values stored where the last build's would have fitted (the first kernel of a stage is the largest); before
     any build, positions only, and the values filled in after the build where they fit (FillValues): a build never
     holds values up to the budget only to give them up */
  if (t->values == OT_TRUNCATION_VALUES_AUTO) {
    if (!t->sized) {
      PetscCall(PetscFree(t->k));
      t->cap      = 0;
      t->computed = PETSC_TRUE;
    } else if (t->computed && sizeof(PetscReal) * (double)t->kept <= t->value_budget) t->computed = PETSC_FALSE;
  }
  t->value_eps = s->eps;
  t->kept = t->segs = t->computed_pairs = t->chunks = 0;
  for (PetscInt c = 0; c < pb->m; c++) t->drop_col[c] = 0.0;
  if (t->trees) {
    PetscInt *cells, *stack;

    for (PetscInt q = 0; q < t->yt.nodes; q++) t->drop_node[q] = 0.0;

    OTCellTreeSetWeights(&t->xt, s->f);
    OTCellTreeSetWeights(&t->yt, s->g);
    if (pb->cost_kind == OT_COST_SQEUCLIDEAN) PetscCall(LinearModels(pb, &t->yt, PETSC_FALSE, &t->lin));
    PetscCall(PetscMalloc2(t->yt.nodes, &cells, t->yt.nodes, &stack));
    for (PetscInt a = 0; a < t->xt.nodes; a++)
      if (t->xt.node[a].left < 0) PetscCall(BuildPointsLeaf(pb, t, a, s->eps, cells, stack, &row, &dropped));
    PetscCall(PetscFree2(cells, stack));
    for (PetscInt q = 0; q < t->yt.nodes; q++) { /* down the tree (children come after their parent) to the columns */
      const OTCellNode *nd = &t->yt.node[q];

      if (nd->left >= 0) {
        t->drop_node[nd->left] += t->drop_node[q];
        t->drop_node[nd->right] += t->drop_node[q];
      } else
        for (PetscInt c = nd->start; c < nd->end; c++) t->drop_col[c] += t->drop_node[q];
    }
  } else {
    for (PetscInt i = 0; i < pb->n_local; i++) {
      PetscReal row_dropped = 0.0;

      t->row_of[i]  = i;
      t->seg_ptr[i] = t->segs;
      t->val_ptr[i] = t->kept;
      GatherCosts(pb, t, i, 0, pb->m); /* in kernel order, with g_ref (s->g in kernel order: SetReference) */
      CostExponents(pb->m, t->c_row, t->g_ref, t->f_ref[i], 1.0 / s->eps, t->e_row);
      PetscCall(StoreRun(t, pb->m, 0, t->e_row, pb->m, &row_dropped));
      PetscCall(EndRow(t, i));
      t->drop_row[i] = row_dropped;
      dropped += row_dropped;
    }
  }
  t->seg_ptr[pb->n_local]   = t->segs;
  t->chunk_ptr[pb->n_local] = t->chunks;
  t->val_ptr[pb->n_local] = t->kept;
  if (t->computed) PetscCall(ComputedLayout(pb, t));
  if (t->values == OT_TRUNCATION_VALUES_AUTO && t->computed && sizeof(PetscReal) * (double)t->kept <= t->value_budget) PetscCall(FillValues(pb, t));
  t->sized                = PETSC_TRUE;
  sums[0]                 = (PetscReal)t->kept;
  sums[1]                 = dropped;
  sums[2]                 = (PetscReal)t->computed_pairs;
  sums[3]                 = (PetscReal)t->segs;
  sums[4]                 = t->computed ? (PetscReal)t->kept : 0.0;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, sums, 5, MPIU_REAL, MPIU_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, t->drop_col, (PetscMPIInt)pb->m, MPIU_REAL, MPIU_SUM, s->comm));
  t->kept_global     = sums[0];
  t->dropped         = sums[1];
  t->computed_global = sums[2];
  t->segs_global     = sums[3];
  t->kept_computed_global = sums[4];
  PetscFunctionReturn(0);
}

/* The reference potentials at the solver's (f, g), scalings 1 (computed values are read from the references). */
static void SetReference(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;

  for (PetscInt i = 0; i < pb->n_local; i++) {
    t->f_ref[i] = s->f[i];
    t->u[i]     = 1.0;
  }
  for (PetscInt c = 0; c < pb->m; c++) {
    t->g_ref[c] = s->g[OTTruncatedColumn(t, c)];
    t->v[c]     = 1.0;
  }
}

/* Rebuilds the kernel at the solver's (f, g): reference potentials, scalings 1, the kept entries. The floor: with
   -ot_truncation tau, log(tau mass / (n m)) - 2 slack; by default as high as keeps the dropped entries, by the cell
   bounds, below 1% of the tolerance (times exp(2 slack), the most the scalings can raise them before the next build):
   a build that drops more lowers the floor and is redone, and the floor is never raised again. Collective. */
PetscErrorCode OTTruncatedBuild(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;
  PetscReal    budget = 0.01 * s->tol, most_shift = PetscLogReal((PetscReal)pb->m);

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_TRUNCATE, 0, 0, 0, 0));
  SetReference(s);
  for (;;) {
    if (s->truncation > 0) t->log_floor = PetscLogReal(s->truncation * pb->mass / ((PetscReal)pb->n * (PetscReal)pb->m)) - 2.0 * t->slack;
    else t->log_floor = PetscLogReal(budget / (PetscReal)pb->n) - t->floor_shift - 2.0 * t->slack;
    PetscCall(BuildOnce(s));
    if (s->truncation > 0 || t->dropped * PetscExpReal(2.0 * t->slack) <= budget || t->floor_shift >= most_shift) break;
    /* (at floor_shift = log m every one of the n m entries could be dropped and their sum stays within the budget) */
    t->floor_shift = PetscMin(most_shift, t->floor_shift + PetscLogReal(t->dropped * PetscExpReal(2.0 * t->slack) / budget) + 1.0);
  }
  t->eps = s->eps;
  t->builds++;
  PetscCall(PetscLogEventEnd(OT_EVENT_TRUNCATE, 0, 0, 0, 0));
  PetscCall(PetscInfo(NULL, "Truncated kernel %" PetscInt_FMT " at eps %g: %.6g entries kept (%.3g%% of n m) in %.6g segments, of %.6g computed, floor %g, dropped entries sum to < %.3g\n",
                      t->builds, (double)s->eps, t->kept_global, 100.0 * t->kept_global / ((double)pb->n * (double)pb->m), t->segs_global, t->computed_global, (double)t->log_floor,
                      (double)(t->dropped * PetscExpReal(2.0 * t->slack))));
  if (s->monitor_every) { /* the kernel's bytes on the largest rank: values (where stored), then positions */
    double bytes[3] = {t->computed ? 0.0 : sizeof(PetscReal) * (double)t->kept,
                       sizeof(int) * (double)t->chunks + (sizeof(PetscInt) + sizeof(int) + 1.0) * (double)t->segs + (t->computed ? (double)t->chunks : 0.0),
                       (double)t->computed};

    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bytes, 3, MPI_DOUBLE, MPI_MAX, s->comm));
    PetscCall(PetscPrintf(s->comm, "  truncated kernel %" PetscInt_FMT " at eps %g: %.4g entries (%.0f a row), values %s: %.1f MB of values and %.1f MB of positions per rank (largest)\n",
                          t->builds, (double)s->eps, t->kept_global, t->kept_global / (double)pb->n,
                          bytes[2] > 0 ? "computed in each pass on some rank(s) (-ot_truncation_values)" : "stored", bytes[0] / 1e6, bytes[1] / 1e6));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedBuildAt(OTSolver s, PetscReal log_floor)
{
  PetscFunctionBegin;
  PetscCall(OTTruncatedCreate(s));
  SetReference(s);
  s->trunc->log_floor = log_floor;
  PetscCall(BuildOnce(s));
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedTreeLinear(OTProblem pb, const OTCellTree *tree, PetscReal **lin)
{
  PetscFunctionBegin;
  if (pb->cost_kind == OT_COST_SQEUCLIDEAN) PetscCall(LinearModels(pb, tree, PETSC_TRUE, lin));
  PetscFunctionReturn(0);
}

/* The upper bound of w_c - C(x, y_c) over node b: from the largest weight and the least distance, and where lin is
   given, from the node's linear model too. */
static inline PetscReal NodeBound(OTProblem pb, const OTCellTree *tree, const PetscReal *lin, PetscInt b, const PetscReal *x)
{
  PetscReal bound = tree->wmax[b] - CostFromSquared(pb, OTCellTreePointDistance(tree, b, x));

  return lin ? PetscMin(bound, LinearBound(tree, lin, pb->dim, b, x, 0.0)) : bound;
}

PetscReal OTTruncatedTreeMax(OTProblem pb, const OTCellTree *tree, const PetscReal *lin, const PetscReal *x, PetscInt *stack)
{
  PetscReal best = -INFINITY;
  PetscInt  top  = 0;

  if (tree->count == 0) return best;
  stack[top++] = 0;
  while (top > 0) {
    PetscInt b = stack[--top];

    if (NodeBound(pb, tree, lin, b, x) <= best) continue;
    if (tree->node[b].left < 0) {
      for (PetscInt c = tree->node[b].start; c < tree->node[b].end; c++) {
        const PetscReal *y = tree->points + (size_t)c * pb->dim;
        PetscReal        sq = 0.0;

        for (PetscInt k = 0; k < pb->dim; k++) {
          PetscReal diff = x[k] - y[k];

          sq = k ? sq + diff * diff : diff * diff;
        }
        best = PetscMax(best, tree->w[c] - CostFromSquared(pb, sq));
      }
    } else { /* the child with the larger bound is taken first: pushed last */
      PetscInt  l = tree->node[b].left, r = tree->node[b].right;
      PetscReal bl = NodeBound(pb, tree, lin, l, x), br = NodeBound(pb, tree, lin, r, x);

      stack[top++] = bl > br ? r : l;
      stack[top++] = bl > br ? l : r;
    }
  }
  return best;
}
