/*
  The policy of -ot_method sns and of eps-scaling: which stage runs when. The eps schedule (-ot_eps_schedule),
  Sinkhorn's warm-up, the switch to Newton steps, fallback sweeps after a rejected step, density raises after
  slow steps, and the time check that hands an eps stage to Sinkhorn where Newton does not pay for itself.
  The stages themselves are in sinkhorn.c and newton_step.c; this file decides only.
*/
#include "newton.h"
#include "truncated.h"
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

/* Up to max_sweeps Sinkhorn sweeps (the averaged iteration of symmetric.c on a symmetric problem), counted in the result. */
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
  if (s->problem->symmetric) PetscCall(OTSymmetricRun(s, max_sweeps, r->iterations_sinkhorn, stop_when_close, &sweeps, converged));
  else if (s->variant == OT_SINKHORN_TRUNCATED) PetscCall(OTTruncatedRun(s, max_sweeps, r->iterations_sinkhorn, stop_when_close, &sweeps, converged));
  else PetscCall(OTSinkhornRun(s, max_sweeps, r->iterations_sinkhorn, stop_when_close, &sweeps, converged));
  s->sinkhorn_run_start = 0.0;
  PetscCall(PetscLogStagePop());
  r->iterations_sinkhorn += sweeps;
  r->sinkhorn_time += MPI_Wtime() - start;
  PetscFunctionReturn(0);
}

/*
  Counted work: what the SNS decisions weigh, in nanoseconds per entry of this project's reference machine (2-core
  x86-64, one rank), measured with -log_view's events on 2,000 x 1,500 problems and fixed here, ahead of any run, so
  that the path a solve takes depends on counts alone: two runs, any number of ranks, and a restart take the same
  path (timings on shared machines vary twofold from run to run). A pass over all n x m entries costs
    log domain, stored /C          2.5 ns an entry (an exponential)
    log domain, point clouds       1.9 + 0.09 d ns (the costs from d coordinates: 2.1 at d = 2, 4.6 at d = 30)
    stored absorbed kernel         0.6 ns (a multiply-add, at memory bandwidth)
    truncated kernel               1.8 ns per kept entry (100k + 100k 3-D points, 2 ranks; its rebuilds not counted),
                                   4.8 where its values are computed in each pass (the same case: 0.253 s a sweep
                                   against 0.094 with stored values, 2.7 times as much)
  and a Newton step: its survey (two passes and 2.5 ns an entry for the histogram and the maxima), one pass per
  line-search trial, 25 ns per kept entry for the assembly and 2.5 ns per kept entry and KSP iteration.
*/
#define OT_WORK_LOG_DENSE      2.5
#define OT_WORK_LOG_POINTS     1.9
#define OT_WORK_LOG_POINTS_DIM 0.09
#define OT_WORK_KERNEL         0.6
#define OT_WORK_TRUNCATED      1.8
#define OT_WORK_TRUNCATED_COMP 4.8
#define OT_WORK_SURVEY         2.5
#define OT_WORK_ASSEMBLY       25.0
#define OT_WORK_KSP            2.5

/* The counted work of one pass over all n x m entries with the current Sinkhorn variant (the same on every rank). */
static PetscReal PassWork(OTSolver s)
{
  OTProblem pb      = s->problem;
  PetscReal entries = (PetscReal)pb->n * (PetscReal)pb->m;

  if (s->variant == OT_SINKHORN_TRUNCATED && !pb->symmetric)
    return s->trunc ? OT_WORK_TRUNCATED * (s->trunc->kept_global - s->trunc->kept_computed_global) + OT_WORK_TRUNCATED_COMP * s->trunc->kept_computed_global
                    : OT_WORK_TRUNCATED * entries;
  if (s->variant == OT_SINKHORN_ABSORB && !pb->symmetric) return OT_WORK_KERNEL * entries;
  if (pb->cost_kind == OT_COST_DENSE) return OT_WORK_LOG_DENSE * entries;
  return (OT_WORK_LOG_POINTS + OT_WORK_LOG_POINTS_DIM * pb->dim) * entries;
}

