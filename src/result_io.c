/* The result file (DESIGN.md §3): /f, /g, root attributes, /history; written to a temporary name, then renamed. */
#include "otimpl.h"
#include <unistd.h>

static PetscErrorCode WriteAttrDouble(hid_t loc, const char name[], PetscReal value)
{
  hid_t space, attr;
  double v = (double)value;

  PetscFunctionBegin;
  space = H5Screate(H5S_SCALAR);
  attr  = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Awrite(attr, H5T_NATIVE_DOUBLE, &v));
  OTH5Call(H5Aclose(attr));
  OTH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

static PetscErrorCode WriteAttrInt(hid_t loc, const char name[], PetscInt value)
{
  hid_t     space, attr;
  long long v = (long long)value;

  PetscFunctionBegin;
  space = H5Screate(H5S_SCALAR);
  attr  = H5Acreate2(loc, name, H5T_NATIVE_LLONG, space, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Awrite(attr, H5T_NATIVE_LLONG, &v));
  OTH5Call(H5Aclose(attr));
  OTH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

static PetscErrorCode WriteAttrString(hid_t loc, const char name[], const char value[])
{
  hid_t space, type, attr;

  PetscFunctionBegin;
  /* variable-length UTF-8, as h5py writes strings: readers get str, not bytes */
  space = H5Screate(H5S_SCALAR);
  type  = H5Tcopy(H5T_C_S1);
  OTH5Call(H5Tset_size(type, H5T_VARIABLE));
  OTH5Call(H5Tset_cset(type, H5T_CSET_UTF8));
  attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Awrite(attr, type, &value));
  OTH5Call(H5Aclose(attr));
  OTH5Call(H5Tclose(type));
  OTH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* Writes entries [start, start + count) of a 1-D dataset of length len, collectively. */
static PetscErrorCode WriteVectorPart(hid_t file, const char name[], PetscInt len, PetscInt start, PetscInt count, const PetscReal *values, hid_t xfer)
{
  hsize_t dims = (hsize_t)len, offset = (hsize_t)start, cnt = (hsize_t)count;
  hid_t   file_space, mem_space, dset;

  PetscFunctionBegin;
  file_space = H5Screate_simple(1, &dims, NULL);
  dset       = H5Dcreate2(file, name, H5T_NATIVE_DOUBLE, file_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(dset);
  if (count > 0) {
    OTH5Call(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &offset, NULL, &cnt, NULL));
    mem_space = H5Screate_simple(1, &cnt, NULL);
  } else {
    OTH5Call(H5Sselect_none(file_space));
    mem_space = H5Scopy(file_space);
    OTH5Call(H5Sselect_none(mem_space));
  }
  OTH5Call(H5Dwrite(dset, H5T_NATIVE_DOUBLE, mem_space, file_space, xfer, values));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  PetscFunctionReturn(0);
}

/* /history: one row per iteration, a compound of (stage, iteration, time, marginal_error, dual_objective); rank 0 writes it. */
static PetscErrorCode WriteHistory(OTSolver s, hid_t file, hid_t xfer)
{
  typedef struct {
    int       stage;
    long long iteration;
    double    time, marginal_error, dual_objective;
  } Row;
  hsize_t len = (hsize_t)s->history_len;
  hid_t   type, file_space, mem_space, dset, stage_type;
  Row    *rows;
  const char *stage_names[] = {"sinkhorn", "newton"};

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(PetscMax(1, s->history_len), &rows));
  for (PetscInt k = 0; k < s->history_len; k++) {
    rows[k].stage          = s->history[k].stage;
    rows[k].iteration      = s->history[k].iteration;
    rows[k].time           = s->history[k].time;
    rows[k].marginal_error = s->history[k].marginal_error;
    rows[k].dual_objective = s->history[k].dual_objective;
  }
  stage_type = H5Tenum_create(H5T_NATIVE_INT);
  for (int k = 0; k < 2; k++) OTH5Call(H5Tenum_insert(stage_type, stage_names[k], &k));
  type = H5Tcreate(H5T_COMPOUND, sizeof(Row));
  OTH5Call(H5Tinsert(type, "stage", HOFFSET(Row, stage), stage_type));
  OTH5Call(H5Tinsert(type, "iteration", HOFFSET(Row, iteration), H5T_NATIVE_LLONG));
  OTH5Call(H5Tinsert(type, "time", HOFFSET(Row, time), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(type, "marginal_error", HOFFSET(Row, marginal_error), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(type, "dual_objective", HOFFSET(Row, dual_objective), H5T_NATIVE_DOUBLE));
  file_space = H5Screate_simple(1, &len, NULL);
  dset       = H5Dcreate2(file, "/history", type, file_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(dset);
  mem_space = H5Scopy(file_space);
  if (s->rank != 0 || len == 0) {
    OTH5Call(H5Sselect_none(file_space));
    OTH5Call(H5Sselect_none(mem_space));
  }
  OTH5Call(H5Dwrite(dset, type, mem_space, file_space, xfer, rows));
  PetscCall(WriteAttrString(dset, "stages", "stage 0 = sinkhorn sweep, 1 = newton step; time in seconds since the solve began"));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  OTH5Call(H5Tclose(type));
  OTH5Call(H5Tclose(stage_type));
  PetscCall(PetscFree(rows));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverWriteResult(OTSolver s, const char filename[])
{
  OTProblem pb = s->problem;
  OTResult *r  = &s->result;
  char      tmpname[PETSC_MAX_PATH_LEN + 32];
  int       pid = (int)getpid(), renamed = 0;
  hid_t     fapl, file, xfer;

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(OT_STAGE_WRITE));
  PetscCall(PetscLogEventBegin(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscCallMPI(MPI_Bcast(&pid, 1, MPI_INT, 0, s->comm));
  PetscCall(PetscSNPrintf(tmpname, sizeof(tmpname), "%s.tmp.%d", filename, pid));
  OTH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL));
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  OTH5Call(H5Pset_fapl_mpio(fapl, s->comm, MPI_INFO_NULL));
  file = H5Fcreate(tmpname, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  OTH5Call(H5Pclose(fapl));
  PetscCheck(file >= 0, s->comm, OT_ERR_INPUT, "%s: cannot create the result file (check that its directory exists and is writable)", tmpname);
  xfer = H5Pcreate(H5P_DATASET_XFER);
  OTH5Call(H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE));

  PetscCall(WriteVectorPart(file, "/f", pb->n, pb->row_start, pb->n_local, s->f, xfer));
  PetscCall(WriteVectorPart(file, "/g", pb->m, 0, s->rank == 0 ? pb->m : 0, s->g, xfer));
  PetscCall(WriteHistory(s, file, xfer));
  PetscCall(WriteAttrDouble(file, "transport_cost", r->transport_cost));
  PetscCall(WriteAttrDouble(file, "dual_objective", r->dual_objective));
  PetscCall(WriteAttrDouble(file, "entropic_cost", r->entropic_cost));
  PetscCall(WriteAttrDouble(file, "marginal_error", r->marginal_error));
  PetscCall(WriteAttrDouble(file, "lower_bound", r->lower_bound));
  PetscCall(WriteAttrDouble(file, "upper_bound", r->upper_bound));
  PetscCall(WriteAttrDouble(file, "eps", r->eps));
  PetscCall(WriteAttrDouble(file, "tol", s->tol));
  PetscCall(WriteAttrDouble(file, "solve_time", r->solve_time));
  PetscCall(WriteAttrInt(file, "iterations_sinkhorn", r->iterations_sinkhorn));
  PetscCall(WriteAttrInt(file, "iterations_newton", r->iterations_newton));
  PetscCall(WriteAttrInt(file, "converged", r->converged ? 1 : 0));
  PetscCall(WriteAttrInt(file, "n", pb->n));
  PetscCall(WriteAttrInt(file, "m", pb->m));
  PetscCall(WriteAttrInt(file, "ranks", s->size));
  PetscCall(WriteAttrString(file, "status", r->status));
  PetscCall(WriteAttrString(file, "problem", pb->source));
  OTH5Call(H5Pclose(xfer));
  OTH5Call(H5Fclose(file));

  if (s->rank == 0) renamed = rename(tmpname, filename) == 0;
  PetscCallMPI(MPI_Bcast(&renamed, 1, MPI_INT, 0, s->comm));
  PetscCheck(renamed, s->comm, OT_ERR_INPUT, "%s: could not rename the finished result file %s to it", filename, tmpname);
  PetscCall(PetscLogEventEnd(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(0);
}
