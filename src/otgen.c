/* otgen: writes optimal-transport test problems in otsolve's problem-file format (DESIGN.md §3). */
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

#include <petscsys.h>
#include <hdf5.h>
#include <zlib.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Turns a negative HDF5 status into a PETSc error. */
#define H5Call(expr) \
  do { \
    if ((expr) < 0) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #expr); \
  } while (0)

/* Number of cost entries generated and written per block of rows (8 MiB of doubles). */
#define GEN_BLOCK_ENTRIES ((size_t)1 << 20)

/* Fashion-MNIST images: 28 x 28 unsigned bytes after a 16-byte big-endian header. */
#define IDX_IMAGE_MAGIC 2051
#define IDX_SIDE        28
#define IDX_PIXELS      (IDX_SIDE * IDX_SIDE)
#define IDX_HEADER_SIZE 16

typedef enum { GEN_GAUSSIAN = 0, GEN_RANDOM = 1, GEN_FMNIST = 2, GEN_MIXTURE = 3 } GenType;
static const char *const gen_type_names[] = {"gaussian", "random", "fmnist", "mixture"};

/* Point-cloud costs of the mixture type, as otsolve reads them from the attribute cost. */
typedef enum { GEN_COST_SQEUCLIDEAN = 0, GEN_COST_EUCLIDEAN = 1, GEN_COST_PNORM = 2 } GenCost;

typedef enum { GEN_WEIGHTS_UNIFORM = 0, GEN_WEIGHTS_RANDOM = 1 } GenWeights;
static const char *const gen_weights_names[] = {"uniform", "random"};

typedef enum { GEN_GROUND_SQEUCLIDEAN = 0, GEN_GROUND_L1 = 1 } GenGround;
static const char *const gen_ground_names[] = {"sqeuclidean", "l1"};

typedef struct {
  GenType    type;
  GenWeights weights;
  GenGround  ground;
  PetscInt   seed, n, m, dim;
  PetscInt   images[2];
  PetscInt   components;  /* mixture: Gaussians per cloud */
  PetscReal  sigma;       /* mixture: their standard deviation */
  GenCost    cost;        /* mixture: the cost written as the attribute cost */
  PetscReal  cost_power;  /* mixture: P of pnorm:P */
  char       cost_text[64];
  PetscBool  points, float32, dense;
  char       output[PETSC_MAX_PATH_LEN];
  char       images_file[PETSC_MAX_PATH_LEN];
} GenOptions;

/* A problem ready to be written: the cost itself is produced row block by row block. */
typedef struct {
  PetscInt   n, m, dim;
  PetscReal *X, *Y;       /* n x dim and m x dim points (gaussian, fmnist), else NULL */
  PetscReal *a, *b;       /* weights, NULL when uniform */
  PetscReal  cost_scale;  /* gaussian: C = |x - y|^2 / cost_scale */
  PetscReal  cost_max;    /* mixture: the largest cost over all pairs */
  const char *cost_name;  /* value of the attribute cost written with /X and /Y */
  char       generator[1024];
} GenProblem;

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64; the normal deviates come from
   Box-Muller, with the second deviate of each pair kept for the next call. */
typedef struct {
  uint64_t  s[4];
  PetscBool has_spare;
  PetscReal spare;
} Xoshiro;

