/* Benchmark (not a test): this machine's read bandwidth, measured the way a Sinkhorn sweep reads a stored
   matrix (an iteration on a stored n x m matrix cannot be faster than reading it once).

   Each rank allocates its share of a buffer of -bytes B in total (default 512e6, the 8000 x 8000 float64
   matrix), with the allocator and the 2 MB page advice the solver uses for its kernel, and fills it, so its pages are
   resident before timing. Then -rounds R times: MPI_Barrier, each rank reads its whole share once (a sum of
   doubles in 8 interleaved partial sums, which gcc vectorises without -ffast-math, compiled for AVX2 and for
   baseline x86-64 like the solver's hot loops), and the round takes the time of the slowest rank
   (MPI_Allreduce MAX), as a sweep that ends in a collective does. The best round is the least disturbed
   one on this shared machine; the median is printed next to it.

   Why this is the bound: a sweep streams each of its rows once from memory and does a few flops per entry;
   if it did no arithmetic at all it would run at this speed. B should be much larger than the last-level
   cache (32 MiB here) or the figure is cache bandwidth.

   Output: key = value lines, read_bandwidth_GBps (best round, 1e9 bytes per second over all ranks),
   read_bandwidth_median_GBps, ranks, bytes, rounds.
   usage: mpiexec -n N bench_bandwidth [-bytes 512e6] [-rounds 10] */
#include "otimpl.h"
#include "kernels.h"

/* The sum of x[0..count): reads every byte once (kernels.h's OTSum: 8 independent partial sums, vectorised). */
OT_HOT_LOOP static double ReadShare(size_t count, const double *restrict x)
{
  return OTSum((int64_t)count, x);
}

static int CompareDoubles(const void *x, const void *y)
{
  double a = *(const double *)x, b = *(const double *)y;

  return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
  PetscReal   bytes  = 512e6;
  PetscInt    rounds = 10;
  PetscMPIInt rank, size;
  size_t      total, count;
  double     *share, *seconds, checksum = 0.0;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCallMPI(MPI_Comm_size(PETSC_COMM_WORLD, &size));
  PetscCall(PetscOptionsGetReal(NULL, NULL, "-bytes", &bytes, NULL));
  PetscCall(PetscOptionsGetInt(NULL, NULL, "-rounds", &rounds, NULL));
  PetscCheck(bytes >= 8.0 * size, PETSC_COMM_WORLD, PETSC_ERR_ARG_OUTOFRANGE, "-bytes %g: give at least 8 bytes per rank", (double)bytes);
  PetscCheck(rounds >= 1, PETSC_COMM_WORLD, PETSC_ERR_ARG_OUTOFRANGE, "-rounds %" PetscInt_FMT ": give at least 1", rounds);

  /* rank r reads doubles [r * total / size, (r + 1) * total / size): contiguous, as its rows of C */
  total = (size_t)(bytes / 8.0);
  count = (size_t)(((unsigned long long)total * (rank + 1)) / size - ((unsigned long long)total * rank) / size);
  PetscCall(PetscMalloc1(PetscMax(count, 1), &share));
  OTAdviseHugePages(share, 8 * count); /* as the solver does for its stored kernel */
  PetscCall(PetscMalloc1(rounds, &seconds));
  for (size_t j = 0; j < count; j++) share[j] = 1.0 / (double)(1 + j % 7); /* touches every page on its rank */

  for (PetscInt r = 0; r < rounds; r++) {
    double start, local;

    PetscCallMPI(MPI_Barrier(PETSC_COMM_WORLD));
    start = MPI_Wtime();
    checksum += ReadShare(count, share);
    local = MPI_Wtime() - start;
    PetscCallMPI(MPI_Allreduce(&local, &seconds[r], 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD));
  }
  qsort(seconds, (size_t)rounds, sizeof(double), CompareDoubles);
  /* the checksum is used, so the reads cannot be optimised away */
  PetscCall(PetscSynchronizedPrintf(PETSC_COMM_WORLD, "# rank %d: %zu bytes, checksum %.6e\n", rank, 8 * count, checksum));
  PetscCall(PetscSynchronizedFlush(PETSC_COMM_WORLD, PETSC_STDOUT));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "ranks = %d\n", size));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "bytes = %zu\n", 8 * total));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "rounds = %" PetscInt_FMT "\n", rounds));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "read_bandwidth_GBps = %.3f\n", 8.0 * (double)total / seconds[0] / 1e9));
  PetscCall(PetscPrintf(PETSC_COMM_WORLD, "read_bandwidth_median_GBps = %.3f\n", 8.0 * (double)total / seconds[rounds / 2] / 1e9));
  PetscCall(PetscFree(seconds));
  PetscCall(PetscFree(share));
  PetscCall(PetscFinalize());
  return 0;
}
