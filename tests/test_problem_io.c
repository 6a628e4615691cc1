/* The row split and the HDF5 row-block reader. */
#include "test_common.h"
#include <unistd.h>

TestSuite(problem_io, .init = OTTestInit, .fini = OTTestFini);

Test(problem_io, row_split_covers_rows_contiguously_and_evenly)
{
  for (PetscInt n = 0; n <= 41; n++) {
    for (PetscMPIInt size = 1; size <= 9; size++) {
      PetscInt expect_start = 0;

      for (PetscMPIInt rank = 0; rank < size; rank++) {
        PetscInt start, end;

        cr_assert(OTRowSplit(n, size, rank, &start, &end) == 0);
        cr_assert_eq(start, expect_start, "n=%d size=%d rank=%d: starts at %d, not where the previous rank ended", (int)n, size, rank, (int)start);
        /* PETSc's default: the first n % size ranks get one row more than the others */
        cr_assert_eq(end - start, n / size + (rank < n % size ? 1 : 0));
        expect_start = end;
      }
      cr_assert_eq(expect_start, n);
    }
  }
}

Test(problem_io, row_split_agrees_with_petsc)
{
  PetscInt local = PETSC_DECIDE, global = 37, start, end;

  cr_assert(PetscSplitOwnership(PETSC_COMM_SELF, &local, &global) == 0);
  cr_assert(OTRowSplit(global, 1, 0, &start, &end) == 0);
  cr_assert_eq(end - start, local);
}

/* Writes C[i][j] = 100 i + j (n x m) as float64 or float32 with plain serial HDF5. */
static void WriteMatrix(const char *path, int n, int m, hid_t file_type)
{
  hsize_t dims[2] = {(hsize_t)n, (hsize_t)m};
  double *values  = malloc(sizeof(double) * n * m);
  hid_t   file, space, dset;

  for (int i = 0; i < n; i++)
    for (int j = 0; j < m; j++) values[i * m + j] = 100.0 * i + j;
  file  = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  space = H5Screate_simple(2, dims, NULL);
  dset  = H5Dcreate2(file, "/C", file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  cr_assert(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
  H5Dclose(dset);
  H5Sclose(space);
  H5Fclose(file);
  free(values);
}

/* The reader uses collective MPI-IO transfers, so the file is opened through the MPI-IO driver. */
static hid_t OpenParallel(const char *path)
{
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file;

  H5Pset_fapl_mpio(fapl, PETSC_COMM_SELF, MPI_INFO_NULL);
  file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  return file;
}

static void CheckBlock(hid_t file_type)
{
  char   path[] = "/tmp/otsolve-test-XXXXXX";
  int    fd     = mkstemp(path);
  double block[3 * 7];
  hid_t  file;

  cr_assert(fd >= 0);
  close(fd);
  WriteMatrix(path, 5, 7, file_type);
  file = OpenParallel(path);
  cr_assert(file >= 0);
  cr_assert(OTReadRowBlock(PETSC_COMM_SELF, file, path, "/C", 5, 7, 2, 5, block) == 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 7; j++) cr_assert_eq(block[i * 7 + j], 100.0 * (i + 2) + j, "entry (%d,%d)", i + 2, j);
  H5Fclose(file);
  unlink(path);
}

Test(problem_io, reads_its_rows_float64)
{
  CheckBlock(H5T_IEEE_F64LE);
}

Test(problem_io, reads_its_rows_float32)
{
  CheckBlock(H5T_IEEE_F32LE);
}

Test(problem_io, rejects_wrong_shape)
{
  char   path[] = "/tmp/otsolve-test-XXXXXX";
  int    fd     = mkstemp(path);
  double block[35];
  hid_t  file;

  close(fd);
  WriteMatrix(path, 5, 7, H5T_IEEE_F64LE);
  file = OpenParallel(path);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  cr_assert(OTReadRowBlock(PETSC_COMM_SELF, file, path, "/C", 5, 8, 0, 5, block) == OT_ERR_INPUT);
  cr_assert(OTReadRowBlock(PETSC_COMM_SELF, file, path, "/D", 5, 7, 0, 5, block) == OT_ERR_INPUT);
  PetscPopErrorHandler();
  H5Fclose(file);
  unlink(path);
}
