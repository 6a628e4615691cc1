/*
  Many pairs in one run: the K x K matrix of transport costs among K measures, each an HDF5 file with
  points /X (k x d) and optional weights /a (k; uniform if absent), listed one per line in a text file.

  The K (K - 1) / 2 pairs are spread over groups of ranks: the communicator is split into G = min(size,
  pairs) sub-communicators, and group g solves pairs g, g + G, g + 2G, ... one after the other, each as a
  point-cloud problem distributed over the group's ranks (so a large pair can still use several ranks).
  The list and every file are checked on every rank before any solve (a bad file must not stop one group
  while the others wait at the end). The results meet on rank 0 in one reduction and are written by rank 0
  to an HDF5 file (temporary name, synced, then renamed: OTFileCommit): /transport_cost, /lower_bound, /upper_bound, /marginal_error
  (K x K, symmetric, zero diagonal), /converged, /iterations, and, for costs that are powers of a
  distance (sqeuclidean: p = 2, euclidean: p = 1, pnorm:P: p = P), /wasserstein = transport_cost^(1/p).
  Built on the public API (include/otsolve.h) and plain HDF5 calls only.
*/
#include <otsolve.h>
#include <hdf5.h>
#include <ctype.h>
#include <string.h>
#include <unistd.h>

/* Turns a negative HDF5 status into a PETSc error on PETSC_COMM_SELF. */
#define PairsH5Call(expr) \
  do { \
    if ((expr) < 0) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #expr); \
  } while (0)

/* What the run needs to know of one measure file. */
typedef struct {
  char     path[PETSC_MAX_PATH_LEN];
  PetscInt points, dim;
} OTMeasureFile;

enum {
  PAIR_COST,
  PAIR_LOWER,
  PAIR_UPPER,
  PAIR_ERROR,
  PAIR_CONVERGED,
  PAIR_ITERATIONS,
  PAIR_SECONDS,
  PAIR_FIELDS
};

/* Reads the list (rank 0) and broadcasts it. Blank lines and lines starting with # are skipped. */
static PetscErrorCode ReadList(MPI_Comm comm, const char list[], PetscInt *count, OTMeasureFile **files)
{
  PetscMPIInt rank;
  PetscInt    k = 0, cap = 16;
  int         status = 0; /* 0 ok, 1 unreadable */

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscCalloc1(cap, files));
  if (rank == 0) {
    FILE *fp = fopen(list, "r");
    char  line[PETSC_MAX_PATH_LEN + 2];

    if (!fp) status = 1;
    while (fp && fgets(line, sizeof(line), fp)) {
      char  *start = line, *end;
      size_t len;

      while (isspace((unsigned char)*start)) start++;
      len = strlen(start);
      end = start + len;
      while (end > start && isspace((unsigned char)end[-1])) *--end = '\0';
      if (!start[0] || start[0] == '#') continue;
      if (k == cap) {
        OTMeasureFile *grown;

        PetscCall(PetscCalloc1(2 * cap, &grown));
        PetscCall(PetscArraycpy(grown, *files, cap));
        PetscCall(PetscFree(*files));
        *files = grown;
        cap *= 2;
      }
      PetscCall(PetscStrncpy((*files)[k++].path, start, sizeof((*files)[0].path)));
    }
    if (fp) fclose(fp);
  }
  PetscCallMPI(MPI_Bcast(&status, 1, MPI_INT, 0, comm));
  PetscCheck(!status, comm, OT_ERR_INPUT, "-pairs %s: cannot read the list of measure files", list);
  PetscCallMPI(MPI_Bcast(&k, 1, MPIU_INT, 0, comm));
  PetscCheck(k >= 2, comm, OT_ERR_INPUT, "-pairs %s: lists %" PetscInt_FMT " measure file(s); a distance matrix needs at least 2", list, k);
  if (rank != 0 && k > cap) {
    PetscCall(PetscFree(*files));
    PetscCall(PetscCalloc1(k, files));
  }
  PetscCallMPI(MPI_Bcast(*files, (PetscMPIInt)(k * sizeof(OTMeasureFile)), MPI_BYTE, 0, comm));
  *count = k;
  PetscFunctionReturn(0);
}

