/* The truncated kernel's cell pruning against brute force: every pair whose exponent (f_i + g_j - C_ij)/eps is at
   or above the floor is stored, every stored value is exp of its pair's exponent, and the bound on the dropped entries
   is at least their sum computed pair by pair, in all and for each row and each column (the bounds by rows and
   columns that decide rebuilds, OTTruncatedDroppedBound) (random data in d = 2, 3 and 30, three costs); and the exact
   branch-and-bound max of the c-transforms (OTTruncatedTreeMax), with and without the nodes' linear models, against a
   scan. The values computed by the passes where they are not stored are bit for bit the stored ones. */
#include "test_common.h"
#include "truncated.h"

TestSuite(truncated, .init = OTTestInit, .fini = OTTestFini);

static double Uniform(unsigned *seed)
{
  *seed = *seed * 1103515245u + 12345u;
  return (double)*seed / 4294967296.0;
}

/* Points in clusters (d large: balls bound them), the same centres for X and Y, or uniform in the unit cube. */
static void Points(int count, int d, int clusters, unsigned *seed, double *x)
{
  double   centers[8 * 64];
  unsigned center_seed = 99;

  for (int c = 0; c < clusters * d; c++) centers[c] = Uniform(&center_seed);
  for (int p = 0; p < count; p++) {
    int c = clusters ? p % clusters : 0;

    for (int k = 0; k < d; k++) x[p * d + k] = clusters ? centers[c * d + k] + 0.05 * (Uniform(seed) - 0.5) : Uniform(seed);
  }
}

/* A problem of n points of X and m of Y (Points, into x and y) with a solver set up for it. */
static void SetUp(int n, int m, int d, int clusters, const char *cost, unsigned *seed, double *x, double *y, OTProblem *pb, OTSolver *s)
{
  Points(n, d, clusters, seed, x);
  Points(m, d, clusters, seed, y);
  cr_assert(OTProblemCreate(PETSC_COMM_SELF, pb) == 0);
  cr_assert(OTProblemSetPoints(*pb, n, m, d, x, y, NULL, NULL, cost, "truncated test") == 0);
  cr_assert(OTSolverCreate(PETSC_COMM_SELF, s) == 0);
  cr_assert(OTSolverSetProblem(*s, *pb) == 0);
  cr_assert(OTSolverSetUp(*s) == 0);
}

/* The kernel of s built again with its values computed (-ot_truncation_values computed, and auto with a budget that
   the build passes halfway): the same entries, and every row's values, by both row functions, bit for bit the stored
   ones. */
static void CheckComputedValues(OTProblem pb, OTSolver s, double log_floor)
{
  OTTruncated *t = s->trunc;

  for (int variant = 0; variant < 2; variant++) {
    OTSolver     s2;
    OTTruncated *t2;
    PetscInt     chunk_rows = 0;

    cr_assert(OTSolverCreate(PETSC_COMM_SELF, &s2) == 0);
    cr_assert(OTSolverSetProblem(s2, pb) == 0);
    cr_assert(OTSolverSetUp(s2) == 0);
    s2->eps               = s->eps;
    s2->truncation_values = variant ? OT_TRUNCATION_VALUES_AUTO : OT_TRUNCATION_VALUES_COMPUTED;
    memcpy(s2->f, s->f, sizeof(PetscReal) * (size_t)pb->n_local);
    memcpy(s2->g, s->g, sizeof(PetscReal) * (size_t)pb->m);
    cr_assert(OTTruncatedCreate(s2) == 0);
    t2 = s2->trunc;
    if (variant) t2->value_budget = 4.0 * (double)t->kept; /* half of the values */
    cr_assert(OTTruncatedBuildAt(s2, log_floor) == 0);
    cr_assert(t2->computed && !t2->k, "variant %d: the values are computed", variant);
    cr_assert(t2->kept == t->kept && t2->segs == t->segs && t2->chunks == t->chunks, "variant %d: the same entries", variant);
    for (PetscInt r = 0; r < t->rows; r++) {
      int64_t          len = t->val_ptr[r + 1] - t->val_ptr[r];
      const PetscReal *k   = t->k + t->val_ptr[r];

      cr_assert(t2->row_of[r] == t->row_of[r] && t2->val_ptr[r] == t->val_ptr[r]);
      cr_assert(!memcmp(OTTruncatedRow(pb, t2, r), k, sizeof(PetscReal) * (size_t)len), "variant %d, row %d: computed values differ from the stored ones", variant, (int)r);
      if (4 * (t->chunk_ptr[r + 1] - t->chunk_ptr[r]) == len) {
        chunk_rows++;
        cr_assert(!memcmp(OTTruncatedChunkRow(pb, t2, r), k, sizeof(PetscReal) * (size_t)len), "variant %d, row %d: values computed by chunks differ", variant, (int)r);
      }
    }
    cr_assert(chunk_rows > 0);
    OTSolverDestroy(&s2);
  }
}

