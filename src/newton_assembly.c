/*
  Assembly, step 4 of a Newton step (docs/design.md §2): the matrix [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] as one
  MATMPIAIJ. The unknown is one PETSc Vec of length n + m; rank r owns its f rows, then an even share of the g
  entries. Each rank forms its f rows of Ps; the transposed entries go to the ranks owning their g rows, either in
  one MPI_Alltoallv, after which every rank hands its CSR blocks to MatCreateMPIAIJWithSplitArrays
  (-ot_newton_assembly split, the default), or through MatSetValues and PETSc's assembly (setvalues: the same
  matrix, 35-50 ns an entry slower).
*/
#include "newton.h"

enum {
  WORK_SEND_INDEX,
  WORK_SEND_VALUE,
  WORK_RECV_INDEX,
  WORK_RECV_VALUE,
  WORK_DJ,
  WORK_DA,
  WORK_OJ,
  WORK_OA
};

/* nt->work[w] with room for at least count elements of the given size (its contents are not kept) */
static PetscErrorCode Reserve(OTNewton *nt, int w, size_t count, size_t size)
{
  PetscFunctionBegin;
  count = PetscMax(count, 1);
  if (count <= nt->work_cap[w]) PetscFunctionReturn(0);
  PetscCall(PetscFree(nt->work[w]));
  nt->work_cap[w] = count + count / 2;
  PetscCall(PetscMalloc(nt->work_cap[w] * size, &nt->work[w]));
  PetscFunctionReturn(0);
}

/* The kept entries by column of Ps, in a counting sort (f rows ascend within each column): entry t of column j,
   col_ptr[j] <= t < col_ptr[j + 1], has the global Vec index of its f row in t_row[t * row_stride] and its value
   in t_val[t]. */
static void KeptByColumn(OTNewton *nt, PetscInt n_local, PetscInt m, const PetscInt *row_ptr, const PetscInt *kept_col, const PetscReal *kept_val,
                         const PetscInt *col_local, PetscInt *col_ptr, PetscInt *t_row, PetscInt row_stride, PetscReal *t_val)
{
  col_ptr[0] = 0;
  for (PetscInt j = 0; j < m; j++) col_ptr[j + 1] = col_ptr[j] + col_local[j];
  for (PetscInt i = 0; i < n_local; i++) {
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      PetscInt slot = col_ptr[kept_col[k]]++;

      t_row[slot * row_stride] = nt->vec_start + i;
      t_val[slot]              = kept_val[k];
    }
  }
  for (PetscInt j = m; j > 0; j--) col_ptr[j] = col_ptr[j - 1]; /* the sort advanced each start to the next's */
  col_ptr[0] = 0;
}

/* [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] through PETSc's own assembly (-ot_newton_assembly setvalues):
   preallocated from the counts, each rank inserts its f rows (diagonal and kept entries, one MatSetValues per
   row) and the transposes of its kept entries (one MatSetValues per column of Ps, gathered by a counting sort);
   MatAssemblyBegin/End carry those of g rows owned elsewhere to their owners. */