/* The counted work of the Newton step that info describes. */
static PetscReal NewtonWork(OTSolver s, const OTNewtonInfo *info)
{
  OTProblem pb   = s->problem;
  PetscReal pass = PassWork(s);

  PetscReal surveyed = s->variant == OT_SINKHORN_TRUNCATED && s->trunc && !pb->symmetric ? s->trunc->kept_global : (PetscReal)pb->n * (PetscReal)pb->m;

  return (2 + info->trials) * pass + OT_WORK_SURVEY * surveyed +
         (PetscReal)info->kept * (OT_WORK_ASSEMBLY + OT_WORK_KSP * (PetscReal)info->ksp_iterations);
}

/* The least a Newton step can cost: its survey and one line-search trial, no kept entries. */
static PetscReal LeastNewtonWork(OTSolver s)
{
  OTNewtonInfo info = {.trials = 1};

  return NewtonWork(s, &info);
}

/* The work one Newton step is expected to cost: the last one's, or before any, the least one can. */
static PetscReal NewtonWorkEstimate(OTSolver s)
{
  return s->newton_work > 0 ? s->newton_work : LeastNewtonWork(s);
}

/* Sinkhorn's measured rate at this eps: the log of the factor by which a sweep reduced the marginal error over the
   last run of (up to 10) Sinkhorn sweeps at this eps in the history, per unit of counted work; 0: no estimate (fewer
   than 3 rows). The history is the same on every rank, so is the rate. */
static PetscReal SinkhornRate(OTSolver s)
{
  PetscInt last = s->history_len - 1, first;

  while (last >= 0 && s->history[last].stage != OT_STAGE_SINKHORN) last--;
  if (last < 0 || s->history[last].eps != s->eps) return 0.0;
  for (first = last; first > 0 && last - first < 10 && s->history[first - 1].stage == OT_STAGE_SINKHORN && s->history[first - 1].eps == s->eps;) first--;
  if (last - first < 2 || !(s->history[last].marginal_error < s->history[first].marginal_error)) return 0.0;
  return PetscLogReal(s->history[first].marginal_error / s->history[last].marginal_error) / ((PetscReal)(last - first) * PassWork(s));
}

/* The counted work Sinkhorn needs from the last state to the tolerance at its measured rate (infinite without one). */
static PetscReal SinkhornWorkLeft(OTSolver s)
{
  PetscReal rate = SinkhornRate(s), error = s->history_len ? s->history[s->history_len - 1].marginal_error : PETSC_INFINITY;

  return rate > 0 ? PetscLogReal(PetscMax(error / s->tol, 1.0)) / rate : PETSC_INFINITY;
}

/* The most kept entries a Newton step may have before its assembly: beyond it, the step alone (survey, assembly, KSP
   iterations as many as the last step's, or 10, one line-search trial) would cost more than Sinkhorn needs to reach
   the tolerance from here, and the step is declined after its survey (where P is not sparse: millions of kept
   entries). None without -ot_newton_time_check or a measured Sinkhorn rate. */
static PetscErrorCode SetKeptCap(OTSolver s)
{
  PetscReal left = SinkhornWorkLeft(s), fixed = LeastNewtonWork(s);
  PetscReal per_entry = OT_WORK_ASSEMBLY + OT_WORK_KSP * (PetscReal)(s->newton_ksp > 0 ? s->newton_ksp : 10);

  PetscFunctionBegin;
  s->newton_kept_cap = 0;
  if (s->newton_time_check && left < PETSC_INFINITY) s->newton_kept_cap = (int64_t)PetscMax(1.0, (left - fixed) / per_entry);
  PetscFunctionReturn(0);
}

