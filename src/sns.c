/*
  The policy of -ot_method sns and of eps-scaling: which stage runs when. The eps schedule (-ot_eps_schedule),
  Sinkhorn's warm-up, the switch to Newton steps, fallback sweeps after a rejected step, density raises after
  slow steps, and the time check that hands an eps stage to Sinkhorn where Newton does not pay for itself.
  The stages themselves are in sinkhorn.c and newton_step.c; this file decides only.
*/
#include "otimpl.h"
#include <stdlib.h>
#include <string.h>

/* Builds the eps schedule from -ot_eps_schedule and the target eps (s->eps): decreasing values above the
   target, then the target. The same on every rank (options are). */
PetscErrorCode OTSolverBuildEpsSchedule(OTSolver s)
{
  const char *spec = s->eps_schedule_spec, *colon = strchr(spec, ':');
  PetscReal   target = s->eps;
  double      start = 0.0, factor = 0.0; /* a geometric schedule, E0:F or auto */
  char       *end;

  PetscFunctionBegin;
  s->eps_stages = 0;
  if (!spec[0] || !strcmp(spec, "auto")) {
    /* the default: none for Sinkhorn; for SNS (and on request) 0.01 x max C, then x 0.2 down to the target.
       SNS's warm-up: each stage is a few sweeps and a few Newton steps from the last stage's potentials, where
       SNS without stages needs hundreds of sweeps before Newton converges (Fashion-MNIST, squared Euclidean,
       eps = 3e-4: 562 sweeps + 16 Newton steps without, 15 + 16 with) */
    if (spec[0] || s->method == OT_METHOD_SNS) {
      start  = 0.01 * s->problem->cost_max;
      factor = 0.2;
      /* a tiny target eps: larger steps, so that the stages fit */
      if (start > target && PetscLogReal(target / start) / PetscLogReal(factor) > OT_MAX_EPS_STAGES - 2)
        factor = PetscPowReal(target / start, 1.0 / (OT_MAX_EPS_STAGES - 2));
    }
  } else if (colon) { /* E0:F */
    start = strtod(spec, &end);
    PetscCheck(end == colon, s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: expected E0:F (a start eps and a factor), a list E1,E2,..., none or auto", spec);
    factor = strtod(colon + 1, &end);
    PetscCheck(end != colon + 1 && *end == '\0', s->comm, OT_ERR_INPUT,
               "-ot_eps_schedule %s: expected E0:F (a start eps and a factor), a list E1,E2,..., none or auto", spec);
    PetscCheck(factor > 0 && factor < 1, s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: the factor must be in (0, 1)", spec);
  } else if (strcmp(spec, "none")) { /* E1,E2,... */
    const char *p = spec;

    while (*p) {
      double e = strtod(p, &end);

      PetscCheck(end != p && (*end == ',' || *end == '\0'), s->comm, OT_ERR_INPUT,
                 "-ot_eps_schedule %s: expected E0:F (a start eps and a factor), a list E1,E2,..., none or auto", spec);
      PetscCheck(e > target * (1 + 1e-12), s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: %g is not above the target eps %g", spec, e, (double)target);
      PetscCheck(s->eps_stages == 0 || e < s->eps_schedule[s->eps_stages - 1], s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: the values must decrease", spec);
      PetscCheck(s->eps_stages < OT_MAX_EPS_STAGES - 1, s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: more than %d values", spec, OT_MAX_EPS_STAGES - 1);
      s->eps_schedule[s->eps_stages++] = e;
      p                                = *end ? end + 1 : end;
    }
  }
  if (factor > 0) {
    for (double e = start; e > target * (1 + 1e-12) && s->eps_stages < OT_MAX_EPS_STAGES - 1; e *= factor) s->eps_schedule[s->eps_stages++] = e;
    PetscCheck(s->eps_stages < OT_MAX_EPS_STAGES - 1 || start * PetscPowReal(factor, OT_MAX_EPS_STAGES - 1) <= target * (1 + 1e-12), s->comm, OT_ERR_INPUT,
               "-ot_eps_schedule %s: more than %d stages to reach eps = %g; use a smaller factor", spec, OT_MAX_EPS_STAGES - 1, (double)target);
  }
  s->eps_schedule[s->eps_stages++] = target;
  PetscFunctionReturn(0);
}

/* Up to max_sweeps Sinkhorn sweeps, counted in the result. */
static PetscErrorCode RunSinkhorn(OTSolver s, PetscInt max_sweeps, PetscBool stop_when_close, PetscBool *converged)
{
  OTResult *r = &s->result;
  PetscInt  sweeps;
  PetscReal start = MPI_Wtime();

  PetscFunctionBegin;
  max_sweeps = PetscMin(max_sweeps, s->max_it - r->iterations_sinkhorn - r->iterations_newton);
  *converged = PETSC_FALSE;
  if (max_sweeps <= 0) PetscFunctionReturn(0);
  PetscCall(PetscLogStagePush(OT_STAGE_SINKHORN_LOG));
  s->sinkhorn_run_start = start;
  PetscCall(OTSinkhornRun(s, max_sweeps, r->iterations_sinkhorn, stop_when_close, &sweeps, converged));
  s->sinkhorn_run_start = 0.0;
  PetscCall(PetscLogStagePop());
  r->iterations_sinkhorn += sweeps;
  r->sinkhorn_time += MPI_Wtime() - start;
  PetscFunctionReturn(0);
}

/* Sinkhorn's measured speed at the end of the last sweeps of this eps stage: seconds per sweep and the log of
   the factor by which a sweep reduces the marginal error, from the last (up to 10) Sinkhorn rows of the history
   (the slowest rank's clock: the same values on every rank). *rate = 0: no estimate. Collective. */
static PetscErrorCode SinkhornSpeed(OTSolver s, PetscReal *sweep_seconds, PetscReal *rate)
{
  PetscInt  last = s->history_len - 1, first = last;
  PetscReal seconds;

  PetscFunctionBegin;
  *rate = *sweep_seconds = 0.0;
  while (first > 0 && last - first < 10 && s->history[first - 1].stage == OT_STAGE_SINKHORN && s->history[first - 1].eps == s->eps) first--;
  seconds = last - first >= 2 && s->history[last].stage == OT_STAGE_SINKHORN ? s->history[last].time - s->history[first].time : 0.0;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPIU_REAL, MPI_MAX, s->comm));
  if (seconds > 0 && s->history[last].marginal_error < s->history[first].marginal_error) {
    *sweep_seconds = seconds / (PetscReal)(last - first);
    *rate          = PetscLogReal(s->history[first].marginal_error / s->history[last].marginal_error) / (PetscReal)(last - first);
  }
  PetscFunctionReturn(0);
}

/*
  Sinkhorn-Newton-Sparse. Warm-up sweeps until the marginal error is below -ot_newton_switch times the
  total mass (Newton's fast local convergence needs a start that close; measured on Fashion-MNIST and
  random costs, earlier starts cost more Newton steps than the sweeps they save), or -ot_sinkhorn_warmup
  sweeps; then Newton steps. Newton steps should converge superlinearly; three accepted steps in a row that
  each reduce the marginal error by less than a factor -ot_newton_slow mean that the kept entries miss too
  much of P (P is not sparse at this eps): the density is then multiplied by 4 (twice at most), and after
  that the solve finishes with Sinkhorn sweeps, so SNS never stalls where Sinkhorn would not. A step that
  fails to increase D is followed by -ot_sinkhorn_fallback sweeps.
  Newton must also pay for itself in time: each step is weighed against the Sinkhorn sweeps measured at the
  end of the warm-up (SinkhornSpeed). Sinkhorn finishes the stage when one Newton step took more than half the
  time Sinkhorn would need to reach the tolerance from where the step left off, or when two steps in a row
  reduced the error at less than half Sinkhorn's rate per second (where P is not sparse enough, a Newton step
  costs as much as hundreds of sweeps). The warm-up's rate is Sinkhorn's early, fast one, so the rule leans
  towards Sinkhorn. The phase and the density raises are part of the checkpoint, so a restart goes on in the
  phase where the run stopped.
*/
static PetscErrorCode RunSNS(OTSolver s, PetscBool *converged)
{
  OTResult *r          = &s->result;
  PetscInt  slow_steps = 0, losing_steps = 0;
  PetscReal sweep_seconds, sweep_rate;
  PetscBool stop;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  if (s->sns_phase == 0) {
    PetscCall(RunSinkhorn(s, s->warmup_max, PETSC_TRUE, converged));
    /* stopped by a signal or by -ot_max_it: the warm-up is not over (a restart goes on with it) */
    if (r->reason != OT_REASON_NONE || r->iterations_sinkhorn + r->iterations_newton >= s->max_it) PetscFunctionReturn(0);
    s->sns_phase = 1;
  }
  if (s->sns_phase == 2) {
    PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
    PetscFunctionReturn(0);
  }
  PetscCall(SinkhornSpeed(s, &sweep_seconds, &sweep_rate));
  while (!*converged && r->iterations_sinkhorn + r->iterations_newton < s->max_it && r->reason == OT_REASON_NONE) {
    OTNewtonInfo info;
    PetscReal    step_seconds = MPI_Wtime();

    PetscCall(OTSolverSafePointReduce(s, r->iterations_sinkhorn, r->iterations_newton, &stop));
    if (stop) break;
    PetscCall(PetscLogStagePush(OT_STAGE_NEWTON_LOG));
    PetscCall(OTNewtonStep(s, &info));
    PetscCall(PetscLogStagePop());
    step_seconds = MPI_Wtime() - step_seconds;
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &step_seconds, 1, MPIU_REAL, MPI_MAX, s->comm)); /* the same decision on every rank */
    if (info.marginal_error <= s->tol) {                                                      /* the warm-up or fallback sweeps already converged */
      *converged = PETSC_TRUE;
      break;
    }
    r->iterations_newton++;
    if (s->monitor_every)
      PetscCall(PetscPrintf(s->comm,
                            "  newton   %6" PetscInt_FMT "  marginal_error %.6e  dual %.15e  kept %lld (dropped mass %.1e)  ksp %" PetscInt_FMT
                            " %s  step %g%s\n",
                            r->iterations_newton, (double)(info.accepted ? info.marginal_error_after : info.marginal_error),
                            (double)(info.accepted ? info.dual_after : info.dual), (long long)info.kept, (double)info.dropped_mass, info.ksp_iterations,
                            KSPConvergedReasons[info.ksp_reason], (double)info.step, info.accepted ? "" : " (rejected: Sinkhorn fallback)"));
    PetscCall(OTSolverHistoryAppend(s, OT_STAGE_NEWTON, r->iterations_newton, info.accepted ? info.marginal_error_after : info.marginal_error,
                                    info.accepted ? info.dual_after : info.dual));
    if (PetscIsInfOrNanReal(info.marginal_error_after) || PetscIsInfOrNanReal(info.dual_after) || PetscIsInfOrNanReal(info.marginal_error)) {
      r->reason = OT_REASON_BREAKDOWN;
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "NaN or Inf in the Newton stage at Newton step %" PetscInt_FMT " (iteration %" PetscInt_FMT ")",
                              r->iterations_newton, r->iterations_sinkhorn + r->iterations_newton));
      break;
    }
    if (s->newton_time_check && sweep_rate > 0 && !(info.accepted && info.marginal_error_after <= s->tol)) {
      /* Newton against Sinkhorn, in log(error) per second */
      PetscReal error_after   = info.accepted ? info.marginal_error_after : info.marginal_error;
      PetscReal sinkhorn_rate = sweep_rate / sweep_seconds;
      PetscReal newton_rate   = info.accepted ? PetscLogReal(info.marginal_error / info.marginal_error_after) / step_seconds : 0.0;
      PetscReal sinkhorn_left = PetscLogReal(PetscMax(error_after / s->tol, 1.0)) / sinkhorn_rate;

      losing_steps = newton_rate < 0.5 * sinkhorn_rate ? losing_steps + 1 : 0;
      if (step_seconds > 0.5 * sinkhorn_left || losing_steps >= 2) {
        PetscCall(PetscInfo(NULL,
                            "SNS: a Newton step took %g s and reduced the error at %g per second (%" PetscInt_FMT
                            " slower in a row); Sinkhorn sweeps: %g s each, %g per second, about %g s to the tolerance; finishing with Sinkhorn\n",
                            (double)step_seconds, (double)newton_rate, losing_steps, (double)sweep_seconds, (double)sinkhorn_rate, (double)sinkhorn_left));
        if (s->monitor_every) PetscCall(PetscPrintf(s->comm, "  Newton steps cost more than the Sinkhorn sweeps they save at this eps: Sinkhorn finishes\n"));
        s->sns_phase = 2;
        PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
        break;
      }
    }
    if (!info.accepted) {
      PetscCall(RunSinkhorn(s, s->fallback_sweeps, PETSC_FALSE, converged));
      continue;
    }
    *converged = (PetscBool)(info.marginal_error_after <= s->tol);
    if (info.marginal_error_after > s->newton_slow * info.marginal_error) slow_steps++;
    else slow_steps = 0;
    if (slow_steps < 3 || *converged) continue;
    slow_steps = 0;
    if (s->sns_boosts < 2) {
      s->sns_boosts++;
      PetscCall(PetscInfo(NULL, "SNS: Newton converges slowly; density raised %" PetscInt_FMT " time(s) by 4\n", s->sns_boosts));
    } else {
      PetscCall(PetscInfo(NULL, "SNS: Newton converges slowly even at 16 times the density; finishing with Sinkhorn sweeps\n"));
      s->sns_phase = 2;
      PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverRunStage(OTSolver s, PetscBool *converged)
{
  PetscFunctionBegin;
  if (s->method == OT_METHOD_SINKHORN) PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
  else PetscCall(RunSNS(s, converged));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverRunEpsStages(OTSolver s, PetscBool *converged)
{
  OTResult *r = &s->result;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  /* eps-scaling: the stages above the target eps, Sinkhorn to a loose tolerance, each warm-starting the next
     (the potentials are in cost units, so they carry over as they are) */
  for (; s->eps_stage < s->eps_stages - 1; s->eps_stage++) {
    PetscReal tol    = s->tol;
    PetscInt  sweeps = r->iterations_sinkhorn, steps = r->iterations_newton;

    s->eps = s->eps_schedule[s->eps_stage];
    s->tol = s->eps_stage_tol * s->problem->mass;
    if (s->method == OT_METHOD_SINKHORN) PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
    else PetscCall(RunSNS(s, converged)); /* a few sweeps and Newton steps in each stage */
    s->tol = tol;
    if (r->reason != OT_REASON_NONE || !*converged) break; /* interrupted, NaN, or -ot_max_it: stop in this stage */
    s->sns_phase = s->sns_boosts = 0;                      /* the next stage begins with its own warm-up */
    if (s->monitor_every)
      PetscCall(PetscPrintf(s->comm,
                            "  eps stage %" PetscInt_FMT "/%" PetscInt_FMT ": eps = %g done in %" PetscInt_FMT " sweeps and %" PetscInt_FMT " Newton steps\n",
                            s->eps_stage + 1, s->eps_stages, (double)s->eps, r->iterations_sinkhorn - sweeps, r->iterations_newton - steps));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTSNSSetFromOptions(OTSolver s)
{
  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "SNS policy and eps-scaling (otsolve)", NULL);
  PetscCall(PetscOptionsInt("-ot_sinkhorn_warmup", "SNS: most Sinkhorn sweeps before the first Newton step", NULL, s->warmup_max, &s->warmup_max, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_switch", "SNS: leave the warm-up once the marginal error is below this fraction of the total mass", NULL,
                             s->newton_switch, &s->newton_switch, NULL));
  PetscCall(PetscOptionsInt("-ot_sinkhorn_fallback", "SNS: Sinkhorn sweeps after a Newton step that fails to increase D", NULL, s->fallback_sweeps,
                            &s->fallback_sweeps, NULL));
  PetscCheck(s->warmup_max >= 0 && s->fallback_sweeps > 0, s->comm, OT_ERR_INPUT, "-ot_sinkhorn_warmup must be >= 0 and -ot_sinkhorn_fallback > 0");
  PetscCall(PetscOptionsBool("-ot_newton_time_check",
                             "SNS: Sinkhorn finishes an eps stage where Newton steps cost more time than they save (false: reproducible)", NULL,
                             s->newton_time_check, &s->newton_time_check, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_slow", "SNS: a step reducing the error by less than this factor is slow; 3 in a row raise the density (x4, twice)",
                             NULL, s->newton_slow, &s->newton_slow, NULL));
  PetscCall(PetscOptionsString("-ot_eps_schedule",
                               "eps-scaling: E0:F (E0, E0*F, ... down to -ot_eps), E1,E2,..., none, or auto (0.01 max C:0.2; default for sns)", NULL,
                               s->eps_schedule_spec, s->eps_schedule_spec, sizeof(s->eps_schedule_spec), NULL));
  PetscCall(PetscOptionsReal("-ot_eps_stage_tol", "eps-scaling: an intermediate eps stage ends at marginal error <= this times the mass", NULL,
                             s->eps_stage_tol, &s->eps_stage_tol, NULL));
  PetscCheck(s->eps_stage_tol > 0, s->comm, OT_ERR_INPUT, "-ot_eps_stage_tol must be positive, got %g", (double)s->eps_stage_tol);
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}
