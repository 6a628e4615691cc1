/*
  The truncated kernel (truncated.c): the entries of P = exp((f + g - C)/eps) that can matter, stored row by row
  (CSR) as K = exp((f_ref + g_ref - C)/eps) at reference potentials, and the Sinkhorn sweeps over them alone.
*/
#ifndef OTTRUNCATED_H
#define OTTRUNCATED_H

#include "otimpl.h"
#include "celltree.h"

/* The kernel is rebuilt where its dropped entries, at the current scalings, could hold more than this share of the
   larger of the tolerance and the marginal error (which counts them twice). */
#define OT_TRUNCATION_SHARE 0.1

/* Points per leaf of the cell trees: a leaf pair's costs then fill a few cache lines, and a pruning test costs O(d). */
#define OT_TRUNCATION_LEAF 32

typedef struct _OTTruncated {
  PetscBool  trees;        /* point clouds: the trees below exist */
  OTCellTree xt, yt;       /* the owned points of X, all points of Y */
  PetscReal  log_floor;    /* the kernel holds every entry with log K_ij >= log_floor (and a few below it) */
  PetscReal  floor_shift;  /* log_floor = log(budget / n) - floor_shift - 2 slack; raised when the dropped mass is too large */
  PetscReal  slack;        /* the scalings stay within exp(+-slack) of the reference, or the kernel is rebuilt */
  PetscReal  eps;          /* the eps the kernel was built at (0: none) */
  PetscReal  dropped;      /* all ranks: bound on the sum of the dropped entries of K (cell bounds and computed values) */
  PetscReal *drop_row;     /* owned rows (local index): bound on the sum of row i's dropped entries of K */
  PetscReal *drop_col;     /* m, kernel order: the same for column c, over all ranks */
  PetscReal *drop_node;    /* point clouds, nodes of Y's tree: what a build drops for every column under the node */
  PetscInt   rows;         /* owned rows */
  PetscInt  *row_of;       /* rows: the owned row of stored row r */
  int64_t   *seg_ptr;      /* rows + 1: the segments of stored row r are seg_ptr[r] .. seg_ptr[r + 1] */
  int64_t   *val_ptr;      /* rows + 1: its values start at k + val_ptr[r] */
  PetscInt  *seg_col;      /* a segment: its first column (kernel order: Y's tree order for point clouds) */
  int       *seg_len;      /* and its length: values for columns seg_col .. seg_col + seg_len - 1 */
  PetscReal *k;            /* the values, row after row, segment after segment; NULL where they are computed */
  PetscBool  computed;     /* the values are not stored: OTTruncatedRow computes a row's from the points or C */
  PetscBool  sized;        /* a build has ended: t->kept is the last kernel's size (-ot_truncation_values auto) */
  OTTruncationValues values; /* -ot_truncation_values */
  PetscReal  value_eps;    /* the eps of the last build (the values' exponents are divided by it) */
  int64_t    chunk_zeros_cap;
  double     value_budget; /* -ot_truncation_values auto: the bytes of stored values a rank may hold (else computed) */
  unsigned char *seg_zeros;   /* a segment: how many of its last columns are padding zeros (pairs the bounds dropped) */
  unsigned char *chunk_zeros; /* computed values: a chunk's padding zeros, at its end (from seg_zeros, end of a build) */
  PetscInt  *row_point;    /* point clouds, stored row r: its point's index in X's tree */
  PetscReal *y_soa;        /* computed values, squared Euclidean: Y's coordinates in tree order, coordinate after
                              coordinate (d arrays of m), for the sweep's 4 columns at a time */
  int64_t   *chunk_ptr;    /* rows + 1: stored row r's chunks are chunk_ptr[r] .. chunk_ptr[r + 1] (none: see chunk_col) */
  int       *chunk_col;    /* a chunk: the first of 4 columns whose values follow each other in k (the row's values in
                              order, 4 by 4), where each segment of the row holds a multiple of 4 columns (the build
                              pads them); such a row's sweep needs no loop over its segments */
  int64_t    chunks, chunk_cap;
  PetscInt  *col_perm;     /* /C: the kernel's columns in their order (OTTruncatedColumnOrder): the original column of each */
  PetscReal *c_row;        /* /C: m costs of a row, gathered in kernel order */
  PetscReal *lin;          /* squared Euclidean: per leaf of Y's tree, a linear upper bound of g - |y|^2 (LinearModels, truncated_build.c) */
  int64_t    segs, kept;   /* this rank's segments and stored values */
  int64_t    computed_pairs; /* this rank's pairs whose exponent the last build computed (point clouds) */
  double     computed_global, segs_global;
  int64_t    seg_cap, cap; /* room */
  PetscReal *f_ref, *u;    /* owned rows (local index) */
  PetscReal *g_ref, *v;    /* m, kernel order */
  PetscReal *col_sum;      /* m + OT_COLUMN_EXTRA, kernel order */
  PetscReal *g_scratch;    /* m, original order */
  PetscReal *e_row;        /* m: a row's exponents (a leaf's, for point clouds) */
  PetscReal *x_row;        /* m: and their exponentials */
  PetscInt  *rescue;       /* max(m, n_local): rows or columns to rescue */
  double     kept_global;  /* all ranks' kept entries */
  double     kept_computed_global; /* those of them whose values each pass computes (-ot_truncation_values) */
  PetscInt   builds, rescued_rows, rescued_columns;
} OTTruncated;

