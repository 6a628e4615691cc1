/*
  -pairs, its files (the solves are in pairs.c; what the two share in pairs.h): the list of measures, one a line:
  an HDF5 file with points /X (k x d) and optional weights /a (k; uniform if absent), or FILE:/path naming the points
  anywhere (e.g. cells.h5ad:/obsm/X_pca; uniform weights), optionally followed by WFILE:/path naming the weights;
  blank lines and # comments skipped; every file checked on every rank before any solve; one measure read on one rank; and the distance
  matrix file.

  The list and every file are checked by rank 0, which broadcasts the verdict, so that every rank stops together
  on a bad file; an output that is one of the measure files is refused the same way. The results meet on rank 0
  and are written by rank 0 to an HDF5 file (temporary name, synced, then renamed: OTFileWriteSerial): K x K
  symmetric datasets /transport_cost (<C,P> of the entropic plan), /lower_bound, /upper_bound (certified bounds
  on the unregularised cost), /marginal_error, /seconds, the integer /converged and /iterations, for costs that
  are powers of a distance (sqeuclidean: p = 2, euclidean: p = 1, pnorm:P: p = P) /wasserstein =
  transport_cost^(1/p) (an entropic estimate) and /wasserstein_lower, /wasserstein_upper (the bounds to the
  power 1/p; with -ot_unbalanced /unbalanced_objective and /transported_mass instead of the bounds and W_p, NaN on
  the diagonal), and with -ot_divergence (unbalanced: Séjourné et al.'s, from the masses of the pairs and self terms
  solved with weights to the power 1 + eps/rho) /sinkhorn_divergence, /divergence_converged, /self_dual_objective (K),
  /self_converged (K). The diagonal is exact, not solved: distances 0, converged 1, iterations and seconds 0.
  The eps is the root attribute eps, or with -pairs_eps_per_pair the K x K dataset /eps; /files holds the paths.
  Built on the public API (include/otsolve.h) and plain HDF5 calls.
*/
#include "pairs.h"
#include "otimpl.h" /* OTH5Read */
#include <hdf5.h>
#include <ctype.h>
#include <string.h>
#include <unistd.h>

/* Turns a negative HDF5 status into a PETSc error on PETSC_COMM_SELF. */
#define PairsH5Call(expr) \
  do { \
    if ((expr) < 0) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #expr); \
  } while (0)

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

/* Where a line's points and weights are: "FILE" (/X, and /a if the file has it: decided in CheckMeasures),
   "FILE:/path", or either followed by whitespace and "WFILE:/path" for the weights. */
static PetscErrorCode ParseMeasureLine(OTMeasureFile *mf)
{
  char  points[PETSC_MAX_PATH_LEN];
  char *last_space = NULL;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(points, mf->path, sizeof(points)));
  for (char *c = points; *c; c++)
    if (isspace((unsigned char)*c)) last_space = c;
  mf->w_file[0] = mf->w_name[0] = '\0';
  if (last_space && strstr(last_space + 1, ":/")) { /* a weights reference after the points */
    PetscCall(OTDatasetRefSplit(last_space + 1, "/a", mf->w_file, sizeof(mf->w_file), mf->w_name, sizeof(mf->w_name)));
    while (last_space > points && isspace((unsigned char)last_space[-1])) last_space--;
    *last_space = '\0';
  }
  PetscCall(OTDatasetRefSplit(points, "/X", mf->x_file, sizeof(mf->x_file), mf->x_name, sizeof(mf->x_name)));
  PetscFunctionReturn(0);
}

/* Reads one measure: its points (points x dim) and weights (or uniform ones), on this rank alone. The files' metadata
   were checked collectively before (CheckMeasures); data that cannot be read (a filter HDF5 lacks, a damaged file) is
   an OT_ERR_INPUT from OTH5Read, which pairs.c makes collective. */
