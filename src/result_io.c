/* The result file (DESIGN.md §3): /f, /g, root attributes, /history; written to a temporary name, then renamed. */
#include "otimpl.h"
#include <fcntl.h>
#include <unistd.h>

PetscErrorCode OTH5WriteAttrDouble(hid_t loc, const char name[], PetscReal value)
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

PetscErrorCode OTH5WriteAttrInt(hid_t loc, const char name[], PetscInt value)
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

PetscErrorCode OTH5WriteAttrString(hid_t loc, const char name[], const char value[])
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

PetscErrorCode OTH5SelectPart(hid_t file_space, PetscInt start, PetscInt count, hid_t *mem_space)
{
  hsize_t offset = (hsize_t)start, cnt = (hsize_t)count;

  PetscFunctionBegin;
  if (count > 0) {
    OTH5Call(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &offset, NULL, &cnt, NULL));
    *mem_space = H5Screate_simple(1, &cnt, NULL);
  } else { /* a rank with nothing to move still takes part in the collective call */
    OTH5Call(H5Sselect_none(file_space));
    *mem_space = H5Scopy(file_space);
    OTH5Call(H5Sselect_none(*mem_space));
  }
  OTH5Call(*mem_space);
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteArrayPart(hid_t file, const char name[], hid_t type, PetscInt len, PetscInt start, PetscInt count, const void *values, hid_t xfer)
{
  hsize_t dims = (hsize_t)len;
  hid_t   file_space, mem_space, dset;

  PetscFunctionBegin;
  file_space = H5Screate_simple(1, &dims, NULL);
  dset       = H5Dcreate2(file, name, type, file_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(dset);
  PetscCall(OTH5SelectPart(file_space, start, count, &mem_space));
  OTH5Call(H5Dwrite(dset, type, mem_space, file_space, xfer, values));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteVectorPart(hid_t file, const char name[], PetscInt len, PetscInt start, PetscInt count, const PetscReal *values, hid_t xfer)
{
  PetscFunctionBegin;
  PetscCall(OTH5WriteArrayPart(file, name, H5T_NATIVE_DOUBLE, len, start, count, values, xfer));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5HistoryType(hid_t *type)
{
  hid_t       stage_type;
  const char *stage_names[] = {"sinkhorn", "newton"};

  PetscFunctionBegin;
  stage_type = H5Tenum_create(H5T_NATIVE_INT);
  for (int k = 0; k < 2; k++) OTH5Call(H5Tenum_insert(stage_type, stage_names[k], &k));
  *type = H5Tcreate(H5T_COMPOUND, sizeof(OTHistoryFileRow));
  OTH5Call(H5Tinsert(*type, "stage", HOFFSET(OTHistoryFileRow, stage), stage_type));
  OTH5Call(H5Tinsert(*type, "iteration", HOFFSET(OTHistoryFileRow, iteration), H5T_NATIVE_LLONG));
  OTH5Call(H5Tinsert(*type, "time", HOFFSET(OTHistoryFileRow, time), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(*type, "marginal_error", HOFFSET(OTHistoryFileRow, marginal_error), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(*type, "dual_objective", HOFFSET(OTHistoryFileRow, dual_objective), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(*type, "eps", HOFFSET(OTHistoryFileRow, eps), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tclose(stage_type));
  PetscFunctionReturn(0);
}

/* /history: one row per iteration, a compound of (stage, iteration, time, marginal_error, dual_objective); rank 0 writes it. */
PetscErrorCode OTH5WriteHistory(OTSolver s, hid_t file, hid_t xfer)
{
  hsize_t           len = (hsize_t)s->history_len;
  hid_t             type, file_space, mem_space, dset;
  OTHistoryFileRow *rows;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(PetscMax(1, s->history_len), &rows));
  for (PetscInt k = 0; k < s->history_len; k++) {
    rows[k].stage          = s->history[k].stage;
    rows[k].iteration      = s->history[k].iteration;
    rows[k].time           = s->history[k].time;
    rows[k].marginal_error = s->history[k].marginal_error;
    rows[k].dual_objective = s->history[k].dual_objective;
    rows[k].eps            = s->history[k].eps;
  }
  PetscCall(OTH5HistoryType(&type));
  file_space = H5Screate_simple(1, &len, NULL);
  dset       = H5Dcreate2(file, "/history", type, file_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(dset);
  mem_space = H5Scopy(file_space);
  if (s->rank != 0 || len == 0) {
    OTH5Call(H5Sselect_none(file_space));
    OTH5Call(H5Sselect_none(mem_space));
  }
  OTH5Call(H5Dwrite(dset, type, mem_space, file_space, xfer, rows));
  PetscCall(OTH5WriteAttrString(dset, "stages", "stage 0 = sinkhorn sweep, 1 = newton step; time in seconds since the solve began; eps of the iteration (it changes along an eps schedule)"));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  OTH5Call(H5Tclose(type));
  PetscCall(PetscFree(rows));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5CreateTemporary(MPI_Comm comm, const char filename[], char tmpname[], size_t len, hid_t *file)
{
  int   pid = (int)getpid();
  hid_t fapl;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Bcast(&pid, 1, MPI_INT, 0, comm));
  PetscCall(PetscSNPrintf(tmpname, len, "%s.tmp.%d", filename, pid));
  OTH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL));
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  OTH5Call(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
  *file = H5Fcreate(tmpname, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  OTH5Call(H5Pclose(fapl));
  PetscCheck(*file >= 0, comm, OT_ERR_INPUT, "%s: cannot create the file (check that its directory exists and is writable)", tmpname);
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5OpenRead(MPI_Comm comm, const char filename[], int status[2], hid_t *file)
{
  PetscMPIInt rank;

  PetscFunctionBegin;
  *file = -1;
  OTH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL)); /* errors are reported by otsolve, once, in its own words */
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  status[0] = status[1] = 0;
  if (rank == 0) {
    status[0] = access(filename, R_OK) == 0;
    status[1] = status[0] && H5Fis_hdf5(filename) > 0;
  }
  PetscCallMPI(MPI_Bcast(status, 2, MPI_INT, 0, comm));
  if (status[0] && status[1]) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);

    OTH5Call(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
    *file = H5Fopen(filename, H5F_ACC_RDONLY, fapl);
    OTH5Call(H5Pclose(fapl));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5CloseAndRename(MPI_Comm comm, hid_t file, const char tmpname[], const char filename[])
{
  PetscMPIInt rank;
  int         renamed = 0;

  PetscFunctionBegin;
  OTH5Call(H5Fclose(file));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) {
    /* the data reach the disk before the name does: a crash leaves the old file or the new one, whole */
    int fd = open(tmpname, O_RDONLY);

    if (fd >= 0) {
      (void)fsync(fd);
      close(fd);
    }
    renamed = rename(tmpname, filename) == 0;
  }
  PetscCallMPI(MPI_Bcast(&renamed, 1, MPI_INT, 0, comm));
  PetscCheck(renamed, comm, OT_ERR_INPUT, "%s: could not rename the finished file %s to it", filename, tmpname);
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5CreateWithState(OTSolver s, const char filename[], char tmpname[], size_t len, hid_t *file, hid_t *xfer)
{
  OTProblem pb = s->problem;

  PetscFunctionBegin;
  PetscCall(OTH5CreateTemporary(s->comm, filename, tmpname, len, file));
  *xfer = H5Pcreate(H5P_DATASET_XFER);
  OTH5Call(*xfer);
  OTH5Call(H5Pset_dxpl_mpio(*xfer, H5FD_MPIO_COLLECTIVE));
  PetscCall(OTH5WriteVectorPart(*file, "/f", pb->n, pb->row_start, pb->n_local, s->f, *xfer));
  PetscCall(OTH5WriteVectorPart(*file, "/g", pb->m, 0, s->rank == 0 ? pb->m : 0, s->g, *xfer));
  PetscCall(OTH5WriteHistory(s, *file, *xfer));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverWriteResult(OTSolver s, const char filename[])
{
  OTProblem pb = s->problem;
  OTResult *r  = &s->result;
  char      tmpname[PETSC_MAX_PATH_LEN + 32];
  hid_t     file, xfer;

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(OT_STAGE_WRITE));
  PetscCall(PetscLogEventBegin(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscCall(OTH5CreateWithState(s, filename, tmpname, sizeof(tmpname), &file, &xfer));
  PetscCall(OTH5WriteAttrDouble(file, "transport_cost", r->transport_cost));
  PetscCall(OTH5WriteAttrDouble(file, "dual_objective", r->dual_objective));
  PetscCall(OTH5WriteAttrDouble(file, "entropic_cost", r->entropic_cost));
  PetscCall(OTH5WriteAttrDouble(file, "marginal_error", r->marginal_error));
  PetscCall(OTH5WriteAttrDouble(file, "lower_bound", r->lower_bound));
  PetscCall(OTH5WriteAttrDouble(file, "upper_bound", r->upper_bound));
  if (!PetscIsNanReal(r->wasserstein)) {
    PetscCall(OTH5WriteAttrDouble(file, "wasserstein", r->wasserstein));
    PetscCall(OTH5WriteAttrDouble(file, "wasserstein_lower", r->wasserstein_lower));
    PetscCall(OTH5WriteAttrDouble(file, "wasserstein_upper", r->wasserstein_upper));
  }
  if (!PetscIsNanReal(r->sinkhorn_divergence)) {
    PetscCall(OTH5WriteAttrDouble(file, "sinkhorn_divergence", r->sinkhorn_divergence));
    PetscCall(OTH5WriteAttrInt(file, "divergence_converged", r->divergence_converged ? 1 : 0));
  }
  PetscCall(OTH5WriteAttrDouble(file, "eps", r->eps));
  PetscCall(OTH5WriteAttrInt(file, "eps_stages", s->eps_stages));
  PetscCall(OTH5WriteAttrDouble(file, "tol", s->tol));
  PetscCall(OTH5WriteAttrDouble(file, "solve_time", r->solve_time));
  PetscCall(OTH5WriteAttrInt(file, "iterations_sinkhorn", r->iterations_sinkhorn));
  PetscCall(OTH5WriteAttrInt(file, "iterations_newton", r->iterations_newton));
  PetscCall(OTH5WriteAttrInt(file, "converged", r->converged ? 1 : 0));
  PetscCall(OTH5WriteAttrInt(file, "n", pb->n));
  PetscCall(OTH5WriteAttrInt(file, "m", pb->m));
  PetscCall(OTH5WriteAttrInt(file, "ranks", s->size));
  PetscCall(OTH5WriteAttrString(file, "status", r->status));
  PetscCall(OTH5WriteAttrString(file, "problem", pb->source));
  if (s->plan_threshold >= 0) PetscCall(OTWritePlan(s, file, xfer));
  OTH5Call(H5Pclose(xfer));
  PetscCall(OTH5CloseAndRename(s->comm, file, tmpname, filename));
  PetscCall(PetscLogEventEnd(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(0);
}
