/*
  The sparse plan: /plan in the result file, in the CSR layout that scipy.sparse.csr_matrix reads
  ((data, indices, indptr), shape = (n, m)), holding the entries of P = exp((f_i + g_j - C_ij)/eps) that
  are at least -ot_plan_threshold times the largest entry of P.

  Everything stays in the log domain until the end: the largest exponent max_ij (f_i + g_j - C_ij) is
  reduced across ranks, and an entry is kept when its exponent is >= that max + eps log(threshold). Each
  rank counts its rows' entries, an exclusive scan gives its offset in indices and data, and every rank
  writes its own slices of the three datasets with collective hyperslab writes.

  After a solve on the truncated kernel the entries come from its kept entries, P = u_i K_ic v_c, without a pass over
  all n x m pairs, where that is exact: every entry the kernel dropped is below exp(log_floor) max u max v, so when
  that is below the cut the kernel holds every entry of the plan. Otherwise (a threshold of 0, or a cut below what
  the kernel may have dropped) the pass over all pairs runs as without it.
*/
#include "otimpl.h"
#include "truncated.h"

/* Whether the truncated kernel holds every entry of the plan; if so, the cut and this rank's count from it (u, v:
   the scalings of the state, left in t->u, t->v). The same verdict on every rank. Collective. */
static PetscErrorCode CountFromKernel(OTSolver s, OTPlanCount *count)
{
  OTTruncated *t = s->trunc;
  PetscReal    log_max_u, log_max_v, dropped, max_p = 0.0, cut_p;

  PetscFunctionBegin;
  count->kernel = PETSC_FALSE;
  if (s->variant != OT_SINKHORN_TRUNCATED || s->problem->symmetric || !t || t->eps != s->eps || t->builds == 0 || !(s->plan_threshold > 0))
    PetscFunctionReturn(0);
  PetscCall(OTTruncatedScalings(s, NULL, 0.0, s->g, t->u, t->v, &log_max_u, &log_max_v, &dropped));
  for (PetscInt r = 0; r < t->rows; r++) {
    const PetscReal *k = OTTruncatedRow(s->problem, t, r);
    PetscReal        u = t->u[t->row_of[r]];

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++)
      for (int q = 0; q < t->seg_len[sg]; q++, k++) max_p = PetscMax(max_p, u * *k * t->v[t->seg_col[sg] + q]);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &max_p, 1, MPIU_REAL, MPIU_MAX, s->comm));
  cut_p = s->plan_threshold * max_p;
  if (!(PetscExpReal(t->log_floor + log_max_u + log_max_v) < cut_p)) PetscFunctionReturn(0);
  count->kernel       = PETSC_TRUE;
  count->max_exponent = s->eps * PetscLogReal(max_p);
  count->cut          = count->max_exponent + s->eps * PetscLogReal(s->plan_threshold);
  count->nnz_local    = 0;
  for (PetscInt r = 0; r < t->rows; r++) {
    const PetscReal *k = OTTruncatedRow(s->problem, t, r);
    PetscReal        u = t->u[t->row_of[r]];

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++)
      for (int q = 0; q < t->seg_len[sg]; q++, k++) count->nnz_local += u * *k * t->v[t->seg_col[sg] + q] >= cut_p;
  }
  PetscFunctionReturn(0);
}

/* The plan's rows from the kernel (CountFromKernel said it holds them): each owned row's entries >= cut_p, their
   columns in increasing order. */
static PetscErrorCode RowsFromKernel(OTSolver s, PetscReal cut_p, int64_t offset, int64_t *indptr, int64_t *indices, PetscReal *data)
{
  OTProblem    pb = s->problem;
  OTTruncated *t  = s->trunc;
  PetscInt    *stored, *cols;
  PetscReal   *vals;
  int64_t      k_out = 0;

  PetscFunctionBegin;
  PetscCall(PetscMalloc3(pb->n_local, &stored, pb->m, &cols, pb->m, &vals));
  for (PetscInt r = 0; r < t->rows; r++) stored[t->row_of[r]] = r;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    PetscInt         r = stored[i], len = 0;
    const PetscReal *k = OTTruncatedRow(s->problem, t, r);

    for (int64_t sg = t->seg_ptr[r]; sg < t->seg_ptr[r + 1]; sg++)
      for (int q = 0; q < t->seg_len[sg]; q++, k++) {
        PetscReal p = t->u[i] * *k * t->v[t->seg_col[sg] + q];

        if (p >= cut_p) {
          cols[len]   = OTTruncatedColumn(t, t->seg_col[sg] + q);
          vals[len++] = p;
        }
      }
    PetscCall(PetscSortIntWithScalarArray(len, cols, vals));
    indptr[i] = offset + k_out;
    for (PetscInt q = 0; q < len; q++, k_out++) {
      indices[k_out] = cols[q];
      data[k_out]    = vals[q];
    }
  }
  indptr[pb->n_local] = offset + k_out;
  PetscCall(PetscFree3(stored, cols, vals));
  PetscFunctionReturn(0);
}