/* Reads one measure: /X (points x dim) and /a (or uniform weights), on this rank alone. The file was
   checked collectively before (CheckMeasure), so failures here are internal errors. */
static PetscErrorCode ReadMeasure(const OTMeasureFile *mf, PetscReal **points, PetscReal **weights)
{
  hid_t file, dset;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2((size_t)mf->points * (size_t)mf->dim, points, mf->points, weights));
  file = H5Fopen(mf->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  PairsH5Call(file);
  dset = H5Dopen2(file, "/X", H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *points));
  PairsH5Call(H5Dclose(dset));
  if (H5Lexists(file, "/a", H5P_DEFAULT) > 0) {
    dset = H5Dopen2(file, "/a", H5P_DEFAULT);
    PairsH5Call(dset);
    PairsH5Call(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *weights));
    PairsH5Call(H5Dclose(dset));
  } else
    for (PetscInt i = 0; i < mf->points; i++) (*weights)[i] = 1.0 / mf->points;
  PairsH5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* Rank 0 opens every file and checks /X and /a; the verdict (a message) is broadcast, so that every rank
   stops together on a bad file. */
static PetscErrorCode CheckMeasures(MPI_Comm comm, PetscInt count, OTMeasureFile files[])
{
  PetscMPIInt rank;
  char        message[PETSC_MAX_PATH_LEN + 256] = "";

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PairsH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL));
  for (PetscInt k = 0; rank == 0 && k < count && !message[0]; k++) {
    OTMeasureFile *mf = &files[k];
    hid_t          file, dset, space, type;
    hsize_t        dims[2] = {0, 0};
    int            ndims;

    if (access(mf->path, R_OK) != 0 || H5Fis_hdf5(mf->path) <= 0) {
      snprintf(message, sizeof(message), "%s (measure %" PetscInt_FMT " of the list): missing, unreadable or not an HDF5 file", mf->path, k + 1);
      break;
    }
    file = H5Fopen(mf->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0 || H5Lexists(file, "/X", H5P_DEFAULT) <= 0) {
      snprintf(message, sizeof(message), "%s: no dataset /X (the measure's points, k x d)", mf->path);
      if (file >= 0) H5Fclose(file);
      break;
    }
    dset  = H5Dopen2(file, "/X", H5P_DEFAULT);
    space = H5Dget_space(dset);
    type  = H5Dget_type(dset);
    ndims = H5Sget_simple_extent_ndims(space);
    if (ndims == 2) H5Sget_simple_extent_dims(space, dims, NULL);
    if (H5Tget_class(type) != H5T_FLOAT || ndims != 2 || dims[0] == 0 || dims[1] == 0)
      snprintf(message, sizeof(message), "%s: dataset /X must be a non-empty k x d array of floating-point numbers", mf->path);
    else if (k > 0 && (PetscInt)dims[1] != files[0].dim)
      snprintf(message, sizeof(message), "%s: points of dimension %llu, but %s has dimension %" PetscInt_FMT, mf->path, (unsigned long long)dims[1],
               files[0].path, files[0].dim);
    mf->points = (PetscInt)dims[0];
    mf->dim    = (PetscInt)dims[1];
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
    if (!message[0] && H5Lexists(file, "/a", H5P_DEFAULT) > 0) {
      hsize_t len = 0;

      dset  = H5Dopen2(file, "/a", H5P_DEFAULT);
      space = H5Dget_space(dset);
      type  = H5Dget_type(dset);
      if (H5Sget_simple_extent_ndims(space) == 1) H5Sget_simple_extent_dims(space, &len, NULL);
      if (H5Tget_class(type) != H5T_FLOAT || len != dims[0])
        snprintf(message, sizeof(message), "%s: dataset /a must hold %llu floating-point weights, one per point of /X", mf->path, (unsigned long long)dims[0]);
      H5Tclose(type);
      H5Sclose(space);
      H5Dclose(dset);
    }
    H5Fclose(file);
  }
  PetscCallMPI(MPI_Bcast(message, sizeof(message), MPI_CHAR, 0, comm));
  PetscCheck(!message[0], comm, OT_ERR_INPUT, "-pairs: %s", message);
  PetscCallMPI(MPI_Bcast(files, (PetscMPIInt)(count * sizeof(OTMeasureFile)), MPI_BYTE, 0, comm));
  PetscFunctionReturn(0);
}

