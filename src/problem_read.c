/*
  Reading a problem's inputs from HDF5 (docs/design.md §2): the dense cost matrix, or the point clouds X and Y, and
  the weights a and b, each a dataset anywhere in any file ("FILE:/path"). A problem file alone gives the root
  names: /C, or /X and /Y, and /a, /b where present. Every rank opens the files' metadata, so every rank decides
  alike and a bad input is an error on every rank, naming the file and the dataset.
*/
#include "otimpl.h"
#include <math.h>
#include <string.h>

/* The roles of the inputs, in the order of OTProblemInputs, and their root names in a problem file. */
enum { IN_COST, IN_X, IN_Y, IN_A, IN_B, IN_COUNT };
static const char *const root_names[IN_COUNT] = {"/C", "/X", "/Y", "/a", "/b"};
static const char *const role_options[IN_COUNT] = {"-problem_cost", "-problem_x", "-problem_y", "-problem_a", "-problem_b"};

/* Where one input is: a file and the path of a dataset in it. */
typedef struct {
  char      file[PETSC_MAX_PATH_LEN];
  char      path[256];
  PetscBool given;
} InputRef;

PetscErrorCode OTDatasetRefSplit(const char ref[], const char default_path[], char file[], size_t file_len, char path[], size_t path_len)
{
  const char *colon = NULL;

  PetscFunctionBegin;
  for (const char *s = strstr(ref, ":/"); s; s = strstr(s + 1, ":/")) colon = s; /* the last ":/": file names may hold colons */
  if (colon && colon > ref) {
    PetscCheck((size_t)(colon - ref) < file_len && strlen(colon + 1) < path_len, PETSC_COMM_SELF, OT_ERR_INPUT, "%s: the file name or the dataset path is too long",
               ref);
    snprintf(file, file_len, "%.*s", (int)(colon - ref), ref);
    snprintf(path, path_len, "%s", colon + 1);
  } else {
    PetscCheck(strlen(ref) < file_len, PETSC_COMM_SELF, OT_ERR_INPUT, "%s: the file name is too long", ref);
    snprintf(file, file_len, "%s", ref);
    snprintf(path, path_len, "%s", default_path);
  }
  PetscFunctionReturn(0);
}

/* Opens an input file read-only with MPI-IO on every rank, or fails on every rank with the reason. Collective. */
static PetscErrorCode OpenInput(MPI_Comm comm, const char filename[], hid_t *file)
{
  int status[2]; /* readable, is HDF5 */

  PetscFunctionBegin;
  PetscCall(OTH5OpenRead(comm, filename, status, file));
  PetscCheck(status[0], comm, OT_ERR_INPUT, "%s: cannot open the problem file (missing or unreadable)", filename);
  PetscCheck(status[1], comm, OT_ERR_INPUT, "%s: not an HDF5 file; otsolve reads problems as HDF5 with a dataset /C or point clouds /X, /Y (see README)",
             filename);
  PetscCheck(*file >= 0, comm, OT_ERR_INPUT, "%s: HDF5 could not open the file", filename);
  PetscFunctionReturn(0);
}

/* Whether a link exists at path (a missing group on the way counts as absent). */
static PetscBool Exists(hid_t file, const char path[])
{
  htri_t found;

  H5E_BEGIN_TRY { found = H5Lexists(file, path, H5P_DEFAULT); }
  H5E_END_TRY;
  return (PetscBool)(found > 0);
}

/* The shape of a float dataset (or, with integers, an integer one) of rank `rank_expected` (dims[1] = 1 for a vector).
   Collective. */