/* Sinkhorn goes on with the stage (phase 2), in runs of sweeps after which RunSinkhornPhase weighs the two again. */
static PetscErrorCode HandToSinkhorn(OTSolver s, const char why[])
{
  PetscFunctionBegin;
  PetscCall(PetscInfo(NULL, "SNS: %s; Sinkhorn goes on\n", why));
  if (s->monitor_every) PetscCall(PetscPrintf(s->comm, "  SNS: %s: Sinkhorn sweeps go on\n", why));
  s->sns_phase = 2;
  PetscFunctionReturn(0);
}

/* Phase 2: a run of Sinkhorn sweeps at least as long in counted work as a Newton step (twice as long after each return
   to Newton, so that the two cannot alternate at a cost of more than a small factor), then back to Newton if it is
   now the better one: its last measured rate beats Sinkhorn's measured now, or, before any Newton step at this eps,
   Sinkhorn still needs more work than a Newton step costs. Sinkhorn's early sweeps are fast and its late ones can
   crawl, so a handover is never final. Without -ot_newton_time_check Sinkhorn finishes. */
static PetscErrorCode RunSinkhornPhase(OTSolver s, PetscBool *converged)
{
  PetscReal newton_work = NewtonWorkEstimate(s), sweeps, rate;
  PetscInt  done        = s->result.iterations_sinkhorn;
  PetscBool back;

  PetscFunctionBegin;
  if (!s->newton_time_check) {
    PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
    PetscFunctionReturn(0);
  }
  /* the run's end is a sweep count, kept in checkpoints (and not cut by -ot_max_it, which only stops the sweeps): a run
     stopped by a signal or -ot_max_it goes on to the same end */
  if (s->sns_chunk_end <= done) {
    sweeps = PetscMin(1e9, PetscMax(10.0, PetscCeilReal(PetscPowReal(2.0, (PetscReal)s->sns_returns) * newton_work / PassWork(s))));
    if (!(sweeps >= 1)) sweeps = 1; /* (and a NaN, should a count ever be one) */
    s->sns_chunk_end = done + (PetscInt)sweeps;
  }
  PetscCall(RunSinkhorn(s, s->sns_chunk_end - done, PETSC_FALSE, converged));
  if (*converged || s->result.reason != OT_REASON_NONE || s->result.iterations_sinkhorn < s->sns_chunk_end) PetscFunctionReturn(0);
  s->sns_chunk_end = 0;
  rate             = SinkhornRate(s);
  back             = s->newton_rate > 0 ? (PetscBool)(s->newton_rate > rate) : (PetscBool)(SinkhornWorkLeft(s) > newton_work);
  if (back) {
    s->sns_phase = 1;
    s->sns_returns++;
    PetscCall(PetscInfo(NULL, "SNS: Sinkhorn's rate fell to %g per unit of work (Newton's last: %g): back to Newton\n", (double)rate, (double)s->newton_rate));
    if (s->monitor_every) PetscCall(PetscPrintf(s->comm, "  SNS: Sinkhorn sweeps slowed down: back to Newton steps\n"));
  }
  PetscFunctionReturn(0);
}

/* After a Newton step: whether Newton has cost more than it saves against Sinkhorn's measured rate, in counted work
   (why says how, for the monitor): one step costing more than half of what Sinkhorn would need from here to the
   tolerance, or two steps in a row at less than half of Sinkhorn's rate. */
static PetscBool NewtonLoses(OTSolver s, const OTNewtonInfo *info, PetscReal step_work, PetscInt *losing_steps, char why[], size_t len)
{
  PetscReal sinkhorn_rate = SinkhornRate(s), sinkhorn_left = SinkhornWorkLeft(s);
  PetscReal newton_rate = info->accepted ? PetscLogReal(info->marginal_error / info->marginal_error_after) / step_work : 0.0;

  if (!(sinkhorn_rate > 0)) return PETSC_FALSE;
  *losing_steps = newton_rate < 0.5 * sinkhorn_rate ? *losing_steps + 1 : 0;
  if (step_work > 0.5 * sinkhorn_left) {
    (void)PetscSNPrintf(why, len, "a Newton step costs %.3g sweeps of work, more than half of the %.3g Sinkhorn needs from here",
                        (double)(step_work / PassWork(s)), (double)(sinkhorn_left / PassWork(s)));
    return PETSC_TRUE;
  }
  if (*losing_steps >= 2) {
    (void)PetscSNPrintf(why, len, "two Newton steps in a row reduced the error at less than half of Sinkhorn's rate (%.3g and %.3g per sweep of work)",
                        (double)(newton_rate * PassWork(s)), (double)(sinkhorn_rate * PassWork(s)));
    return PETSC_TRUE;
  }
  return PETSC_FALSE;
}

