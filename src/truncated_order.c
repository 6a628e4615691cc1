/*
  The column order of a truncated kernel on a stored /C (truncated.h): the kernel keeps a row's entries in segments
  of consecutive columns, and in the file's order the columns near a row (those it keeps) are scattered, so its
  segments are short (a segment costs a loop, and a sweep reads its columns' scalings out of order). Point clouds
  take Y's cell-tree order; /C has no coordinates, so each column gets some: its costs to a few rows far apart
  (landmarks, picked farthest first), and the columns are ordered as the leaves of a cell tree over those. For the
  squared Euclidean cost, C(x_r, y) - C(x_0, y) is affine in y, so d + 1 landmarks recover Y up to an affine map;
  for other costs columns with nearly the same costs to every landmark are near each other too. The order is the
  same on any number of ranks (landmarks by global index, ties to the lowest).
*/
#include "otimpl.h"
#include "truncated.h"
#include <limits.h>

/* Landmark rows (coordinates of a column). */
#define OT_ORDER_LANDMARKS 16

/* Broadcasts global row r of C (m costs) into row from its owner. Collective. */
static PetscErrorCode BroadcastRow(OTProblem pb, PetscInt r, PetscReal *row)
{
  PetscMPIInt owner = 0;
  PetscInt    start, end;

  PetscFunctionBegin;
  for (;; owner++) {
    PetscCall(OTRowSplit(pb->n, pb->size, owner, &start, &end));
    if (r < end) break;
  }
  if (owner == pb->rank) PetscCall(PetscArraycpy(row, pb->cost + (size_t)(r - pb->row_start) * (size_t)pb->m, pb->m));
  PetscCallMPI(MPI_Bcast(row, (PetscMPIInt)pb->m, MPIU_REAL, owner, pb->comm));
  PetscFunctionReturn(0);
}

PetscErrorCode OTTruncatedColumnOrder(OTProblem pb, PetscInt *perm)
{
  PetscInt   k = PetscMin(OT_ORDER_LANDMARKS, pb->n), m = pb->m, r = 0;
  PetscReal *coords, *row, *nearest;
  OTCellTree tree;

  PetscFunctionBegin;
  if (pb->n > INT_MAX || m <= OT_TRUNCATION_LEAF) { /* (MPI_DOUBLE_INT below; a single leaf needs no order) */
    for (PetscInt c = 0; c < m; c++) perm[c] = c;
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc3((size_t)m * (size_t)k, &coords, m, &row, m, &nearest));
  for (PetscInt c = 0; c < m; c++) nearest[c] = INFINITY;
  for (PetscInt l = 0; l < k; l++) {
    struct {
      double value;
      int    index;
    } best = {INFINITY, INT_MAX};
    PetscInt far = 0;

    PetscCall(BroadcastRow(pb, r, row));
    for (PetscInt c = 0; c < m; c++) {
      coords[(size_t)c * k + l] = row[c];
      nearest[c]                = PetscMin(nearest[c], row[c]);
      if (nearest[c] > nearest[far]) far = c;
    }
    /* the next landmark: the row nearest to the column farthest from all landmarks so far */
    for (PetscInt i = 0; i < pb->n_local; i++) {
      PetscReal cost = pb->cost[(size_t)i * (size_t)m + far];

      if (cost < best.value) {
        best.value = cost;
        best.index = (int)(pb->row_start + i);
      }
    }
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &best, 1, MPI_DOUBLE_INT, MPI_MINLOC, pb->comm));
    r = best.index < INT_MAX ? best.index : 0;
  }
  PetscCall(OTCellTreeCreate(coords, m, k, (size_t)k, 1, OT_TRUNCATION_LEAF, &tree));
  PetscCall(PetscArraycpy(perm, tree.perm, m));
  PetscCall(OTCellTreeDestroy(&tree));
  PetscCall(PetscFree3(coords, row, nearest));
  PetscFunctionReturn(0);
}