PetscErrorCode OTPairsReadMeasure(const OTMeasureFile *mf, PetscReal **points, PetscReal **weights)
{
  hid_t file, dset;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2((size_t)mf->points * (size_t)mf->dim, points, mf->points, weights));
  file = H5Fopen(mf->x_file, H5F_ACC_RDONLY, H5P_DEFAULT);
  PairsH5Call(file);
  dset = H5Dopen2(file, mf->x_name, H5P_DEFAULT);
  PairsH5Call(dset);
  PetscCall(OTH5Read(PETSC_COMM_SELF, dset, mf->x_file, mf->x_name, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *points));
  PairsH5Call(H5Dclose(dset));
  PairsH5Call(H5Fclose(file));
  if (mf->w_file[0]) {
    file = H5Fopen(mf->w_file, H5F_ACC_RDONLY, H5P_DEFAULT);
    PairsH5Call(file);
    dset = H5Dopen2(file, mf->w_name, H5P_DEFAULT);
    PairsH5Call(dset);
    PetscCall(OTH5Read(PETSC_COMM_SELF, dset, mf->w_file, mf->w_name, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *weights));
    PairsH5Call(H5Dclose(dset));
    PairsH5Call(H5Fclose(file));
  } else
    for (PetscInt i = 0; i < mf->points; i++) (*weights)[i] = 1.0 / mf->points;
  PetscFunctionReturn(0);
}

/* Rank 0 alone: the shape of dataset name in file (a float array of `ndims` dimensions with no empty side), or the
   reason it is not one in message. */
static void CheckDataset(const char file[], const char name[], int ndims, const char what[], hsize_t dims[2], char message[], size_t len)
{
  hid_t  h, dset = -1, space, type;
  htri_t exists = 0;

  dims[0] = 0, dims[1] = 1;
  if (access(file, R_OK) != 0 || H5Fis_hdf5(file) <= 0) {
    snprintf(message, len, "%s: missing, unreadable or not an HDF5 file", file);
    return;
  }
  h = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (h >= 0) exists = H5Lexists(h, name, H5P_DEFAULT); /* negative where a group on the way is missing */
  if (exists > 0) dset = H5Dopen2(h, name, H5P_DEFAULT);
  if (dset < 0) snprintf(message, len, "%s: no dataset %s (%s)", file, name, what);
  else {
    space = H5Dget_space(dset);
    type  = H5Dget_type(dset);
    if (H5Sget_simple_extent_ndims(space) == ndims) H5Sget_simple_extent_dims(space, dims, NULL);
    else dims[0] = 0;
    if (!(H5Tget_class(type) == H5T_FLOAT || (ndims == 1 && H5Tget_class(type) == H5T_INTEGER)) || dims[0] == 0 || dims[1] == 0) /* weights may be counts */
      snprintf(message, len, "%s: dataset %s must be a non-empty %s array of floating-point numbers (%s)", file, name, ndims == 2 ? "k x d" : "k", what);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
  }
  if (h >= 0) H5Fclose(h);
}

/* Rank 0 opens every file and checks the points and weights; the verdict (a message) is broadcast, so that every
   rank stops together on a bad file. */
