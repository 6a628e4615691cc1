/* otgen's problem generators (see otgen.c's -help): the points, weights and costs of each -gen_type, from
   xoshiro256** streams seeded by -gen_seed, so that a file is reproducible from its options. */
#include "otgen.h"
#include <zlib.h>
#include <math.h>
#include <stdio.h>

/* Fashion-MNIST images: 28 x 28 unsigned bytes after a 16-byte big-endian header. */
#define IDX_IMAGE_MAGIC 2051
#define IDX_SIDE        28
#define IDX_PIXELS      (IDX_SIDE * IDX_SIDE)
#define IDX_HEADER_SIZE 16

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

PetscErrorCode XoshiroSeed(Xoshiro *rng, PetscInt seed, uint64_t stream)
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

/* The sizes of the options and room for the points X (n x dim) and Y (m x dim). */
static PetscErrorCode GenAllocatePoints(const GenOptions *opt, GenProblem *pb)
{
  PetscFunctionBegin;
  pb->n   = opt->n;
  pb->m   = opt->m;
  pb->dim = opt->dim;
  PetscCall(PetscMalloc1((size_t)pb->n * (size_t)pb->dim, &pb->X));
  PetscCall(PetscMalloc1((size_t)pb->m * (size_t)pb->dim, &pb->Y));
  PetscFunctionReturn(0);
}

static PetscErrorCode GenGaussianSetUp(const GenOptions *opt, GenProblem *pb)
{
  Xoshiro   rng;
  PetscReal max_distance = 0.0;

  PetscFunctionBegin;
  PetscCall(GenAllocatePoints(opt, pb));
  PetscCall(XoshiroSeed(&rng, opt->seed, 0));
  for (size_t k = 0; k < (size_t)pb->n * (size_t)pb->dim; k++) pb->X[k] = XoshiroNormal(&rng);
  for (size_t k = 0; k < (size_t)pb->m * (size_t)pb->dim; k++) pb->Y[k] = 1.0 + 0.5 * XoshiroNormal(&rng);
  for (PetscInt i = 0; i < pb->n; i++) {
    for (PetscInt j = 0; j < pb->m; j++)
      max_distance = PetscMax(max_distance, SquaredDistance(pb->X + (size_t)i * pb->dim, pb->Y + (size_t)j * pb->dim, pb->dim));
  }
  PetscCheck(max_distance > 0.0, PETSC_COMM_SELF, PETSC_ERR_PLIB, "otgen: all Gaussian points coincide; cannot normalise the cost");
  pb->cost_scale = max_distance;
  pb->cost_name  = "sqeuclidean";
  if (opt->weights == GEN_WEIGHTS_RANDOM) {
    PetscCall(GenRandomWeights(pb->n, opt->seed, 1, &pb->a));
    PetscCall(GenRandomWeights(pb->m, opt->seed, 2, &pb->b));
  }
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator),
                          "otgen gaussian n=%" PetscInt_FMT " m=%" PetscInt_FMT " dim=%" PetscInt_FMT " seed=%" PetscInt_FMT " weights=%s", pb->n, pb->m,
                          pb->dim, opt->seed, gen_weights_names[opt->weights]));
  PetscFunctionReturn(0);
}

/* The cost between two points as otsolve computes it from the attribute cost: the squares summed in
   coordinate order, then sqrt or pow, so that /C (-gen_dense) and cost_max equal otsolve's costs. */
static inline PetscReal CostFromSquared(const GenOptions *opt, PetscReal s)
{
  return opt->cost == OT_COST_EUCLIDEAN ? sqrt(s) : (opt->cost == OT_COST_PNORM ? pow(s, 0.5 * opt->cost_power) : s);
}

