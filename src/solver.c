/* The OTSolver object: options, life cycle, monitor, history, and the driver of the pipeline
   Sinkhorn -> evaluation -> bounds. */
#include "otimpl.h"
#include <stdlib.h>
#include <string.h>

PetscLogStage OT_STAGE_LOAD, OT_STAGE_SINKHORN_LOG, OT_STAGE_NEWTON_LOG, OT_STAGE_FINISH, OT_STAGE_WRITE;
PetscLogEvent OT_EVENT_READ_COST, OT_EVENT_SWEEP, OT_EVENT_COLUMN_REDUCE, OT_EVENT_EVALUATE, OT_EVENT_BOUNDS, OT_EVENT_WRITE, OT_EVENT_SPARSIFY,
  OT_EVENT_ASSEMBLE, OT_EVENT_KSP, OT_EVENT_LINE_SEARCH;

const char *const OTMethods[] = {"sns", "sinkhorn", "OTMethod", "OT_METHOD_", NULL};

static PetscBool ot_package_initialized = PETSC_FALSE;

static PetscErrorCode OTFinalizePackage(void)
{
  PetscFunctionBegin;
  ot_package_initialized = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode OTInitializePackage(void)
{
  PetscClassId classid;

  PetscFunctionBegin;
  if (ot_package_initialized) PetscFunctionReturn(0);
  ot_package_initialized = PETSC_TRUE;
  PetscCall(PetscClassIdRegister("OT Solver", &classid));
  PetscCall(PetscLogStageRegister("OT Load", &OT_STAGE_LOAD));
  PetscCall(PetscLogStageRegister("OT Sinkhorn", &OT_STAGE_SINKHORN_LOG));
  PetscCall(PetscLogStageRegister("OT Newton", &OT_STAGE_NEWTON_LOG));
  PetscCall(PetscLogStageRegister("OT Finish", &OT_STAGE_FINISH));
  PetscCall(PetscLogStageRegister("OT Write", &OT_STAGE_WRITE));
  PetscCall(PetscLogEventRegister("OTReadCost", classid, &OT_EVENT_READ_COST));
  PetscCall(PetscLogEventRegister("OTSinkhornSweep", classid, &OT_EVENT_SWEEP));
  PetscCall(PetscLogEventRegister("OTColumnReduce", classid, &OT_EVENT_COLUMN_REDUCE));
  PetscCall(PetscLogEventRegister("OTEvaluate", classid, &OT_EVENT_EVALUATE));
  PetscCall(PetscLogEventRegister("OTBounds", classid, &OT_EVENT_BOUNDS));
  PetscCall(PetscLogEventRegister("OTWriteResult", classid, &OT_EVENT_WRITE));
  PetscCall(PetscLogEventRegister("OTSparsify", classid, &OT_EVENT_SPARSIFY));
  PetscCall(PetscLogEventRegister("OTAssemble", classid, &OT_EVENT_ASSEMBLE));
  PetscCall(PetscLogEventRegister("OTKSPSolve", classid, &OT_EVENT_KSP));
  PetscCall(PetscLogEventRegister("OTLineSearch", classid, &OT_EVENT_LINE_SEARCH));
  PetscCall(PetscRegisterFinalize(OTFinalizePackage));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverCreate(MPI_Comm comm, OTSolver *solver)
{
  OTSolver s;

  PetscFunctionBegin;
  PetscCall(OTInitializePackage());
  PetscCall(PetscNew(&s));
  s->comm          = comm;
  s->eps           = -1.0;
  s->tol           = 1e-9;
  s->max_it        = 100000;
  s->monitor_every = 0;
  s->monitor_seconds = 10.0;
  s->method          = OT_METHOD_SNS;
  s->warmup_max      = 5000;
  s->newton_switch   = 0.1;
  s->fallback_sweeps = 20;
  s->newton_density  = 16.0;
  s->newton_drop     = 1e-4;
  s->newton_shift    = 1e-2;
  s->newton_slow     = 0.5;
  s->newton_time_check = PETSC_TRUE;
  s->checkpoint_interval = 600.0;
  s->eps_stage_tol       = 1e-3;
  s->plan_threshold      = -1.0;
  PetscCallMPI(MPI_Comm_rank(comm, &s->rank));
  PetscCallMPI(MPI_Comm_size(comm, &s->size));
  PetscCall(PetscStrcpy(s->result.status, "not solved"));
  *solver = s;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetProblem(OTSolver s, OTProblem problem)
{
  PetscFunctionBegin;
  problem->refct++;
  PetscCall(OTProblemDestroy(&s->problem));
  s->problem = problem;
  s->setup   = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetFromOptions(OTSolver s)
{
  PetscBool set;
  PetscInt  every = 1;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "Optimal transport solver (otsolve)", NULL);
  PetscCall(PetscOptionsReal("-ot_eps", "Entropic regularisation eps, in cost units (default: 0.01 * max C)", NULL, s->eps, &s->eps, &set));
  PetscCheck(!set || s->eps > 0, s->comm, OT_ERR_INPUT, "-ot_eps must be positive, got %g", (double)s->eps);
  PetscCall(PetscOptionsReal("-ot_tol", "Stop when the marginal error |P1-a|_1 + |P^T1-b|_1 is at most this", NULL, s->tol, &s->tol, NULL));
  PetscCheck(s->tol > 0, s->comm, OT_ERR_INPUT, "-ot_tol must be positive, got %g", (double)s->tol);
  PetscCall(PetscOptionsEnum("-ot_method", "sns (the default): eps-scaling (-ot_eps_schedule auto), in each stage Sinkhorn sweeps, then sparse Newton steps where they pay in time (-ot_newton_time_check); sinkhorn: Sinkhorn sweeps only", NULL, OTMethods,
                             (PetscEnum)s->method, (PetscEnum *)&s->method, NULL));
  PetscCall(PetscOptionsInt("-ot_max_it", "Largest number of iterations in all (Sinkhorn sweeps + Newton steps)", NULL, s->max_it, &s->max_it, NULL));
  PetscCall(PetscOptionsInt("-ot_sinkhorn_warmup", "SNS: most Sinkhorn sweeps before the first Newton step", NULL, s->warmup_max, &s->warmup_max, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_switch", "SNS: leave the warm-up once the marginal error is below this fraction of the total mass", NULL,
                             s->newton_switch, &s->newton_switch, NULL));
  PetscCall(PetscOptionsInt("-ot_sinkhorn_fallback", "SNS: Sinkhorn sweeps after a Newton step that fails to increase D", NULL, s->fallback_sweeps,
                            &s->fallback_sweeps, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_density", "SNS: entries of P kept in the sparsified Hessian, per unit of n + m", NULL, s->newton_density,
                             &s->newton_density, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_drop",
                             "SNS: keep more than -ot_newton_density x (n + m) entries (up to 16 x as many) while the kept ones carry less than 1 - this fraction of P's mass",
                             NULL, s->newton_drop, &s->newton_drop, NULL));
  PetscCheck(s->newton_drop >= 0 && s->newton_drop < 1, s->comm, OT_ERR_INPUT, "-ot_newton_drop must be in [0, 1), got %g", (double)s->newton_drop);
  PetscCall(PetscOptionsReal("-ot_newton_shift", "SNS: Levenberg-Marquardt shift, relative to the diagonal, times the relative marginal error", NULL,
                             s->newton_shift, &s->newton_shift, NULL));
  PetscCall(PetscOptionsEnum("-ot_newton_assembly",
                             "SNS: split: the Newton matrix's CSR blocks built by otsolve (transposed entries sent with MPI_Alltoallv); setvalues: MatSetValues, PETSc's assembly carries them (slower)",
                             NULL, OTNewtonAssemblies, (PetscEnum)s->newton_assembly, (PetscEnum *)&s->newton_assembly, NULL));
  PetscCall(PetscOptionsBool("-ot_newton_time_check",
                             "SNS: Sinkhorn finishes an eps stage where Newton steps take more time than the sweeps they save (timing-dependent; false: a reproducible path)",
                             NULL, s->newton_time_check, &s->newton_time_check, NULL));
  PetscCall(PetscOptionsReal("-ot_newton_slow", "SNS: a Newton step that reduces the marginal error by less than this factor is slow; 3 in a row raise the density (x4, twice), then Sinkhorn finishes", NULL,
                             s->newton_slow, &s->newton_slow, NULL));
  PetscCheck(s->newton_density > 0, s->comm, OT_ERR_INPUT, "-ot_newton_density must be positive, got %g", (double)s->newton_density);
  PetscCheck(s->warmup_max >= 0 && s->fallback_sweeps > 0, s->comm, OT_ERR_INPUT, "-ot_sinkhorn_warmup must be >= 0 and -ot_sinkhorn_fallback > 0");
  PetscCheck(s->max_it >= 0, s->comm, OT_ERR_INPUT, "-ot_max_it must be non-negative, got %" PetscInt_FMT, s->max_it);
  PetscCall(PetscOptionsName("-ot_monitor", "Print a progress line every k iterations: -ot_monitor [k], k = 1 if omitted (default: off)", NULL, &set));
  if (set) {
    PetscCall(PetscOptionsGetInt(NULL, NULL, "-ot_monitor", &every, NULL));
    PetscCheck(every > 0, s->comm, OT_ERR_INPUT, "-ot_monitor k needs k > 0, got %" PetscInt_FMT, every);
    s->monitor_every = every;
  }
  PetscCall(PetscOptionsEnum("-ot_sinkhorn_variant", "Sinkhorn sweeps in the log domain, or on a stored absorbed kernel (2x faster or more, an n x m kernel); auto: absorb for a dense /C if the kernel fits in half the free memory, log for point clouds", NULL,
                             OTSinkhornVariants, (PetscEnum)s->variant, (PetscEnum *)&s->variant, NULL));
  PetscCall(PetscOptionsEnum("-ot_kernel_precision",
                             "With -ot_sinkhorn_variant absorb: the kernel stored in double, or in single precision (half the bytes per sweep) until the marginal error is 1e-7 x mass, then double sweeps (a double kernel) finish to -ot_tol",
                             NULL, OTKernelPrecisions, (PetscEnum)s->kernel_precision, (PetscEnum *)&s->kernel_precision, NULL));
  PetscCall(PetscOptionsReal("-ot_monitor_seconds", "Without -ot_monitor: print a progress line every this many seconds (0: never)", NULL,
                             s->monitor_seconds, &s->monitor_seconds, NULL));
  PetscCall(PetscOptionsBool("-ot_view", "Print the solver configuration before solving", NULL, s->view, &s->view, NULL));
  PetscCall(PetscOptionsString("-ot_eps_schedule",
                               "eps-scaling: solve at decreasing eps first, each warm-started from the last: E0:F (E0, E0*F, E0*F^2, ... down to -ot_eps), a list E1,E2,... (then -ot_eps), none, or auto (0.01 max C:0.2; the default for -ot_method sns, none for sinkhorn)",
                               NULL, s->eps_schedule_spec, s->eps_schedule_spec, sizeof(s->eps_schedule_spec), NULL));
  PetscCall(PetscOptionsReal("-ot_eps_stage_tol", "eps-scaling: an intermediate eps stage ends at marginal error <= this times the mass", NULL, s->eps_stage_tol,
                             &s->eps_stage_tol, NULL));
  PetscCheck(s->eps_stage_tol > 0, s->comm, OT_ERR_INPUT, "-ot_eps_stage_tol must be positive, got %g", (double)s->eps_stage_tol);
  PetscCall(PetscOptionsReal("-ot_plan_threshold", "Write /plan (sparse CSR) to the result file with the entries of P >= this times max P (0: all; default: no plan)",
                             NULL, s->plan_threshold, &s->plan_threshold, &set));
  PetscCheck(!set || (s->plan_threshold >= 0 && s->plan_threshold <= 1), s->comm, OT_ERR_INPUT, "-ot_plan_threshold must be in [0, 1], got %g",
             (double)s->plan_threshold);
  PetscCall(PetscOptionsString("-ot_checkpoint", "Write checkpoints to this HDF5 file (atomically), every -ot_checkpoint_interval seconds and on SIGTERM/SIGUSR1 (then stop, exit status 4)",
                               NULL, s->checkpoint_file, s->checkpoint_file, sizeof(s->checkpoint_file), NULL));
  PetscCall(PetscOptionsReal("-ot_checkpoint_interval", "Seconds between periodic checkpoints (<= 0: only on SIGTERM/SIGUSR1)", NULL, s->checkpoint_interval,
                             &s->checkpoint_interval, NULL));
  PetscCall(PetscOptionsString("-ot_restart", "Resume from this checkpoint file (written by -ot_checkpoint, on any number of ranks)", NULL, s->restart_file,
                               s->restart_file, sizeof(s->restart_file), NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

/* Builds the eps schedule from -ot_eps_schedule and the target eps (s->eps): decreasing values above the
   target, then the target. The same on every rank (options are). */
static PetscErrorCode BuildEpsSchedule(OTSolver s)
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
      if (start > target && PetscLogReal(target / start) / PetscLogReal(factor) > OT_MAX_EPS_STAGES - 2) factor = PetscPowReal(target / start, 1.0 / (OT_MAX_EPS_STAGES - 2));
    }
  } else if (colon) { /* E0:F */
    start = strtod(spec, &end);
    PetscCheck(end == colon, s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: expected E0:F (a start eps and a factor), a list E1,E2,..., none or auto", spec);
    factor = strtod(colon + 1, &end);
    PetscCheck(end != colon + 1 && *end == '\0', s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: expected E0:F (a start eps and a factor), a list E1,E2,..., none or auto", spec);
    PetscCheck(factor > 0 && factor < 1, s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: the factor must be in (0, 1)", spec);
  } else if (strcmp(spec, "none")) { /* E1,E2,... */
    const char *p = spec;

    while (*p) {
      double e = strtod(p, &end);

      PetscCheck(end != p && (*end == ',' || *end == '\0'), s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: expected E0:F (a start eps and a factor), a list E1,E2,..., none or auto", spec);
      PetscCheck(e > target * (1 + 1e-12), s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: %g is not above the target eps %g", spec, e, (double)target);
      PetscCheck(s->eps_stages == 0 || e < s->eps_schedule[s->eps_stages - 1], s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: the values must decrease", spec);
      PetscCheck(s->eps_stages < OT_MAX_EPS_STAGES - 1, s->comm, OT_ERR_INPUT, "-ot_eps_schedule %s: more than %d values", spec, OT_MAX_EPS_STAGES - 1);
      s->eps_schedule[s->eps_stages++] = e;
      p = *end ? end + 1 : end;
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

PetscErrorCode OTSolverSetUp(OTSolver s)
{
  OTProblem pb = s->problem;

  PetscFunctionBegin;
  if (s->setup) PetscFunctionReturn(0);
  PetscCheck(pb, s->comm, PETSC_ERR_ARG_WRONGSTATE, "OTSolverSetProblem() must be called before OTSolverSetUp()");
  if (s->eps <= 0) s->eps = 0.01 * pb->cost_max;
  PetscCheck(s->eps > 0, s->comm, OT_ERR_INPUT, "%s: all costs are zero, so the default eps (0.01 * max C) is zero; give -ot_eps", pb->source);
  PetscCall(BuildEpsSchedule(s));
  PetscCall(PetscFree4(s->f, s->g, s->row_plan, s->col_sum));
  PetscCall(PetscCalloc4(pb->n_local, &s->f, pb->m, &s->g, pb->m, &s->row_plan, pb->m + OT_COLUMN_EXTRA, &s->col_sum));
  s->setup = PETSC_TRUE;
  PetscFunctionReturn(0);
}

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

PetscErrorCode OTSolverMonitor(OTSolver s, OTStage stage, PetscInt iteration, PetscReal marginal_error, PetscReal dual_objective, PetscBool last)
{
  PetscFunctionBegin;
  if (s->monitor_every) {
    if (!last && iteration % s->monitor_every) PetscFunctionReturn(0);
  } else { /* no -ot_monitor: a line every -ot_monitor_seconds on long runs */
    if (s->monitor_seconds <= 0 || MPI_Wtime() - s->last_monitor < s->monitor_seconds) PetscFunctionReturn(0);
  }
  s->last_monitor = MPI_Wtime();
  PetscCall(PetscPrintf(s->comm, "  %s %6" PetscInt_FMT "  marginal_error %.6e  dual %.15e  time %.3f s\n", stage == OT_STAGE_SINKHORN ? "sinkhorn" : "newton",
                        iteration, (double)marginal_error, (double)dual_objective, (double)(MPI_Wtime() - s->solve_start)));
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
  OTResult *r       = &s->result;
  PetscReal density = s->newton_density;
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
  for (PetscInt k = 0; k < s->sns_boosts; k++) s->newton_density *= 4;
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
    if (info.marginal_error <= s->tol) { /* the warm-up or fallback sweeps already converged */
      *converged = PETSC_TRUE;
      break;
    }
    r->iterations_newton++;
    if (s->monitor_every)
      PetscCall(PetscPrintf(s->comm, "  newton   %6" PetscInt_FMT "  marginal_error %.6e  dual %.15e  kept %lld (dropped mass %.1e)  ksp %" PetscInt_FMT " %s  step %g%s\n",
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
        PetscCall(PetscInfo(NULL, "SNS: a Newton step took %g s and reduced the error at %g per second (%" PetscInt_FMT " slower in a row); Sinkhorn sweeps: %g s each, %g per second, about %g s to the tolerance; finishing with Sinkhorn\n",
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
      s->newton_density *= 4;
      PetscCall(PetscInfo(NULL, "SNS: Newton converges slowly; density raised to %g\n", (double)s->newton_density));
    } else {
      PetscCall(PetscInfo(NULL, "SNS: Newton converges slowly even at density %g; finishing with Sinkhorn sweeps\n", (double)s->newton_density));
      s->sns_phase = 2;
      PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, converged));
    }
  }
  s->newton_density = density;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetRestart(OTSolver s, const char filename[])
{
  PetscFunctionBegin;
  PetscCall(PetscStrncpy(s->restart_file, filename ? filename : "", sizeof(s->restart_file)));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSolve(OTSolver s)
{
  OTResult *r = &s->result;
  PetscInt  iterations;
  PetscBool converged = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(OTSolverSetUp(s));
  if (s->view) PetscCall(OTSolverView(s, PETSC_VIEWER_STDOUT_(s->comm)));
  s->history_len  = 0;
  s->solve_start  = MPI_Wtime();
  s->last_monitor = s->solve_start;
  PetscCall(PetscStrcpy(r->status, ""));
  r->reason              = OT_REASON_NONE;
  r->wasserstein = r->wasserstein_lower = r->wasserstein_upper = r->sinkhorn_divergence = NAN;
  r->divergence_converged                                                            = PETSC_FALSE;
  r->iterations_sinkhorn = r->iterations_newton = 0;
  r->sinkhorn_time                              = 0.0;
  s->sns_phase = s->sns_boosts = 0;
  s->eps_stage = 0;
  s->eps       = s->eps_schedule[0];
  if (s->restart_file[0]) {
    PetscCall(OTSolverLoadCheckpoint(s, s->restart_file));
    PetscCall(PetscPrintf(s->comm, "otsolve: resuming from %s after %" PetscInt_FMT " Sinkhorn sweeps and %" PetscInt_FMT " Newton steps\n", s->restart_file,
                          r->iterations_sinkhorn, r->iterations_newton));
  }
  s->last_checkpoint = MPI_Wtime();
  if (s->checkpoint_file[0]) PetscCall(OTSignalsCatch());
  /* eps-scaling: the stages above the target eps, Sinkhorn to a loose tolerance, each warm-starting the next
     (the potentials are in cost units, so they carry over as they are) */
  for (; s->eps_stage < s->eps_stages - 1; s->eps_stage++) {
    PetscReal tol = s->tol;
    PetscInt  sweeps = r->iterations_sinkhorn, steps = r->iterations_newton;

    s->eps = s->eps_schedule[s->eps_stage];
    s->tol = s->eps_stage_tol * s->problem->mass;
    if (s->method == OT_METHOD_SINKHORN) PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, &converged));
    else PetscCall(RunSNS(s, &converged)); /* a few sweeps and Newton steps in each stage */
    s->tol = tol;
    if (r->reason != OT_REASON_NONE || !converged) break; /* interrupted, NaN, or -ot_max_it: stop in this stage */
    s->sns_phase = s->sns_boosts = 0; /* the next stage begins with its own warm-up */
    if (s->monitor_every)
      PetscCall(PetscPrintf(s->comm, "  eps stage %" PetscInt_FMT "/%" PetscInt_FMT ": eps = %g done in %" PetscInt_FMT " sweeps and %" PetscInt_FMT " Newton steps\n",
                            s->eps_stage + 1, s->eps_stages, (double)s->eps, r->iterations_sinkhorn - sweeps, r->iterations_newton - steps));
  }
  s->eps = s->eps_schedule[s->eps_stage];
  for (int attempt = 0;; attempt++) {
    if (s->method == OT_METHOD_SINKHORN) PetscCall(RunSinkhorn(s, s->max_it, PETSC_FALSE, &converged));
    else PetscCall(RunSNS(s, &converged));
    if (r->reason == OT_REASON_INTERRUPTED) break; /* leave at once: the batch system's grace time is short */
    PetscCall(PetscLogStagePush(OT_STAGE_FINISH));
    PetscCall(OTEvaluate(s->problem, s->eps, s->f, s->g, r));
    PetscCall(PetscLogStagePop());
    /* the iteration's own error estimate may miss rounding that the independent evaluation counts: then
       iterate on (a few times at most) */
    if (!converged || r->marginal_error <= s->tol || r->iterations_sinkhorn + r->iterations_newton >= s->max_it || attempt == 3) break;
  }
  PetscCall(OTSignalsRelease());
  iterations = r->iterations_sinkhorn + r->iterations_newton;
  r->solve_time = MPI_Wtime() - s->solve_start;
  r->converged  = PETSC_FALSE;
  if (r->reason == OT_REASON_INTERRUPTED) PetscFunctionReturn(0);

  PetscCall(PetscLogStagePush(OT_STAGE_FINISH));
  PetscCall(OTComputeBounds(s->problem, s->eps, s->f, s->g, &r->lower_bound, &r->upper_bound));
  PetscCall(PetscLogStagePop());
  /* converged reports the independent evaluation, not the iteration's own estimate */
  r->converged = (PetscBool)(converged && r->marginal_error <= s->tol && r->reason == OT_REASON_NONE);
  if (r->reason == OT_REASON_NONE && PetscIsInfOrNanReal(r->marginal_error)) {
    r->reason = OT_REASON_BREAKDOWN;
    PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "NaN or Inf in the final evaluation after %" PetscInt_FMT " iterations", iterations));
  }
  if (r->reason == OT_REASON_NONE) r->reason = r->converged ? OT_REASON_CONVERGED : OT_REASON_MAX_IT;
  {
    /* costs that are a distance to a power p: W_p = (transport cost)^(1/p), and so for the bounds */
    OTProblem pb = s->problem;
    PetscReal p  = pb->cost_kind == OT_COST_SQEUCLIDEAN ? 2.0 : pb->cost_kind == OT_COST_EUCLIDEAN ? 1.0 : pb->cost_kind == OT_COST_PNORM ? pb->cost_power : 0.0;

    if (p > 0) {
      r->wasserstein       = PetscPowReal(PetscMax(r->transport_cost, 0.0), 1.0 / p);
      r->wasserstein_lower = PetscPowReal(PetscMax(r->lower_bound, 0.0), 1.0 / p);
      r->wasserstein_upper = PetscPowReal(PetscMax(r->upper_bound, 0.0), 1.0 / p);
    }
  }
  /* a run stopped by -ot_max_it can go on later from where it ended: -ot_restart with a larger -ot_max_it */
  if (r->reason == OT_REASON_MAX_IT && s->checkpoint_file[0]) PetscCall(OTSolverWriteCheckpoint(s, s->checkpoint_file));
  r->solve_time = MPI_Wtime() - s->solve_start;
  if (!r->status[0]) {
    if (r->converged) PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "converged: marginal error %.3e <= tol %.3e", (double)r->marginal_error, (double)s->tol));
    else if (s->eps_stage < s->eps_stages - 1)
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "not converged: stopped by -ot_max_it after %" PetscInt_FMT " iterations in eps stage %" PetscInt_FMT " of %" PetscInt_FMT " (eps = %g, above the target)",
                              iterations, s->eps_stage + 1, s->eps_stages, (double)s->eps));
    else if (iterations < s->max_it) /* the sweeps' own estimate reached tol four times, the independent evaluation did not */
      PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "not converged: marginal error %.3e > tol %.3e after %" PetscInt_FMT " iterations: tol is below what rounding allows here", (double)r->marginal_error, (double)s->tol, iterations));
    else PetscCall(PetscSNPrintf(r->status, sizeof(r->status), "not converged: marginal error %.3e > tol %.3e after %" PetscInt_FMT " iterations (-ot_max_it)", (double)r->marginal_error, (double)s->tol, iterations));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetResult(OTSolver s, OTResult *result)
{
  PetscFunctionBegin;
  *result = s->result;
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
  PetscCall(PetscViewerASCIIPrintf(viewer, "eps = %g, tol = %g, max_it = %" PetscInt_FMT ", Sinkhorn variant %s%s, kernel precision %s\n", (double)s->eps, (double)s->tol,
                                   s->max_it, OTSinkhornVariants[s->variant], s->variant == OT_SINKHORN_AUTO ? " (decided at the first sweep)" : "",
                                   OTKernelPrecisions[s->kernel_precision]));
  if (s->eps_stages > 1) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "eps schedule (%" PetscInt_FMT " stages, each above the target to marginal error <= %g x mass):", s->eps_stages,
                                     (double)s->eps_stage_tol));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_FALSE));
    for (PetscInt k = 0; k < s->eps_stages; k++) PetscCall(PetscViewerASCIIPrintf(viewer, " %g", (double)s->eps_schedule[k]));
    PetscCall(PetscViewerASCIIPrintf(viewer, "\n"));
    PetscCall(PetscViewerASCIIUseTabs(viewer, PETSC_TRUE));
  }
  if (s->method == OT_METHOD_SNS) {
    PetscCall(PetscViewerASCIIPrintf(viewer, "SNS: warm-up <= %" PetscInt_FMT " sweeps (leave at marginal error < %g x mass), fallback %" PetscInt_FMT " sweeps, density %g, shift %g\n",
                                     s->warmup_max, (double)s->newton_switch, s->fallback_sweeps, (double)s->newton_density, (double)s->newton_shift));
    PetscCall(OTNewtonView(s, viewer));
  }
  PetscCall(PetscViewerASCIIPopTab(viewer));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverPrintSummary(OTSolver s)
{
  OTResult *r = &s->result;

  PetscFunctionBegin;
  PetscCall(PetscPrintf(s->comm, "status = %s\n", r->status));
  PetscCall(PetscPrintf(s->comm, "n = %" PetscInt_FMT "\nm = %" PetscInt_FMT "\nranks = %d\n", s->problem->n, s->problem->m, s->size));
  if (r->reason == OT_REASON_INTERRUPTED) { /* nothing was evaluated: only what a restart needs to know */
    PetscCall(PetscPrintf(s->comm, "checkpoint = %s\n", s->checkpoint_file));
    PetscCall(PetscPrintf(s->comm, "iterations_sinkhorn = %" PetscInt_FMT "\niterations_newton = %" PetscInt_FMT "\n", r->iterations_sinkhorn, r->iterations_newton));
    PetscCall(PetscPrintf(s->comm, "interrupted = 1\nconverged = 0\n"));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscPrintf(s->comm, "eps = %.17g\n", (double)r->eps));
  PetscCall(PetscPrintf(s->comm, "transport_cost = %.17g\n", (double)r->transport_cost));
  PetscCall(PetscPrintf(s->comm, "dual_objective = %.17g\n", (double)r->dual_objective));
  PetscCall(PetscPrintf(s->comm, "entropic_cost = %.17g\n", (double)r->entropic_cost));
  PetscCall(PetscPrintf(s->comm, "marginal_error = %.6e\n", (double)r->marginal_error));
  PetscCall(PetscPrintf(s->comm, "lower_bound = %.17g\n", (double)r->lower_bound));
  PetscCall(PetscPrintf(s->comm, "upper_bound = %.17g\n", (double)r->upper_bound));
  if (!PetscIsNanReal(r->wasserstein)) {
    PetscCall(PetscPrintf(s->comm, "wasserstein = %.17g\n", (double)r->wasserstein));
    PetscCall(PetscPrintf(s->comm, "wasserstein_lower = %.17g\nwasserstein_upper = %.17g\n", (double)r->wasserstein_lower, (double)r->wasserstein_upper));
  }
  if (!PetscIsNanReal(r->sinkhorn_divergence)) {
    PetscCall(PetscPrintf(s->comm, "sinkhorn_divergence = %.17g\n", (double)r->sinkhorn_divergence));
    PetscCall(PetscPrintf(s->comm, "divergence_converged = %d\n", (int)r->divergence_converged));
  }
  PetscCall(PetscPrintf(s->comm, "iterations_sinkhorn = %" PetscInt_FMT "\n", r->iterations_sinkhorn));
  PetscCall(PetscPrintf(s->comm, "iterations_newton = %" PetscInt_FMT "\n", r->iterations_newton));
  PetscCall(PetscPrintf(s->comm, "solve_time = %.6f\n", (double)r->solve_time));
  PetscCall(PetscPrintf(s->comm, "sinkhorn_seconds_per_iteration = %.6e\n", (double)(r->sinkhorn_time / PetscMax(1, r->iterations_sinkhorn))));
  PetscCall(PetscPrintf(s->comm, "converged = %d\n", (int)r->converged));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverDestroy(OTSolver *solver)
{
  PetscFunctionBegin;
  if (!*solver) PetscFunctionReturn(0);
  PetscCall(OTProblemDestroy(&(*solver)->problem));
  PetscCall(PetscFree4((*solver)->f, (*solver)->g, (*solver)->row_plan, (*solver)->col_sum));
  PetscCall(PetscFree((*solver)->history));
  PetscCall(PetscFree((*solver)->kernel));
  PetscCall(PetscFree((*solver)->kernel_single));
  PetscCall(OTNewtonDestroy(&(*solver)->newton));
  PetscCall(PetscFree4((*solver)->f_ref, (*solver)->u, (*solver)->g_ref, (*solver)->v));
  PetscCall(PetscFree(*solver));
  PetscFunctionReturn(0);
}
