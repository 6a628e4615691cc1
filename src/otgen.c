/* otgen: writes optimal-transport test problems in otsolve's problem-file format (docs/design.md §3); the generators are in
   otgen_problems.c. Built on otsolve's public API (cost names, atomic files).. */
static const char help[] = "otgen: writes an optimal-transport problem file (HDF5) for otsolve.\n\n"
                           "Problem types (-gen_type):\n"
                           "  gaussian  X_i ~ N(0, I_d) (n points), Y_j ~ N((1,...,1), 0.5^2 I_d) (m points);\n"
                           "            C_ij = |X_i - Y_j|^2 / cost_scale with cost_scale = max_ij |X_i - Y_j|^2,\n"
                           "            so that max C = 1; cost_scale is stored as a root attribute.\n"
                           "  random    C_ij uniform on [0,1) (the random assignment problem of the SNS paper).\n"
                           "  fmnist    two Fashion-MNIST test images (-gen_images i,j) as histograms on the\n"
                           "            28 x 28 grid of [0,1]^2: pixel (row r, col c) sits at (c/27, r/27),\n"
                           "            weight (pixel/255 + 0.01) normalised to sum 1; C_ij is the squared\n"
                           "            Euclidean or L1 distance between grid points (-gen_ground), not\n"
                           "            normalised (max 2). /a and /b are always written.\n"
                           "  mixture   point clouds in any dimension -gen_dim d: X (n points) and Y (m points) each\n"
                           "            from its own equal-weight mixture of -gen_components K isotropic Gaussians,\n"
                           "            standard deviation -gen_sigma, centres uniform in [0,1]^d. Writes /X, /Y and\n"
                           "            the root attribute cost (-gen_cost sqeuclidean|euclidean|pnorm:P) and cost_max\n"
                           "            (the exact largest cost over all pairs), and no /C unless -gen_dense: otsolve\n"
                           "            computes the costs from the points, so n x m may exceed any node's memory.\n\n"
                           "Every file but a mixture's holds /C (n x m, row-major, float64 or with -gen_float32 float32) and the\n"
                           "root attributes generator and seed; /a, /b when the weights are not uniform; /X, /Y and\n"
                           "the attribute cost with -gen_points. Random numbers come from xoshiro256** seeded by\n"
                           "-gen_seed through splitmix64, so a file is reproducible from its options.\n"
                           "Runs on one rank: on more, rank 0 writes and the others only finalize.\n\n"
                           "Examples: otgen -gen_type gaussian -gen_n 2000 -gen_m 1500 -gen_output pair.h5\n"
                           "          otgen -gen_type mixture -gen_n 60000 -gen_m 60000 -gen_dim 3 -gen_output clouds.h5\n\n";

#include "otgen.h"
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Turns a negative HDF5 status into a PETSc error. */
#define H5Call(expr) \
  do { \
    if ((expr) < 0) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #expr); \
  } while (0)

/* Number of cost entries generated and written per block of rows (8 MiB of doubles). */
#define GEN_BLOCK_ENTRIES ((size_t)1 << 20)

const char *const gen_type_names[]    = {"gaussian", "random", "fmnist", "mixture"};
const char *const gen_weights_names[] = {"uniform", "random"};
const char *const gen_ground_names[]  = {"sqeuclidean", "l1"};

