/*
  What a solve shows while it runs and after: the history (one row per Sinkhorn sweep or Newton step, written
  to /history), the progress lines of -ot_monitor, the memory estimate, -ot_view, and the final key = value
  summary that scripts read.
*/
#include "otimpl.h"

PetscErrorCode OTSolverHistoryAppend(OTSolver s, OTStage stage, PetscInt iteration, PetscReal marginal_error, PetscReal dual_objective)
{
  PetscFunctionBegin;
  if (s->history_len == s->history_cap) {
    OTHistoryRow *grown;

    s->history_cap = PetscMax(1024, 2 * s->history_cap);
    PetscCall(PetscMalloc1(s->history_cap, &grown));
    if (s->history_len) PetscCall(PetscArraycpy(grown, s->history, s->history_len));
    PetscCall(PetscFree(s->history));
    s->history = grown;
  }
  s->history[s->history_len].stage          = (int)stage;
  s->history[s->history_len].iteration      = iteration;
  s->history[s->history_len].time           = MPI_Wtime() - s->solve_start;
  s->history[s->history_len].marginal_error = marginal_error;
  s->history[s->history_len].dual_objective = dual_objective;
  s->history[s->history_len].eps            = s->eps;
  s->history_len++;
  PetscFunctionReturn(0);
}

/* The seconds left to the tolerance of this eps stage (s->tol) at the recent rate (and the sweeps, sweeps_left); -1
   where the error is not decreasing, -2 where this stage has had no sweep before this one. The rate: the marginal
   error's geometric rate per sweep and the seconds per sweep over this stage's Sinkhorn sweeps since the previous
   progress line (`since`, on the history's clock), at least the last 10 of them. */
static PetscReal SecondsLeft(OTSolver s, PetscReal since, PetscReal *sweeps_left)
{
  const OTHistoryRow *now = &s->history[s->history_len - 1], *then = NULL;
  PetscReal           rate;

  for (PetscInt k = s->history_len - 2; k >= 0; k--) {
    const OTHistoryRow *row = &s->history[k];

    if (row->stage != OT_STAGE_SINKHORN || row->eps != now->eps) break; /* a Newton step, or the previous eps stage */
    then = row;
    if (row->time <= since && now->iteration - row->iteration >= 10) break;
  }
  if (now->stage != OT_STAGE_SINKHORN || !then || now->iteration <= then->iteration) return -2;
  if (!(now->marginal_error > 0) || !(then->marginal_error > 0)) return -1;
  if (now->marginal_error <= s->tol) return 0;
  rate = PetscLogReal(then->marginal_error / now->marginal_error) / (PetscReal)(now->iteration - then->iteration);
  if (!(rate > 0) || PetscIsInfOrNanReal(rate)) return -1;
  *sweeps_left = PetscLogReal(now->marginal_error / s->tol) / rate;
  return *sweeps_left * (now->time - then->time) / (PetscReal)(now->iteration - then->iteration);
}

PetscErrorCode OTSolverMonitor(OTSolver s, OTStage stage, PetscInt iteration, PetscReal marginal_error, PetscReal dual_objective, PetscBool last)
{
  PetscReal since = s->last_monitor - s->solve_start, left, sweeps_left = 0;
  char      estimate[96];

  PetscFunctionBegin;
  if (s->monitor_every) {
    if (!last && iteration % s->monitor_every) PetscFunctionReturn(0);
  } else { /* no -ot_monitor: a line every -ot_monitor_seconds on long runs */
    if (s->monitor_seconds <= 0 || MPI_Wtime() - s->last_monitor < s->monitor_seconds) PetscFunctionReturn(0);
  }
  s->last_monitor = MPI_Wtime();
  left            = s->history_len ? SecondsLeft(s, since, &sweeps_left) : -2;
  if (left >= 0)
    PetscCall(PetscSNPrintf(estimate, sizeof(estimate), "%.1f s (%s, at the recent rate%s)", (double)left,
                            s->eps_stage < s->eps_stages - 1 ? "this eps stage" : "to -ot_tol",
                            iteration + sweeps_left > (PetscReal)s->max_it ? "; past -ot_max_it" : ""));
  else PetscCall(PetscSNPrintf(estimate, sizeof(estimate), "unknown (%s)", left > -2 ? "the error is not decreasing" : "no rate yet in this eps stage"));
  PetscCall(PetscPrintf(s->comm,
                        "  %s %6" PetscInt_FMT "  marginal_error %.6e  dual %.15e  time %.3f s  eps_stage %" PetscInt_FMT "/%" PetscInt_FMT
                        "  estimated_left %s\n",
                        stage == OT_STAGE_SINKHORN ? "sinkhorn" : "newton", iteration, (double)marginal_error, (double)dual_objective,
                        (double)(MPI_Wtime() - s->solve_start), s->eps_stage + 1, PetscMax(s->eps_stages, 1), estimate));
  PetscFunctionReturn(0);
}