static void CheckPruning(int n, int m, int d, int clusters, const char *cost, double eps, double log_floor, unsigned seed)
{
  double   *x = malloc(sizeof(double) * n * d), *y = malloc(sizeof(double) * m * d), *c = malloc(sizeof(double) * m), dropped = 0.0, stored = 0.0;
  double   *row_dropped = calloc(n, sizeof(double)), *col_dropped = calloc(m, sizeof(double));
  char     *seen = calloc((size_t)n * m, 1);
  OTProblem pb;
  OTSolver  s;

  SetUp(n, m, d, clusters, cost, &seed, x, y, &pb, &s);
  s->eps = eps;
  for (int i = 0; i < n; i++) s->f[i] = 0.3 * (Uniform(&seed) - 0.5);
  for (int j = 0; j < m; j++) s->g[j] = 0.3 * (Uniform(&seed) - 0.5);
  cr_assert(OTTruncatedBuildAt(s, log_floor) == 0);
  {
    OTTruncated *t = s->trunc;

    for (PetscInt r = 0; r < t->rows; r++) {
      PetscInt         i = t->row_of[r];
      const PetscReal *k = t->k + t->val_ptr[r];

      for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++)
        for (int q = 0; q < t->seg_len[sg]; q++) {
          PetscInt  j = t->yt.perm[t->seg_col[sg] + q];
          PetscReal cost_ij;

          if (*k == 0.0) { /* a segment's padding past its run (to a multiple of 4 columns): a dropped pair, checked below */
            k++;
            continue;
          }
          OTKernelCostEntries(pb, i, 1, &j, &cost_ij);
          cr_assert(!seen[(size_t)i * m + j], "pair (%d, %d) stored twice", (int)i, (int)j);
          seen[(size_t)i * m + j] = 1;
          cr_assert_float_eq(*k, exp((s->f[i] + s->g[j] - cost_ij) / eps), 1e-13 * *k, "stored value of (%d, %d)", (int)i, (int)j);
          k++;
        }
    }
  }
  { /* the sweep's chunks: each the first column of 4 values in a row, where every segment of the row holds a multiple
       of 4 columns (most rows: only a segment at column m may stay unpadded) */
    OTTruncated *t = s->trunc;
    PetscInt     by_chunks = 0;

    for (PetscInt r = 0; r < t->rows; r++) {
      int64_t chunks = t->chunk_ptr[r + 1] - t->chunk_ptr[r], q = t->chunk_ptr[r];

      if (4 * chunks != t->val_ptr[r + 1] - t->val_ptr[r]) continue;
      by_chunks++;
      for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++) {
        cr_assert(t->seg_len[sg] % 4 == 0, "row %d: a segment of %d columns in a row taken by chunks", (int)r, t->seg_len[sg]);
        for (int c = 0; c < t->seg_len[sg]; c += 4, q++) cr_assert(t->chunk_col[q] == t->seg_col[sg] + c, "row %d: chunk %d", (int)r, (int)q);
      }
    }
    cr_assert(by_chunks >= 0.9 * t->rows, "d = %d, %s: %d of %d rows by chunks", d, cost, (int)by_chunks, (int)t->rows);
  }
  CheckComputedValues(pb, s, log_floor);
  for (PetscInt i = 0; i < n; i++) {
    PetscInt all[4096];

    for (PetscInt j = 0; j < m; j++) all[j] = j;
    OTKernelCostEntries(pb, i, m, all, c);
    for (PetscInt j = 0; j < m; j++) {
      double e = (s->f[i] + s->g[j] - c[j]) / eps;

      if (seen[(size_t)i * m + j]) stored += 1;
      else {
        cr_assert(e < log_floor, "d = %d, %s: pair (%d, %d) has exponent %.17g >= floor %g but was dropped", d, cost, (int)i, (int)j, e, log_floor);
        dropped += exp(e);
        row_dropped[i] += exp(e);
        col_dropped[j] += exp(e);
      }
    }
  }
  cr_assert(dropped <= s->trunc->dropped * (1 + 1e-12), "d = %d, %s: dropped entries sum to %g, bound %g", d, cost, dropped, s->trunc->dropped);
  {
    OTTruncated *t = s->trunc;
    double       rows = 0.0;

    for (PetscInt i = 0; i < n; i++) {
      cr_assert(row_dropped[i] <= t->drop_row[i] * (1 + 1e-12), "d = %d, %s: row %d drops %g, bound %g", d, cost, (int)i, row_dropped[i], t->drop_row[i]);
      rows += t->drop_row[i];
    }
    for (PetscInt c = 0; c < m; c++) {
      PetscInt j = t->yt.perm[c];

      cr_assert(col_dropped[j] <= t->drop_col[c] * (1 + 1e-12), "d = %d, %s: column %d drops %g, bound %g", d, cost, (int)j, col_dropped[j], t->drop_col[c]);
    }
    cr_assert_float_eq(rows, t->dropped, 1e-12 * t->dropped, "the rows' bounds sum to %g, the whole bound is %g", rows, t->dropped);
  }
  cr_assert(stored > 0 && stored < 0.9 * n * m, "d = %d, %s: %g of %d pairs stored: the test must keep some and prune some", d, cost, stored, n * m);
  OTSolverDestroy(&s);
  OTProblemDestroy(&pb);
  free(x), free(y), free(c), free(seen), free(row_dropped), free(col_dropped);
}