/* Writes a K x K dataset of doubles (rank 0 only, serial HDF5). */
static PetscErrorCode WriteMatrix(hid_t file, const char name[], PetscInt count, const PetscReal values[])
{
  hsize_t dims[2] = {(hsize_t)count, (hsize_t)count};
  hid_t   space, dset;

  PetscFunctionBegin;
  space = H5Screate_simple(2, dims, NULL);
  dset  = H5Dcreate2(file, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values));
  PairsH5Call(H5Dclose(dset));
  PairsH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* What the distance matrix file holds besides the matrices. */
typedef struct {
  const char          *cost;
  PetscReal            power; /* p of the cost |x - y|^p: /wasserstein = transport_cost^(1/p) */
  PetscInt             count, pairs, unconverged;
  PetscMPIInt          groups;
  const OTMeasureFile *files;
  double               start;
} PairsSummary;

/* The distance matrix file's contents, written into file by rank 0 alone, which then closes it: one K x K
   matrix per field of results, /wasserstein, /files, the root attributes. */
static PetscErrorCode WriteContents(hid_t file, const PairsSummary *sum, const PetscReal results[])
{
  const char  *names[PAIR_FIELDS] = {"/transport_cost", "/lower_bound", "/upper_bound", "/marginal_error", "/converged", "/iterations", "/seconds"};
  PetscInt     count              = sum->count;
  PetscReal   *matrix;
  const char **paths;
  hid_t        string_type, space, dset;
  hsize_t      len     = (hsize_t)count;
  PetscInt     ints[4] = {count, sum->pairs, sum->unconverged, (PetscInt)sum->groups};
  double       seconds = MPI_Wtime() - sum->start;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2((size_t)count * (size_t)count, &matrix, count, &paths));
  for (int field = 0; field <= PAIR_FIELDS; field++) {
    int      source_field = field == PAIR_FIELDS ? PAIR_COST : field;
    PetscInt p            = 0;

    if (field == PAIR_FIELDS && sum->power <= 0) break;
    for (PetscInt i = 0; i < count; i++) {
      matrix[i * count + i] = 0.0;
      for (PetscInt j = i + 1; j < count; j++, p++) {
        PetscReal v = results[(size_t)p * PAIR_FIELDS + source_field];

        if (field == PAIR_FIELDS) v = PetscPowReal(PetscMax(v, 0.0), 1.0 / sum->power);
        matrix[i * count + j] = matrix[j * count + i] = v;
      }
    }
    PetscCall(WriteMatrix(file, field == PAIR_FIELDS ? "/wasserstein" : names[field], count, matrix));
  }
  /* strings as h5py writes them, variable-length UTF-8: readers get str, not bytes */
  string_type = H5Tcopy(H5T_C_S1);
  PairsH5Call(H5Tset_size(string_type, H5T_VARIABLE));
  PairsH5Call(H5Tset_cset(string_type, H5T_CSET_UTF8));
  for (PetscInt k = 0; k < count; k++) paths[k] = sum->files[k].path;
  space = H5Screate_simple(1, &len, NULL);
  dset  = H5Dcreate2(file, "/files", string_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dwrite(dset, string_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, paths));
  PairsH5Call(H5Dclose(dset));
  PairsH5Call(H5Sclose(space));
  PetscCall(OTH5WriteAttrString(file, "cost", sum->cost));
  PetscCall(OTH5WriteAttrsInt(file, "measures pairs unconverged groups", 4, ints));
  PetscCall(OTH5WriteAttrDouble(file, "seconds", seconds));
  PairsH5Call(H5Tclose(string_type));
  PairsH5Call(H5Fclose(file));
  PetscCall(PetscFree2(matrix, paths));
  PetscFunctionReturn(0);
}

