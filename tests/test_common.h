/* Shared set-up of the Criterion unit tests: each test runs in its own process, as a one-rank MPI job. */
#ifndef OT_TEST_COMMON_H
#define OT_TEST_COMMON_H

#include <criterion/criterion.h>
#include "otimpl.h"

static void OTTestInit(void)
{
  cr_assert(PetscInitializeNoArguments() == 0, "PetscInitialize failed");
}

static void OTTestFini(void)
{
  PetscFinalize();
}

/* A one-rank problem with the given costs and weights (copied). */
static inline OTProblem OTTestProblem(PetscInt n, PetscInt m, const double *cost, const double *a, const double *b)
{
  OTProblem pb;

  cr_assert(OTProblemCreate(PETSC_COMM_SELF, &pb) == 0);
  cr_assert(OTProblemAllocate(pb, n, m) == 0);
  for (PetscInt k = 0; k < n * m; k++) pb->cost[k] = cost[k];
  for (PetscInt i = 0; i < n; i++) pb->a[i] = a[i];
  for (PetscInt j = 0; j < m; j++) pb->b[j] = b[j];
  cr_assert(OTProblemFinalize(pb, "test problem") == 0);
  return pb;
}

#endif