static PetscErrorCode GenOptionsRead(GenOptions *opt)
{
  PetscInt  type = GEN_GAUSSIAN, weights = GEN_WEIGHTS_UNIFORM, ground = GEN_GROUND_SQEUCLIDEAN;
  PetscInt  n_images = 2;
  PetscBool has_output, has_images, has_help;

  PetscFunctionBegin;
  opt->seed       = 1;
  opt->n          = 1000;
  opt->m          = 1000;
  opt->dim        = 2;
  opt->images[0]  = 0;
  opt->images[1]  = 1;
  opt->points     = PETSC_FALSE;
  opt->float32    = PETSC_FALSE;
  opt->dense      = PETSC_FALSE;
  opt->components = 3;
  opt->sigma      = 0.1;
  PetscCall(PetscStrcpy(opt->cost_text, "sqeuclidean"));
  opt->output[0] = '\0';
  PetscCall(PetscStrcpy(opt->images_file, "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"));

  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "otgen: optimal-transport problem generator", NULL);
  PetscCall(PetscOptionsEList("-gen_type", "Problem type", NULL, gen_type_names, 4, gen_type_names[type], &type, NULL));
  PetscCall(PetscOptionsString("-gen_output", "Problem file to write (HDF5; required)", NULL, opt->output, opt->output, sizeof(opt->output), &has_output));
  PetscCall(PetscOptionsInt("-gen_seed", "Seed of the random number generator", NULL, opt->seed, &opt->seed, NULL));
  PetscCall(PetscOptionsInt("-gen_n", "Number of source points (gaussian, random, mixture)", NULL, opt->n, &opt->n, NULL));
  PetscCall(PetscOptionsInt("-gen_m", "Number of target points (gaussian, random, mixture)", NULL, opt->m, &opt->m, NULL));
  PetscCall(PetscOptionsInt("-gen_dim", "Dimension of the points (gaussian, mixture)", NULL, opt->dim, &opt->dim, NULL));
  PetscCall(PetscOptionsInt("-gen_components", "Gaussians in each cloud's mixture (mixture)", NULL, opt->components, &opt->components, NULL));
  PetscCall(PetscOptionsReal("-gen_sigma", "Standard deviation of each Gaussian of the mixture (mixture)", NULL, opt->sigma, &opt->sigma, NULL));
  PetscCall(PetscOptionsString("-gen_cost", "Cost between points: sqeuclidean, euclidean or pnorm:P with P > 0 (mixture)", NULL, opt->cost_text, opt->cost_text,
                               sizeof(opt->cost_text), NULL));
  PetscCall(PetscOptionsBool("-gen_dense", "Also write /C, the n x m costs of the points (mixture; small problems only)", NULL, opt->dense, &opt->dense, NULL));
  PetscCall(PetscOptionsEList("-gen_weights", "Weights: uniform (no /a, /b written) or random (0.5 + U[0,1), normalised; gaussian, random, mixture)", NULL,
                              gen_weights_names, 2, gen_weights_names[weights], &weights, NULL));
  PetscCall(PetscOptionsBool("-gen_points", "Also write the points /X, /Y and the attribute cost (gaussian, fmnist)", NULL, opt->points, &opt->points, NULL));
  PetscCall(PetscOptionsBool("-gen_float32", "Store /C as float32 instead of float64", NULL, opt->float32, &opt->float32, NULL));
  PetscCall(PetscOptionsIntArray("-gen_images", "Indices i,j of the two images (fmnist; default 0,1)", NULL, opt->images, &n_images, &has_images));
  PetscCall(PetscOptionsEList("-gen_ground", "Ground cost between pixels (fmnist)", NULL, gen_ground_names, 2, gen_ground_names[ground], &ground, NULL));
  PetscCall(PetscOptionsString("-gen_images_file", "Gzipped IDX file of the images (fmnist)", NULL, opt->images_file, opt->images_file,
                               sizeof(opt->images_file), NULL));
  PetscOptionsEnd();

  opt->type    = (GenType)type;
  opt->weights = (GenWeights)weights;
  opt->ground  = (GenGround)ground;

  PetscCall(PetscOptionsHasHelp(NULL, &has_help));
  if (has_help && !has_output) PetscFunctionReturn(0);
  PetscCheck(has_output && opt->output[0], PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: no output file; give -gen_output FILE.h5 (see -help)");
  PetscCheck(!has_images || n_images == 2, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT,
             "otgen: -gen_images takes exactly two image indices, i,j; got %" PetscInt_FMT, n_images);
  if (opt->type != GEN_FMNIST) {
    PetscCheck(opt->n > 0 && opt->m > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT,
               "otgen: -gen_n and -gen_m must be positive; got %" PetscInt_FMT " and %" PetscInt_FMT, opt->n, opt->m);
  }
  PetscCheck(opt->dim > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_dim must be positive; got %" PetscInt_FMT, opt->dim);
  PetscCheck(opt->seed >= 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_seed must be non-negative; got %" PetscInt_FMT, opt->seed);
  PetscCheck(opt->components > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_components must be positive; got %" PetscInt_FMT, opt->components);
  PetscCheck(opt->sigma >= 0 && PetscIsNormalReal(opt->sigma + 1.0), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT,
             "otgen: -gen_sigma must be finite and >= 0; got %g", (double)opt->sigma);
  {
    PetscBool valid;

    /* the names and exponents otsolve reads from the attribute cost: what otgen computes, otsolve computes */
    PetscCall(OTCostParse(opt->cost_text, &opt->cost, &opt->cost_power, &valid));
    PetscCheck(valid, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_cost %s is not sqeuclidean, euclidean or pnorm:P with a number P > 0",
               opt->cost_text);
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode GenWriteStringAttribute(hid_t location, const char *name, const char *value)
{
  hid_t type, space, attr;

  PetscFunctionBegin;
  /* A variable-length UTF-8 string, as h5py writes one, so that both kinds of file look alike. */
  H5Call(type = H5Tcopy(H5T_C_S1));
  H5Call(H5Tset_size(type, H5T_VARIABLE));
  H5Call(H5Tset_cset(type, H5T_CSET_UTF8));
  H5Call(space = H5Screate(H5S_SCALAR));
  H5Call(attr = H5Acreate2(location, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
  H5Call(H5Awrite(attr, type, &value));
  H5Call(H5Aclose(attr));
  H5Call(H5Sclose(space));
  H5Call(H5Tclose(type));
  PetscFunctionReturn(0);
}

static PetscErrorCode GenWriteScalarAttribute(hid_t location, const char *name, hid_t file_type, hid_t memory_type, const void *value)
{
  hid_t space, attr;

  PetscFunctionBegin;
  H5Call(space = H5Screate(H5S_SCALAR));
  H5Call(attr = H5Acreate2(location, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT));
  H5Call(H5Awrite(attr, memory_type, value));
  H5Call(H5Aclose(attr));
  H5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* Creates a dataset without modification times, so that the same options give the same bytes. */
static PetscErrorCode GenCreateDataset(hid_t file, const char *name, hid_t type, hid_t space, hid_t *dset)
{
  hid_t create_plist;

  PetscFunctionBegin;
  H5Call(create_plist = H5Pcreate(H5P_DATASET_CREATE));
  H5Call(H5Pset_obj_track_times(create_plist, 0));
  H5Call(*dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, create_plist, H5P_DEFAULT));
  H5Call(H5Pclose(create_plist));
  PetscFunctionReturn(0);
}

/* Writes a float64 dataset of rank 1 (cols == 0) or 2 from memory in one piece. */
static PetscErrorCode GenWriteArray(hid_t file, const char *name, hsize_t rows, hsize_t cols, const PetscReal *values)
{
  hsize_t dims[2] = {rows, cols};
  hid_t   space, dset;

  PetscFunctionBegin;
  H5Call(space = H5Screate_simple(cols ? 2 : 1, dims, NULL));
  PetscCall(GenCreateDataset(file, name, H5T_IEEE_F64LE, space, &dset));
  H5Call(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values));
  H5Call(H5Dclose(dset));
  H5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* Writes /C block by block, converting each block to float32 in place when asked. */
static PetscErrorCode GenWriteCost(const GenOptions *opt, const GenProblem *pb, hid_t file)
{
  hsize_t    dims[2] = {(hsize_t)pb->n, (hsize_t)pb->m};
  hid_t      file_space, dset;
  PetscInt   block_rows = (PetscInt)PetscMax((size_t)1, GEN_BLOCK_ENTRIES / (size_t)pb->m);
  PetscReal *block;
  float     *block_single = NULL;
  Xoshiro    rng;

  PetscFunctionBegin;
  block_rows = PetscMin(block_rows, pb->n);
  PetscCall(PetscMalloc1((size_t)block_rows * (size_t)pb->m, &block));
  if (opt->float32) PetscCall(PetscMalloc1((size_t)block_rows * (size_t)pb->m, &block_single));
  PetscCall(XoshiroSeed(&rng, opt->seed, 0));
  H5Call(file_space = H5Screate_simple(2, dims, NULL));
  PetscCall(GenCreateDataset(file, "/C", opt->float32 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, file_space, &dset));
  for (PetscInt row_start = 0; row_start < pb->n; row_start += block_rows) {
    PetscInt rows     = PetscMin(block_rows, pb->n - row_start);
    hsize_t  start[2] = {(hsize_t)row_start, 0};
    hsize_t  count[2] = {(hsize_t)rows, (hsize_t)pb->m};
    size_t   entries  = (size_t)rows * (size_t)pb->m;
    hid_t    mem_space;

    PetscCall(GenCostRows(opt, pb, &rng, row_start, rows, block));
    H5Call(mem_space = H5Screate_simple(2, count, NULL));
    H5Call(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL));
    if (opt->float32) {
      /* Rounded here rather than by HDF5's conversion path, which is slower and needs its own buffer. */
      for (size_t k = 0; k < entries; k++) block_single[k] = (float)block[k];
      H5Call(H5Dwrite(dset, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, block_single));
    } else H5Call(H5Dwrite(dset, H5T_NATIVE_DOUBLE, mem_space, file_space, H5P_DEFAULT, block));
    H5Call(H5Sclose(mem_space));
  }
  PetscCall(PetscFree(block));
  PetscCall(PetscFree(block_single));
  H5Call(H5Dclose(dset));
  H5Call(H5Sclose(file_space));
  PetscFunctionReturn(0);
}

static PetscErrorCode GenWriteFile(const GenOptions *opt, const GenProblem *pb, const char *path)
{
  hid_t           file, root;
  int64_t         seed   = (int64_t)opt->seed;
  const PetscBool points = (PetscBool)(pb->X && (opt->points || opt->type == GEN_MIXTURE));

  PetscFunctionBegin;
  file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  PetscCheck(file >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "otgen: cannot create %s; check that its directory exists and is writable", path);

  if (opt->type != GEN_MIXTURE || opt->dense) PetscCall(GenWriteCost(opt, pb, file));
  if (pb->a) PetscCall(GenWriteArray(file, "/a", (hsize_t)pb->n, 0, pb->a));
  if (pb->b) PetscCall(GenWriteArray(file, "/b", (hsize_t)pb->m, 0, pb->b));
  if (points) {
    PetscCall(GenWriteArray(file, "/X", (hsize_t)pb->n, (hsize_t)pb->dim, pb->X));
    PetscCall(GenWriteArray(file, "/Y", (hsize_t)pb->m, (hsize_t)pb->dim, pb->Y));
  }
  H5Call(root = H5Gopen2(file, "/", H5P_DEFAULT));
  PetscCall(GenWriteStringAttribute(root, "generator", pb->generator));
  PetscCall(GenWriteScalarAttribute(root, "seed", H5T_STD_I64LE, H5T_NATIVE_INT64, &seed));
  if (opt->type == GEN_GAUSSIAN) PetscCall(GenWriteScalarAttribute(root, "cost_scale", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &pb->cost_scale));
  if (points) PetscCall(GenWriteStringAttribute(root, "cost", pb->cost_name));
  if (opt->type == GEN_MIXTURE) PetscCall(GenWriteScalarAttribute(root, "cost_max", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &pb->cost_max));
  H5Call(H5Gclose(root));
  H5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* Builds the problem and writes it to path; returns its sizes. */
static PetscErrorCode GenBuildAndWrite(const GenOptions *opt, const char *path, PetscInt *n, PetscInt *m)
{
  GenProblem pb;

  PetscFunctionBegin;
  PetscCall(GenProblemSetUp(opt, &pb));
  PetscCall(GenWriteFile(opt, &pb, path));
  *n = pb.n;
  *m = pb.m;
  PetscCall(GenProblemDestroy(&pb));
  PetscFunctionReturn(0);
}

/* What GenWriteTemporary builds and writes, and what it found. */
typedef struct {
  const GenOptions *opt;
  PetscInt          n, m;
} GenJob;

/* Builds the problem and writes it to tmpname (an OTFileWriteFn). */
static PetscErrorCode GenWriteTemporary(void *ctx, const char tmpname[])
{
  GenJob *job = (GenJob *)ctx;

  PetscFunctionBegin;
  PetscCall(GenBuildAndWrite(job->opt, tmpname, &job->n, &job->m));
  PetscFunctionReturn(0);
}

/* Writes the problem atomically, as otsolve writes its files (OTFileWriteSerial): to OUTPUT.tmp.<pid>, then synced
   and renamed to OUTPUT, so that no reader ever sees half a file. Where it cannot be written (no space, quota, I/O
   error), the temporary is removed and *written is false. Runs on one rank. */
static PetscErrorCode GenRun(const GenOptions *opt, PetscBool *written)
{
  GenJob job = {opt, 0, 0};
  char   reason[512];

  PetscFunctionBegin;
  PetscCall(OTFileWriteSerial(PETSC_COMM_SELF, opt->output, 0.0, GenWriteTemporary, &job, written, reason, sizeof(reason)));
  if (*written)
    PetscCall(PetscPrintf(PETSC_COMM_SELF, "otgen: wrote %s (n = %" PetscInt_FMT ", m = %" PetscInt_FMT ", type %s)\n", opt->output, job.n, job.m,
                          gen_type_names[opt->type]));
  else PetscCall(PetscFPrintf(PETSC_COMM_SELF, stderr, "otgen: error: %s not written: %s (its temporary file was removed)\n", opt->output, reason));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  GenOptions     opt;
  PetscMPIInt    rank;
  PetscErrorCode gen_error = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(GenOptionsRead(&opt));
  if (opt.output[0]) { /* no output only with -help, which has printed the options already */
    /* Rank 0 works alone; its error code is shared so that every rank exits non-zero together
       instead of the others waiting in PetscFinalize for a rank that returned early. */
    PetscBool written = PETSC_TRUE;

    if (rank == 0) {
      gen_error = GenRun(&opt, &written);
      if (!gen_error && !written) gen_error = -OT_EXIT_NOT_WRITTEN;
    }
    PetscCallMPI(MPI_Bcast(&gen_error, 1, MPI_INT, 0, PETSC_COMM_WORLD));
  }
  PetscCall(PetscFinalize());
  return gen_error == -OT_EXIT_NOT_WRITTEN ? OT_EXIT_NOT_WRITTEN : (gen_error ? 1 : 0);
}