static PetscErrorCode AssembleSetValues(OTSolver s, const PetscInt *row_ptr, const PetscInt *kept_col, const PetscReal *kept_val, const PetscInt *col_local,
                                        const PetscInt *col_total, PetscReal shift, Mat *A)
{
  OTProblem  pb = s->problem;
  OTNewton  *nt = s->newton;
  PetscInt   m = pb->m, n_local = pb->n_local, g_local = nt->g_end - nt->g_start, kept = row_ptr[n_local], *d_nnz, *o_nnz, *cols, *col_ptr, *t_rows;
  PetscReal *vals, *t_vals;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n_local + g_local, &d_nnz, n_local + g_local, &o_nnz));
  for (PetscInt i = 0; i < n_local; i++) {
    d_nnz[i] = 1;
    o_nnz[i] = 0;
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      if (nt->g_owner[kept_col[k]] == s->rank) d_nnz[i]++;
      else o_nnz[i]++;
    }
  }
  for (PetscInt j = nt->g_start; j < nt->g_end; j++) {
    d_nnz[n_local + j - nt->g_start] = 1 + col_local[j];
    o_nnz[n_local + j - nt->g_start] = col_total[j] - col_local[j];
  }
  PetscCall(MatCreateAIJ(s->comm, n_local + g_local, n_local + g_local, pb->n + pb->m, pb->n + pb->m, 0, d_nnz, 0, o_nnz, A));
  PetscCall(MatSetOption(*A, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_FALSE));
  PetscCall(PetscMalloc2(m + 1, &cols, m + 1, &vals));
  PetscCall(PetscMalloc3(m + 1, &col_ptr, PetscMax(kept, 1), &t_rows, PetscMax(kept, 1), &t_vals));
  for (PetscInt i = 0; i < n_local; i++) {
    PetscInt row = nt->vec_start + i, count = 1;

    cols[0] = row;
    vals[0] = nt->row_sum[i] * (1.0 + shift) + OTMarginalCurvature(pb->rho_a, pb->a[i], s->f[i], s->eps);
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++, count++) {
      cols[count] = nt->g_index[kept_col[k]];
      vals[count] = kept_val[k];
    }
    PetscCall(MatSetValues(*A, 1, &row, count, cols, vals, INSERT_VALUES));
  }
  KeptByColumn(nt, n_local, m, row_ptr, kept_col, kept_val, col_local, col_ptr, t_rows, 1, t_vals);
  for (PetscInt j = 0; j < m; j++) {
    PetscInt row = nt->g_index[j];

    if (col_ptr[j + 1] > col_ptr[j]) PetscCall(MatSetValues(*A, 1, &row, col_ptr[j + 1] - col_ptr[j], t_rows + col_ptr[j], t_vals + col_ptr[j], INSERT_VALUES));
  }
  for (PetscInt j = nt->g_start; j < nt->g_end; j++) {
    PetscInt  row  = nt->g_index[j];
    PetscReal diag = nt->col_sum[j] * (1.0 + shift) + OTMarginalCurvature(pb->rho_b, pb->b[j], s->g[j], s->eps);

    PetscCall(MatSetValues(*A, 1, &row, 1, &row, &diag, INSERT_VALUES));
  }
  PetscCall(MatAssemblyBegin(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(PetscFree2(d_nnz, o_nnz));
  PetscCall(PetscFree2(cols, vals));
  PetscCall(PetscFree3(col_ptr, t_rows, t_vals));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSplitArraysFree(OTSplitArrays *split)
{
  PetscFunctionBegin;
  PetscCall(PetscFree2(split->di, split->oi)); /* the others are Newton's work arrays */
  PetscFunctionReturn(0);
}

/* The transposed kept entries, sent to the ranks owning their g rows: sorts each owned row's kept entries by column,
   groups them by g row (counting sort; f rows ascend within each) as (j, global f row) pairs, and exchanges them in
   one MPI_Alltoallv; recv_counts[q], recv_displs[q] say which arrived from rank q. */
static PetscErrorCode ExchangeTransposed(OTSolver s, const PetscInt *row_ptr, PetscInt *kept_col, PetscReal *kept_val, const PetscInt *col_local,
                                         PetscInt **recv_index, PetscReal **recv_value, PetscMPIInt *recv_counts, PetscMPIInt *recv_displs)
{
  OTNewton    *nt = s->newton;
  PetscInt     m = s->problem->m, n_local = s->problem->n_local, kept = row_ptr[n_local], *col_ptr, *send_index, received;
  PetscReal   *send_value;
  PetscMPIInt *counts, *displs, *index_counts, *index_displs, *recv_index_counts, *recv_index_displs, size = s->size;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < n_local; i++) {
    PetscBool sorted;

    PetscCall(PetscSortedInt(row_ptr[i + 1] - row_ptr[i], kept_col + row_ptr[i], &sorted));
    if (!sorted) PetscCall(PetscSortIntWithScalarArray(row_ptr[i + 1] - row_ptr[i], kept_col + row_ptr[i], kept_val + row_ptr[i]));
  }
  /* the transposed entries, by g row (counting sort; f rows ascend within each), as (j, global f row) pairs */
  PetscCall(PetscMalloc1(m + 1, &col_ptr));
  PetscCall(Reserve(nt, WORK_SEND_INDEX, 2 * (size_t)kept, sizeof(PetscInt)));
  PetscCall(Reserve(nt, WORK_SEND_VALUE, (size_t)kept, sizeof(PetscReal)));
  send_index = (PetscInt *)nt->work[WORK_SEND_INDEX];
  send_value = (PetscReal *)nt->work[WORK_SEND_VALUE];
  KeptByColumn(nt, n_local, m, row_ptr, kept_col, kept_val, col_local, col_ptr, send_index + 1, 2, send_value);
  for (PetscInt j = 0; j < m; j++)
    for (PetscInt t = col_ptr[j]; t < col_ptr[j + 1]; t++) send_index[2 * t] = j;
  /* g rows are owned in contiguous ranges, rank by rank: the sorted list is already grouped by destination */
  PetscCall(PetscMalloc4(size, &counts, size, &displs, size, &index_counts, size, &index_displs));
  PetscCall(PetscMalloc2(size, &recv_index_counts, size, &recv_index_displs));
  for (PetscMPIInt q = 0; q < size; q++) {
    PetscInt gs, ge;

    PetscCall(OTRowSplit(m, size, q, &gs, &ge));
    PetscCall(PetscMPIIntCast(col_ptr[ge] - col_ptr[gs], &counts[q]));
  }
  PetscCall(PetscFree(col_ptr));
  PetscCallMPI(MPI_Alltoall(counts, 1, MPI_INT, recv_counts, 1, MPI_INT, s->comm));
  displs[0] = recv_displs[0] = 0;
  for (PetscMPIInt q = 0; q < size; q++) {
    if (q > 0) {
      displs[q]      = displs[q - 1] + counts[q - 1];
      recv_displs[q] = recv_displs[q - 1] + recv_counts[q - 1];
    }
    PetscCheck(displs[q] <= INT_MAX / 2 - counts[q] && recv_displs[q] <= INT_MAX / 2 - recv_counts[q], PETSC_COMM_SELF, PETSC_ERR_SUP,
               "more than 2^30 kept entries of P on one rank: use more ranks or a smaller -ot_newton_density");
    index_counts[q]      = 2 * counts[q];
    index_displs[q]      = 2 * displs[q];
    recv_index_counts[q] = 2 * recv_counts[q];
    recv_index_displs[q] = 2 * recv_displs[q];
  }
  received = size > 0 ? recv_displs[size - 1] + recv_counts[size - 1] : 0;
  if (size == 1) { /* nothing to send */
    *recv_index = send_index;
    *recv_value = send_value;
  } else {
    PetscCall(Reserve(nt, WORK_RECV_INDEX, 2 * (size_t)received, sizeof(PetscInt)));
    PetscCall(Reserve(nt, WORK_RECV_VALUE, (size_t)received, sizeof(PetscReal)));
    *recv_index = (PetscInt *)nt->work[WORK_RECV_INDEX];
    *recv_value = (PetscReal *)nt->work[WORK_RECV_VALUE];
    PetscCallMPI(MPI_Alltoallv(send_index, index_counts, index_displs, MPIU_INT, *recv_index, recv_index_counts, recv_index_displs, MPIU_INT, s->comm));
    PetscCallMPI(MPI_Alltoallv(send_value, counts, displs, MPIU_REAL, *recv_value, recv_counts, recv_displs, MPIU_REAL, s->comm));
  }

  PetscCall(PetscFree4(counts, displs, index_counts, index_displs));
  PetscCall(PetscFree2(recv_index_counts, recv_index_displs));
  PetscFunctionReturn(0);
}

/* [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] from CSR blocks built here and handed to PETSc as they are
   (MatCreateMPIAIJWithSplitArrays; -ot_newton_assembly split, the default): no per-entry insertion, which costs
   35-50 ns an entry in PETSc 3.18's MatSetValues (7.5 ms for 156,000 entries) where building the blocks costs a
   few ns. The owned f rows come from the kept entries (sorted here: KeepRows appends the row and column maxima
   after the threshold's entries); the transposed entries travel to the ranks owning their g rows in one
   MPI_Alltoallv, grouped by g row and, within it, by source rank and f row, so every row arrives with its
   columns in order. The diagonal block takes the columns this rank owns (local numbering), the off-diagonal
   block the others (global numbering). */
static PetscErrorCode AssembleSplit(OTSolver s, const PetscInt *row_ptr, PetscInt *kept_col, PetscReal *kept_val, const PetscInt *col_local, PetscReal shift,
                                    Mat *A, OTSplitArrays *split)
{
  OTProblem    pb      = s->problem;
  OTNewton    *nt      = s->newton;
  PetscInt     n_local = pb->n_local, g_local = nt->g_end - nt->g_start, local = n_local + g_local;
  PetscInt    *recv_index, *d_cursor, *o_cursor, d_total, o_total;
  PetscReal   *recv_value;
  PetscMPIInt *recv_counts, *recv_displs, size = s->size;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(size, &recv_counts, size, &recv_displs));
  PetscCall(ExchangeTransposed(s, row_ptr, kept_col, kept_val, col_local, &recv_index, &recv_value, recv_counts, recv_displs));
  /* row lengths: f rows: the diagonal and the kept entries (by the owner of their g column); g rows: the
     entries from this rank's f rows and the diagonal, and those from other ranks */
  PetscCall(PetscMalloc2(local, &d_cursor, local, &o_cursor));
  for (PetscInt i = 0; i < local; i++) d_cursor[i] = o_cursor[i] = 0;
  for (PetscInt i = 0; i < n_local; i++) {
    d_cursor[i] = 1;
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      if (nt->g_owner[kept_col[k]] == s->rank) d_cursor[i]++;
      else o_cursor[i]++;
    }
  }
  for (PetscInt r = n_local; r < local; r++) d_cursor[r] = 1;
  for (PetscMPIInt q = 0; q < size; q++)
    for (PetscInt e = recv_displs[q]; e < recv_displs[q] + recv_counts[q]; e++) {
      PetscInt r = n_local + recv_index[2 * e] - nt->g_start;

      if (q == s->rank) d_cursor[r]++;
      else o_cursor[r]++;
    }
  d_total = o_total = 0;
  for (PetscInt r = 0; r < local; r++) {
    d_total += d_cursor[r];
    o_total += o_cursor[r];
  }
  PetscCall(PetscMalloc2(local + 1, &split->di, local + 1, &split->oi));
  PetscCall(Reserve(nt, WORK_DJ, (size_t)d_total, sizeof(PetscInt)));
  PetscCall(Reserve(nt, WORK_DA, (size_t)d_total, sizeof(PetscReal)));
  PetscCall(Reserve(nt, WORK_OJ, (size_t)o_total, sizeof(PetscInt)));
  PetscCall(Reserve(nt, WORK_OA, (size_t)o_total, sizeof(PetscReal)));
  split->dj    = (PetscInt *)nt->work[WORK_DJ];
  split->da    = (PetscReal *)nt->work[WORK_DA];
  split->oj    = (PetscInt *)nt->work[WORK_OJ];
  split->oa    = (PetscReal *)nt->work[WORK_OA];
  split->di[0] = split->oi[0] = 0;
  for (PetscInt r = 0; r < local; r++) {
    split->di[r + 1] = split->di[r] + d_cursor[r];
    split->oi[r + 1] = split->oi[r] + o_cursor[r];
    d_cursor[r]      = split->di[r];
    o_cursor[r]      = split->oi[r];
  }
  /* f rows: the diagonal (local column i) first, then the kept entries in order of j */
  for (PetscInt i = 0; i < n_local; i++) {
    split->dj[d_cursor[i]]   = i;
    split->da[d_cursor[i]++] = nt->row_sum[i] * (1.0 + shift) + OTMarginalCurvature(pb->rho_a, pb->a[i], s->f[i], s->eps);
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      PetscInt j = kept_col[k];

      if (nt->g_owner[j] == s->rank) {
        split->dj[d_cursor[i]]   = n_local + j - nt->g_start;
        split->da[d_cursor[i]++] = kept_val[k];
      } else {
        split->oj[o_cursor[i]]   = nt->g_index[j];
        split->oa[o_cursor[i]++] = kept_val[k];
      }
    }
  }
  /* g rows: sources in rank order, f rows ascending within each: this rank's own f rows (local columns below
     n_local), then the diagonal (local column n_local + j - g_start), and the other ranks' in the off-diagonal block */
  for (PetscMPIInt q = 0; q < size; q++)
    for (PetscInt e = recv_displs[q]; e < recv_displs[q] + recv_counts[q]; e++) {
      PetscInt r = n_local + recv_index[2 * e] - nt->g_start;

      if (q == s->rank) {
        split->dj[d_cursor[r]]   = recv_index[2 * e + 1] - nt->vec_start;
        split->da[d_cursor[r]++] = recv_value[e];
      } else {
        split->oj[o_cursor[r]]   = recv_index[2 * e + 1];
        split->oa[o_cursor[r]++] = recv_value[e];
      }
    }
  for (PetscInt r = n_local; r < local; r++) {
    PetscInt j = nt->g_start + r - n_local;

    split->dj[d_cursor[r]]   = r;
    split->da[d_cursor[r]++] = nt->col_sum[j] * (1.0 + shift) + OTMarginalCurvature(pb->rho_b, pb->b[j], s->g[j], s->eps);
  }
  PetscCall(PetscFree2(d_cursor, o_cursor));
  PetscCall(PetscFree2(recv_counts, recv_displs));
  PetscCall(MatCreateMPIAIJWithSplitArrays(s->comm, local, local, pb->n + pb->m, pb->n + pb->m, split->di, split->dj, split->da, split->oi, split->oj,
                                           split->oa, A));
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonAssemble(OTSolver s, const OTKept *kept, PetscReal shift, Mat *A, OTSplitArrays *split)
{
  OTNewton *nt = s->newton;

  PetscFunctionBegin;
  if (nt->assembly == OT_NEWTON_ASSEMBLY_SETVALUES)
    PetscCall(AssembleSetValues(s, kept->row_ptr, nt->kept_col, nt->kept_val, kept->col_local, kept->col_total, shift, A));
  else PetscCall(AssembleSplit(s, kept->row_ptr, nt->kept_col, nt->kept_val, kept->col_local, shift, A, split));
  PetscCall(MatSetOption(*A, MAT_SYMMETRIC, PETSC_TRUE));
  PetscFunctionReturn(0);
}