Test(truncated, pruning_never_drops_a_pair_above_the_floor_d2)
{
  CheckPruning(700, 600, 2, 0, "sqeuclidean", 0.002, -12.0, 1);
  CheckPruning(500, 400, 2, 0, "euclidean", 0.01, -10.0, 2);
}

Test(truncated, pruning_never_drops_a_pair_above_the_floor_d3)
{
  CheckPruning(700, 650, 3, 0, "sqeuclidean", 0.005, -15.0, 3);
  CheckPruning(600, 500, 3, 0, "pnorm:1.5", 0.01, -12.0, 4);
}

Test(truncated, pruning_never_drops_a_pair_above_the_floor_d30_clusters)
{
  CheckPruning(600, 640, 30, 8, "sqeuclidean", 0.02, -20.0, 5);
}

/* The exact max over the points y_j of w_j - C(x, y_j) by branch and bound (OTTruncatedTreeMax), with and without the
   nodes' linear models (OTTruncatedTreeLinear), against a scan of all points, for weights shaped like the potentials
   of squared Euclidean costs (|y|^2 minus a convex function, plus noise) and for random ones: the c-transforms of the
   certified lower bound depend on it. */
static void CheckTreeMax(int n, int m, int d, int clusters, const char *cost, unsigned seed)
{
  double    *x = malloc(sizeof(double) * n * d), *y = malloc(sizeof(double) * m * d), *c = malloc(sizeof(double) * m), *w = malloc(sizeof(double) * m);
  PetscInt   all[4096], stack[OT_TREE_STACK];
  PetscReal *lin = NULL;
  OTProblem  pb;
  OTSolver   s;

  SetUp(n, m, d, clusters, cost, &seed, x, y, &pb, &s);
  cr_assert(OTTruncatedCreate(s) == 0);
  for (PetscInt j = 0; j < m; j++) all[j] = j;
  for (int shape = 0; shape < 2; shape++) {
    OTTruncated *t = s->trunc;

    for (int j = 0; j < m; j++) {
      double y2 = 0.0, convex = 0.0;

      for (int k = 0; k < d; k++) {
        y2 += y[j * d + k] * y[j * d + k];
        convex += (1.0 + 0.3 * k) * PetscSqr(y[j * d + k] - 0.4);
      }
      w[j] = shape == 0 ? y2 - 0.8 * convex + 1e-3 * Uniform(&seed) : 0.5 * (Uniform(&seed) - 0.5);
    }
    OTCellTreeSetWeights(&t->yt, w);
    cr_assert(OTTruncatedTreeLinear(pb, &t->yt, &lin) == 0);
    for (PetscInt i = 0; i < n; i++) {
      PetscReal best = -INFINITY, with, without;

      OTKernelCostEntries(pb, i, m, all, c);
      for (PetscInt j = 0; j < m; j++) best = PetscMax(best, w[j] - c[j]);
      with    = OTTruncatedTreeMax(pb, &t->yt, lin, pb->x + (size_t)i * d, stack);
      without = OTTruncatedTreeMax(pb, &t->yt, NULL, pb->x + (size_t)i * d, stack);
      /* (exact for squared Euclidean costs; pnorm's power is taken otherwise than by OTKernelCostEntries: 4 ulps) */
      PetscReal ulps = strcmp(cost, "sqeuclidean") ? 4 * PETSC_MACHINE_EPSILON * PetscAbsReal(best) : 0.0;

      cr_assert(PetscAbsReal(with - best) <= ulps && PetscAbsReal(without - best) <= ulps, "d = %d, %s, weights %d, row %d: max %.17g by scan, %.17g with the linear models, %.17g without", d, cost, shape,
                (int)i, best, with, without);
    }
  }
  PetscFree(lin);
  OTSolverDestroy(&s);
  OTProblemDestroy(&pb);
  free(x), free(y), free(c), free(w);
}