/* Refuses an output that is one of the measure files (writing it would destroy the measure). Rank 0 decides. */
static PetscErrorCode CheckOutputIsNoMeasure(MPI_Comm comm, const char list[], const char output[], PetscInt count, const OTMeasureFile files[])
{
  PetscMPIInt rank;
  PetscInt    clash = -1;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  for (PetscInt k = 0; rank == 0 && k < count && clash < 0; k++) {
    PetscBool same;

    PetscCall(OTFileSame(output, files[k].path, &same));
    if (same) clash = k;
  }
  PetscCallMPI(MPI_Bcast(&clash, 1, MPIU_INT, 0, comm));
  PetscCheck(clash < 0, comm, OT_ERR_INPUT,
             "-output %s and the measure file %s (measure %" PetscInt_FMT
             " of -pairs %s) are the same file: writing the one would destroy the other; give -output another path",
             output, clash >= 0 ? files[clash].path : "", clash + 1, list);
  PetscFunctionReturn(0);
}

/* What WriteDistances writes. */
typedef struct {
  const PairsSummary *sum;
  const PetscReal    *results;
} PairsOutput;

/* The distance matrix file, written by rank 0 alone with serial HDF5 (an OTFileWriteFn). */
static PetscErrorCode WriteDistances(void *ctx, const char tmpname[])
{
  PairsOutput   *out  = (PairsOutput *)ctx;
  hid_t          file = H5Fcreate(tmpname, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(file >= 0, PETSC_COMM_SELF, OT_ERR_WRITE, "cannot create %s", tmpname);
  ierr = WriteContents(file, out->sum, out->results);
  if (ierr) (void)H5Fclose(file);
  PetscCall(ierr);
  PetscFunctionReturn(0);
}

/* Solves the pairs p = first, first + stride, ... on the ranks of group; the group's rank 0 fills their rows of
   results and prints a line for each. */
static PetscErrorCode SolvePairs(MPI_Comm group, PetscInt count, const OTMeasureFile files[], const char cost[], PetscInt first, PetscInt stride,
                                 PetscReal results[])
{
  PetscMPIInt group_rank;
  PetscInt    pairs = count * (count - 1) / 2;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(group, &group_rank));
  for (PetscInt p = first; p < pairs; p += stride) {
    PetscInt   i = 0, j, q = p;
    OTResult   result;
    PetscReal *x, *a, *y, *b;
    char       source[2 * PETSC_MAX_PATH_LEN + 8];
    double     pair_start = MPI_Wtime();

    /* pair number p in row-major order of the upper triangle: (0,1), (0,2), ..., (1,2), ... */
    while (q >= count - 1 - i) q -= count - 1 - i++;
    j = i + 1 + q;
    PetscCall(ReadMeasure(&files[i], &x, &a));
    PetscCall(ReadMeasure(&files[j], &y, &b));
    PetscCall(PetscSNPrintf(source, sizeof(source), "%s x %s", files[i].path, files[j].path));
    PetscCall(OTSolvePoints(group, files[i].points, files[j].points, files[i].dim, x, y, a, b, cost, source, 0.0, &result));
    PetscCall(PetscFree2(x, a));
    PetscCall(PetscFree2(y, b));
    if (group_rank == 0) {
      PetscReal *row = results + (size_t)p * PAIR_FIELDS;

      row[PAIR_COST]       = result.transport_cost;
      row[PAIR_LOWER]      = result.lower_bound;
      row[PAIR_UPPER]      = result.upper_bound;
      row[PAIR_ERROR]      = result.marginal_error;
      row[PAIR_CONVERGED]  = result.converged ? 1 : 0;
      row[PAIR_ITERATIONS] = (PetscReal)(result.iterations_sinkhorn + result.iterations_newton);
      row[PAIR_SECONDS]    = MPI_Wtime() - pair_start;
      PetscCall(PetscPrintf(PETSC_COMM_SELF,
                            "  pair %" PetscInt_FMT " %" PetscInt_FMT ": transport_cost %.17g  iterations %" PetscInt_FMT "  converged %d  %.2f s\n", i, j,
                            (double)result.transport_cost, result.iterations_sinkhorn + result.iterations_newton, (int)result.converged, row[PAIR_SECONDS]));
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolvePairs(MPI_Comm comm, const char list[], const char output[], const char cost[], PetscInt *unconverged_pairs)
{
  PetscMPIInt    rank, size;
  OTMeasureFile *files;
  MPI_Comm       group;
  PetscReal     *results, power;
  OTCostKind     kind;
  PetscBool      valid;
  PairsSummary   sum = {cost, 0.0, 0, 0, 0, 0, NULL, MPI_Wtime()};
  PetscBool      written;
  char           reason[512];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(OTCostParse(cost, &kind, &power, &valid));
  PetscCheck(valid && kind != OT_COST_DENSE, comm, OT_ERR_INPUT, "-pairs_cost %s: use sqeuclidean, euclidean or pnorm:P with P > 0", cost);
  sum.power = OTCostExponent(kind, power);
  PetscCall(ReadList(comm, list, &sum.count, &files));
  PetscCall(CheckMeasures(comm, sum.count, files));
  PetscCall(CheckOutputIsNoMeasure(comm, list, output, sum.count, files));
  sum.files  = files;
  sum.pairs  = sum.count * (sum.count - 1) / 2;
  sum.groups = (PetscMPIInt)PetscMin((PetscInt)size, sum.pairs);
  PetscCallMPI(MPI_Comm_split(comm, rank % sum.groups, rank, &group));
  PetscCall(PetscPrintf(comm, "otsolve: %" PetscInt_FMT " measures, %" PetscInt_FMT " pairs on %d group(s) of ranks, cost %s\n", sum.count, sum.pairs,
                        sum.groups, cost));
  PetscCall(PetscCalloc1((size_t)sum.pairs * PAIR_FIELDS, &results));
  PetscCall(SolvePairs(group, sum.count, files, cost, rank % sum.groups, sum.groups, results));
  PetscCallMPI(MPI_Comm_free(&group));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, results, (PetscMPIInt)(sum.pairs * PAIR_FIELDS), MPIU_REAL, MPIU_SUM, comm));
  for (PetscInt p = 0; p < sum.pairs; p++) sum.unconverged += results[(size_t)p * PAIR_FIELDS + PAIR_CONVERGED] == 0;
  {
    PairsOutput out = {&sum, results};

    /* K x K doubles for each of the 8 matrices, and the paths */
    PetscCall(OTFileWriteSerial(comm, output, 64.0 * (double)sum.count * (double)sum.count + 4096.0 * (double)sum.count, WriteDistances, &out, &written, reason,
                                sizeof(reason)));
  }
  *unconverged_pairs = sum.unconverged;
  PetscCall(PetscPrintf(comm,
                        "pairs = %" PetscInt_FMT "\nmeasures = %" PetscInt_FMT "\nunconverged = %" PetscInt_FMT
                        "\nseconds = %.3f\noutput = %s\noutput_written = %d\n",
                        sum.pairs, sum.count, sum.unconverged, MPI_Wtime() - sum.start, output, (int)written));
  PetscCall(PetscFree(results));
  PetscCall(PetscFree(files));
  PetscCheck(written, comm, OT_ERR_WRITE, "-output %s not written: %s (its temporary file was removed); the distances above are in the pair lines", output,
             reason);
  PetscFunctionReturn(0);
}
