/* otgen's parts shared by its two files: the options (read in otgen.c) and the problem generators
   (otgen_problems.c), whose problems otgen.c writes. */
#ifndef OTGEN_H
#define OTGEN_H

#include <otsolve.h>
#include <stdint.h>

typedef enum {
  GEN_GAUSSIAN = 0,
  GEN_RANDOM   = 1,
  GEN_FMNIST   = 2,
  GEN_MIXTURE  = 3
} GenType;
extern const char *const gen_type_names[];

typedef enum {
  GEN_WEIGHTS_UNIFORM = 0,
  GEN_WEIGHTS_RANDOM  = 1
} GenWeights;
extern const char *const gen_weights_names[];

typedef enum {
  GEN_GROUND_SQEUCLIDEAN = 0,
  GEN_GROUND_L1          = 1
} GenGround;
extern const char *const gen_ground_names[];

typedef struct {
  GenType    type;
  GenWeights weights;
  GenGround  ground;
  PetscInt   seed, n, m, dim;
  PetscInt   images[2];
  PetscInt   components; /* mixture: Gaussians per cloud */
  PetscReal  sigma;      /* mixture: their standard deviation */
  OTCostKind cost;       /* mixture: the cost written as the attribute cost, parsed as otsolve parses it */
  PetscReal  cost_power; /* mixture: the exponent p of |x - y|^p */
  char       cost_text[64];
  PetscBool  points, float32, dense;
  char       output[PETSC_MAX_PATH_LEN];
  char       images_file[PETSC_MAX_PATH_LEN];
} GenOptions;

/* A problem ready to be written: the cost itself is produced row block by row block (GenCostRows). */
typedef struct {
  PetscInt    n, m, dim;
  PetscReal  *X, *Y;      /* n x dim and m x dim points (gaussian, fmnist, mixture), else NULL */
  PetscReal  *a, *b;      /* weights, NULL when uniform */
  PetscReal   cost_scale; /* gaussian: C = |x - y|^2 / cost_scale */
  PetscReal   cost_max;   /* mixture: the largest cost over all pairs */
  const char *cost_name;  /* value of the attribute cost written with /X and /Y */
  char        generator[1024];
} GenProblem;

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64; the normal deviates come from
   Box-Muller, with the second deviate of each pair kept for the next call. */
typedef struct {
  uint64_t  s[4];
  PetscBool has_spare;
  PetscReal spare;
} Xoshiro;

/* stream separates independent generators drawn from one seed: 0 for the points or the random costs, 1 for
   a, 2 for b, 3 for the mixture's centres, so that -gen_weights changes nothing else in the file. */
PetscErrorCode XoshiroSeed(Xoshiro *rng, PetscInt seed, uint64_t stream);
/* Builds the problem of opt->type: points, weights, the generator string; not yet the costs. */
PetscErrorCode GenProblemSetUp(const GenOptions *opt, GenProblem *pb);
/* Fills rows [row_start, row_start + rows) of C into block (rows x m, row-major). The random type draws its
   entries from rng in row-major order (seeded with stream 0), so blocks must be requested in order. */
PetscErrorCode GenCostRows(const GenOptions *opt, const GenProblem *pb, Xoshiro *rng, PetscInt row_start, PetscInt rows, PetscReal *block);
PetscErrorCode GenProblemDestroy(GenProblem *pb);

#endif