/* Counts a Newton step, prints its monitor line, appends its history row, and marks a NaN or Inf as a breakdown. */
static PetscErrorCode RecordNewtonStep(OTSolver s, const OTNewtonInfo *info)
{
  OTResult *r     = &s->result;
  PetscReal error = info->accepted ? info->marginal_error_after : info->marginal_error, dual = info->accepted ? info->dual_after : info->dual;

  PetscFunctionBegin;
  r->iterations_newton++;
  if (s->monitor_every)
    PetscCall(PetscPrintf(s->comm,
                          "  newton   %6" PetscInt_FMT "  marginal_error %.6e  dual %.15e  kept %lld (dropped mass %.1e)  ksp %" PetscInt_FMT
                          " %s  step %g%s\n",
                          r->iterations_newton, (double)error, (double)dual, (long long)info->kept, (double)info->dropped_mass, info->ksp_iterations,
                          KSPConvergedReasons[info->ksp_reason], (double)info->step, info->accepted ? "" : " (rejected: Sinkhorn fallback)"));
  PetscCall(OTSolverHistoryAppend(s, OT_STAGE_NEWTON, r->iterations_newton, error, dual));
  if (PetscIsInfOrNanReal(info->marginal_error_after) || PetscIsInfOrNanReal(info->dual_after) || PetscIsInfOrNanReal(info->marginal_error)) {
    r->reason = OT_REASON_BREAKDOWN;
    PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "NaN or Inf in the Newton stage at Newton step %" PetscInt_FMT " (iteration %" PetscInt_FMT ")",
                            r->iterations_newton, r->iterations_sinkhorn + r->iterations_newton));
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
  that Sinkhorn sweeps go on. A step that fails to increase D is followed by -ot_sinkhorn_fallback sweeps.
  Newton must also pay for itself (-ot_newton_time_check): each step is weighed, in counted work (PassWork,
  NewtonWork: deterministic), against Sinkhorn's rate measured on its last sweeps (NewtonLoses); where Newton
  loses, Sinkhorn sweeps go on, and the two are weighed again after each run of sweeps (RunSinkhornPhase), so
  that SNS returns to Newton where Sinkhorn slows down: it is never far from the better of the two. The phase,
  the density raises, the returns and Newton's last rate are part of the checkpoint, so a restart goes on in the
  phase where the run stopped, on the same path.