static uint64_t SplitMix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z          = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline uint64_t RotateLeft(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

/* stream separates independent generators drawn from one seed: 0 for the points or the random
   costs, 1 for a, 2 for b, so that -gen_weights changes nothing else in the file. */
static PetscErrorCode XoshiroSeed(Xoshiro *rng, PetscInt seed, uint64_t stream)
{
  uint64_t state = (uint64_t)seed ^ (stream * 0xd1342543de82ef95ULL);

  PetscFunctionBegin;
  for (int k = 0; k < 4; k++) rng->s[k] = SplitMix64(&state);
  rng->has_spare = PETSC_FALSE;
  rng->spare     = 0.0;
  PetscFunctionReturn(0);
}

static inline uint64_t XoshiroNext(Xoshiro *rng)
{
  uint64_t *s      = rng->s;
  uint64_t  result = RotateLeft(s[1] * 5, 7) * 9;
  uint64_t  t      = s[1] << 17;

  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = RotateLeft(s[3], 45);
  return result;
}

/* Uniform on [0, 1) with 53 random bits. */
static inline PetscReal XoshiroUniform(Xoshiro *rng)
{
  return (PetscReal)(XoshiroNext(rng) >> 11) * 0x1.0p-53;
}

static inline PetscReal XoshiroNormal(Xoshiro *rng)
{
  PetscReal u1, u2, radius;

  if (rng->has_spare) {
    rng->has_spare = PETSC_FALSE;
    return rng->spare;
  }
  u1             = 1.0 - XoshiroUniform(rng); /* (0, 1]: log(u1) is finite */
  u2             = XoshiroUniform(rng);
  radius         = sqrt(-2.0 * log(u1));
  rng->spare     = radius * sin(2.0 * PETSC_PI * u2);
  rng->has_spare = PETSC_TRUE;
  return radius * cos(2.0 * PETSC_PI * u2);
}

static PetscErrorCode GenOptionsRead(GenOptions *opt)
{
  PetscInt  type = GEN_GAUSSIAN, weights = GEN_WEIGHTS_UNIFORM, ground = GEN_GROUND_SQEUCLIDEAN;
  PetscInt  n_images = 2;
  PetscBool has_output, has_images, has_help;

  PetscFunctionBegin;
  opt->seed      = 1;
  opt->n         = 1000;
  opt->m         = 1000;
  opt->dim       = 2;
  opt->images[0] = 0;
  opt->images[1] = 1;
  opt->points    = PETSC_FALSE;
  opt->float32   = PETSC_FALSE;
  opt->dense     = PETSC_FALSE;
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
  PetscCall(PetscOptionsString("-gen_images_file", "Gzipped IDX file of the images (fmnist)", NULL, opt->images_file, opt->images_file, sizeof(opt->images_file), NULL));
  PetscOptionsEnd();

  opt->type    = (GenType)type;
  opt->weights = (GenWeights)weights;
  opt->ground  = (GenGround)ground;

  PetscCall(PetscOptionsHasHelp(NULL, &has_help));
  if (has_help && !has_output) PetscFunctionReturn(0);
  PetscCheck(has_output && opt->output[0], PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: no output file; give -gen_output FILE.h5 (see -help)");
  PetscCheck(!has_images || n_images == 2, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_images takes exactly two image indices, i,j; got %" PetscInt_FMT, n_images);
  if (opt->type != GEN_FMNIST) {
    PetscCheck(opt->n > 0 && opt->m > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_n and -gen_m must be positive; got %" PetscInt_FMT " and %" PetscInt_FMT, opt->n,
               opt->m);
  }
  PetscCheck(opt->dim > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_dim must be positive; got %" PetscInt_FMT, opt->dim);
  PetscCheck(opt->seed >= 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_seed must be non-negative; got %" PetscInt_FMT, opt->seed);
  PetscCheck(opt->components > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_components must be positive; got %" PetscInt_FMT, opt->components);
  PetscCheck(opt->sigma >= 0 && PetscIsNormalReal(opt->sigma + 1.0), PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT, "otgen: -gen_sigma must be finite and >= 0; got %g",
             (double)opt->sigma);
  {
    PetscBool match;
    char     *end;

    PetscCall(PetscStrcmp(opt->cost_text, "sqeuclidean", &match));
    if (match) opt->cost = GEN_COST_SQEUCLIDEAN, opt->cost_power = 2.0;
    else {
      PetscCall(PetscStrcmp(opt->cost_text, "euclidean", &match));
      if (match) opt->cost = GEN_COST_EUCLIDEAN, opt->cost_power = 1.0;
      else {
        PetscCall(PetscStrncmp(opt->cost_text, "pnorm:", 6, &match));
        opt->cost_power = match && opt->cost_text[6] ? strtod(opt->cost_text + 6, &end) : -1.0;
        PetscCheck(match && opt->cost_text[6] && *end == '\0' && isfinite(opt->cost_power) && opt->cost_power > 0, PETSC_COMM_WORLD, PETSC_ERR_USER_INPUT,
                   "otgen: -gen_cost %s is not sqeuclidean, euclidean or pnorm:P with a number P > 0", opt->cost_text);
        opt->cost = GEN_COST_PNORM;
      }
    }
  }
  PetscFunctionReturn(0);
}

/* Weights 0.5 + U[0,1), normalised to sum 1. */
static PetscErrorCode GenRandomWeights(PetscInt len, PetscInt seed, uint64_t stream, PetscReal **weights)
{
  Xoshiro   rng;
  PetscReal total = 0.0;

  PetscFunctionBegin;
  PetscCall(XoshiroSeed(&rng, seed, stream));
  PetscCall(PetscMalloc1(len, weights));
  for (PetscInt i = 0; i < len; i++) {
    (*weights)[i] = 0.5 + XoshiroUniform(&rng);
    total += (*weights)[i];
  }
  for (PetscInt i = 0; i < len; i++) (*weights)[i] /= total;
  PetscFunctionReturn(0);
}

static inline PetscReal SquaredDistance(const PetscReal *x, const PetscReal *y, PetscInt dim)
{
  PetscReal sum = 0.0;

  for (PetscInt k = 0; k < dim; k++) {
    PetscReal diff = x[k] - y[k];
    sum += diff * diff;
  }
  return sum;
}

static inline PetscReal L1Distance(const PetscReal *x, const PetscReal *y, PetscInt dim)
{
  PetscReal sum = 0.0;

  for (PetscInt k = 0; k < dim; k++) sum += PetscAbsReal(x[k] - y[k]);
  return sum;
}

static PetscErrorCode GenGaussianSetUp(const GenOptions *opt, GenProblem *pb)
{
  Xoshiro   rng;
  PetscReal max_distance = 0.0;

  PetscFunctionBegin;
  pb->n   = opt->n;
  pb->m   = opt->m;
  pb->dim = opt->dim;
  PetscCall(PetscMalloc1((size_t)pb->n * (size_t)pb->dim, &pb->X));
  PetscCall(PetscMalloc1((size_t)pb->m * (size_t)pb->dim, &pb->Y));
  PetscCall(XoshiroSeed(&rng, opt->seed, 0));
  for (size_t k = 0; k < (size_t)pb->n * (size_t)pb->dim; k++) pb->X[k] = XoshiroNormal(&rng);
  for (size_t k = 0; k < (size_t)pb->m * (size_t)pb->dim; k++) pb->Y[k] = 1.0 + 0.5 * XoshiroNormal(&rng);
  for (PetscInt i = 0; i < pb->n; i++) {
    for (PetscInt j = 0; j < pb->m; j++) max_distance = PetscMax(max_distance, SquaredDistance(pb->X + (size_t)i * pb->dim, pb->Y + (size_t)j * pb->dim, pb->dim));
  }
  PetscCheck(max_distance > 0.0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "otgen: all Gaussian points coincide; cannot normalise the cost");
  pb->cost_scale = max_distance;
  pb->cost_name  = "sqeuclidean";
  if (opt->weights == GEN_WEIGHTS_RANDOM) {
    PetscCall(GenRandomWeights(pb->n, opt->seed, 1, &pb->a));
    PetscCall(GenRandomWeights(pb->m, opt->seed, 2, &pb->b));
  }
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator), "otgen gaussian n=%" PetscInt_FMT " m=%" PetscInt_FMT " dim=%" PetscInt_FMT " seed=%" PetscInt_FMT " weights=%s",
                          pb->n, pb->m, pb->dim, opt->seed, gen_weights_names[opt->weights]));
  PetscFunctionReturn(0);
}

/* The cost between two points as otsolve computes it from the attribute cost: the squares summed in
   coordinate order, then sqrt or pow, so that /C (-gen_dense) and cost_max equal otsolve's costs. */
static inline PetscReal MixtureCost(const GenOptions *opt, const PetscReal *x, const PetscReal *y, PetscInt dim)
{
  PetscReal s = SquaredDistance(x, y, dim);

  return opt->cost == GEN_COST_EUCLIDEAN ? sqrt(s) : (opt->cost == GEN_COST_PNORM ? pow(s, 0.5 * opt->cost_power) : s);
}

/* count points from an equal-weight mixture of the given centres (components x dim), standard deviation sigma. */
static void GenMixturePoints(Xoshiro *rng, PetscInt count, PetscInt dim, PetscInt components, const PetscReal *centres, PetscReal sigma, PetscReal *points)
{
  for (PetscInt p = 0; p < count; p++) {
    PetscInt c = (PetscInt)(XoshiroUniform(rng) * components);

    c = PetscMin(c, components - 1);
    for (PetscInt k = 0; k < dim; k++) points[(size_t)p * dim + k] = centres[(size_t)c * dim + k] + sigma * XoshiroNormal(rng);
  }
}

static PetscErrorCode GenMixtureSetUp(const GenOptions *opt, GenProblem *pb)
{
  Xoshiro    rng;
  PetscReal *centres, *lo, *hi, best = 0.0;

  PetscFunctionBegin;
  pb->n   = opt->n;
  pb->m   = opt->m;
  pb->dim = opt->dim;
  PetscCall(PetscMalloc1((size_t)pb->n * (size_t)pb->dim, &pb->X));
  PetscCall(PetscMalloc1((size_t)pb->m * (size_t)pb->dim, &pb->Y));
  PetscCall(PetscMalloc3((size_t)2 * opt->components * pb->dim, &centres, pb->dim, &lo, pb->dim, &hi));
  PetscCall(XoshiroSeed(&rng, opt->seed, 3)); /* centres: a stream of their own */
  for (size_t k = 0; k < (size_t)2 * opt->components * pb->dim; k++) centres[k] = XoshiroUniform(&rng);
  PetscCall(XoshiroSeed(&rng, opt->seed, 0));
  GenMixturePoints(&rng, pb->n, pb->dim, opt->components, centres, opt->sigma, pb->X);
  GenMixturePoints(&rng, pb->m, pb->dim, opt->components, centres + (size_t)opt->components * pb->dim, opt->sigma, pb->Y);
  /* cost_max, exactly: a row whose distance to the farthest corner of Y's bounding box cannot beat the best
     pair found so far is skipped (the bound holds in floating point too: rounding is monotone) */
  for (PetscInt k = 0; k < pb->dim; k++) lo[k] = hi[k] = pb->Y[k];
  for (PetscInt j = 1; j < pb->m; j++)
    for (PetscInt k = 0; k < pb->dim; k++) {
      lo[k] = PetscMin(lo[k], pb->Y[(size_t)j * pb->dim + k]);
      hi[k] = PetscMax(hi[k], pb->Y[(size_t)j * pb->dim + k]);
    }
  for (PetscInt i = 0; i < pb->n; i++) {
    const PetscReal *x     = pb->X + (size_t)i * pb->dim;
    PetscReal        bound = 0.0;

    for (PetscInt k = 0; k < pb->dim; k++) bound += PetscMax((x[k] - lo[k]) * (x[k] - lo[k]), (x[k] - hi[k]) * (x[k] - hi[k]));
    if (bound <= best) continue;
    for (PetscInt j = 0; j < pb->m; j++) best = PetscMax(best, SquaredDistance(x, pb->Y + (size_t)j * pb->dim, pb->dim));
  }
  pb->cost_max  = opt->cost == GEN_COST_EUCLIDEAN ? sqrt(best) : (opt->cost == GEN_COST_PNORM ? pow(best, 0.5 * opt->cost_power) : best);
  pb->cost_name = opt->cost_text;
  PetscCall(PetscFree3(centres, lo, hi));
  if (opt->weights == GEN_WEIGHTS_RANDOM) {
    PetscCall(GenRandomWeights(pb->n, opt->seed, 1, &pb->a));
    PetscCall(GenRandomWeights(pb->m, opt->seed, 2, &pb->b));
  }
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator),
                          "otgen mixture n=%" PetscInt_FMT " m=%" PetscInt_FMT " dim=%" PetscInt_FMT " components=%" PetscInt_FMT " sigma=%g cost=%s seed=%" PetscInt_FMT " weights=%s",
                          pb->n, pb->m, pb->dim, opt->components, (double)opt->sigma, opt->cost_text, opt->seed, gen_weights_names[opt->weights]));
  PetscFunctionReturn(0);
}