static inline PetscReal MixtureCost(const GenOptions *opt, const PetscReal *x, const PetscReal *y, PetscInt dim)
{
  return CostFromSquared(opt, SquaredDistance(x, y, dim));
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
  PetscReal *centres, best;
  OTProblem  problem;

  PetscFunctionBegin;
  PetscCall(GenAllocatePoints(opt, pb));
  PetscCall(PetscMalloc1((size_t)2 * opt->components * pb->dim, &centres));
  PetscCall(XoshiroSeed(&rng, opt->seed, 3)); /* centres: a stream of their own */
  for (size_t k = 0; k < (size_t)2 * opt->components * pb->dim; k++) centres[k] = XoshiroUniform(&rng);
  PetscCall(XoshiroSeed(&rng, opt->seed, 0));
  GenMixturePoints(&rng, pb->n, pb->dim, opt->components, centres, opt->sigma, pb->X);
  GenMixturePoints(&rng, pb->m, pb->dim, opt->components, centres + (size_t)opt->components * pb->dim, opt->sigma, pb->Y);
  /* cost_max, exactly: the largest squared distance as otsolve computes it (its branch and bound over a cell tree of
     Y), then the cost of it (the costs grow with the squared distance) */
  PetscCall(OTProblemCreate(PETSC_COMM_SELF, &problem));
  PetscCall(OTProblemSetPoints(problem, pb->n, pb->m, pb->dim, pb->X, pb->Y, NULL, NULL, "sqeuclidean", "otgen mixture"));
  PetscCall(OTProblemGetCostMax(problem, &best));
  PetscCall(OTProblemDestroy(&problem));
  pb->cost_max  = CostFromSquared(opt, best);
  pb->cost_name = opt->cost_text;
  PetscCall(PetscFree(centres));
  if (opt->weights == GEN_WEIGHTS_RANDOM) {
    PetscCall(GenRandomWeights(pb->n, opt->seed, 1, &pb->a));
    PetscCall(GenRandomWeights(pb->m, opt->seed, 2, &pb->b));
  }
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator),
                          "otgen mixture n=%" PetscInt_FMT " m=%" PetscInt_FMT " dim=%" PetscInt_FMT " components=%" PetscInt_FMT
                          " sigma=%g cost=%s seed=%" PetscInt_FMT " weights=%s",
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
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator), "otgen random n=%" PetscInt_FMT " m=%" PetscInt_FMT " seed=%" PetscInt_FMT " weights=%s", pb->n,
                          pb->m, opt->seed, gen_weights_names[opt->weights]));
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
  PetscCheck(file, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "otgen: cannot open the image file %s (install dataset-fashion-mnist or give -gen_images_file PATH)",
             path);
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
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_UNEXPECTED, "otgen: %s is not an IDX file of 28 x 28 images (magic %u, %u x %u; expected magic %d, 28 x 28)", path,
            magic, rows, cols, IDX_IMAGE_MAGIC);
  }
  for (int k = 0; k < 2; k++) {
    PetscInt index = opt->images[k];
    z_off_t  offset;

    if (index < 0 || (uint64_t)index >= count) {
      gzclose(file);
      SETERRQ(PETSC_COMM_SELF, PETSC_ERR_USER_INPUT, "otgen: -gen_images index %" PetscInt_FMT " is out of range: %s holds %u images (0 to %u)", index, path,
              count, count ? count - 1 : 0);
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
  PetscCall(PetscSNPrintf(pb->generator, sizeof(pb->generator), "otgen fmnist images=%" PetscInt_FMT ",%" PetscInt_FMT " ground=%s file=%s", opt->images[0],
                          opt->images[1], gen_ground_names[opt->ground], opt->images_file));
  PetscFunctionReturn(0);
}

PetscErrorCode GenCostRows(const GenOptions *opt, const GenProblem *pb, Xoshiro *rng, PetscInt row_start, PetscInt rows, PetscReal *block)
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

PetscErrorCode GenProblemDestroy(GenProblem *pb)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(pb->X));
  PetscCall(PetscFree(pb->Y));
  PetscCall(PetscFree(pb->a));
  PetscCall(PetscFree(pb->b));
  PetscFunctionReturn(0);
}

PetscErrorCode GenProblemSetUp(const GenOptions *opt, GenProblem *pb)
{
  PetscFunctionBegin;
  PetscCall(PetscMemzero(pb, sizeof(*pb)));
  pb->dim = 1;
  {
    /* by GenType: GEN_GAUSSIAN, GEN_RANDOM, GEN_FMNIST, GEN_MIXTURE */
    PetscErrorCode (*const setup[])(const GenOptions *, GenProblem *) = {GenGaussianSetUp, GenRandomSetUp, GenFmnistSetUp, GenMixtureSetUp};

    PetscCall(setup[opt->type](opt, pb));
  }
  PetscFunctionReturn(0);
}