/* The plan's cut in the log domain (max exponent + eps log threshold) and this rank's count of entries above it. */
PetscErrorCode OTPlanCountEntries(OTSolver s, OTPlanCount *count)
{
  OTProblem  pb = s->problem;
  PetscReal *buffer;

  PetscFunctionBegin;
  PetscCall(CountFromKernel(s, count));
  if (count->kernel) {
    PetscCallMPI(MPI_Allreduce(&count->nnz_local, &count->nnz_total, 1, MPI_INT64_T, MPI_SUM, s->comm));
    count->bytes = 8.0 * ((double)pb->n + 1.0) + 16.0 * (double)count->nnz_total;
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc1(pb->m, &buffer)); /* a row of costs, for point clouds (dense rows are read in place) */
  count->max_exponent = -INFINITY;
  count->nnz_local    = 0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    OTRow cost = OTKernelCostRow(pb, i, buffer);

    count->max_exponent = PetscMax(count->max_exponent, s->f[i] - OTRowMinMinus(&cost, s->g)); /* f_i + max_j (g_j - C_ij) */
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &count->max_exponent, 1, MPIU_REAL, MPIU_MAX, s->comm));
  count->cut = s->plan_threshold > 0 ? count->max_exponent + s->eps * PetscLogReal(s->plan_threshold) : -INFINITY;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    OTRow cost = OTKernelCostRow(pb, i, buffer);

    for (PetscInt k = 0; k < cost.len; k++) count->nnz_local += (s->f[i] + s->g[OT_ROW_COLUMN(&cost, k)]) - cost.val[k] >= count->cut;
  }
  PetscCall(PetscFree(buffer));
  PetscCallMPI(MPI_Allreduce(&count->nnz_local, &count->nnz_total, 1, MPI_INT64_T, MPI_SUM, s->comm));
  count->bytes = 8.0 * ((double)pb->n + 1.0) + 16.0 * (double)count->nnz_total; /* indptr; indices and data */
  PetscFunctionReturn(0);
}

PetscErrorCode OTWritePlan(OTSolver s, const OTPlanCount *count, hid_t file, hid_t xfer)
{
  OTProblem  pb      = s->problem;
  PetscInt   n_local = pb->n_local, m = pb->m;
  PetscReal  max_exponent = count->max_exponent, cut = count->cut;
  int64_t    nnz_local = count->nnz_local, offset = 0, nnz_total = count->nnz_total, *indptr, *indices;
  PetscReal *data, *buffer;
  hid_t      group;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(m, &buffer)); /* a row of costs, for point clouds (dense rows are read in place) */
  PetscCallMPI(MPI_Exscan(&nnz_local, &offset, 1, MPI_INT64_T, MPI_SUM, s->comm));
  if (s->rank == 0) offset = 0; /* MPI_Exscan leaves rank 0's result undefined */
  PetscCheck(nnz_total < PETSC_MAX_INT, s->comm, OT_ERR_INPUT, "-ot_plan_threshold %g keeps %lld entries of P, too many for one file; raise the threshold",
             (double)s->plan_threshold, (long long)nnz_total);

  /* indptr has n + 1 entries: each rank writes those of its rows, the last rank also the final one */
  PetscCall(PetscMalloc3(n_local + 1, &indptr, PetscMax(1, nnz_local), &indices, PetscMax(1, nnz_local), &data));
  if (count->kernel) PetscCall(RowsFromKernel(s, PetscExpReal(max_exponent / s->eps) * s->plan_threshold, offset, indptr, indices, data));
  else {
    int64_t k = 0;

    for (PetscInt i = 0; i < n_local; i++) {
      OTRow cost = OTKernelCostRow(pb, i, buffer);

      indptr[i] = offset + k;
      for (PetscInt c = 0; c < cost.len; c++) {
        PetscInt  j        = OT_ROW_COLUMN(&cost, c);
        PetscReal exponent = (s->f[i] + s->g[j]) - cost.val[c];

        if (exponent >= cut) {
          indices[k] = j;
          data[k++]  = PetscExpReal(exponent / s->eps);
        }
      }
    }
    indptr[n_local] = offset + k;
  }
  group = H5Gcreate2(file, "/plan", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(group);
  PetscCall(OTH5WriteArrayPart(file, "/plan/indptr", H5T_NATIVE_INT64, pb->n + 1, pb->row_start, n_local + (s->rank == s->size - 1), indptr, xfer));
  PetscCall(OTH5WriteArrayPart(file, "/plan/indices", H5T_NATIVE_INT64, (PetscInt)nnz_total, (PetscInt)offset, (PetscInt)nnz_local, indices, xfer));
  PetscCall(OTH5WriteArrayPart(file, "/plan/data", H5T_NATIVE_DOUBLE, (PetscInt)nnz_total, (PetscInt)offset, (PetscInt)nnz_local, data, xfer));
  PetscCall(OTH5WriteAttrDouble(group, "threshold", s->plan_threshold));
  PetscCall(OTH5WriteAttrDouble(group, "max", PetscExpReal(max_exponent / s->eps)));
  PetscCall(OTH5WriteAttrInt(group, "nnz", (PetscInt)nnz_total));
  {
    hsize_t   two      = 2;
    long long shape[2] = {(long long)pb->n, (long long)pb->m};
    hid_t     space    = H5Screate_simple(1, &two, NULL), attr;

    attr = H5Acreate2(group, "shape", H5T_NATIVE_LLONG, space, H5P_DEFAULT, H5P_DEFAULT);
    OTH5Call(attr);
    OTH5Call(H5Awrite(attr, H5T_NATIVE_LLONG, shape));
    OTH5Call(H5Aclose(attr));
    OTH5Call(H5Sclose(space));
  }
  OTH5Call(H5Gclose(group));
  PetscCall(PetscFree3(indptr, indices, data));
  PetscCall(PetscFree(buffer));
  PetscCall(PetscInfo(NULL, "Plan: %lld entries >= %g x max P written%s\n", (long long)nnz_total, (double)s->plan_threshold,
                      count->kernel ? ", from the truncated kernel's kept entries" : ""));
  PetscFunctionReturn(0);
}