static PetscErrorCode GenRandomSetUp(const GenOptions *opt, GenProblem *pb)
{
  PetscFunctionBegin;
  pb->n = opt->n;
  pb->m = opt->m;
  if (opt->weights == GEN_WEIGHTS_RANDOM) {
    PetscCall(GenRandomWeights(pb->n, opt->seed, 1, &pb->a));
    PetscCall(GenRandomWeights(pb->m, opt->seed, 2, &pb->b));
  }
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator), "otgen random n=%" PetscInt_FMT " m=%" PetscInt_FMT " seed=%" PetscInt_FMT " weights=%s", pb->n, pb->m,
                          opt->seed, gen_weights_names[opt->weights]));
  PetscFunctionReturn(0);
}

static uint32_t BigEndian32(const unsigned char *bytes)
{
  return ((uint32_t)bytes[0] << 24) | ((uint32_t)bytes[1] << 16) | ((uint32_t)bytes[2] << 8) | (uint32_t)bytes[3];
}

/* Reads the two images opt->images from the gzipped IDX file into pixels (2 x 784 bytes). */
static PetscErrorCode GenReadImages(const GenOptions *opt, unsigned char pixels[2][IDX_PIXELS])
{
  const char   *path = opt->images_file;
  gzFile        file;
  unsigned char header[IDX_HEADER_SIZE];
  uint32_t      magic, count, rows, cols;
  int           got;

  PetscFunctionBegin;
  file = gzopen(path, "rb");
  PetscCheck(file, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "otgen: cannot open the image file %s (install dataset-fashion-mnist or give -gen_images_file PATH)", path);
  got = gzread(file, header, IDX_HEADER_SIZE);
  if (got != IDX_HEADER_SIZE) {
    gzclose(file);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "otgen: %s is too short or not gzip-compressed: no 16-byte IDX header", path);
  }
  magic = BigEndian32(header);
  count = BigEndian32(header + 4);
  rows  = BigEndian32(header + 8);
  cols  = BigEndian32(header + 12);
  if (magic != IDX_IMAGE_MAGIC || rows != IDX_SIDE || cols != IDX_SIDE) {
    gzclose(file);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "otgen: %s is not an IDX file of 28 x 28 images (magic %u, %u x %u; expected magic %d, 28 x 28)", path, magic, rows, cols,
            IDX_IMAGE_MAGIC);
  }
  for (int k = 0; k < 2; k++) {
    PetscInt index = opt->images[k];
    z_off_t  offset;

    if (index < 0 || (uint64_t)index >= count) {
      gzclose(file);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "otgen: -gen_images index %" PetscInt_FMT " is out of range: %s holds %u images (0 to %u)", index, path, count,
              count ? count - 1 : 0);
    }
    offset = (z_off_t)IDX_HEADER_SIZE + (z_off_t)index * IDX_PIXELS;
    got    = (gzseek(file, offset, SEEK_SET) == offset) ? gzread(file, pixels[k], IDX_PIXELS) : -1;
    if (got != IDX_PIXELS) {
      gzclose(file);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "otgen: %s is truncated or corrupt: cannot read image %" PetscInt_FMT, path, index);
    }
  }
  PetscCheck(gzclose(file) == Z_OK, PETSC_COMM_SELF, PETSC_ERR_FILE_READ, "otgen: error while closing %s", path);
  PetscFunctionReturn(0);
}

