/*
  The stored absorbed kernel's life (sinkhorn.c sweeps on it, docs/design.md §1): which variant -ot_sinkhorn_variant
  auto picks, the kernel's allocation (double, or float for the single-precision phase) with huge pages, the float
  kernel's hand-over to a double one, and whether a new run of sweeps can resume on the kernel as it is.
*/
#define _DEFAULT_SOURCE /* madvise and MADV_HUGEPAGE, beyond the project's POSIX level */
#include "otimpl.h"
#include <sys/mman.h>

PetscErrorCode OTSinkhornChooseVariant(OTSolver s)
{
  OTProblem pb = s->problem;
  double    kernel_bytes = 8.0 * pb->n_local * pb->m;
  int       fits;

  PetscFunctionBegin;
  if (s->variant != OT_SINKHORN_AUTO) PetscFunctionReturn(0);
  if (pb->symmetric) { /* the averaged iteration of a symmetric problem (symmetric.c) sweeps in the log domain */
    s->variant = OT_SINKHORN_LOG;
    PetscFunctionReturn(0);
  }
  /* point clouds too: their kernel is computed once, where the log domain computes every cost and exponential in
     every sweep (8,000 + 6,000 3-D points on 2 ranks: 7.4 s with the kernel, 26 s without); a problem whose kernel
     does not fit stays O(n + m) per rank. A quarter, not more: the kernel's pages cost their first touch too (2-3 s
     a GB on the project's machine), and the default method's memory stays bounded (30,000 + 30,000 points would
     store 7.2 GB) */
  fits = kernel_bytes <= s->memory_share;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &fits, 1, MPI_INT, MPI_LAND, s->comm));
  s->variant = fits ? OT_SINKHORN_ABSORB : OT_SINKHORN_LOG;
  PetscCall(PetscInfo(NULL, "Sinkhorn variant %s: kernel needs %.3g GB on this rank, its share of the node's memory is %.3g GB\n", OTSinkhornVariants[s->variant],
                      kernel_bytes / 1e9, s->memory_share / 1e9));
  PetscFunctionReturn(0);
}

/* The stored kernel, where the variant asks for one (decided on every rank alike: a rank without rows has a NULL
   kernel but takes the same branches); single: the float kernel is in use (a flag, not its pointer). Collective. */
PetscErrorCode OTSinkhornSetUpKernel(OTSolver s, PetscBool *use_kernel, PetscBool *single)
{
  PetscInt n_local = s->problem->n_local, m = s->problem->m;

  PetscFunctionBegin;
  *use_kernel = (PetscBool)(s->variant == OT_SINKHORN_ABSORB);
  if (*use_kernel && !s->v) PetscCall(PetscMalloc4(n_local, &s->store.f_ref, n_local, &s->u, m, &s->store.g_ref, m, &s->v));
  *single = (PetscBool)(*use_kernel && s->kernel_precision == OT_KERNEL_SINGLE && !s->single_phase_over);
  if (*use_kernel && !s->store.k && !s->store.k_single) {
    if (*single) {
      PetscCall(PetscMalloc1((size_t)n_local * (size_t)m, &s->store.k_single));
      OTAdviseHugePages(s->store.k_single, sizeof(float) * (size_t)n_local * (size_t)m);
    } else {
      PetscCall(PetscMalloc1((size_t)n_local * (size_t)m, &s->store.k));
      OTAdviseHugePages(s->store.k, sizeof(PetscReal) * (size_t)n_local * (size_t)m);
    }
  }
  PetscFunctionReturn(0);
}

/* Whether a run can resume on the stored (double) kernel instead of rebuilding it in a log-domain pass: it was built at
   this eps and the scalings u = exp((f - f_ref)/eps), v = exp((g - g_ref)/eps) that turn it into P at the state (f, g)
   are all in range on every rank (SNS's Sinkhorn runs between Newton steps, whose survey rebuilds the kernel).
   Collective. */
PetscErrorCode OTSinkhornResumeAbsorbed(OTSolver s, PetscBool use_kernel, PetscBool single, PetscBool *absorbed)
{
  OTProblem pb = s->problem;
  int       ok = use_kernel && !single && s->store.eps == s->eps && (pb->n_local == 0 || s->store.k);

  PetscFunctionBegin;
  for (PetscInt i = 0; ok && i < pb->n_local; i++) {
    s->u[i] = PetscExpReal((s->f[i] - s->store.f_ref[i]) / s->eps);
    ok      = OTScalingInRange(s->u[i], OT_SCALING_MAX);
  }
  for (PetscInt j = 0; ok && j < pb->m; j++) {
    s->v[j] = PetscExpReal((s->g[j] - s->store.g_ref[j]) / s->eps);
    ok      = OTScalingInRange(s->v[j], OT_SCALING_MAX);
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, s->comm));
  *absorbed = (PetscBool)ok;
  PetscFunctionReturn(0);
}

/* The float kernel has done its part: it makes room for a double one, which the next log-domain pass builds. */
PetscErrorCode OTSinkhornHandOverToDouble(OTSolver s, PetscInt iteration, PetscReal marginal_error)
{
  size_t entries = (size_t)s->problem->n_local * (size_t)s->problem->m;

  PetscFunctionBegin;
  PetscCall(PetscFree(s->store.k_single));
  PetscCall(PetscMalloc1(entries, &s->store.k));
  s->store.eps = 0.0;
  OTAdviseHugePages(s->store.k, sizeof(PetscReal) * entries);
  PetscCall(PetscInfo(NULL, "Single-precision kernel handed over to double at sweep %" PetscInt_FMT ", marginal error %g\n", iteration,
                      (double)marginal_error));
  PetscFunctionReturn(0);
}

/* Asks the operating system for 2 MB pages over an allocation (before its first touch): a sweep streams through
   the stored kernel once, and with 4 kB pages every 4 kB costs a TLB miss and a page walk. Only advice: without
   transparent huge pages it changes nothing. */
void OTAdviseHugePages(void *start, size_t bytes)
{
#if defined(MADV_HUGEPAGE)
  const uintptr_t huge = (uintptr_t)2 << 20, first = ((uintptr_t)start + huge - 1) & ~(huge - 1), end = ((uintptr_t)start + bytes) & ~(huge - 1);

  if (end > first) (void)madvise((void *)first, end - first, MADV_HUGEPAGE);
#else
  (void)start;
  (void)bytes;
#endif
}
