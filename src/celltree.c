/*
  Cell trees (celltree.h): construction by median splits, boxes and balls, weight maxima, distance bounds.
  The bounds must never exceed a distance that the passes compute for a pair (a pair the pruning skips must be one the
  brute-force test would also drop), so both are rounded down: the ball radii up by a relative 1e-12 plus an absolute
  1e-12 of the ball's size, and each bound by a relative 4 (d + 2) DBL_EPSILON, more than the rounding of a sum of d
  squares.
*/
#include "celltree.h"
#include <float.h>

/* Moves the points of [start, end) (tree order) so that the one of rank k in coordinate c is at start + k, the
   smaller ones before it and the larger after it (quickselect on the permutation, points moved with it). */
static void SelectByCoordinate(OTCellTree *t, PetscInt start, PetscInt end, PetscInt k, PetscInt c)
{
  const PetscInt d = t->dim;
  PetscInt       lo = start, hi = end - 1;

  while (lo < hi) {
    PetscReal pivot = t->points[(size_t)(lo + (hi - lo) / 2) * d + c];
    PetscInt  i = lo, j = hi;

    while (i <= j) {
      while (t->points[(size_t)i * d + c] < pivot) i++;
      while (t->points[(size_t)j * d + c] > pivot) j--;
      if (i <= j) {
        for (PetscInt q = 0; q < d; q++) {
          PetscReal tmp = t->points[(size_t)i * d + q];

          t->points[(size_t)i * d + q] = t->points[(size_t)j * d + q];
          t->points[(size_t)j * d + q] = tmp;
        }
        {
          PetscInt tmp = t->perm[i];

          t->perm[i] = t->perm[j];
          t->perm[j] = tmp;
        }
        i++;
        j--;
      }
    }
    if (start + k <= j) hi = j;
    else if (start + k >= i) lo = i;
    else break;
  }
}

/* The box and ball of node q over its points. */
static void Bound(OTCellTree *t, PetscInt q)
{
  const PetscInt d = t->dim;
  PetscReal     *lo = t->lo + (size_t)q * d, *hi = t->hi + (size_t)q * d, *c = t->center + (size_t)q * d, r2 = 0.0, scale = 0.0;
  PetscInt       start = t->node[q].start, end = t->node[q].end;

  for (PetscInt k = 0; k < d; k++) {
    lo[k] = hi[k] = t->points[(size_t)start * d + k];
    c[k]          = 0.0;
  }
  for (PetscInt p = start; p < end; p++)
    for (PetscInt k = 0; k < d; k++) {
      PetscReal x = t->points[(size_t)p * d + k];

      lo[k] = PetscMin(lo[k], x);
      hi[k] = PetscMax(hi[k], x);
      c[k] += x;
    }
  for (PetscInt k = 0; k < d; k++) {
    c[k] /= (PetscReal)(end - start);
    scale += c[k] * c[k];
  }
  for (PetscInt p = start; p < end; p++) {
    PetscReal s = 0.0;

    for (PetscInt k = 0; k < d; k++) {
      PetscReal e = t->points[(size_t)p * d + k] - c[k];

      s += e * e;
    }
    r2 = PetscMax(r2, s);
  }
  t->radius[q] = PetscSqrtReal(r2) * (1.0 + 1e-12) + 1e-12 * (PetscSqrtReal(scale) + PetscSqrtReal(r2));
}