static PetscErrorCode GenFmnistSetUp(const GenOptions *opt, GenProblem *pb)
{
  unsigned char pixels[2][IDX_PIXELS];
  PetscReal    *weights[2];

  PetscFunctionBegin;
  PetscCall(GenReadImages(opt, pixels));
  pb->n   = IDX_PIXELS;
  pb->m   = IDX_PIXELS;
  pb->dim = 2;
  PetscCall(PetscMalloc1(IDX_PIXELS * 2, &pb->X));
  PetscCall(PetscMalloc1(IDX_PIXELS * 2, &pb->Y));
  for (PetscInt p = 0; p < IDX_PIXELS; p++) {
    pb->X[2 * p]     = (PetscReal)(p % IDX_SIDE) / (IDX_SIDE - 1);
    pb->X[2 * p + 1] = (PetscReal)(p / IDX_SIDE) / (IDX_SIDE - 1);
  }
  PetscCall(PetscArraycpy(pb->Y, pb->X, IDX_PIXELS * 2));
  PetscCall(PetscMalloc1(IDX_PIXELS, &pb->a));
  PetscCall(PetscMalloc1(IDX_PIXELS, &pb->b));
  weights[0] = pb->a;
  weights[1] = pb->b;
  for (int k = 0; k < 2; k++) {
    PetscReal total = 0.0;

    for (PetscInt p = 0; p < IDX_PIXELS; p++) {
      weights[k][p] = pixels[k][p] / 255.0 + 0.01;
      total += weights[k][p];
    }
    for (PetscInt p = 0; p < IDX_PIXELS; p++) weights[k][p] /= total;
  }
  pb->cost_scale = 1.0;
  pb->cost_name  = opt->ground == GEN_GROUND_L1 ? "l1" : "sqeuclidean";
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator), "otgen fmnist images=%" PetscInt_FMT ",%" PetscInt_FMT " ground=%s file=%s", opt->images[0], opt->images[1],
                          gen_ground_names[opt->ground], opt->images_file));
  PetscFunctionReturn(0);
}