/* With -ot_monitor, once at the start of a solve: an estimate of the bytes the largest rank holds (problem,
   potentials and work vectors, the stored kernel, the Newton system), so that a user sees before a long run
   that nothing of size n x m is allocated for point clouds. The Newton part counts the kept entries of P
   twice (row and transposed) in the assembled AIJ matrix with its column indices and the CSR work arrays; where
   P is not sparse the mass rule (-ot_newton_drop) may keep more, up to the budget (-ot_newton_memory), shown too. */
PetscErrorCode OTSolverMonitorMemory(OTSolver s)
{
  OTProblem pb = s->problem;
  double    problem_bytes, solver_bytes, kernel_bytes = 0.0, newton_bytes = 0.0, newton_most = 0.0, local[5], largest[5];

  PetscFunctionBegin;
  PetscCall(OTProblemMemoryBytes(pb, &problem_bytes));
  /* f, u_next; g, row_plan, col_sum, v_next, rescue list; evaluation and bounds work vectors (about 4 m + 3 n_local) */
  solver_bytes = 8.0 * (5.0 * pb->n_local + 9.0 * pb->m);
  if (s->variant == OT_SINKHORN_ABSORB) kernel_bytes = 8.0 * ((double)pb->n_local * (double)pb->m + 2.0 * pb->n_local + 2.0 * pb->m);
  if (s->method == OT_METHOD_SNS) PetscCall(OTNewtonMemoryEstimate(s, &newton_bytes, &newton_most));
  local[0] = problem_bytes + solver_bytes + kernel_bytes + newton_bytes;
  local[1] = problem_bytes;
  local[2] = kernel_bytes;
  local[3] = newton_bytes;
  local[4] = newton_most;
  PetscCallMPI(MPI_Allreduce(local, largest, 5, MPI_DOUBLE, MPI_MAX, s->comm));
  PetscCall(PetscPrintf(s->comm,
                        "  memory estimate per rank (largest): %.1f MB: problem %.1f MB (%s), stored kernel %.1f MB, Newton %.1f MB (at most %.1f MB: -ot_newton_memory), the rest vectors of length n_local or m\n",
                        largest[0] / 1e6, largest[1] / 1e6,
                        pb->cost_kind == OT_COST_DENSE ? "its rows of C"
                                                       : (largest[2] > 0 ? "its points of X, all of Y" : "its points of X, all of Y; nothing of size n x m"),
                        largest[2] / 1e6, largest[3] / 1e6, largest[4] / 1e6));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverView(OTSolver s, PetscViewer viewer)
{
  OTProblem pb = s->problem;

  PetscFunctionBegin;
  PetscCall(PetscViewerASCIIPrintf(viewer, "OTSolver: method %s on %d rank(s)\n", OTMethods[s->method], s->size));
  PetscCall(PetscViewerASCIIPushTab(viewer));
  if (pb) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "problem: %s, n = %" PetscInt_FMT ", m = %" PetscInt_FMT ", max C = %g, mass = %g\n", pb->source, pb->n, pb->m,
                                     (double)pb->cost_max, (double)pb->mass));
  }
  PetscCall(PetscViewerASCIIPrintf(viewer, "eps = %g, tol = %g, max_it = %" PetscInt_FMT ", Sinkhorn variant %s%s, kernel precision %s\n", (double)s->eps,
                                   (double)s->tol, s->max_it, OTSinkhornVariants[s->variant],
                                   s->variant == OT_SINKHORN_AUTO ? " (decided at the first sweep)" : "", OTKernelPrecisions[s->kernel_precision]));
  if (s->eps_stages > 1) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "eps schedule (%" PetscInt_FMT " stages, each above the target to marginal error <= %g x mass):", s->eps_stages,
                                     (double)s->eps_stage_tol));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_FALSE));
    for (PetscInt k = 0; k < s->eps_stages; k++) PetscCall(PetscViewerASCIIPrintf(viewer, " %g", (double)s->eps_schedule[k]));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_TRUE));
  }
  if (s->method == OT_METHOD_SNS) {
    PetscCall(PetscViewerASCIIPrintf(viewer,
                                     "SNS: warm-up <= %" PetscInt_FMT " sweeps (leave at marginal error < %g x mass), fallback %" PetscInt_FMT
                                     " sweeps, time check %s\n",
                                     s->warmup_max, (double)s->newton_switch, s->fallback_sweeps, s->newton_time_check ? "on" : "off"));
    PetscCall(OTNewtonView(s, viewer));
  }
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscFunctionReturn(0);
}