*/
static PetscErrorCode RunSNS(OTSolver s, PetscBool *converged)
{
  OTResult *r = &s->result;
  PetscBool stop;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  if (s->sns_phase == 0) {
    /* at least 3 sweeps, so that Sinkhorn's rate is measured (SinkhornRate) before Newton is weighed against it (set
       once per stage, kept in checkpoints: a restart inside the warm-up ends it at the same sweep) */
    if (s->close_after <= 0) s->close_after = s->newton_time_check ? r->iterations_sinkhorn + 3 : 0;
    PetscCall(RunSinkhorn(s, s->warmup_max, PETSC_TRUE, converged));
    /* stopped by a signal or by -ot_max_it: the warm-up is not over (a restart goes on with it) */
    if (*converged || r->reason != OT_REASON_NONE || r->iterations_sinkhorn + r->iterations_newton >= s->max_it) PetscFunctionReturn(0);
    s->sns_phase = 1;
  }
  while (!*converged && r->iterations_sinkhorn + r->iterations_newton < s->max_it && r->reason == OT_REASON_NONE) {
    OTNewtonInfo info;
    PetscReal    step_work;
    char         why[256];

    if (s->sns_phase == 3) { /* Newton declined for memory or density: Sinkhorn to the end of the stage */
      PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
      continue;
    }
    if (s->sns_phase == 2) {
      PetscCall(RunSinkhornPhase(s, converged));
      s->sns_losing = s->sns_slow = s->sns_linear = 0;
      continue;
    }
    if (s->newton_time_check && SinkhornWorkLeft(s) < NewtonWorkEstimate(s)) {
      PetscCall(HandToSinkhorn(s, "Sinkhorn's measured rate reaches the tolerance in less work than a Newton step costs"));
      continue;
    }
    PetscCall(SetKeptCap(s));
    PetscCall(OTSolverSafePointReduce(s, r->iterations_sinkhorn, r->iterations_newton, &stop));
    if (stop) break;
    PetscCall(PetscLogStagePush(OT_STAGE_NEWTON_LOG));
    PetscCall(OTNewtonStep(s, &info));
    PetscCall(PetscLogStagePop());
    s->g_update_pending = PETSC_FALSE;   /* the state may have moved */
    if (info.marginal_error <= s->tol) { /* the warm-up or fallback sweeps already converged */
      *converged = PETSC_TRUE;
      break;
    }
    if (info.declined == OT_DECLINED_MEMORY || info.declined == OT_DECLINED_DENSE) { /* Sinkhorn finishes the stage */
      if (info.declined == OT_DECLINED_MEMORY)
        (void)PetscSNPrintf(why, sizeof(why), "a Newton step would keep about %.3g entries of P (%.3g MB per rank), more than the Newton memory budget of %.3g MB per rank (-ot_newton_memory)",
                            (double)info.kept, (OTNewtonFixedBytes(s) + OT_NEWTON_ENTRY_BYTES * (double)info.kept / s->size) / 1e6, s->newton->budget / 1e6);
      else
        (void)PetscSNPrintf(why, sizeof(why), "the largest %.3g entries of P leave out %.0f%% of its mass (P is not sparse at this eps)", (double)info.kept,
                            100.0 * (double)info.dropped_mass);
      PetscCall(PetscInfo(NULL, "SNS: %s; Sinkhorn finishes the stage\n", why));
      if (s->monitor_every) PetscCall(PetscPrintf(s->comm, "  SNS: %s: Sinkhorn sweeps finish this eps stage\n", why));
      s->sns_phase = 3;
      continue;
    }
    if (info.declined) {                                            /* P is not sparse enough here: the step would cost more than Sinkhorn needs (SetKeptCap) */
      info.ksp_iterations = s->newton_ksp > 0 ? s->newton_ksp : 10; /* what the step would have cost, as SetKeptCap estimated it */
      info.trials         = 1;
      s->newton_work      = NewtonWork(s, &info);
      (void)PetscSNPrintf(why, sizeof(why), "a Newton step would keep %lld entries of P, more work than the %.3g sweeps Sinkhorn needs from here",
                          (long long)info.kept, (double)(SinkhornWorkLeft(s) / PassWork(s)));
      PetscCall(HandToSinkhorn(s, why));
      continue;
    }
    s->newton_ksp = info.ksp_iterations;
    PetscCall(RecordNewtonStep(s, &info));
    if (r->reason == OT_REASON_BREAKDOWN) break;
    step_work      = NewtonWork(s, &info);
    s->newton_work = step_work;
    if (info.accepted) s->newton_rate = PetscLogReal(info.marginal_error / info.marginal_error_after) / step_work;
    *converged = (PetscBool)(info.accepted && info.marginal_error_after + info.dropped_after <= s->tol);
    if (*converged) break;
    if (s->newton_time_check && NewtonLoses(s, &info, step_work, &s->sns_losing, why, sizeof(why))) {
      PetscCall(HandToSinkhorn(s, why));
      continue;
    }
    if (!info.accepted) {
      PetscCall(RunSinkhorn(s, s->fallback_sweeps, PETSC_FALSE, converged));
      continue;
    }
    if (OTNewtonOnTruncated(s) && s->sns_tightened < OT_NEWTON_TIGHTENINGS) {
      /* linear convergence of full steps (a damped step is slow for another reason) where the kept entries leave out
         as much of P's mass as the rule allows (not more: where the memory budget stopped the threshold first, a
         tighter rule would keep no more), and where the budget has room for twice as many kept entries (a tighter
         rule keeps about 1.5 times as many; a step that passed the budget would be declined, and Sinkhorn would
         finish the stage: 3e5 + 3e5 points, whose damped steps kept 6e7 entries) */
      PetscReal drop = OTNewtonDrop(s);
      PetscBool room = (PetscBool)(OTNewtonFixedBytes(s) + OT_NEWTON_ENTRY_BYTES * 2.0 * (double)info.kept / s->size <= s->newton->budget);

      s->sns_linear = room && info.step == 1.0 && info.marginal_error_after > OT_NEWTON_LINEAR * info.marginal_error && info.dropped_mass > 0.5 * drop &&
                          info.dropped_mass < 2.0 * drop
                        ? s->sns_linear + 1
                        : 0;
      if (s->sns_linear >= 2) {
        s->sns_linear = 0;
        s->sns_tightened++;
        PetscCall(PetscInfo(NULL, "SNS: Newton converges linearly; its kept entries may now leave out %g of P's mass\n", (double)OTNewtonDrop(s)));
        if (s->monitor_every)
          PetscCall(PetscPrintf(s->comm, "  SNS: two Newton steps in a row reduced the error by less than %g each: the next keep all but %g of P's mass\n",
                                (double)OT_NEWTON_LINEAR, (double)OTNewtonDrop(s)));
        continue;
      }
    }
    if (info.marginal_error_after > s->newton_slow * info.marginal_error) s->sns_slow++;
    else s->sns_slow = 0;
    if (s->sns_slow < 3) continue;
    s->sns_slow = 0;
    if (s->sns_boosts < 2) {
      s->sns_boosts++;
      PetscCall(PetscInfo(NULL, "SNS: Newton converges slowly; density raised %" PetscInt_FMT " time(s) by 4\n", s->sns_boosts));
    } else PetscCall(HandToSinkhorn(s, "Newton converges slowly even at 16 times the density"));
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

void OTSNSResetStage(OTSolver s)
{
  s->sns_phase = s->sns_boosts = s->sns_returns = s->sns_chunk_end = s->close_after = s->sns_losing = s->sns_slow = s->sns_linear = s->sns_tightened = 0;
  s->newton_rate = 0.0; /* newton_work and newton_ksp stay: the best guesses at the next stage's steps */
}

void OTSolverCarryPotentials(OTSolver s, PetscReal eps_new)
{
  OTProblem pb   = s->problem;
  PetscReal step = eps_new - s->eps;

  if (s->eps > 0 && step != 0.0) {
    for (PetscInt i = 0; i < pb->n_local; i++)
      if (pb->a[i] > 0) s->f[i] += step * PetscLogReal(pb->a[i]);
    for (PetscInt j = 0; j < pb->m; j++)
      if (pb->b[j] > 0) s->g[j] += step * PetscLogReal(pb->b[j]);
  }
  s->eps = eps_new;
}

PetscErrorCode OTSolverRunEpsStages(OTSolver s, PetscBool *converged)
{
  OTResult *r = &s->result;

  PetscFunctionBegin;
  *converged = PETSC_FALSE;
  /* eps-scaling: the stages above the target eps, Sinkhorn to a loose tolerance, each warm-starting the next
     (OTSolverCarryPotentials: the potentials in cost units, but for the weights' eps log a_i and eps log b_j) */
  for (; s->eps_stage < s->eps_stages - 1; s->eps_stage++) {
    PetscReal tol    = s->tol;
    PetscInt  sweeps = r->iterations_sinkhorn, steps = r->iterations_newton;

    OTSolverCarryPotentials(s, s->eps_schedule[s->eps_stage]);
    s->tol = s->eps_stage_tol * s->problem->mass;
    if (s->method == OT_METHOD_SINKHORN) PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
    else PetscCall(RunSNS(s, converged)); /* a few sweeps and Newton steps in each stage */
    s->tol = tol;
    if (r->reason != OT_REASON_NONE || !*converged) break; /* interrupted, NaN, or -ot_max_it: stop in this stage */
    OTSNSResetStage(s);                                    /* the next stage begins with its own warm-up */
    if (s->monitor_every)
      PetscCall(PetscPrintf(s->comm,
                            "  eps stage %" PetscInt_FMT "/%" PetscInt_FMT ": eps = %g done in %" PetscInt_FMT " sweeps and %" PetscInt_FMT " Newton steps\n",
                            s->eps_stage + 1, s->eps_stages, (double)s->eps, r->iterations_sinkhorn - sweeps, r->iterations_newton - steps));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTSNSSetFromOptions(OTSolver s)
{
  PetscBool set;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "SNS policy and eps-scaling (otsolve)", NULL);
  PetscCall(PetscOptionsInt("-ot_sinkhorn_warmup", "SNS: most Sinkhorn sweeps before the first Newton step", NULL, s->warmup_max, &s->warmup_max, NULL));
  /* on the truncated kernel, 0.01: a Newton step there stays where the kernel's dropped entries stay small (its line
     search's trust region), so that far from the answer its steps are short (30k + 30k 3-D points, eps = 1e-4 max C:
     45 s with 0.01, 66-78 s with 0.1) */
  if (s->variant == OT_SINKHORN_TRUNCATED && !s->newton_switch_given) s->newton_switch = 0.01;
  PetscCall(PetscOptionsReal("-ot_newton_switch", "SNS: leave the warm-up once the marginal error is below this fraction of the total mass (0.1; 0.01 on the truncated kernel)",
                             NULL, s->newton_switch, &s->newton_switch, &set));
  s->newton_switch_given = (PetscBool)(s->newton_switch_given || set);
  PetscCall(PetscOptionsInt("-ot_sinkhorn_fallback", "SNS: Sinkhorn sweeps after a Newton step that fails to increase D", NULL, s->fallback_sweeps,
                            &s->fallback_sweeps, NULL));
  PetscCheck(s->warmup_max >= 0 && s->fallback_sweeps > 0, s->comm, OT_ERR_INPUT, "-ot_sinkhorn_warmup must be >= 0 and -ot_sinkhorn_fallback > 0");
  PetscCall(PetscOptionsBool("-ot_newton_time_check",
                             "SNS: weigh Newton steps against Sinkhorn sweeps in counted work, each way (false: Newton steps throughout)", NULL,
                             s->newton_time_check, &s->newton_time_check, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_slow", "SNS: a step reducing the error by less than this factor is slow; 3 in a row raise the density (x4, twice)",
                             NULL, s->newton_slow, &s->newton_slow, NULL));
  PetscCall(PetscOptionsString("-ot_eps_schedule",
                               "eps-scaling: E0:F (E0, E0*F, ... down to -ot_eps), E1,E2,..., none, or auto (0.01 max C:0.2; default for sns)", NULL,
                               s->eps_schedule_spec, s->eps_schedule_spec, sizeof(s->eps_schedule_spec), &set));
  s->schedule_given = (PetscBool)(s->schedule_given || set);
  PetscCall(PetscOptionsReal("-ot_eps_stage_tol", "eps-scaling: an intermediate eps stage ends at marginal error <= this times the mass", NULL,
                             s->eps_stage_tol, &s->eps_stage_tol, NULL));
  PetscCheck(s->eps_stage_tol > 0, s->comm, OT_ERR_INPUT, "-ot_eps_stage_tol must be positive, got %g", (double)s->eps_stage_tol);
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}