/* Fills rows [row_start, row_start + rows) of C into block (rows x m, row-major). The random type
   draws its entries in row-major order, so blocks must be requested in order. */
static PetscErrorCode GenCostRows(const GenOptions *opt, const GenProblem *pb, Xoshiro *rng, PetscInt row_start, PetscInt rows, PetscReal *block)
{
  const PetscInt m = pb->m, dim = pb->dim;

  PetscFunctionBegin;
  for (PetscInt r = 0; r < rows; r++) {
    PetscReal *row = block + (size_t)r * m;

    switch (opt->type) {
    case GEN_GAUSSIAN: {
      const PetscReal *x = pb->X + (size_t)(row_start + r) * dim;
      for (PetscInt j = 0; j < m; j++) row[j] = SquaredDistance(x, pb->Y + (size_t)j * dim, dim) / pb->cost_scale;
    } break;
    case GEN_RANDOM:
      for (PetscInt j = 0; j < m; j++) row[j] = XoshiroUniform(rng);
      break;
    case GEN_MIXTURE: {
      const PetscReal *x = pb->X + (size_t)(row_start + r) * dim;
      for (PetscInt j = 0; j < m; j++) row[j] = MixtureCost(opt, x, pb->Y + (size_t)j * dim, dim);
    } break;
    case GEN_FMNIST: {
      const PetscReal *x = pb->X + (size_t)(row_start + r) * dim;
      if (opt->ground == GEN_GROUND_L1) {
        for (PetscInt j = 0; j < m; j++) row[j] = L1Distance(x, pb->Y + (size_t)j * dim, dim);
      } else {
        for (PetscInt j = 0; j < m; j++) row[j] = SquaredDistance(x, pb->Y + (size_t)j * dim, dim);
      }
    } break;
    }
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
  H5Call(H5Dclose(dset));
  H5Call(H5Sclose(file_space));
  PetscCall(PetscFree(block));
  PetscCall(PetscFree(block_single));
  PetscFunctionReturn(0);
}

static PetscErrorCode GenWriteFile(const GenOptions *opt, const GenProblem *pb, const char *path)
{
  hid_t   file, root;
  int64_t seed = (int64_t)opt->seed;

  PetscFunctionBegin;
  file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  PetscCheck(file >= 0, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "otgen: cannot create %s; check that its directory exists and is writable", path);
  const PetscBool points = (PetscBool)(pb->X && (opt->points || opt->type == GEN_MIXTURE));

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

static PetscErrorCode GenProblemDestroy(GenProblem *pb)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(pb->X));
  PetscCall(PetscFree(pb->Y));
  PetscCall(PetscFree(pb->a));
  PetscCall(PetscFree(pb->b));
  PetscFunctionReturn(0);
}