PetscErrorCode OTCellTreeCreate(const PetscReal *coords, PetscInt count, PetscInt dim, size_t stride_point, size_t stride_coord, PetscInt leaf_size,
                                OTCellTree *t)
{
  PetscInt cap = 4 * (count / PetscMax(1, leaf_size) + 1) + 1, top = 0, *stack; /* leaves hold at least leaf_size / 2 points */

  PetscFunctionBegin;
  PetscCall(PetscMemzero(t, sizeof(*t)));
  t->count = count;
  t->dim   = dim;
  PetscCall(PetscMalloc3((size_t)count * dim, &t->points, count, &t->perm, count, &t->w));
  PetscCall(PetscMalloc6(cap, &t->node, (size_t)cap * dim, &t->lo, (size_t)cap * dim, &t->hi, (size_t)cap * dim, &t->center, cap, &t->radius, cap, &t->wmax));
  PetscCall(PetscMalloc1(cap, &stack));
  for (PetscInt k = 0; k < count; k++) {
    t->perm[k] = k;
    for (PetscInt c = 0; c < dim; c++) t->points[(size_t)k * dim + c] = coords[(size_t)k * stride_point + (size_t)c * stride_coord];
  }
  if (count > 0) {
    t->node[0] = (OTCellNode){0, count, -1, -1};
    t->nodes   = 1;
    stack[top++] = 0;
  }
  while (top > 0) { /* each node: its bounds, then its split into two halves */
    PetscInt q = stack[--top], start = t->node[q].start, end = t->node[q].end, widest = 0, half;

    Bound(t, q);
    if (end - start <= leaf_size) continue;
    for (PetscInt k = 1; k < dim; k++)
      if (t->hi[(size_t)q * dim + k] - t->lo[(size_t)q * dim + k] > t->hi[(size_t)q * dim + widest] - t->lo[(size_t)q * dim + widest]) widest = k;
    if (!(t->hi[(size_t)q * dim + widest] > t->lo[(size_t)q * dim + widest])) continue; /* all points coincide: a leaf */
    half = (end - start) / 2;
    SelectByCoordinate(t, start, end, half, widest);
    t->node[q].left              = t->nodes;
    t->node[q].right             = t->nodes + 1;
    t->node[t->nodes]            = (OTCellNode){start, start + half, -1, -1};
    t->node[t->nodes + 1]        = (OTCellNode){start + half, end, -1, -1};
    stack[top++]                 = t->nodes;
    stack[top++]                 = t->nodes + 1;
    t->nodes += 2;
  }
  PetscCall(PetscFree(stack));
  PetscFunctionReturn(0);
}

PetscErrorCode OTCellTreeDestroy(OTCellTree *t)
{
  PetscFunctionBegin;
  PetscCall(PetscFree3(t->points, t->perm, t->w));
  PetscCall(PetscFree6(t->node, t->lo, t->hi, t->center, t->radius, t->wmax));
  PetscCall(PetscMemzero(t, sizeof(*t)));
  PetscFunctionReturn(0);
}

void OTCellTreeSetWeights(OTCellTree *t, const PetscReal *weights)
{
  for (PetscInt k = 0; k < t->count; k++) t->w[k] = weights[t->perm[k]];
  for (PetscInt q = t->nodes - 1; q >= 0; q--) { /* children come after their parent */
    const OTCellNode *nd = &t->node[q];

    if (nd->left < 0) {
      PetscReal best = -INFINITY;

      for (PetscInt k = nd->start; k < nd->end; k++) best = PetscMax(best, t->w[k]);
      t->wmax[q] = best;
    } else t->wmax[q] = PetscMax(t->wmax[nd->left], t->wmax[nd->right]);
  }
}

/* (ball distance)^2 from the distance of the centres and the two radii */
static inline PetscReal BallBound(PetscReal center_squared, PetscReal radii)
{
  PetscReal gap = PetscSqrtReal(center_squared) - radii;

  return gap > 0 ? gap * gap : 0.0;
}