static PetscErrorCode CheckMeasures(MPI_Comm comm, PetscInt count, OTMeasureFile files[])
{
  PetscMPIInt rank;
  char        message[2 * PETSC_MAX_PATH_LEN + 256] = "";

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PairsH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL));
  for (PetscInt k = 0; rank == 0 && k < count && !message[0]; k++) {
    OTMeasureFile *mf = &files[k];
    hsize_t        dims[2], len[2];

    PetscCall(ParseMeasureLine(mf));
    CheckDataset(mf->x_file, mf->x_name, 2, "the measure's points, k x d", dims, message, sizeof(message));
    if (message[0]) break;
    if (k > 0 && (PetscInt)dims[1] != files[0].dim) {
      snprintf(message, sizeof(message), "%s: points of dimension %llu, but %s has dimension %" PetscInt_FMT, mf->path, (unsigned long long)dims[1],
               files[0].path, files[0].dim);
      break;
    }
    mf->points = (PetscInt)dims[0];
    mf->dim    = (PetscInt)dims[1];
    if (!mf->w_file[0] && !strstr(mf->path, ":/")) { /* a plain file: its /a if it has one */
      hid_t h = H5Fopen(mf->x_file, H5F_ACC_RDONLY, H5P_DEFAULT);

      if (h >= 0 && H5Lexists(h, "/a", H5P_DEFAULT) > 0) snprintf(mf->w_file, sizeof(mf->w_file), "%s", mf->x_file), snprintf(mf->w_name, sizeof(mf->w_name), "/a");
      if (h >= 0) H5Fclose(h);
    }
    if (!mf->w_file[0]) continue;
    CheckDataset(mf->w_file, mf->w_name, 1, "the measure's weights, one per point", len, message, sizeof(message));
    if (!message[0] && len[0] != dims[0])
      snprintf(message, sizeof(message), "%s: dataset %s must hold %llu floating-point weights, one per point of %s", mf->w_file, mf->w_name,
               (unsigned long long)dims[0], mf->x_name);
  }
  PetscCallMPI(MPI_Bcast(message, sizeof(message), MPI_CHAR, 0, comm));
  PetscCheck(!message[0], comm, OT_ERR_INPUT, "-pairs: %s", message);
  PetscCallMPI(MPI_Bcast(files, (PetscMPIInt)(count * sizeof(OTMeasureFile)), MPI_BYTE, 0, comm));
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

    PetscCall(OTFileSame(output, files[k].x_file, &same));
    if (!same) PetscCall(OTFileSame(output, files[k].w_file, &same));
    if (same) clash = k;
  }
  PetscCallMPI(MPI_Bcast(&clash, 1, MPIU_INT, 0, comm));
  PetscCheck(clash < 0, comm, OT_ERR_INPUT,
             "-output %s and the measure file %s (measure %" PetscInt_FMT
             " of -pairs %s) are the same file: writing the one would destroy the other; give -output another path",
             output, clash >= 0 ? files[clash].path : "", clash + 1, list);
  PetscFunctionReturn(0);
}

/* The list, every measure in it, and the output against them (pairs.h). */
PetscErrorCode OTPairsReadList(MPI_Comm comm, const char list[], const char output[], PetscInt *count, OTMeasureFile **files)
{
  PetscFunctionBegin;
  PetscCall(ReadList(comm, list, count, files));
  PetscCall(CheckMeasures(comm, *count, *files));
  PetscCall(CheckOutputIsNoMeasure(comm, list, output, *count, *files));
  PetscFunctionReturn(0);
}

/* Writes a dataset of the given HDF5 type from doubles (rank 0 only, serial HDF5): HDF5 converts them to the
   dataset's type, exactly for the integers (counts and flags) that the integer datasets hold. */
static PetscErrorCode WriteArray(hid_t file, const char name[], hid_t type, int rank, PetscInt count, const PetscReal values[])
{
  hsize_t dims[2] = {(hsize_t)count, (hsize_t)count};
  hid_t   space, dset;

  PetscFunctionBegin;
  space = H5Screate_simple(rank, dims, NULL);
  PairsH5Call(space);
  dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values));
  PairsH5Call(H5Dclose(dset));
  PairsH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* Writes the K x K symmetric matrix with per_pair[p] at the pair p and its mirror, and diagonal on the diagonal. */
static PetscErrorCode WriteMatrix(hid_t file, const char name[], hid_t type, PetscInt count, PetscReal diagonal, const PetscReal per_pair[], PetscReal matrix[])
{
  PetscInt p = 0;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < count; i++) {
    matrix[i * count + i] = diagonal;
    for (PetscInt j = i + 1; j < count; j++, p++) matrix[i * count + j] = matrix[j * count + i] = per_pair[p];
  }
  PetscCall(WriteArray(file, name, type, 2, count, matrix));
  PetscFunctionReturn(0);
}

/* The divergences' datasets: /sinkhorn_divergence = OT_eps(a_i, a_j) - (OT_eps(a_i, a_i) + OT_eps(a_j, a_j)) / 2 from
   the dual objectives, /divergence_converged (the pair and both self terms converged), and the self terms. */
