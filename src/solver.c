/*
  The OTSolver object: its life cycle (create, options, set-up, destroy), setters and getters. OTSolverSolve, the
  driver of the pipeline, is in solve.c (multiscale.c creates solvers of its own for the coarse levels).
  Each stage reads its own options (OTSinkhornSetFromOptions, OTSNSSetFromOptions, OTNewtonSetFromOptions,
  OTCheckpointSetFromOptions), called from OTSolverSetFromOptions as KSPSetFromOptions calls its method's.
*/
#include "otimpl.h"

PetscErrorCode OTSolverCreate(MPI_Comm comm, OTSolver *solver)
{
  OTSolver s;

  PetscFunctionBegin;
  PetscCall(OTInitializePackage());
  PetscCall(PetscNew(&s));
  s->comm                = comm;
  s->eps                 = -1.0;
  s->eps_rel             = 0.01;
  s->truncation          = 0.0; /* auto */
  s->truncation_values   = OT_TRUNCATION_VALUES_AUTO;
  s->multiscale          = PETSC_TRUE;
  s->multiscale_cells    = 4096;
  s->overrelax           = PETSC_TRUE;
  s->tol                 = 1e-9;
  s->max_it              = 100000;
  s->monitor_every       = 0;
  s->monitor_seconds     = 10.0;
  s->method              = OT_METHOD_SNS;
  s->warmup_max          = 5000;
  s->newton_switch       = 0.1;
  s->fallback_sweeps     = 20;
  s->newton_slow         = 0.5;
  s->newton_time_check   = PETSC_TRUE;
  s->checkpoint_interval = 600.0;
  s->eps_stage_tol       = 1e-3;
  s->plan_threshold      = -1.0;
  s->memory_share        = -1.0;
  PetscCallMPI(MPI_Comm_rank(comm, &s->rank));
  PetscCallMPI(MPI_Comm_size(comm, &s->size));
  PetscCall(PetscStrcpy(s->result.status, "not solved"));
  PetscCall(OTNewtonCreate(&s->newton));
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
  PetscBool set, rel_set;
  PetscInt  every = 1;

  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "Optimal transport solver (otsolve)", NULL);
  PetscCall(PetscOptionsReal("-ot_eps", "Entropic regularisation eps, in cost units (default: -ot_eps_rel x max C)", NULL, s->eps, &s->eps, &set));
  PetscCheck(!set || s->eps > 0, s->comm, OT_ERR_INPUT, "-ot_eps must be positive, got %g", (double)s->eps);
  s->eps_given = (PetscBool)(s->eps_given || set);
  PetscCall(PetscOptionsReal("-ot_eps_rel", "eps relative to the largest cost: eps = R x max C, where -ot_eps is not given", NULL, s->eps_rel, &s->eps_rel,
                             &rel_set));
  PetscCheck(!rel_set || s->eps_rel > 0, s->comm, OT_ERR_INPUT, "-ot_eps_rel must be positive, got %g", (double)s->eps_rel);
  PetscCheck(!(set && rel_set), s->comm, OT_ERR_INPUT, "-ot_eps and -ot_eps_rel both given: give eps in cost units or relative to max C, not both");
  s->eps_given = (PetscBool)(s->eps_given || rel_set);
  PetscCall(PetscOptionsReal("-ot_tol", "Stop when the marginal error |P1-a|_1 + |P^T1-b|_1 is at most this (unbalanced: the dual gradient |P1 - a exp(-f/rho_a)|_1 + |P^T1 - b exp(-g/rho_b)|_1)", NULL, s->tol, &s->tol, NULL));
  PetscCheck(s->tol > 0, s->comm, OT_ERR_INPUT, "-ot_tol must be positive, got %g", (double)s->tol);
  PetscCall(PetscOptionsEnum("-ot_method", "sns (default): Sinkhorn sweeps, then sparse Newton steps; sinkhorn: sweeps only", NULL, OTMethods,
                             (PetscEnum)s->method, (PetscEnum *)&s->method, &s->method_given));
  PetscCall(PetscOptionsInt("-ot_max_it", "Largest number of iterations in all (Sinkhorn sweeps + Newton steps)", NULL, s->max_it, &s->max_it, NULL));
  PetscCheck(s->max_it >= 0, s->comm, OT_ERR_INPUT, "-ot_max_it must be non-negative, got %" PetscInt_FMT, s->max_it);
  PetscCall(PetscOptionsName("-ot_monitor", "Print a progress line every k iterations: -ot_monitor [k], k = 1 if omitted (default: off)", NULL, &set));
  if (set) {
    PetscCall(PetscOptionsGetInt(NULL, NULL, "-ot_monitor", &every, NULL));
    PetscCheck(every > 0, s->comm, OT_ERR_INPUT, "-ot_monitor k needs k > 0, got %" PetscInt_FMT, every);
    s->monitor_every = every;
  }
  PetscCall(PetscOptionsReal("-ot_monitor_seconds", "Without -ot_monitor: print a progress line every this many seconds (0: never)", NULL, s->monitor_seconds,
                             &s->monitor_seconds, NULL));
  PetscCall(PetscOptionsBool("-ot_view", "Print the solver configuration before solving", NULL, s->view, &s->view, NULL));
  PetscCall(PetscOptionsReal("-ot_plan_threshold", "Write /plan (sparse CSR) with the entries of P >= this times max P (0: all; default: no plan)", NULL,
                             s->plan_threshold, &s->plan_threshold, &set));
  PetscCheck(!set || (s->plan_threshold >= 0 && s->plan_threshold <= 1), s->comm, OT_ERR_INPUT, "-ot_plan_threshold must be in [0, 1], got %g",
             (double)s->plan_threshold);
  PetscOptionsEnd();
  PetscCall(OTSinkhornSetFromOptions(s));
  PetscCall(OTSNSSetFromOptions(s));
  PetscCall(OTNewtonSetFromOptions(s));
  PetscCall(OTCheckpointSetFromOptions(s));
  PetscFunctionReturn(0);
}