/* The checkpoints that could not be written (the solve went on without them), if any. */
static PetscErrorCode PrintCheckpointFailures(OTSolver s)
{
  PetscFunctionBegin;
  if (s->result.checkpoint_failures)
    PetscCall(PetscPrintf(s->comm, "checkpoint_failures = %" PetscInt_FMT "\ncheckpoint_error = %s\n", s->result.checkpoint_failures,
                          s->result.checkpoint_error));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverPrintSummary(OTSolver s)
{
  OTResult *r = &s->result;

  PetscFunctionBegin;
  PetscCall(PetscPrintf(s->comm, "status = %s\n", r->status));
  PetscCall(PetscPrintf(s->comm, "n = %" PetscInt_FMT "\nm = %" PetscInt_FMT "\nranks = %d\n", s->problem->n, s->problem->m, s->size));
  if (r->reason == OT_REASON_INTERRUPTED) { /* nothing was evaluated: only what a restart needs to know */
    PetscCall(PetscPrintf(s->comm, "checkpoint = %s\ncheckpoint_written = %d\n", s->checkpoint_file, (int)r->checkpoint_written));
    PetscCall(PrintCheckpointFailures(s));
    PetscCall(PetscPrintf(s->comm, "iterations_sinkhorn = %" PetscInt_FMT "\niterations_newton = %" PetscInt_FMT "\n", r->iterations_sinkhorn,
                          r->iterations_newton));
    PetscCall(PetscPrintf(s->comm, "interrupted = 1\nconverged = 0\n"));
    PetscFunctionReturn(0);
  }
  /* the honest numbers first: the certified bounds on the unregularised problem, then the entropic plan's values */
  if (!PetscIsNanReal(r->wasserstein)) {
    PetscCall(PetscPrintf(s->comm, "# the Wasserstein distance W_p lies in [wasserstein_lower, wasserstein_upper] (certified); wasserstein is the "
                                   "entropic estimate transport_cost^(1/p), biased upwards\n"));
    PetscCall(PetscPrintf(s->comm, "wasserstein_lower = %.17g\nwasserstein_upper = %.17g\n", (double)r->wasserstein_lower, (double)r->wasserstein_upper));
    PetscCall(PetscPrintf(s->comm, "wasserstein = %.17g\n", (double)r->wasserstein));
  }
  if (OTProblemIsUnbalanced(s->problem)) {
    PetscCall(PetscPrintf(s->comm, "# unbalanced transport: no certified bounds (they bound balanced OT); the objective adds rho KL(marginal | weights) per relaxed side\n"));
    PetscCall(PetscPrintf(s->comm, "unbalanced_objective = %.17g\n", (double)r->unbalanced_objective));
    PetscCall(PetscPrintf(s->comm, "transported_mass = %.17g\n", (double)r->transported_mass));
    PetscCall(PetscPrintf(s->comm, "kl_a = %.17g\nkl_b = %.17g\n", (double)r->kl_a, (double)r->kl_b));
  } else {
    PetscCall(PetscPrintf(s->comm, "lower_bound = %.17g\n", (double)r->lower_bound));
    PetscCall(PetscPrintf(s->comm, "upper_bound = %.17g\n", (double)r->upper_bound));
  }
  PetscCall(PetscPrintf(s->comm, "eps = %.17g\n", (double)r->eps));
  PetscCall(PetscPrintf(s->comm, "transport_cost = %.17g\n", (double)r->transport_cost));
  PetscCall(PetscPrintf(s->comm, "dual_objective = %.17g\n", (double)r->dual_objective));
  PetscCall(PetscPrintf(s->comm, "entropic_cost = %.17g\n", (double)r->entropic_cost));
  PetscCall(PetscPrintf(s->comm, "marginal_error = %.6e\n", (double)r->marginal_error));
  if (s->variant == OT_SINKHORN_TRUNCATED) PetscCall(PetscPrintf(s->comm, "dropped_mass = %.3e\n", (double)r->dropped_mass));
  if (!PetscIsNanReal(r->sinkhorn_divergence)) {
    PetscCall(PetscPrintf(s->comm, "sinkhorn_divergence = %.17g\n", (double)r->sinkhorn_divergence));
    PetscCall(PetscPrintf(s->comm, "divergence_converged = %d\n", (int)r->divergence_converged));
  }
  PetscCall(PetscPrintf(s->comm, "iterations_sinkhorn = %" PetscInt_FMT "\n", r->iterations_sinkhorn));
  PetscCall(PetscPrintf(s->comm, "iterations_newton = %" PetscInt_FMT "\n", r->iterations_newton));
  PetscCall(PetscPrintf(s->comm, "solve_time = %.6f\n", (double)r->solve_time));
  if (r->solve_time_restored > 0) PetscCall(PetscPrintf(s->comm, "solve_time_restored = %.6f\n", (double)r->solve_time_restored));
  PetscCall(PetscPrintf(s->comm, "sinkhorn_seconds_per_iteration = %.6e\n", (double)(r->sinkhorn_time / PetscMax(1, r->iterations_sinkhorn))));
  PetscCall(PrintCheckpointFailures(s));
  PetscCall(PetscPrintf(s->comm, "converged = %d\n", (int)r->converged));
  PetscFunctionReturn(0);
}