static PetscErrorCode WriteDivergences(hid_t file, const PairsSummary *sum, const PetscReal results[], PetscReal per_pair[], PetscReal matrix[])
{
  const PetscReal *self  = results + (size_t)sum->pairs * PAIR_FIELDS;
  PetscInt         count = sum->count, p = 0;
  PetscReal       *self_values;

  PetscFunctionBegin;
  /* balanced: OT(a, b) - (OT(a, a) + OT(b, b))/2 from the dual objectives; unbalanced: (rho + eps/2) (m_aa + m_bb - 2 m_ab)
     from the transported masses with weights to the power 1 + eps/rho (divergence.c) */
  for (PetscInt i = 0; i < count; i++)
    for (PetscInt j = i + 1; j < count; j++, p++) {
      const PetscReal *pair = results + (size_t)p * PAIR_FIELDS, *self_i = self + i * PAIR_FIELDS, *self_j = self + j * PAIR_FIELDS;

      if (sum->unbalanced)
        per_pair[p] = (sum->rho + 0.5 * sum->eps) * (self_i[PAIR_DIV_MASS] + self_j[PAIR_DIV_MASS] - 2.0 * pair[PAIR_DIV_MASS]);
      else per_pair[p] = pair[PAIR_DUAL] - 0.5 * (self_i[PAIR_DUAL] + self_j[PAIR_DUAL]);
    }
  PetscCall(WriteMatrix(file, "/sinkhorn_divergence", H5T_NATIVE_DOUBLE, count, 0.0, per_pair, matrix));
  p = 0;
  for (PetscInt i = 0; i < count; i++)
    for (PetscInt j = i + 1; j < count; j++, p++)
      per_pair[p] = results[(size_t)p * PAIR_FIELDS + PAIR_CONVERGED] && results[(size_t)p * PAIR_FIELDS + PAIR_DIV_OK] && self[i * PAIR_FIELDS + PAIR_CONVERGED] &&
                    self[j * PAIR_FIELDS + PAIR_CONVERGED];
  PetscCall(WriteMatrix(file, "/divergence_converged", H5T_NATIVE_INT, count, 1.0, per_pair, matrix));
  PetscCall(PetscMalloc1(count, &self_values));
  for (PetscInt k = 0; k < count; k++) self_values[k] = self[k * PAIR_FIELDS + PAIR_DUAL];
  PetscCall(WriteArray(file, "/self_dual_objective", H5T_NATIVE_DOUBLE, 1, count, self_values));
  for (PetscInt k = 0; k < count; k++) self_values[k] = self[k * PAIR_FIELDS + PAIR_CONVERGED];
  PetscCall(WriteArray(file, "/self_converged", H5T_NATIVE_INT, 1, count, self_values));
  PetscCall(PetscFree(self_values));
  PetscFunctionReturn(0);
}

/* The distance matrix file's contents, written into file by rank 0 alone, which then closes it: the K x K matrices,
   /files, the root attributes. */