PetscReal OTCellTreeNodeDistance(const OTCellTree *ta, PetscInt a, const OTCellTree *tb, PetscInt b)
{
  const PetscInt   d   = ta->dim;
  const PetscReal *loa = ta->lo + (size_t)a * d, *hia = ta->hi + (size_t)a * d, *lob = tb->lo + (size_t)b * d, *hib = tb->hi + (size_t)b * d;
  const PetscReal *ca = ta->center + (size_t)a * d, *cb = tb->center + (size_t)b * d;
  PetscReal        box = 0.0, centers = 0.0;

  for (PetscInt k = 0; k < d; k++) {
    PetscReal gap = PetscMax(0.0, PetscMax(loa[k] - hib[k], lob[k] - hia[k])), e = ca[k] - cb[k];

    box += gap * gap;
    centers += e * e;
  }
  return PetscMax(box, BallBound(centers, ta->radius[a] + tb->radius[b])) * (1.0 - 4.0 * (d + 2) * DBL_EPSILON);
}

PetscReal OTCellTreePointDistance(const OTCellTree *t, PetscInt b, const PetscReal *x)
{
  const PetscInt   d  = t->dim;
  const PetscReal *lo = t->lo + (size_t)b * d, *hi = t->hi + (size_t)b * d, *c = t->center + (size_t)b * d;
  PetscReal        box = 0.0, centers = 0.0;

  for (PetscInt k = 0; k < d; k++) {
    PetscReal gap = PetscMax(0.0, PetscMax(lo[k] - x[k], x[k] - hi[k])), e = x[k] - c[k];

    box += gap * gap;
    centers += e * e;
  }
  return PetscMax(box, BallBound(centers, t->radius[b])) * (1.0 - 4.0 * (d + 2) * DBL_EPSILON);
}

double OTCellTreeBytes(const OTCellTree *t)
{
  return 8.0 * ((double)t->count * (t->dim + 2) + (double)t->nodes * (3.0 * t->dim + 4.0));
}

PetscReal OTCellTreePointFarthest(const OTCellTree *t, PetscInt b, const PetscReal *x)
{
  const PetscInt   d  = t->dim;
  const PetscReal *lo = t->lo + (size_t)b * d, *hi = t->hi + (size_t)b * d, *c = t->center + (size_t)b * d;
  PetscReal        box = 0.0, centers = 0.0, ball;

  for (PetscInt k = 0; k < d; k++) {
    PetscReal t_lo = x[k] - lo[k], t_hi = x[k] - hi[k], e = x[k] - c[k];

    box += PetscMax(t_lo * t_lo, t_hi * t_hi);
    centers += e * e;
  }
  ball = PetscSqrtReal(centers) * (1.0 + 4.0 * (d + 2) * DBL_EPSILON) + t->radius[b];
  return PetscMin(box, ball * ball) * (1.0 + 8.0 * (d + 2) * DBL_EPSILON);
}

PetscInt OTCellTreeFarthest(const OTCellTree *t, const PetscReal *x, PetscReal *best, PetscInt index[], PetscReal squared[])
{
  const PetscInt d = t->dim;
  PetscInt       stack[2 * 64 + 2], top = 0, found = 0;

  if (t->count == 0) return 0;
  stack[top++] = 0;
  while (top > 0) {
    PetscInt          q  = stack[--top];
    const OTCellNode *nd = &t->node[q];

    if (OTCellTreePointFarthest(t, q, x) < (1.0 - 1e-9) * *best) continue;
    if (nd->left < 0) {
      for (PetscInt p = nd->start; p < nd->end; p++) {
        const PetscReal *y = t->points + (size_t)p * d;
        PetscReal        s = 0.0;

        for (PetscInt k = 0; k < d; k++) {
          PetscReal e = x[k] - y[k];

          s = k ? s + e * e : e * e;
        }
        *best = PetscMax(*best, s);
        if (s >= (1.0 - 1e-9) * *best) {
          index[found]     = t->perm[p];
          squared[found++] = s;
        }
      }
    } else if (OTCellTreePointFarthest(t, nd->left, x) > OTCellTreePointFarthest(t, nd->right, x)) { /* the farther child first */
      stack[top++] = nd->right;
      stack[top++] = nd->left;
    } else {
      stack[top++] = nd->left;
      stack[top++] = nd->right;
    }
  }
  return found;
}
