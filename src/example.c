/* The built-in example: two Gaussian mixtures in the plane, squared Euclidean cost, uniform weights.
   Every rank draws the same points (a fixed generator) and computes only its own rows of C. */
#include "otimpl.h"

static uint64_t SplitMix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double Uniform(uint64_t *state)
{
  return ((double)(SplitMix64(state) >> 11) + 0.5) * 0x1.0p-53;
}

/* count points in 2-D from an equal-weight mixture of `components` isotropic Gaussians. */
static void DrawMixture(uint64_t *state, PetscInt count, PetscInt components, const double centres[][2], double sigma, double *points)
{
  for (PetscInt k = 0; k < count; k++) {
    PetscInt c = (PetscInt)(Uniform(state) * components) % components;
    double   r = sqrt(-2.0 * log(Uniform(state))), theta = 2.0 * PETSC_PI * Uniform(state);

    points[2 * k]     = centres[c][0] + sigma * r * cos(theta);
    points[2 * k + 1] = centres[c][1] + sigma * r * sin(theta);
  }
}

PetscErrorCode OTProblemSetExample(OTProblem pb, PetscInt n, PetscInt m, PetscInt seed)
{
  const double source_centres[3][2] = {
    {0.0, 0.0},
    {1.0, 0.5},
    {0.3, 1.2}
  };
  const double target_centres[2][2] = {
    {0.8, 0.1},
    {0.2, 0.8}
  };
  uint64_t state = 0x5eed0000ULL + (uint64_t)seed;
  double  *x, *y;

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(OT_STAGE_LOAD));
  PetscCall(PetscSNPrintf(pb->source, sizeof(pb->source),
                          "built-in example (Gaussian mixtures, n = %" PetscInt_FMT ", m = %" PetscInt_FMT ", seed %" PetscInt_FMT ")", n, m, seed));
  PetscCall(OTProblemAllocate(pb, n, m));
  PetscCall(PetscMalloc2(2 * n, &x, 2 * m, &y));
  DrawMixture(&state, n, 3, source_centres, 0.15, x);
  DrawMixture(&state, m, 2, target_centres, 0.2, y);
  for (PetscInt i = pb->row_start; i < pb->row_end; i++) {
    PetscReal *cost_row = pb->cost + (size_t)(i - pb->row_start) * (size_t)m;

    for (PetscInt j = 0; j < m; j++) {
      double dx = x[2 * i] - y[2 * j], dy = x[2 * i + 1] - y[2 * j + 1];

      cost_row[j] = dx * dx + dy * dy;
    }
    pb->a[i - pb->row_start] = 1.0 / n;
  }
  for (PetscInt j = 0; j < m; j++) pb->b[j] = 1.0 / m;
  PetscCall(PetscFree2(x, y));
  PetscCall(OTProblemFinalize(pb, pb->source));
  PetscCall(PetscLogStagePop());
  PetscFunctionReturn(0);
}
