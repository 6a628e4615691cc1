/* Benchmark (not a test): entries per second of one row of the plan exp((f + g_j - C_ij)/eps) on one
   core, for point clouds in dimension d (costs computed on the fly, fused with the exponentials) and for a
   stored dense row, and of the cost rows alone.
   usage: bench_costs [-bench_m M] [-bench_rows R] [-bench_dims 2,10] */
#include "otimpl.h"
#include "kernels.h"
#include <time.h>

/* This thread's CPU seconds: on a machine shared with other work, time spent descheduled is not counted. */
static double ThreadSeconds(void)
{
  struct timespec t;

  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds per row, the best of ten rounds of rows rows (the machine is shared: the best round is the
   one least disturbed). what: 0 the fused plan row, 1 the cost row alone. */
static double BestSeconds(OTProblem pb, PetscInt rows, int what, const PetscReal *g, PetscReal *out)
{
  double best = INFINITY, sink = 0.0;

  for (int round = 0; round < 10; round++) {
    double start = ThreadSeconds();

    for (PetscInt r = 0; r < rows; r++) {
      PetscInt i = r % pb->n_local;

      if (what == 0) sink += OTKernelPlanRow(pb, i, -0.1, g, 1.0 / 0.05, out).sum;
      else sink += OTKernelCostRow(pb, i, out).val[r % pb->m];
    }
    best = PetscMin(best, (ThreadSeconds() - start) / rows);
  }
  if (sink == 42.4242) printf(" "); /* keeps the work from being optimised away */
  return best;
}

int main(int argc, char **argv)
{
  PetscInt   m = 20000, rows = 100, dims[8] = {2, 10}, ndims = 8;
  OTProblem  pb;
  PetscReal *g, *out;
  uint64_t   state = 12345;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-bench_m", &m, NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-bench_rows", &rows, NULL));
  PetscCall(PetscOptionsGetIntArray(NULL, NULL, "-bench_dims", dims, &ndims, NULL));
  PetscCall(PetscMalloc2(m, &g, m, &out));
  for (PetscInt j = 0; j < m; j++) g[j] = 0.01 * (double)(j % 17);
  printf("%-34s %12s %16s\n", "row kernel (one core)", "ns/entry", "entries/s");

  /* dense: a stored 64 x m block of costs */
  PetscCall(OTProblemCreate(PETSC_COMM_SELF, &pb));
  PetscCall(OTProblemAllocate(pb, 64, m));
  for (size_t k = 0; k < (size_t)64 * m; k++) pb->cost[k] = (double)((state = state * 6364136223846793005ULL + 1442695040888963407ULL) >> 11) * 0x1.0p-53;
  {
    double t = BestSeconds(pb, rows, 0, g, out);
    printf("%-34s %12.3f %16.3e\n", "dense stored row: exp", 1e9 * t / m, m / t);
  }
  PetscCall(OTProblemDestroy(&pb));

  for (PetscInt q = 0; q < ndims; q++) {
    PetscInt d = dims[q];
    char     name[64];

    PetscCall(OTProblemCreate(PETSC_COMM_SELF, &pb));
    pb->n = pb->n_local = pb->row_end = 64;
    pb->m                             = m;
    pb->dim                           = d;
    pb->cost_kind                     = OT_COST_SQEUCLIDEAN;
    PetscCall(PetscMalloc1((size_t)64 * d, &pb->x));
    PetscCall(PetscMalloc1((size_t)m * d, &pb->y_t));
    for (size_t k = 0; k < (size_t)64 * d; k++) pb->x[k] = (double)((state = state * 6364136223846793005ULL + 1442695040888963407ULL) >> 11) * 0x1.0p-53;
    for (size_t k = 0; k < (size_t)m * d; k++) pb->y_t[k] = (double)((state = state * 6364136223846793005ULL + 1442695040888963407ULL) >> 11) * 0x1.0p-53;
    for (int kind = OT_COST_SQEUCLIDEAN; kind <= OT_COST_PNORM; kind++) {
      double t;

      pb->cost_kind  = (OTCostKind)kind;
      pb->cost_power = 1.5;
      t              = BestSeconds(pb, rows, 0, g, out);
      PetscCall(PetscSNPrintf(name, sizeof(name), "points d=%" PetscInt_FMT " %s: cost+exp", d, kind == OT_COST_PNORM ? "pnorm:1.5" : OTCostKinds[kind]));
      printf("%-34s %12.3f %16.3e\n", name, 1e9 * t / m, m / t);
    }
    pb->cost_kind = OT_COST_SQEUCLIDEAN;
    {
      double t = BestSeconds(pb, rows, 1, g, out);

      PetscCall(PetscSNPrintf(name, sizeof(name), "points d=%" PetscInt_FMT " sqeuclidean: cost", d));
      printf("%-34s %12.3f %16.3e\n", name, 1e9 * t / m, m / t);
    }
    PetscCall(OTProblemDestroy(&pb));
  }
  PetscCall(PetscFree2(g, out));
  PetscCall(PetscFinalize());
  return 0;
}
