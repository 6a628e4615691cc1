/*
  Cell trees (celltree.c): a k-d tree over a point set whose nodes carry a bounding box and a bounding ball, so that
  a lower bound on the squared distance between any point of one cell and any point of another (or a query point)
  costs O(d). The truncated kernel (truncated.c) uses them to find the pairs (i, j) with f_i + g_j - C_ij above a
  threshold without scanning all n x m pairs: a pair of cells is skipped when the largest potentials in the two cells
  minus the least cost between them is below the threshold. Boxes are tight in low dimension; balls around clusters
  are the better bound where d is large (d = 30 to 50 for single-cell data): both are kept, and the larger bound
  used.
*/
#ifndef OTCELLTREE_H
#define OTCELLTREE_H

#include <petscsys.h>

/* A node: the points [start, end) in tree order; its children (left = -1: a leaf). */
typedef struct {
  PetscInt start, end;
  PetscInt left, right;
} OTCellNode;

typedef struct {
  PetscInt    count, dim, nodes;
  PetscReal  *points; /* count x dim, in tree order, row-major */
  PetscInt   *perm;   /* perm[k]: the original index of tree point k */
  OTCellNode *node;   /* node 0 is the root (when count > 0) */
  PetscReal  *lo, *hi;          /* nodes x dim: bounding boxes */
  PetscReal  *center, *radius;  /* nodes x dim and nodes: bounding balls, radius rounded up */
  PetscReal  *w, *wmax;         /* count and nodes: weights in tree order, and the largest under each node */
} OTCellTree;

/* Builds the tree over count points (point k at coords[k * stride_point + c * stride_coord], c < dim): cells split at
   the median of their widest coordinate until at most leaf_size points remain. Not collective. */
PETSC_EXTERN PetscErrorCode OTCellTreeCreate(const PetscReal *coords, PetscInt count, PetscInt dim, size_t stride_point, size_t stride_coord,
                                             PetscInt leaf_size, OTCellTree *tree);
PETSC_EXTERN PetscErrorCode OTCellTreeDestroy(OTCellTree *tree);
/* Sets the weights (weights[original index]) and their maxima per node. Not collective. */
PETSC_EXTERN void OTCellTreeSetWeights(OTCellTree *tree, const PetscReal *weights);
/* A lower bound on |x - y|^2 over x in node a of tree ta and y in node b of tree tb (the larger of the box and ball
   bounds, rounded down). */
PETSC_EXTERN PetscReal OTCellTreeNodeDistance(const OTCellTree *ta, PetscInt a, const OTCellTree *tb, PetscInt b);
/* A lower bound on |x - y|^2 over y in node b, for the point x. */
PETSC_EXTERN PetscReal OTCellTreePointDistance(const OTCellTree *tree, PetscInt b, const PetscReal *x);
/* An upper bound on |x - y|^2 over y in node b, for the point x (the smaller of the box and ball bounds, rounded up). */
PETSC_EXTERN PetscReal OTCellTreePointFarthest(const OTCellTree *tree, PetscInt b, const PetscReal *x);
/* The farthest points of the tree from x, by branch and bound: raises *best to the largest squared distance
   |x - y|^2 (the squares summed in coordinate order, as the cost rows compute them) if that is larger, and writes
   the original indices and squared distances of the points with |x - y|^2 >= (1 - 1e-9) *best (as *best stood when
   each was reached) to index[] and squared[] (room for the tree's count); returns how many. A node is skipped when
   its upper bound is below (1 - 1e-9) *best, so a point left out is that much closer than the best. */
PETSC_EXTERN PetscInt OTCellTreeFarthest(const OTCellTree *tree, const PetscReal *x, PetscReal *best, PetscInt index[], PetscReal squared[]);
/* Bytes the tree holds. */
PETSC_EXTERN double OTCellTreeBytes(const OTCellTree *tree);

#endif