/* Unbalanced transport (-ot_unbalanced) runs log-domain Sinkhorn sweeps with damped updates; the stored-kernel variants
   and Newton's steps do not handle relaxed marginals yet: refused where asked for, left out where they are defaults. */
static PetscErrorCode SetUpUnbalanced(OTSolver s)
{
  OTProblem pb = s->problem;

  PetscFunctionBegin;
  if (!OTProblemIsUnbalanced(pb)) PetscFunctionReturn(0);
  PetscCheck(s->variant == OT_SINKHORN_AUTO || s->variant == OT_SINKHORN_LOG, s->comm, OT_ERR_INPUT,
             "-ot_unbalanced: -ot_sinkhorn_variant %s does not handle relaxed marginals yet; use log (the default picks it)", OTSinkhornVariants[s->variant]);
  s->variant = OT_SINKHORN_LOG;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetUp(OTSolver s)
{
  OTProblem pb = s->problem;

  PetscFunctionBegin;
  if (s->setup) PetscFunctionReturn(0);
  PetscCheck(pb, s->comm, PETSC_ERR_ARG_WRONGSTATE, "OTSolverSetProblem() must be called before OTSolverSetUp()");
  if (s->eps <= 0) s->eps = s->eps_rel * pb->cost_max;
  PetscCheck(s->eps > 0, s->comm, OT_ERR_INPUT, "%s: all costs are zero, so eps = %g x max C is zero; give -ot_eps", pb->source, (double)s->eps_rel);
  PetscCall(OTSolverBuildEpsSchedule(s));
  PetscCall(SetUpUnbalanced(s));
  if (s->memory_share < 0) PetscCall(OTNodeMemoryShare(pb, &s->memory_share));
  PetscCall(OTSinkhornChooseVariant(s));
  PetscCall(PetscFree4(s->f, s->g, s->row_plan, s->col_sum));
  PetscCall(PetscCalloc4(pb->n_local, &s->f, pb->m, &s->g, pb->m, &s->row_plan, pb->m + OT_COLUMN_EXTRA, &s->col_sum));
  s->store.m = pb->m;
  s->setup   = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetRestart(OTSolver s, const char filename[])
{
  PetscFunctionBegin;
  PetscCall(PetscStrncpy(s->restart_file, filename ? filename : "", sizeof(s->restart_file)));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetResult(OTSolver s, OTResult *result)
{
  PetscFunctionBegin;
  *result = s->result;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverDestroy(OTSolver *solver)
{
  PetscFunctionBegin;
  if (!*solver) PetscFunctionReturn(0);
  PetscCall(OTSignalsRelease()); /* (nothing to do if the solver never caught them) */
  PetscCall(OTProblemDestroy(&(*solver)->problem));
  PetscCall(PetscFree4((*solver)->f, (*solver)->g, (*solver)->row_plan, (*solver)->col_sum));
  PetscCall(PetscFree((*solver)->history));
  PetscCall(PetscFree((*solver)->store.k));
  PetscCall(PetscFree((*solver)->store.k_single));
  PetscCall(OTNewtonDestroy(&(*solver)->newton));
  PetscCall(OTTruncatedDestroy(&(*solver)->trunc));
  PetscCall(PetscFree4((*solver)->store.f_ref, (*solver)->u, (*solver)->store.g_ref, (*solver)->v));
  PetscCall(PetscFree(*solver));
  PetscFunctionReturn(0);
}

/* --- setters and getters of the public API (include/otsolve.h): what programs built on the library read and set --- */

PetscErrorCode OTSolverGetComm(OTSolver s, MPI_Comm *comm)
{
  PetscFunctionBegin;
  *comm = s->comm;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetProblem(OTSolver s, OTProblem *problem)
{
  PetscFunctionBegin;
  *problem = s->problem;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetEps(OTSolver s, PetscReal eps)
{
  PetscFunctionBegin;
  s->eps       = eps;
  s->eps_given = (PetscBool)(eps > 0);
  s->setup     = PETSC_FALSE; /* the eps schedule is built from eps at set-up */
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetEps(OTSolver s, PetscReal *eps)
{
  PetscFunctionBegin;
  *eps = s->eps;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetEpsSchedule(OTSolver s, const char spec[])
{
  size_t len;

  PetscFunctionBegin;
  PetscCall(PetscStrlen(spec, &len)); /* 0 for NULL */
  PetscCheck(len < sizeof(s->eps_schedule_spec), PETSC_COMM_SELF, OT_ERR_INPUT, "-ot_eps_schedule %s: longer than %zu characters", spec,
             sizeof(s->eps_schedule_spec) - 1);
  PetscCall(PetscStrncpy(s->eps_schedule_spec, spec ? spec : "", sizeof(s->eps_schedule_spec)));
  s->schedule_given = (PetscBool)(len > 0);
  s->setup          = PETSC_FALSE; /* the schedule is built at set-up */
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetCheckpoint(OTSolver s, const char file[], PetscReal interval)
{
  PetscFunctionBegin;
  PetscCall(PetscStrncpy(s->checkpoint_file, file ? file : "", sizeof(s->checkpoint_file)));
  s->checkpoint_interval = interval;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetCheckpoint(OTSolver s, const char *file[], PetscReal *interval)
{
  PetscFunctionBegin;
  if (file) *file = s->checkpoint_file;
  if (interval) *interval = s->checkpoint_interval;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetRestart(OTSolver s, const char *file[])
{
  PetscFunctionBegin;
  *file = s->restart_file;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetPlanThreshold(OTSolver s, PetscReal threshold)
{
  PetscFunctionBegin;
  PetscCheck(threshold <= 1, PETSC_COMM_SELF, OT_ERR_INPUT, "-ot_plan_threshold must be in [0, 1], got %g", (double)threshold);
  s->plan_threshold = threshold < 0 ? -1.0 : threshold;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverGetPlanThreshold(OTSolver s, PetscReal *threshold)
{
  PetscFunctionBegin;
  *threshold = s->plan_threshold;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSetDivergence(OTSolver s, PetscReal divergence, PetscBool converged)
{
  PetscFunctionBegin;
  s->result.sinkhorn_divergence  = divergence;
  s->result.divergence_converged = converged;
  PetscFunctionReturn(0);
}