/* The order of a /C kernel's columns (truncated_order.c): perm[c] is the original column of kernel column c, the same
   on every rank. Collective. */
PETSC_EXTERN PetscErrorCode OTTruncatedColumnOrder(OTProblem problem, PetscInt *perm);

/* The column (original index) of kernel column c. */
static inline PetscInt OTTruncatedColumn(const OTTruncated *t, PetscInt c)
{
  return t->trees ? t->yt.perm[c] : t->col_perm[c];
}

/* The cost of a point-cloud pair from its squared distance, as the row-kernel layer computes it. */
static inline PetscReal CostFromSquared(OTProblem pb, PetscReal s)
{
  return OTKernelCostFromSquared(pb->cost_kind, 0.5 * pb->cost_power, s);
}

/* The values of stored row r (val_ptr[r + 1] - val_ptr[r] of them, segment after segment): where they are stored, in
   place; else computed into t->x_row (through t->e_row), valid until the next call, bit for bit what a build stores. */
PETSC_EXTERN const PetscReal *OTTruncatedRow(OTProblem problem, OTTruncated *t, PetscInt r);
/* The same for a row taken by chunks (4 chunk_ptr[r .. r + 1] == its values), faster where the values are computed:
   4 columns at a time from Y's coordinates. */
PETSC_EXTERN const PetscReal *OTTruncatedChunkRow(OTProblem problem, OTTruncated *t, PetscInt r);

/* A depth-first branch and bound holds at most one pending sibling per level of a tree (median splits: fewer than 64
   levels for any count). */
#define OT_TREE_STACK 128

/* A bound on the sum of the dropped entries u_i K_ij v_j of P at scalings (u, v), from the dropped sums of each row and
   column: sum_ij <= min(max v sum_i drop_row_i u_i, max u sum_c drop_col_c v_c). row_part is sum_i drop_row_i u_i over
   all ranks, col_part sum_c drop_col_c v_c. Far tighter than t->dropped max u max v where a few rows or columns moved
   far from the reference (the first sweeps after a change of eps or of level). */
static inline PetscReal OTTruncatedDroppedBound(PetscReal row_part, PetscReal col_part, PetscReal log_max_u, PetscReal log_max_v)
{
  return PetscMin(row_part * PetscExpReal(log_max_v), col_part * PetscExpReal(log_max_u));
}

/* The scalings that turn the kernel into P at (f + alpha df, g): u_i = exp((f_i + alpha df_i - f_ref_i)/eps) (n_local;
   df NULL: none) and v_c = exp((g_j - g_ref_c)/eps) (m, kernel order; g in original order); log max u over all ranks
   and log max v into *log_max_u, *log_max_v, and the bound on the dropped entries of P at them (OTTruncatedDroppedBound)
   into *dropped. Collective (two reductions of a scalar). */
PETSC_EXTERN PetscErrorCode OTTruncatedScalings(OTSolver solver, const PetscReal *df, PetscReal alpha, const PetscReal *g, PetscReal *u, PetscReal *v,
                                                PetscReal *log_max_u, PetscReal *log_max_v, PetscReal *dropped);
/* Whether the kernel serves the solver's (f, g) at its eps as it is: built at this eps, and its dropped entries, at the
   scalings of (f, g) (left in t->u, t->v), within 1% of the larger of the tolerance and error. Collective. */
PETSC_EXTERN PetscErrorCode OTTruncatedServes(OTSolver solver, PetscReal error, PetscBool *serves);
/* Rebuilds the kernel at the solver's (f, g) (scalings 1: the stored values are then entries of P). Collective. */
PETSC_EXTERN PetscErrorCode OTTruncatedBuild(OTSolver solver);
/* Squared Euclidean costs: linear models of the tree's weights over every node (allocated into *lin at the first
   call, PetscFree it), for OTTruncatedTreeMax; other costs: none (*lin untouched). Not collective. */
PETSC_EXTERN PetscErrorCode OTTruncatedTreeLinear(OTProblem problem, const OTCellTree *tree, PetscReal **lin);
/* max over the points y_c of tree (weights w) of w_c - C(x, y_c), exactly, by branch and bound (nearer cells first);
   lin: NULL, or the models of OTTruncatedTreeLinear at the tree's weights (tighter bounds: fewer cells visited);
   stack: OT_TREE_STACK entries. Not collective. */
PETSC_EXTERN PetscReal OTTruncatedTreeMax(OTProblem problem, const OTCellTree *tree, const PetscReal *lin, const PetscReal *x, PetscInt *stack);

#endif
