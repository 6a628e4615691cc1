/*
  OTSolverSolve (docs/design.md §5): the eps stages (the coarse levels of multiscale.c first, where they apply), the
  target stage with its evaluation, the certified bounds, and the outcome: converged, stopped, or broken down.
*/
#include "otimpl.h"

/* The result's reason, converged flag, Wasserstein values and status line, from the final evaluation. */
static PetscErrorCode SetOutcome(OTSolver s, PetscBool converged)
{
  OTResult *r          = &s->result;
  PetscInt  iterations = r->iterations_sinkhorn + r->iterations_newton;

  PetscFunctionBegin;
  /* converged reports the independent evaluation, not the iteration's own estimate */
  r->converged = (PetscBool)(converged && r->marginal_error <= s->tol && r->reason == OT_REASON_NONE);
  if (r->reason == OT_REASON_NONE && PetscIsInfOrNanReal(r->marginal_error)) {
    r->reason = OT_REASON_BREAKDOWN;
    PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "NaN or Inf in the final evaluation after %" PetscInt_FMT " iterations", iterations));
  }
  if (r->reason == OT_REASON_NONE) r->reason = r->converged ? OT_REASON_CONVERGED : OT_REASON_MAX_IT;
  {
    /* costs that are a distance to a power p: W_p = (transport cost)^(1/p), and so for the bounds */
    PetscReal p = OTCostExponent(s->problem->cost_kind, s->problem->cost_power);

    if (p > 0 && !OTProblemIsUnbalanced(s->problem)) {
      r->wasserstein       = PetscPowReal(PetscMax(r->transport_cost, 0.0), 1.0 / p);
      r->wasserstein_lower = PetscPowReal(PetscMax(r->lower_bound, 0.0), 1.0 / p);
      r->wasserstein_upper = PetscPowReal(PetscMax(r->upper_bound, 0.0), 1.0 / p);
    }
  }
  if (!r->status[0]) {
    if (r->converged)
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "converged: marginal error %.3e <= tol %.3e", (double)r->marginal_error, (double)s->tol));
    else if (s->eps_stage < s->eps_stages - 1)
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status),
                              "not converged: stopped by -ot_max_it after %" PetscInt_FMT " iterations in eps stage %" PetscInt_FMT " of %" PetscInt_FMT
                              " (eps = %g, above the target)",
                              iterations, s->eps_stage + 1, s->eps_stages, (double)s->eps));
    else if (iterations < s->max_it) /* the sweeps' own estimate reached tol four times, the independent evaluation did not */
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status),
                              "not converged: marginal error %.3e > tol %.3e after %" PetscInt_FMT " iterations: tol is below what rounding allows here",
                              (double)r->marginal_error, (double)s->tol, iterations));
    else
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "not converged: marginal error %.3e > tol %.3e after %" PetscInt_FMT " iterations (-ot_max_it)",
                              (double)r->marginal_error, (double)s->tol, iterations));
  }
  PetscFunctionReturn(0);
}

/* A restart from a state that already meets -ot_tol at the target eps (the checkpoint a run leaves when it could
   not write its result): one evaluation, no iteration. Collective. */