static PetscErrorCode WriteContents(hid_t file, const PairsSummary *sum, const PetscReal results[])
{
  /* the pairs' fields as they are, then the Wasserstein values from three of them */
  const struct {
    const char *name;
    int         field;
    hid_t       type;
    PetscReal   diagonal;
  } direct[] = {
    {"/transport_cost", PAIR_COST,       H5T_NATIVE_DOUBLE, 0.0},
    {"/lower_bound",    PAIR_LOWER,      H5T_NATIVE_DOUBLE, 0.0},
    {"/upper_bound",    PAIR_UPPER,      H5T_NATIVE_DOUBLE, 0.0},
    {"/marginal_error", PAIR_ERROR,      H5T_NATIVE_DOUBLE, 0.0},
    {"/seconds",        PAIR_SECONDS,    H5T_NATIVE_DOUBLE, 0.0},
    {"/converged",      PAIR_CONVERGED,  H5T_NATIVE_INT,    1.0},
    {"/iterations",     PAIR_ITERATIONS, H5T_NATIVE_LLONG,  0.0},
  };
  const char  *roots[3] = {"/wasserstein", "/wasserstein_lower", "/wasserstein_upper"};
  const int    bases[3] = {PAIR_COST, PAIR_LOWER, PAIR_UPPER};
  PetscInt     count    = sum->count;
  PetscReal   *matrix, *per_pair;
  const char **paths;
  hid_t        string_type, space, dset;
  hsize_t      len      = (hsize_t)count;
  PetscInt     ints[4]  = {count, sum->pairs, sum->unconverged, (PetscInt)sum->groups};
  PetscReal    reals[2] = {MPI_Wtime() - sum->start, sum->cost_max};

  PetscFunctionBegin;
  PetscCall(PetscMalloc3((size_t)count * (size_t)count, &matrix, sum->pairs, &per_pair, count, &paths));
  for (size_t d = 0; d < sizeof(direct) / sizeof(direct[0]); d++) {
    if (sum->unbalanced && (direct[d].field == PAIR_LOWER || direct[d].field == PAIR_UPPER)) continue; /* the bounds are on balanced OT */
    for (PetscInt p = 0; p < sum->pairs; p++) per_pair[p] = results[(size_t)p * PAIR_FIELDS + direct[d].field];
    PetscCall(WriteMatrix(file, direct[d].name, direct[d].type, count, direct[d].diagonal, per_pair, matrix));
  }
  for (int w = 0; w < 2 && sum->unbalanced; w++) { /* the diagonal is not solved: NaN */
    for (PetscInt p = 0; p < sum->pairs; p++) per_pair[p] = results[(size_t)p * PAIR_FIELDS + (w ? PAIR_MASS : PAIR_OBJECTIVE)];
    PetscCall(WriteMatrix(file, w ? "/transported_mass" : "/unbalanced_objective", H5T_NATIVE_DOUBLE, count, NAN, per_pair, matrix));
  }
  for (int w = 0; w < 3 && sum->power > 0 && !sum->unbalanced; w++) {
    for (PetscInt p = 0; p < sum->pairs; p++) per_pair[p] = PetscPowReal(PetscMax(results[(size_t)p * PAIR_FIELDS + bases[w]], 0.0), 1.0 / sum->power);
    PetscCall(WriteMatrix(file, roots[w], H5T_NATIVE_DOUBLE, count, 0.0, per_pair, matrix));
  }
  if (sum->rule->per_pair) PetscCall(WriteMatrix(file, "/eps", H5T_NATIVE_DOUBLE, count, 0.0, sum->pair_eps, matrix));
  if (sum->divergence) PetscCall(WriteDivergences(file, sum, results, per_pair, matrix));
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
  if (sum->divergence) PetscCall(OTH5WriteAttrInt(file, "unconverged_self", sum->unconverged_self));
  PetscCall(OTH5WriteAttrsReal(file, "seconds cost_max", 2, reals));
  /* eps_rel where it set the eps; eps where it is one for all pairs (else the dataset /eps) */
  if (!sum->rule->given) PetscCall(OTH5WriteAttrDouble(file, "eps_rel", sum->rule->rel));
  if (!sum->rule->per_pair) PetscCall(OTH5WriteAttrDouble(file, "eps", sum->eps));
  PairsH5Call(H5Tclose(string_type));
  PairsH5Call(H5Fclose(file));
  PetscCall(PetscFree3(matrix, per_pair, paths));
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

/* The distance matrix file (pairs.h). */
PetscErrorCode OTPairsWriteOutput(MPI_Comm comm, const char output[], const PairsSummary *sum, const PetscReal results[], PetscBool *written, char reason[],
                                  size_t reason_size)
{
  PairsOutput out = {sum, results};

  PetscFunctionBegin;
  /* K x K doubles for each of up to 14 matrices, the self terms, and the paths */
  PetscCall(OTFileWriteSerial(comm, output, 8.0 * 16 * (double)sum->count * (double)sum->count + 4096.0 * (double)sum->count, WriteDistances, &out, written,
                              reason, reason_size));
  PetscFunctionReturn(0);
}