Test(truncated, tree_max_with_linear_models_is_exact)
{
  CheckTreeMax(400, 900, 2, 0, "sqeuclidean", 11);
  CheckTreeMax(400, 1000, 3, 0, "sqeuclidean", 12);
  CheckTreeMax(300, 800, 3, 0, "pnorm:1.5", 13); /* (no linear models: the bound by the largest weight alone) */
  CheckTreeMax(300, 640, 30, 8, "sqeuclidean", 14);
}

/* The column order of a /C kernel (OTTruncatedColumnOrder) from the costs alone: a permutation, in which columns that
   follow each other are near each other (squared Euclidean costs between points in the unit square and cube, the
   columns in random order): on average at most a quarter of the distance between columns that follow each other in
   the file. */
static void CheckColumnOrder(int n, int m, int d, unsigned seed)
{
  double   *x = malloc(sizeof(double) * n * d), *y = malloc(sizeof(double) * m * d), file = 0.0, ordered = 0.0;
  PetscInt *perm = malloc(sizeof(PetscInt) * m);
  char     *seen = calloc(m, 1);
  OTProblem pb;

  Points(n, d, 0, &seed, x);
  Points(m, d, 0, &seed, y);
  cr_assert(OTProblemCreate(PETSC_COMM_SELF, &pb) == 0);
  cr_assert(OTProblemAllocate(pb, n, m) == 0);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) {
      double sq = 0.0;

      for (int k = 0; k < d; k++) sq += (x[i * d + k] - y[j * d + k]) * (x[i * d + k] - y[j * d + k]);
      pb->cost[(size_t)i * m + j] = sq;
    }
  cr_assert(OTTruncatedColumnOrder(pb, perm) == 0);
  for (int c = 0; c < m; c++) {
    cr_assert(perm[c] >= 0 && perm[c] < m && !seen[perm[c]], "d = %d: not a permutation at %d", d, c);
    seen[perm[c]] = 1;
  }
  for (int c = 1; c < m; c++) {
    double sq_file = 0.0, sq_ordered = 0.0;

    for (int k = 0; k < d; k++) {
      sq_file += (y[c * d + k] - y[(c - 1) * d + k]) * (y[c * d + k] - y[(c - 1) * d + k]);
      sq_ordered += (y[perm[c] * d + k] - y[perm[c - 1] * d + k]) * (y[perm[c] * d + k] - y[perm[c - 1] * d + k]);
    }
    file += sqrt(sq_file);
    ordered += sqrt(sq_ordered);
  }
  cr_assert(ordered <= 0.25 * file, "d = %d: columns that follow each other are %g apart on average, %g in the file's order", d, ordered / (m - 1),
            file / (m - 1));
  OTProblemDestroy(&pb);
  free(x), free(y), free(perm), free(seen);
}

Test(truncated, dense_column_order_keeps_near_columns_together)
{
  CheckColumnOrder(500, 2000, 2, 11);
  CheckColumnOrder(400, 3000, 3, 12);
}