static PetscErrorCode InputShape(MPI_Comm comm, const InputRef *in, int rank_expected, PetscBool integers, hsize_t dims[2])
{
  hid_t file, dset;

  PetscFunctionBegin;
  PetscCall(OpenInput(comm, in->file, &file));
  PetscCheck(Exists(file, in->path), comm, OT_ERR_INPUT, "%s: dataset %s is missing", in->file, in->path);
  PetscCall(OTH5OpenNumberDataset(comm, file, in->file, in->path, rank_expected, integers, &dset, dims));
  OTH5Call(H5Dclose(dset));
  OTH5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* Rows [row_start, row_end) of a 2-D input of shape n x m, into block. Collective. */
static PetscErrorCode ReadInputRows(MPI_Comm comm, const InputRef *in, PetscInt n, PetscInt m, PetscInt row_start, PetscInt row_end, PetscReal *block)
{
  hid_t file;

  PetscFunctionBegin;
  PetscCall(OpenInput(comm, in->file, &file));
  PetscCall(OTReadRowBlock(comm, file, in->file, in->path, n, m, row_start, row_end, block));
  OTH5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* Entries [start, end) of the weights `in` (a vector of length len, floating point or integer counts), or `fill` when
   not given. Collective. */
static PetscErrorCode ReadWeights(MPI_Comm comm, const InputRef *in, PetscInt len, const char match[], PetscInt start, PetscInt end, PetscReal fill,
                                  PetscReal *out)
{
  hid_t   file, dset, file_space, mem_space;
  hsize_t dims[2], offset = (hsize_t)start, count = (hsize_t)(end - start);

  PetscFunctionBegin;
  if (!in->given) {
    for (PetscInt i = 0; i < end - start; i++) out[i] = fill;
    PetscFunctionReturn(0);
  }
  PetscCall(InputShape(comm, in, 1, PETSC_TRUE, dims));
  PetscCheck(dims[0] == (hsize_t)len, comm, OT_ERR_INPUT, "%s: dataset %s has length %llu; expected %" PetscInt_FMT " to match %s", in->file, in->path,
             (unsigned long long)dims[0], len, match);
  PetscCall(OpenInput(comm, in->file, &file));
  PetscCall(OTH5OpenNumberDataset(comm, file, in->file, in->path, 1, PETSC_TRUE, &dset, dims));
  file_space = H5Dget_space(dset);
  if (count > 0) OTH5Call(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &offset, NULL, &count, NULL));
  else OTH5Call(H5Sselect_none(file_space));
  mem_space = H5Screate_simple(1, count > 0 ? &count : dims, NULL);
  if (count == 0) OTH5Call(H5Sselect_none(mem_space));
  PetscCall(OTH5Read(comm, dset, in->file, in->path, H5T_NATIVE_DOUBLE, mem_space, file_space, H5P_DEFAULT, out));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  OTH5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* The dense cost matrix: each rank reads its rows. Collective. */
static PetscErrorCode LoadDense(OTProblem pb, const InputRef *in)
{
  hsize_t dims[2];

  PetscFunctionBegin;
  PetscCall(InputShape(pb->comm, in, 2, PETSC_FALSE, dims));
  PetscCheck(dims[0] > 0 && dims[1] > 0, pb->comm, OT_ERR_INPUT, "%s: dataset %s is %llu x %llu; both sizes must be positive", in->file, in->path,
             (unsigned long long)dims[0], (unsigned long long)dims[1]);
  PetscCheck(dims[0] < PETSC_MAX_INT && dims[1] < PETSC_MAX_INT, pb->comm, OT_ERR_INPUT, "%s: dataset %s is too large for 32-bit PETSc indices", in->file,
             in->path);
  PetscCall(OTProblemAllocate(pb, (PetscInt)dims[0], (PetscInt)dims[1]));
  PetscCall(ReadInputRows(pb->comm, in, pb->n, pb->m, pb->row_start, pb->row_end, pb->cost));
  PetscFunctionReturn(0);
}

/* The root attribute cost of a point-cloud file (a string, fixed or variable length) into text; text unchanged if absent. */
static PetscErrorCode ReadCostAttribute(MPI_Comm comm, const char filename[], char text[], size_t len)
{
  hid_t       file, attr, type, space, memory_type;
  htri_t      exists;
  H5T_class_t type_class;
  hssize_t    count;

  PetscFunctionBegin;
  PetscCall(OpenInput(comm, filename, &file));
  exists = H5Aexists(file, "cost");
  OTH5Call(exists);
  if (exists) {
    attr = H5Aopen(file, "cost", H5P_DEFAULT);
    OTH5Call(attr);
    type       = H5Aget_type(attr);
    space      = H5Aget_space(attr);
    type_class = H5Tget_class(type);
    count      = H5Sget_simple_extent_npoints(space);
    OTH5Call(H5Sclose(space));
    PetscCheck(type_class == H5T_STRING && count == 1, comm, OT_ERR_INPUT,
               "%s: the root attribute cost must be one string (sqeuclidean, euclidean or pnorm:P); found another type or shape", filename);
    memory_type = H5Tcopy(H5T_C_S1);
    OTH5Call(H5Tset_cset(memory_type, H5Tget_cset(type))); /* h5py writes UTF-8; HDF5 converts no character sets */
    if (H5Tis_variable_str(type) > 0) {
      char *value = NULL;

      OTH5Call(H5Tset_size(memory_type, H5T_VARIABLE));
      OTH5Call(H5Aread(attr, memory_type, &value));
      PetscCall(PetscStrncpy(text, value ? value : "", len));
      OTH5Call(H5free_memory(value));
    } else {
      size_t size = H5Tget_size(type);

      PetscCheck(size > 0 && size < len, comm, OT_ERR_INPUT,
                 "%s: the root attribute cost is %zu characters long; expected sqeuclidean, euclidean or pnorm:P", filename, size);
      OTH5Call(H5Tset_size(memory_type, size + 1)); /* room for the terminating NUL of a NUL-padded string */
      OTH5Call(H5Aread(attr, memory_type, text));
      text[size] = '\0';
    }
    OTH5Call(H5Tclose(memory_type));
    OTH5Call(H5Tclose(type));
    OTH5Call(H5Aclose(attr));
  }
  OTH5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* The ground cost of point clouds: ground_cost if given, else the root attribute cost of X's file, else sqeuclidean. */
static PetscErrorCode SetGroundCost(OTProblem pb, const InputRef *x, const char ground_cost[])
{
  char      text[256] = "sqeuclidean";
  PetscBool valid;

  PetscFunctionBegin;
  if (ground_cost && ground_cost[0]) PetscCall(PetscStrncpy(text, ground_cost, sizeof(text)));
  else PetscCall(ReadCostAttribute(pb->comm, x->file, text, sizeof(text)));
  PetscCall(OTCostParse(text, &pb->cost_kind, &pb->cost_power, &valid));
  PetscCall(PetscStrncpy(pb->cost_name, text, sizeof(pb->cost_name)));
  PetscCheck(valid && pb->cost_kind != OT_COST_DENSE, pb->comm, OT_ERR_INPUT,
             ground_cost && ground_cost[0] ? "-problem_points_cost %s%s is not supported; use sqeuclidean (the default), euclidean, or pnorm:P with a number P > 0"
                                           : "%s: root attribute cost = '%s' is not supported; use sqeuclidean (the default), euclidean, or pnorm:P with a number P > 0",
             ground_cost && ground_cost[0] ? "" : x->file, text);
  PetscFunctionReturn(0);
}

/* The first NaN or infinite entry of a rows x d block of points, as row * d + column, or -1. */
static int64_t FirstNonFinite(const PetscReal *points, size_t len)
{
  for (size_t k = 0; k < len; k++)
    if (!isfinite(points[k])) return (int64_t)k;
  return -1;
}

/* Fails on every rank if a block of points (global entries from `offset`) holds a NaN or infinity. Collective. */
static PetscErrorCode CheckFinite(MPI_Comm comm, const InputRef *in, const PetscReal *points, size_t len, int64_t offset, PetscInt d)
{
  int64_t bad = FirstNonFinite(points, len);

  PetscFunctionBegin;
  PetscCall(OTFirstBadIndex(comm, bad < 0 ? -1 : offset + bad, &bad));
  PetscCheck(bad < 0, comm, OT_ERR_INPUT, "%s: dataset %s has a NaN or infinite entry at row %lld, column %lld; coordinates must be finite", in->file,
             in->path, (long long)(bad / d), (long long)(bad % d));
  PetscFunctionReturn(0);
}

/* Point clouds X (n x d) and Y (m x d): each rank reads its rows of X and all of Y, which it keeps transposed
   (see kernel.c). Collective. */
static PetscErrorCode LoadPoints(OTProblem pb, const InputRef *x, const InputRef *y, const char ground_cost[])
{
  hsize_t    dims_x[2], dims_y[2];
  PetscInt   d;
  PetscReal *y_rows;
  int64_t    bad;

  PetscFunctionBegin;
  PetscCall(InputShape(pb->comm, x, 2, PETSC_FALSE, dims_x));
  PetscCall(InputShape(pb->comm, y, 2, PETSC_FALSE, dims_y));
  PetscCheck(dims_x[0] > 0 && dims_x[1] > 0, pb->comm, OT_ERR_INPUT, "%s: dataset %s is %llu x %llu; both sizes must be positive", x->file, x->path,
             (unsigned long long)dims_x[0], (unsigned long long)dims_x[1]);
  PetscCheck(dims_y[0] > 0 && dims_y[1] > 0, pb->comm, OT_ERR_INPUT, "%s: dataset %s is %llu x %llu; both sizes must be positive", y->file, y->path,
             (unsigned long long)dims_y[0], (unsigned long long)dims_y[1]);
  PetscCheck(dims_x[1] == dims_y[1], pb->comm, OT_ERR_INPUT,
             "%s: dataset %s holds points of dimension %llu (columns) but %s of dimension %llu; both point clouds must have the same number of columns",
             x->file, x->path, (unsigned long long)dims_x[1], y->path, (unsigned long long)dims_y[1]);
  PetscCheck(dims_x[0] < PETSC_MAX_INT && dims_y[0] < PETSC_MAX_INT && dims_x[1] < 1024 * 1024, pb->comm, OT_ERR_INPUT,
             "%s: datasets %s and %s are too large for 32-bit PETSc indices", x->file, x->path, y->path);
  PetscCall(SetGroundCost(pb, x, ground_cost));

  d = (PetscInt)dims_x[1];
  PetscCall(OTProblemAllocatePoints(pb, (PetscInt)dims_x[0], (PetscInt)dims_y[0], d));
  PetscCall(ReadInputRows(pb->comm, x, pb->n, d, pb->row_start, pb->row_end, pb->x));
  PetscCall(CheckFinite(pb->comm, x, pb->x, (size_t)pb->n_local * (size_t)d, (int64_t)pb->row_start * d, d));

  /* all of Y on every rank (a collective read of the whole dataset), then transposed */
  PetscCall(PetscMalloc1((size_t)pb->m * (size_t)d, &y_rows));
  PetscCall(ReadInputRows(pb->comm, y, pb->m, d, 0, pb->m, y_rows));
  bad = FirstNonFinite(y_rows, (size_t)pb->m * (size_t)d); /* the same on every rank */
  for (PetscInt j = 0; j < pb->m && bad < 0; j++)
    for (PetscInt k = 0; k < d; k++) pb->y_t[(size_t)k * (size_t)pb->m + j] = y_rows[(size_t)j * (size_t)d + k];
  PetscCall(PetscFree(y_rows));
  PetscCheck(bad < 0, pb->comm, OT_ERR_INPUT, "%s: dataset %s has a NaN or infinite entry at row %lld, column %lld; coordinates must be finite", y->file,
             y->path, (long long)(bad / d), (long long)(bad % d));
  PetscFunctionReturn(0);
}

/* The inputs' places: the given references split, the others from the problem file's root names where it has them;
   whether the problem is two point clouds (else a dense cost matrix). Collective. */
static PetscErrorCode ResolveInputs(OTProblem pb, const OTProblemInputs *inputs, InputRef in[IN_COUNT], PetscBool *points)
{
  const char *refs[IN_COUNT] = {inputs->cost, inputs->x, inputs->y, inputs->a, inputs->b};
  const char *file           = inputs->file && inputs->file[0] ? inputs->file : NULL;
  PetscBool   has[IN_COUNT]  = {PETSC_FALSE, PETSC_FALSE, PETSC_FALSE, PETSC_FALSE, PETSC_FALSE}, given_points;

  PetscFunctionBegin;
  for (int r = 0; r < IN_COUNT; r++) {
    in[r].given = (PetscBool)(refs[r] && refs[r][0]);
    if (in[r].given) PetscCall(OTDatasetRefSplit(refs[r], root_names[r], in[r].file, sizeof(in[r].file), in[r].path, sizeof(in[r].path)));
  }
  given_points = (PetscBool)(in[IN_X].given || in[IN_Y].given);
  PetscCheck(!(in[IN_COST].given && given_points), pb->comm, OT_ERR_INPUT,
             "-problem_cost and -problem_x/-problem_y exclude each other: a problem is a cost matrix or two point clouds");
  PetscCheck(file || in[IN_COST].given || given_points, pb->comm, OT_ERR_INPUT,
             "no problem given: name a problem file (-problem FILE) or its datasets (-problem_cost FILE:/path, or -problem_x and -problem_y)");
  if (file) {
    hid_t h;

    PetscCall(OpenInput(pb->comm, file, &h));
    for (int r = 0; r < IN_COUNT; r++) has[r] = Exists(h, root_names[r]);
    OTH5Call(H5Fclose(h));
  }
  if (!in[IN_COST].given && !given_points) {
    /* the problem file decides: /C if present (otgen -gen_points files hold both); else the point clouds /X and /Y */
    if (!has[IN_COST]) {
      PetscCheck(has[IN_X] || has[IN_Y], pb->comm, OT_ERR_INPUT,
                 "%s: no dataset /C (the n x m cost matrix) and no point clouds /X (n x d) and /Y (m x d); a problem needs one of them", file);
      PetscCheck(has[IN_X] && has[IN_Y], pb->comm, OT_ERR_INPUT,
                 "%s: no dataset /C, and of the point clouds only %s is there: dataset %s is missing (a point-cloud problem needs /X, n x d, and /Y, m x d)",
                 file, has[IN_X] ? "/X" : "/Y", has[IN_X] ? "/Y" : "/X");
    }
    for (int r = IN_COST; r <= IN_Y; r++) in[r].given = (PetscBool)(has[r] && (r == IN_COST) == has[IN_COST]);
  } else if (given_points) {
    for (int r = IN_X; r <= IN_Y; r++) {
      PetscCheck(in[r].given || has[r], pb->comm, OT_ERR_INPUT, "%s is given but not %s%s%s: point clouds need both (give %s FILE:/path)",
                 role_options[r == IN_X ? IN_Y : IN_X], role_options[r], file ? ", and the problem file has no " : "", file ? root_names[r] : "", role_options[r]);
      if (!in[r].given) in[r].given = PETSC_TRUE; /* from the problem file, below */
    }
  }
  for (int r = 0; r < IN_COUNT; r++)
    if (in[r].given && !(refs[r] && refs[r][0])) { /* taken from the problem file */
      PetscCall(PetscStrncpy(in[r].file, file, sizeof(in[r].file)));
      PetscCall(PetscStrncpy(in[r].path, root_names[r], sizeof(in[r].path)));
    }
  for (int r = IN_A; r <= IN_B; r++)
    if (!in[r].given && has[r]) {
      in[r].given = PETSC_TRUE;
      PetscCall(PetscStrncpy(in[r].file, file, sizeof(in[r].file)));
      PetscCall(PetscStrncpy(in[r].path, root_names[r], sizeof(in[r].path)));
    }
  *points = (PetscBool)!in[IN_COST].given;
  PetscFunctionReturn(0);
}

/* The problem's name in messages and files: the problem file, or where its datasets are. */
static PetscErrorCode SetSource(OTProblem pb, const OTProblemInputs *inputs, const InputRef in[IN_COUNT], PetscBool points)
{
  PetscBool from_file = (PetscBool)(inputs->file && inputs->file[0]);

  PetscFunctionBegin;
  for (int r = 0; r < IN_COUNT; r++) from_file = (PetscBool)(from_file && (!in[r].given || !strcmp(in[r].file, inputs->file)));
  if (from_file) PetscCall(PetscSNPrintf(pb->source, sizeof(pb->source), "%s", inputs->file));
  else if (points) PetscCall(PetscSNPrintf(pb->source, sizeof(pb->source), "X %s:%s, Y %s:%s", in[IN_X].file, in[IN_X].path, in[IN_Y].file, in[IN_Y].path));
  else PetscCall(PetscSNPrintf(pb->source, sizeof(pb->source), "%s:%s", in[IN_COST].file, in[IN_COST].path));
  for (int w = 0; w < 2; w++) {
    const InputRef *ref = &in[IN_A + w];

    if (!ref->given || from_file) PetscCall(PetscSNPrintf(pb->weight_names[w], sizeof(pb->weight_names[w]), "%s", root_names[IN_A + w]));
    else PetscCall(PetscSNPrintf(pb->weight_names[w], sizeof(pb->weight_names[w]), "%s:%s", ref->file, ref->path));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemLoadInputs(OTProblem pb, const OTProblemInputs *inputs)
{
  InputRef  in[IN_COUNT];
  PetscBool points = PETSC_FALSE;
  char      match[2][320];

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(OT_STAGE_LOAD));
  PetscCall(ResolveInputs(pb, inputs, in, &points));
  PetscCall(SetSource(pb, inputs, in, points));
  if (points) PetscCall(LoadPoints(pb, &in[IN_X], &in[IN_Y], inputs->ground_cost));
  else {
    PetscCheck(!(inputs->ground_cost && inputs->ground_cost[0]), pb->comm, OT_ERR_INPUT,
               "%s: -problem_points_cost %s applies to point clouds; this problem is a cost matrix", pb->source, inputs->ground_cost);
    PetscCall(LoadDense(pb, &in[IN_COST]));
  }
  for (int w = 0; w < 2; w++) {
    if (points) PetscCall(PetscSNPrintf(match[w], sizeof(match[w]), "the points of %s", in[w ? IN_Y : IN_X].path));
    else PetscCall(PetscSNPrintf(match[w], sizeof(match[w]), "the cost matrix"));
  }
  PetscCall(ReadWeights(pb->comm, &in[IN_A], pb->n, match[0], pb->row_start, pb->row_end, 1.0 / pb->n, pb->a));
  PetscCall(ReadWeights(pb->comm, &in[IN_B], pb->m, match[1], 0, pb->m, 1.0 / pb->m, pb->b));
  PetscCall(OTProblemFinalize(pb, pb->source));
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemLoad(OTProblem pb, const char filename[])
{
  OTProblemInputs inputs;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&inputs, sizeof(inputs)));
  inputs.file = filename;
  PetscCall(OTProblemLoadInputs(pb, &inputs));
  PetscFunctionReturn(0);
}