static PetscErrorCode RestartConverged(OTSolver s, PetscBool *converged)
{
  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  if (s->eps_stage != s->eps_stages - 1) PetscFunctionReturn(0);
  s->eps = s->eps_schedule[s->eps_stage];
  PetscCall(PetscLogStagePush(OT_STAGE_FINISH));
  if (s->variant == OT_SINKHORN_TRUNCATED) PetscCall(OTTruncatedEvaluate(s, &s->result));
  else PetscCall(OTEvaluate(s->problem, s->eps, s->f, s->g, &s->result));
  PetscCall(PetscLogStagePop());
  *converged = (PetscBool)(s->result.marginal_error <= s->tol);
  if (*converged) PetscCall(PetscPrintf(s->comm, "otsolve: the checkpoint's state meets -ot_tol already: no iteration\n"));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSolve(OTSolver s)
{
  OTResult *r         = &s->result;
  PetscBool converged = PETSC_FALSE, restart_done = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(OTSolverSetUp(s));
  if (s->view) PetscCall(OTSolverView(s, PETSC_VIEWER_STDOUT_(s->comm)));
  s->history_len  = 0;
  s->solve_start  = MPI_Wtime();
  s->last_monitor = s->solve_start;
  PetscCall(PetscStrcpy(r->status, ""));
  r->reason      = OT_REASON_NONE;
  r->wasserstein = r->wasserstein_lower = r->wasserstein_upper = r->sinkhorn_divergence = r->unbalanced_objective = NAN;
  r->divergence_converged                                                               = PETSC_FALSE;
  r->iterations_sinkhorn = r->iterations_newton = 0;
  r->checkpoint_failures                        = 0;
  r->checkpoint_error[0]                        = '\0';
  r->sinkhorn_time                              = 0.0;
  r->solve_time_restored                        = 0.0;
  OTSNSResetStage(s);
  s->newton_work      = 0.0;
  s->newton_ksp       = 0;
  s->newton_kept_cap  = 0;
  s->g_update_pending = PETSC_FALSE;
  s->eps_stage        = 0;
  s->eps              = s->eps_schedule[0];
  if (s->restart_file[0]) {
    PetscCall(OTSolverLoadCheckpoint(s, s->restart_file));
    PetscCall(PetscPrintf(s->comm, "otsolve: resuming from %s after %" PetscInt_FMT " Sinkhorn sweeps and %" PetscInt_FMT " Newton steps\n", s->restart_file,
                          r->iterations_sinkhorn, r->iterations_newton));
  }
  s->last_checkpoint = MPI_Wtime();
  if (s->checkpoint_file[0]) PetscCall(OTSignalsCatch());
  if (s->restart_file[0]) PetscCall(RestartConverged(s, &restart_done));
  if (!restart_done && !s->restart_file[0]) PetscCall(OTMultiscaleRun(s));
  if (!restart_done) PetscCall(OTSolverRunEpsStages(s, &converged));
  converged = (PetscBool)(converged || restart_done);
  OTSolverCarryPotentials(s, s->eps_schedule[s->eps_stage]);
  for (int attempt = 0; !restart_done; attempt++) {
    PetscCall(OTSolverRunStage(s, &converged));
    if (r->reason == OT_REASON_INTERRUPTED) break; /* leave at once: the batch system's grace time is short */
    PetscCall(PetscLogStagePush(OT_STAGE_FINISH));
    if (s->variant == OT_SINKHORN_TRUNCATED) PetscCall(OTTruncatedEvaluate(s, r));
    else PetscCall(OTEvaluate(s->problem, s->eps, s->f, s->g, r));
    PetscCall(PetscLogStagePop());
    /* the iteration's own error estimate may miss rounding that the independent evaluation counts: then
       iterate on (a few times at most) */
    if (!converged || r->marginal_error <= s->tol || r->iterations_sinkhorn + r->iterations_newton >= s->max_it || attempt == 3) break;
  }
  /* SIGTERM and SIGUSR1 stay caught until OTSolverDestroy: one that arrives while the result is evaluated and
     written (a time limit's signal, just after the last sweep) must not kill the process with the answer in hand; it
     has nothing left to stop */
  r->solve_time = MPI_Wtime() - s->solve_start;
  r->converged  = PETSC_FALSE;
  if (r->reason == OT_REASON_INTERRUPTED) PetscFunctionReturn(0);
  PetscCall(PetscLogStagePush(OT_STAGE_FINISH));
  if (OTProblemIsUnbalanced(s->problem)) r->lower_bound = r->upper_bound = NAN; /* the bounds are on balanced OT (docs/design.md §1) */
  else if (s->variant == OT_SINKHORN_TRUNCATED) PetscCall(OTTruncatedBounds(s, &r->lower_bound, &r->upper_bound));
  else PetscCall(OTComputeBounds(s->problem, s->eps, s->f, s->g, &r->lower_bound, &r->upper_bound));
  PetscCall(PetscLogStagePop());
  PetscCall(SetOutcome(s, converged));
  /* a run stopped by -ot_max_it can go on later from where it ended: -ot_restart with a larger -ot_max_it */
  if (r->reason == OT_REASON_MAX_IT && s->checkpoint_file[0]) {
    PetscBool written;

    PetscCall(OTSolverWriteCheckpoint(s, s->checkpoint_file, &written));
  }
  r->solve_time = MPI_Wtime() - s->solve_start;
  PetscFunctionReturn(0);
}
