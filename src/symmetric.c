/*
  Sinkhorn for a symmetric problem: (X, X) with the same weights a on both sides, the self terms OT_eps(a, a) of a
  Sinkhorn divergence (OTSolveSymmetric). Its optimum has f = g = h, the fixed point of

    T(h)_i = eps log a_i - eps log sum_j exp((h_j - C_ij) / eps),

  and the averaged iteration h <- (h + T(h)) / 2 (Feydy et al. 2019, the symmetric update of GeomLoss) converges
  to it in a few passes where alternating Sinkhorn on (f, g) crawls. Near the optimum, T's linearisation is -Pn with
  Pn = diag(1/a) P row-stochastic; a mode of Pn with eigenvalue mu in [0, 1] shrinks by (1 - mu)/2 a pass. Sinkhorn's
  slow modes are those with mu near 1 (clusters that the kernel barely connects: mu^2 a sweep), which the average
  removes at once; its worst rate is 1/2 (mu near 0). 2,000 + 1,500 5-D points in 10 tight clusters (otgen mixture,
  sigma 0.02) at eps = 0.005: 24 passes for each self term, where alternating sweeps took 311 for (X, X) and had not
  converged after 20,000 for (Y, Y). One pass over the owned rows gives T(h) and, from the same sums, the row marginals of
  P(h, h) = exp((h_i + h_j - C_ij)/eps), which are its column marginals too (P is symmetric): the marginal error is
  twice the rows' error, and D(h, h) = 2 <a, h> - eps sum P. The new h of the owned rows is then gathered on every
  rank (n numbers, where an alternating sweep reduces m column sums). Underflow is handled as in the log-domain
  sweep: a row whose sum leaves range is recomputed with its exact max as shift.
  The state is left as (f, g) = (h of the owned rows, h), so that Newton steps (SNS) and the evaluation go on from
  it as for any problem. Run without safe points: symmetric problems are parts of one solve (OTSolvePoints), which
  writes no checkpoints.
*/
#include "otimpl.h"

/* counts[r], displs[r]: the rows rank r owns, for MPI_Allgatherv. */
static PetscErrorCode RowCounts(OTProblem pb, PetscMPIInt counts[], PetscMPIInt displs[])
{
  PetscFunctionBegin;
  for (PetscMPIInt r = 0; r < pb->size; r++) {
    PetscInt start, end;

    PetscCall(OTRowSplit(pb->n, pb->size, r, &start, &end));
    counts[r] = (PetscMPIInt)(end - start);
    displs[r] = (PetscMPIInt)start;
  }
  PetscFunctionReturn(0);
}

/* One pass at h: next[i] = h_i + omega (T(h)_i - h_i) for the owned rows; sums[0] += sum_i |(P1)_i - a_i|, sums[1] += sum P,
   sums[2] += <a, h>, over the owned rows (unbalanced, -ot_unbalanced: T damped by rho / (rho + eps), the target
   a exp(-h/rho), the dual term -rho <a, exp(-h/rho) - 1>). Returns the rows that needed an exact shift. */
static PetscInt SymmetricPass(OTSolver s, const PetscReal *h, PetscReal omega, PetscReal *next, PetscReal sums[3])
{
  OTProblem pb      = s->problem;
  PetscReal inv_eps = 1.0 / s->eps, damp = OTDamping(pb->rho_a, s->eps); /* unbalanced: T(h) damped, rho_a = rho_b */
  PetscInt  rescued = 0;

  for (PetscInt i = 0; i < pb->n_local; i++) {
    PetscReal h_i = h[pb->row_start + i], shift = h_i, row_sum;
    OTRow     row = OTKernelPlanRow(pb, i, shift, h, inv_eps, s->row_plan);

    if (!(row.sum >= OT_TINY && row.sum <= 1e300)) {
      OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

      shift = OTRowMinMinus(&cost, h); /* = -max_j (h_j - C_ij) */
      row   = OTKernelPlanRow(pb, i, shift, h, inv_eps, s->row_plan);
      rescued++;
    }
    row_sum = row.sum * PetscExpReal((h_i - shift) * inv_eps); /* (P1)_i at h */
    next[i] = h_i + omega * (damp * (shift + s->eps * (PetscLogReal(pb->a[i]) - PetscLogReal(row.sum))) - h_i);
    sums[0] += PetscAbsReal(row_sum - OTMarginalTarget(pb->rho_a, pb->a[i], h_i));
    sums[1] += row_sum;
    sums[2] += OTMarginalDualTerm(pb->rho_a, pb->a[i], h_i);
  }
  return rescued;
}

PetscErrorCode OTSymmetricRun(OTSolver s, PetscInt max_sweeps, PetscInt first_iteration, PetscBool stop_when_close, PetscInt *sweeps, PetscBool *converged)
{
  OTProblem    pb = s->problem;
  PetscReal   *h = s->g, *next = s->f;
  PetscMPIInt *counts, *displs;
  PetscInt     it;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  if (first_iteration == 0 && s->monitor_every) PetscCall(OTSolverMonitorMemory(s));
  PetscCall(PetscMalloc2(pb->size, &counts, pb->size, &displs));
  PetscCall(RowCounts(pb, counts, displs));
  /* one potential: the average of the two sides (Newton steps keep them equal up to rounding) */
  for (PetscInt i = 0; i < pb->n_local; i++) next[i] = 0.5 * (s->f[i] + h[pb->row_start + i]);
  PetscCallMPI(MPI_Allgatherv(next, counts[pb->rank], MPIU_REAL, h, counts, displs, MPIU_REAL, s->comm));
  for (it = 1; it <= max_sweeps; it++) {
    PetscReal sums[4] = {0, 0, 0, 0}; /* row error, sum P, <a, h>, rescued rows */
    PetscBool leave   = PETSC_FALSE;

    PetscCall(PetscLogEventBegin(OT_EVENT_SWEEP, 0, 0, 0, 0));
    /* the first pass of a solve from h = 0 takes all of T(h): h = 0 is no estimate worth averaging with */
    sums[3] = (PetscReal)SymmetricPass(s, h, it == 1 && first_iteration == 0 ? 1.0 : 0.5, next, sums);
    PetscCall(PetscLogEventEnd(OT_EVENT_SWEEP, 0, 0, 0, 0));
    s->rescued_rows += (PetscInt)sums[3];
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, sums, 3, MPIU_REAL, MPIU_SUM, s->comm));
    PetscCall(OTSinkhornVerdict(s, first_iteration + it, 2.0 * sums[0], 2.0 * sums[2] - s->eps * sums[1], stop_when_close, converged, &leave));
    /* converged: the state is the h just measured; else the update is taken before leaving, so that the next run
       (SNS: after Newton declined or lost) does not repeat this pass */
    if (leave && (*converged || s->result.reason != OT_REASON_NONE)) break;
    PetscCallMPI(MPI_Allgatherv(next, counts[pb->rank], MPIU_REAL, h, counts, displs, MPIU_REAL, s->comm));
    if (leave) break;
  }
  PetscCall(PetscArraycpy(s->f, h + pb->row_start, pb->n_local));
  *sweeps = PetscMin(it, max_sweeps);
  PetscCall(PetscFree2(counts, displs));
  PetscCall(PetscInfo(NULL, "Symmetric Sinkhorn: %" PetscInt_FMT " averaged passes, %" PetscInt_FMT " row rescues on rank %d\n", *sweeps, s->rescued_rows,
                      s->rank));
  PetscFunctionReturn(0);
}