/* Builds the problem, writes it to OUTPUT.tmp and renames that to OUTPUT, so that no reader
   ever sees half a file. Runs on one rank. */
static PetscErrorCode GenRun(const GenOptions *opt, const char *tmp_path)
{
  GenProblem pb;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&pb, sizeof(pb)));
  pb.dim = 1;
  switch (opt->type) {
  case GEN_GAUSSIAN:
    PetscCall(GenGaussianSetUp(opt, &pb));
    break;
  case GEN_RANDOM:
    PetscCall(GenRandomSetUp(opt, &pb));
    break;
  case GEN_FMNIST:
    PetscCall(GenFmnistSetUp(opt, &pb));
    break;
  case GEN_MIXTURE:
    PetscCall(GenMixtureSetUp(opt, &pb));
    break;
  }
  PetscCall(GenWriteFile(opt, &pb, tmp_path));
  PetscCheck(rename(tmp_path, opt->output) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "otgen: cannot rename %s to %s", tmp_path, opt->output);
  PetscCall(PetscPrintf(PETSC_COMM_SELF, "otgen: wrote %s (n = %" PetscInt_FMT ", m = %" PetscInt_FMT ", type %s)\n", opt->output, pb.n, pb.m, gen_type_names[opt->type]));
  PetscCall(GenProblemDestroy(&pb));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  GenOptions     opt;
  PetscMPIInt    rank;
  PetscErrorCode gen_error = 0;
  char           tmp_path[PETSC_MAX_PATH_LEN + 8];

  PetscFunctionBeginUser;
  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(GenOptionsRead(&opt));
  if (opt.output[0]) { /* no output only with -help, which has printed the options already */
    PetscCall(PetscSNPrintf(tmp_path, sizeof(tmp_path), "%s.tmp", opt.output));
    /* Rank 0 works alone; its error code is shared so that every rank exits non-zero together
       instead of the others waiting in PetscFinalize for a rank that returned early. */
    if (rank == 0) {
      gen_error = GenRun(&opt, tmp_path);
      if (gen_error) (void)remove(tmp_path);
    }
    PetscCallMPI(MPI_Bcast(&gen_error, 1, MPI_INT, 0, PETSC_COMM_WORLD));
  }
  PetscCall(PetscFinalize());
  return gen_error ? 1 : 0;
}
