/*
  Checkpoints and restarts: a long run on a cluster must survive its time limit.

  A checkpoint is an HDF5 file holding what the iteration needs to go on exactly where it stopped: the
  potentials f (n, written by the owners of each block of rows, so that a restart on another number of
  ranks reads its own block) and g (m), the counters, the SNS phase, eps, and the history so far, plus
  what identifies the problem (n, m, max C, mass). It is written at a safe point (between two Sinkhorn
  sweeps or Newton steps, where (f, g) alone is the state), to FILE.tmp.<pid> that is synced and then
  renamed over FILE: a kill at any moment leaves either the previous checkpoint or the new one, whole.

  Signals. With -ot_checkpoint, SIGTERM and SIGUSR1 (what Slurm sends before a time limit, with
  --signal; what mpiexec forwards to every rank) only set a flag. Ranks see the signal at different
  moments, so the flag rides on the reduction each sweep makes anyway (one more number in the column
  sums) and every rank acts on the same sweep: all write the checkpoint together, then the run stops
  with OT_REASON_INTERRUPTED (exit status 4). The handlers stay until OTSolverDestroy: a signal that arrives after
  the last sweep, while the result is evaluated and written, is ignored instead of killing a run that has its
  answer (a time limit's signal and a solve's end can meet). The periodic checkpoint (-ot_checkpoint_interval) uses rank
  0's clock the same way, so no rank decides alone.
*/
#include "otimpl.h"
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define OT_CHECKPOINT_FORMAT "otsolve checkpoint 1"

static volatile sig_atomic_t ot_signal_received = 0;
static struct sigaction      ot_previous_term, ot_previous_usr1;
static PetscBool             ot_signals_caught = PETSC_FALSE;

static void OnSignal(int signo)
{
  ot_signal_received = signo;
}

PetscErrorCode OTSignalsCatch(void)
{
  struct sigaction action;

  PetscFunctionBegin;
  ot_signal_received = 0; /* a signal that came after the last solve's iterations ended stops nothing later */
  if (ot_signals_caught) PetscFunctionReturn(0);
  memset(&action, 0, sizeof(action));
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART; /* a signal during MPI or file I/O must not make a system call fail */
  PetscCheck(sigaction(SIGTERM, &action, &ot_previous_term) == 0 && sigaction(SIGUSR1, &action, &ot_previous_usr1) == 0, PETSC_COMM_SELF, PETSC_ERR_SYS,
             "could not install the SIGTERM/SIGUSR1 handlers");
  ot_signals_caught = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSignalsRelease(void)
{
  PetscFunctionBegin;
  if (!ot_signals_caught) PetscFunctionReturn(0);
  /* each signal's previous handler, unless the program has put its own in place of OnSignal since */
  for (int k = 0; k < 2; k++) {
    int                     signo    = k ? SIGUSR1 : SIGTERM;
    const struct sigaction *previous = k ? &ot_previous_usr1 : &ot_previous_term;
    struct sigaction        now;

    PetscCheck(sigaction(signo, NULL, &now) == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "could not read the handler of signal %d", signo);
    if (now.sa_handler == OnSignal)
      PetscCheck(sigaction(signo, previous, NULL) == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "could not restore the handler of signal %d", signo);
  }
  ot_signals_caught = PETSC_FALSE;
  PetscFunctionReturn(0);
}

void OTSolverSafePointRequests(OTSolver s, PetscReal flags[OT_SAFE_POINT_FLAGS])
{
  flags[0] = ot_signal_received ? 1.0 : 0.0;
  flags[1] = (s->rank == 0 && s->checkpoint_file[0] && s->checkpoint_interval > 0 && MPI_Wtime() - s->last_checkpoint >= s->checkpoint_interval) ? 1.0 : 0.0;
}

/* What a checkpoint records beside the state: the iterations done so far. */
typedef struct {
  OTSolver s;
  PetscInt iterations_sinkhorn, iterations_newton;
} CheckpointContext;

/* The contents of a checkpoint (an OTH5WriteFn); (f, g) must be the state after the context's iterations. */
static PetscErrorCode WriteCheckpointFile(void *ctx, hid_t file, hid_t xfer)
{
  CheckpointContext *c             = (CheckpointContext *)ctx;
  OTSolver           s             = c->s;
  OTProblem          pb            = s->problem;
  OTResult          *r             = &s->result;
  PetscReal          sinkhorn_time = r->sinkhorn_time + (s->sinkhorn_run_start > 0 ? MPI_Wtime() - s->sinkhorn_run_start : 0.0);
  const PetscInt     ints[]        = {pb->n,         pb->m,        s->size,       c->iterations_sinkhorn, c->iterations_newton, s->eps_stage,
                                      s->eps_stages, s->sns_phase, s->sns_boosts, s->sns_returns,         s->sns_chunk_end,     s->close_after,
                                      s->sns_losing, s->sns_slow,  s->newton_ksp,   s->sns_linear,          s->sns_tightened};
  const PetscReal    reals[]       = {pb->cost_max, pb->mass, s->eps, sinkhorn_time, MPI_Wtime() - s->solve_start, s->newton_rate, s->newton_work,
                                      OTRelaxed(pb->rho_a) ? pb->rho_a : INFINITY, OTRelaxed(pb->rho_b) ? pb->rho_b : INFINITY};

  PetscFunctionBegin;
  PetscCall(OTH5WriteState(s, file, xfer));
  PetscCall(OTH5WriteAttrString(file, "format", OT_CHECKPOINT_FORMAT));
  PetscCall(OTH5WriteAttrString(file, "problem", pb->source));
  PetscCall(OTH5WriteAttrString(file, "method", OTMethods[s->method]));
  PetscCall(OTH5WriteAttrsInt(file,
                              "n m ranks iterations_sinkhorn iterations_newton eps_stage eps_stages sns_phase sns_boosts sns_returns sns_chunk_end close_after sns_losing sns_slow newton_ksp sns_linear sns_tightened",
                              17, ints));
  PetscCall(OTH5WriteAttrsReal(file, "cost_max mass eps sinkhorn_time elapsed newton_rate newton_work rho_a rho_b", 9, reals));
  { /* the eps schedule, target last: a restart without -ot_eps and -ot_eps_schedule takes it from here */
    hsize_t len   = (hsize_t)s->eps_stages;
    hid_t   space = H5Screate_simple(1, &len, NULL), attr;

    OTH5Call(space);
    attr = H5Acreate2(file, "eps_schedule", H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
    OTH5Call(attr);
    OTH5Call(H5Awrite(attr, H5T_NATIVE_DOUBLE, s->eps_schedule));
    OTH5Call(H5Aclose(attr));
    OTH5Call(H5Sclose(space));
  }
  PetscFunctionReturn(0);
}

/* The checkpoint at the given counts, written atomically (h5io.c). A storage failure does not end the run: it is
   counted in the result, reported on rank 0 (once, until a checkpoint is written again), the temporary is gone and the previous checkpoint stays;
   *written says whether this one was written (the same on every rank). */
static PetscErrorCode WriteCheckpoint(OTSolver s, const char filename[], PetscInt iterations_sinkhorn, PetscInt iterations_newton, PetscBool *written)
{
  CheckpointContext ctx           = {s, iterations_sinkhorn, iterations_newton};
  OTResult         *r             = &s->result;
  PetscBool         first_failure = (PetscBool)(r->checkpoint_failures == 0 || r->checkpoint_written);

  PetscFunctionBegin;
  PetscCall(PetscLogEventBegin(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscCall(OTH5WriteAtomicTry(s->comm, filename, OTStateBytes(s), WriteCheckpointFile, &ctx, written, r->checkpoint_error, sizeof(r->checkpoint_error)));
  s->last_checkpoint    = MPI_Wtime(); /* a failed one too: the next try comes an interval later */
  r->checkpoint_written = *written;
  if (*written) s->checkpoints_written++;
  else {
    r->checkpoint_failures++; /* said once, until one is written again; the summary counts them all */
    if (first_failure)
      PetscCall(PetscPrintf(s->comm, "otsolve: warning: checkpoint %s not written: %s; the previous checkpoint, if any, stays\n", filename,
                            r->checkpoint_error));
  }
  PetscCall(PetscLogEventEnd(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode OTCheckpointSetFromOptions(OTSolver s)
{
  PetscFunctionBegin;
  PetscOptionsBegin(s->comm, NULL, "Checkpoints (otsolve)", NULL);
  PetscCall(PetscOptionsString("-ot_checkpoint",
                               "Checkpoint file, written every -ot_checkpoint_interval s and on SIGTERM/SIGUSR1 (then exit 4; 7 if not written)", NULL,
                               s->checkpoint_file, s->checkpoint_file, sizeof(s->checkpoint_file), NULL));
  PetscCall(PetscOptionsReal("-ot_checkpoint_interval", "Seconds between periodic checkpoints (<= 0: only on SIGTERM/SIGUSR1)", NULL, s->checkpoint_interval,
                             &s->checkpoint_interval, NULL));
  PetscCall(PetscOptionsString("-ot_restart", "Resume from this checkpoint file (written by -ot_checkpoint, on any number of ranks)", NULL, s->restart_file,
                               s->restart_file, sizeof(s->restart_file), NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverWriteCheckpoint(OTSolver s, const char filename[], PetscBool *written)
{
  PetscFunctionBegin;
  PetscCheck(s->setup, s->comm, PETSC_ERR_ARG_WRONGSTATE, "OTSolverSetUp() or OTSolverSolve() must come before OTSolverWriteCheckpoint()");
  PetscCall(WriteCheckpoint(s, filename, s->result.iterations_sinkhorn, s->result.iterations_newton, written));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSafePoint(OTSolver s, const PetscReal flags[OT_SAFE_POINT_FLAGS], PetscInt iterations_sinkhorn, PetscInt iterations_newton,
                                 PetscBool *stop)
{
  PetscBool written;

  PetscFunctionBegin;
  *stop = PETSC_FALSE;
  if (!s->checkpoint_file[0] || (flags[0] <= 0 && flags[1] <= 0)) PetscFunctionReturn(0);
  PetscCall(WriteCheckpoint(s, s->checkpoint_file, iterations_sinkhorn, iterations_newton, &written));
  if (flags[0] > 0) {
    *stop            = PETSC_TRUE;
    s->result.reason = OT_REASON_INTERRUPTED;
    if (written)
      PetscCall(PetscSNPrintf(s->result.status, sizeof(s->result.status),
                              "interrupted by a signal after %" PetscInt_FMT " Sinkhorn sweeps and %" PetscInt_FMT
                              " Newton steps; checkpoint written to %s (resume with -ot_restart %s)",
                              iterations_sinkhorn, iterations_newton, s->checkpoint_file, s->checkpoint_file));
    else
      PetscCall(PetscSNPrintf(s->result.status, sizeof(s->result.status),
                              "interrupted by a signal after %" PetscInt_FMT " Sinkhorn sweeps and %" PetscInt_FMT
                              " Newton steps; the checkpoint could NOT be written to %s (%s)",
                              iterations_sinkhorn, iterations_newton, s->checkpoint_file, s->result.checkpoint_error));
  } else if (written && s->monitor_every) {
    PetscCall(PetscPrintf(s->comm, "  checkpoint written to %s after %" PetscInt_FMT " iterations\n", s->checkpoint_file,
                          iterations_sinkhorn + iterations_newton));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverSafePointReduce(OTSolver s, PetscInt iterations_sinkhorn, PetscInt iterations_newton, PetscBool *stop)
{
  PetscReal flags[OT_SAFE_POINT_FLAGS];

  PetscFunctionBegin;
  *stop = PETSC_FALSE;
  if (!s->checkpoint_file[0]) PetscFunctionReturn(0);
  OTSolverSafePointRequests(s, flags);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, flags, OT_SAFE_POINT_FLAGS, MPIU_REAL, MPIU_SUM, s->comm));
  PetscCall(OTSolverSafePoint(s, flags, iterations_sinkhorn, iterations_newton, stop));
  PetscFunctionReturn(0);
}

/* --- reading --- */

/* Same within a relative tolerance: the checkpoint was written for this problem and eps (the mass is a sum
   whose rounding depends on the number of ranks, hence a tolerance far above rounding and far below any
   real change of the weights). */
static PetscBool Same(double x, double y, double rtol)
{
  return (PetscBool)(PetscAbsReal(x - y) <= rtol * PetscMax(PetscAbsReal(x), PetscAbsReal(y)));
}

/* The checkpoint's eps schedule (attribute eps_schedule, eps_stages values, the target last) into schedule; *found is
   false for checkpoints written before it was stored. Collective (every rank reads the same attribute). */
static PetscErrorCode ReadSchedule(MPI_Comm comm, hid_t file, const char filename[], PetscInt stages, PetscReal schedule[], PetscBool *found)
{
  hid_t    attr, space;
  hssize_t len;

  PetscFunctionBegin;
  *found = (PetscBool)(H5Aexists(file, "eps_schedule") > 0);
  if (!*found) PetscFunctionReturn(0);
  attr = H5Aopen(file, "eps_schedule", H5P_DEFAULT);
  OTH5Call(attr);
  space = H5Aget_space(attr);
  len   = H5Sget_simple_extent_npoints(space);
  PetscCheck(len == stages && stages >= 1 && stages <= OT_MAX_EPS_STAGES, comm, OT_ERR_INPUT,
             "-ot_restart %s: attribute eps_schedule holds %lld values, eps_stages says %" PetscInt_FMT, filename, (long long)len, stages);
  OTH5Call(H5Aread(attr, H5T_NATIVE_DOUBLE, schedule));
  OTH5Call(H5Sclose(space));
  OTH5Call(H5Aclose(attr));
  PetscFunctionReturn(0);
}

/* The eps schedule of the resumed run: the checkpoint's, where this run gives neither -ot_eps (nor -ot_eps_rel) nor
   -ot_eps_schedule, or gives -ot_eps at the checkpoint's target; otherwise this run's, which must be the checkpoint's
   (older checkpoints: the same number of stages and the same eps at the checkpoint's stage). Collective. */
static PetscErrorCode AdoptSchedule(OTSolver s, hid_t file, const char filename[], PetscInt eps_stage, PetscInt eps_stages, double eps)
{
  PetscReal schedule[OT_MAX_EPS_STAGES];
  PetscBool found;

  PetscFunctionBegin;
  PetscCall(ReadSchedule(s->comm, file, filename, eps_stages, schedule, &found));
  if (found && !s->schedule_given) {
    PetscReal target = schedule[eps_stages - 1], asked = s->eps_schedule[s->eps_stages - 1];

    PetscCheck(!s->eps_given || Same(target, asked, 1e-15), s->comm, OT_ERR_INPUT,
               "-ot_restart %s: the checkpoint was written for eps = %.17g, this run asks for eps = %.17g; leave -ot_eps out to go on at the checkpoint's",
               filename, target, (double)asked);
    PetscCall(PetscArraycpy(s->eps_schedule, schedule, eps_stages));
    s->eps_stages = eps_stages;
  }
  PetscCheck(eps_stages == s->eps_stages && eps_stage >= 0 && eps_stage < s->eps_stages, s->comm, OT_ERR_INPUT,
             "-ot_restart %s: the checkpoint was written with an eps schedule of %" PetscInt_FMT " stage(s), this run has %" PetscInt_FMT
             "; leave -ot_eps and -ot_eps_schedule out (the checkpoint's are used), or give the same",
             filename, eps_stages, s->eps_stages);
  for (PetscInt k = 0; found && k < eps_stages; k++)
    PetscCheck(Same(schedule[k], s->eps_schedule[k], 1e-15), s->comm, OT_ERR_INPUT,
               "-ot_restart %s: the checkpoint's eps stage %" PetscInt_FMT
               " is at eps = %.17g, this run's at %.17g; leave -ot_eps and -ot_eps_schedule out (the "
               "checkpoint's are used), or give the same",
               filename, k + 1, schedule[k], (double)s->eps_schedule[k]);
  PetscCheck(Same(eps, s->eps_schedule[eps_stage], 1e-15), s->comm, OT_ERR_INPUT,
             "-ot_restart %s: the checkpoint was written at eps = %.17g, this run has eps = %.17g there; leave -ot_eps and -ot_eps_schedule out (the "
             "checkpoint's are used), or give the same",
             filename, eps, (double)s->eps_schedule[eps_stage]);
  PetscFunctionReturn(0);
}

static PetscErrorCode ReadAttrDouble(MPI_Comm comm, hid_t file, const char filename[], const char name[], double *value)
{
  hid_t attr;

  PetscFunctionBegin;
  PetscCheck(H5Aexists(file, name) > 0, comm, OT_ERR_INPUT, "%s: not an otsolve checkpoint (attribute %s is missing)", filename, name);
  attr = H5Aopen(file, name, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Aread(attr, H5T_NATIVE_DOUBLE, value));
  OTH5Call(H5Aclose(attr));
  PetscFunctionReturn(0);
}

static PetscErrorCode ReadAttrInt(MPI_Comm comm, hid_t file, const char filename[], const char name[], PetscInt *value)
{
  hid_t     attr;
  long long v;

  PetscFunctionBegin;
  PetscCheck(H5Aexists(file, name) > 0, comm, OT_ERR_INPUT, "%s: not an otsolve checkpoint (attribute %s is missing)", filename, name);
  attr = H5Aopen(file, name, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Aread(attr, H5T_NATIVE_LLONG, &v));
  OTH5Call(H5Aclose(attr));
  *value = (PetscInt)v;
  PetscFunctionReturn(0);
}

/* Reads entries [start, start + count) of the 1-D float64 dataset name, which must have length len. */
static PetscErrorCode ReadVectorPart(MPI_Comm comm, hid_t file, const char filename[], const char name[], PetscInt len, PetscInt start, PetscInt count,
                                     PetscReal *values)
{
  hid_t   dset, file_space, mem_space;
  hsize_t dims;

  PetscFunctionBegin;
  PetscCheck(H5Lexists(file, name, H5P_DEFAULT) > 0, comm, OT_ERR_INPUT, "%s: not an otsolve checkpoint (dataset %s is missing)", filename, name);
  dset = H5Dopen2(file, name, H5P_DEFAULT);
  OTH5Call(dset);
  file_space = H5Dget_space(dset);
  PetscCheck(H5Sget_simple_extent_ndims(file_space) == 1, comm, OT_ERR_INPUT, "%s: dataset %s is not a vector", filename, name);
  OTH5Call(H5Sget_simple_extent_dims(file_space, &dims, NULL));
  PetscCheck(dims == (hsize_t)len, comm, OT_ERR_INPUT, "%s: dataset %s has length %llu; this problem needs %" PetscInt_FMT, filename, name,
             (unsigned long long)dims, len);
  PetscCall(OTH5SelectPart(file_space, start, count, &mem_space));
  PetscCall(OTH5Read(comm, dset, filename, name, H5T_NATIVE_DOUBLE, mem_space, file_space, H5P_DEFAULT, values));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  PetscFunctionReturn(0);
}

static PetscErrorCode ReadHistory(OTSolver s, hid_t file, const char filename[])
{
  hid_t             dset, space, type;
  hsize_t           len;
  OTHistoryFileRow *rows;

  PetscFunctionBegin;
  s->history_len = 0;
  if (H5Lexists(file, "/history", H5P_DEFAULT) <= 0) PetscFunctionReturn(0);
  dset = H5Dopen2(file, "/history", H5P_DEFAULT);
  OTH5Call(dset);
  space = H5Dget_space(dset);
  OTH5Call(H5Sget_simple_extent_dims(space, &len, NULL));
  PetscCall(PetscCalloc1(PetscMax(1, (PetscInt)len), &rows));
  PetscCall(OTH5HistoryType(&type));
  if (len) PetscCall(OTH5Read(s->comm, dset, filename, "/history", type, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows));
  for (hsize_t k = 0; k < len; k++) {
    PetscCall(OTSolverHistoryAppend(s, (OTStage)rows[k].stage, (PetscInt)rows[k].iteration, rows[k].marginal_error, rows[k].dual_objective));
    s->history[s->history_len - 1].time = rows[k].time;
    s->history[s->history_len - 1].eps  = rows[k].eps;
  }
  OTH5Call(H5Tclose(type));
  OTH5Call(H5Sclose(space));
  OTH5Call(H5Dclose(dset));
  PetscCall(PetscFree(rows));
  PetscFunctionReturn(0);
}

/* The checkpoint's marginal penalties (rho_a, rho_b; inf: a hard constraint, and so in checkpoints without them) must be
   this run's: the potentials solve that problem only. Collective. */
static PetscErrorCode CheckRelaxation(OTSolver s, hid_t file, const char filename[])
{
  OTProblem pb     = s->problem;
  double    rho[2] = {INFINITY, INFINITY}, run[2] = {OTRelaxed(pb->rho_a) ? pb->rho_a : INFINITY, OTRelaxed(pb->rho_b) ? pb->rho_b : INFINITY};

  PetscFunctionBegin;
  if (H5Aexists(file, "rho_a") > 0) {
    PetscCall(ReadAttrDouble(s->comm, file, filename, "rho_a", &rho[0]));
    PetscCall(ReadAttrDouble(s->comm, file, filename, "rho_b", &rho[1]));
  }
  for (int k = 0; k < 2; k++)
    PetscCheck(rho[k] == run[k] || (!isinf(rho[k]) && !isinf(run[k]) && Same(rho[k], run[k], 1e-15)), s->comm, OT_ERR_INPUT,
               "-ot_restart %s: the checkpoint solves rho_a = %g, rho_b = %g (-ot_unbalanced_a, -ot_unbalanced_b; inf: balanced), this run rho_a = %g, "
               "rho_b = %g: give the same",
               filename, rho[0], rho[1], run[0], run[1]);
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverLoadCheckpoint(OTSolver s, const char filename[])
{
  OTProblem pb        = s->problem;
  OTResult *r         = &s->result;
  int       status[2] = {0, 0};
  hid_t     file, attr, type;
  char     *format = NULL;
  PetscInt  n, m, eps_stage, eps_stages;
  double    cost_max, mass, eps, sinkhorn_time, elapsed;
  PetscBool is_checkpoint;

  PetscFunctionBegin;
  PetscCall(OTH5OpenRead(s->comm, filename, status, &file));
  PetscCheck(status[0], s->comm, OT_ERR_INPUT, "-ot_restart %s: cannot open the checkpoint file (missing or unreadable)", filename);
  PetscCheck(status[1], s->comm, OT_ERR_INPUT, "-ot_restart %s: not an HDF5 file", filename);
  PetscCheck(file >= 0, s->comm, OT_ERR_INPUT, "-ot_restart %s: HDF5 could not open the file", filename);

  is_checkpoint = (PetscBool)(H5Aexists(file, "format") > 0);
  if (is_checkpoint) {
    attr = H5Aopen(file, "format", H5P_DEFAULT);
    OTH5Call(attr);
    type          = H5Aget_type(attr);
    is_checkpoint = (PetscBool)(H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0);
    if (is_checkpoint) OTH5Call(H5Aread(attr, type, &format));
    is_checkpoint = (PetscBool)(is_checkpoint && format && !strcmp(format, OT_CHECKPOINT_FORMAT));
    if (format) H5free_memory(format);
    OTH5Call(H5Tclose(type));
    OTH5Call(H5Aclose(attr));
  }
  PetscCheck(is_checkpoint, s->comm, OT_ERR_INPUT, "-ot_restart %s: not an otsolve checkpoint (written by -ot_checkpoint)", filename);
  PetscCall(ReadAttrInt(s->comm, file, filename, "n", &n));
  PetscCall(ReadAttrInt(s->comm, file, filename, "m", &m));
  PetscCall(ReadAttrDouble(s->comm, file, filename, "cost_max", &cost_max));
  PetscCall(ReadAttrDouble(s->comm, file, filename, "mass", &mass));
  PetscCall(ReadAttrDouble(s->comm, file, filename, "eps", &eps));
  PetscCall(ReadAttrInt(s->comm, file, filename, "eps_stage", &eps_stage));
  PetscCall(ReadAttrInt(s->comm, file, filename, "eps_stages", &eps_stages));
  PetscCheck(n == pb->n && m == pb->m && Same(cost_max, pb->cost_max, 1e-15) && Same(mass, pb->mass, 1e-9), s->comm, OT_ERR_INPUT,
             "-ot_restart %s: the checkpoint belongs to another problem (%" PetscInt_FMT " x %" PetscInt_FMT ", max C %.17g, mass %.17g; %s is %" PetscInt_FMT
             " x %" PetscInt_FMT ", max C %.17g, mass %.17g)",
             filename, n, m, cost_max, mass, pb->source, pb->n, pb->m, (double)pb->cost_max, (double)pb->mass);
  PetscCall(CheckRelaxation(s, file, filename));
  PetscCall(AdoptSchedule(s, file, filename, eps_stage, eps_stages, eps));
  s->eps_stage = eps_stage;
  s->eps       = eps;
  PetscCall(ReadVectorPart(s->comm, file, filename, "/f", pb->n, pb->row_start, pb->n_local, s->f));
  PetscCall(ReadVectorPart(s->comm, file, filename, "/g", pb->m, 0, pb->m, s->g));
  PetscCall(ReadAttrInt(s->comm, file, filename, "iterations_sinkhorn", &r->iterations_sinkhorn));
  PetscCall(ReadAttrInt(s->comm, file, filename, "iterations_newton", &r->iterations_newton));
  PetscCall(ReadAttrInt(s->comm, file, filename, "sns_phase", &s->sns_phase));
  PetscCall(ReadAttrInt(s->comm, file, filename, "sns_boosts", &s->sns_boosts));
  if (H5Aexists(file, "sns_returns") > 0) { /* the SNS policy's state since checkpoints of 2026-11-30 */
    PetscCall(ReadAttrInt(s->comm, file, filename, "sns_returns", &s->sns_returns));
    PetscCall(ReadAttrInt(s->comm, file, filename, "sns_chunk_end", &s->sns_chunk_end));
    PetscCall(ReadAttrInt(s->comm, file, filename, "close_after", &s->close_after));
    PetscCall(ReadAttrInt(s->comm, file, filename, "sns_losing", &s->sns_losing));
    PetscCall(ReadAttrInt(s->comm, file, filename, "sns_slow", &s->sns_slow));
    PetscCall(ReadAttrInt(s->comm, file, filename, "newton_ksp", &s->newton_ksp));
    PetscCall(ReadAttrDouble(s->comm, file, filename, "newton_rate", &s->newton_rate));
    PetscCall(ReadAttrDouble(s->comm, file, filename, "newton_work", &s->newton_work));
  }
  if (H5Aexists(file, "sns_tightened") > 0) { /* since checkpoints of 2026-12-01 */
    PetscCall(ReadAttrInt(s->comm, file, filename, "sns_linear", &s->sns_linear));
    PetscCall(ReadAttrInt(s->comm, file, filename, "sns_tightened", &s->sns_tightened));
  }
  PetscCall(ReadAttrDouble(s->comm, file, filename, "sinkhorn_time", &sinkhorn_time));
  PetscCall(ReadAttrDouble(s->comm, file, filename, "elapsed", &elapsed));
  PetscCall(ReadHistory(s, file, filename));
  OTH5Call(H5Fclose(file));
  r->sinkhorn_time       = sinkhorn_time;
  s->solve_start         = MPI_Wtime() - elapsed; /* the history's clock goes on from the checkpoint */
  r->solve_time_restored = elapsed;
  {
    int bad = 0;

    for (PetscInt i = 0; i < pb->n_local; i++) bad |= !isfinite(s->f[i]);
    for (PetscInt j = 0; j < pb->m; j++) bad |= !isfinite(s->g[j]);
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, s->comm));
    PetscCheck(!bad, s->comm, OT_ERR_INPUT, "-ot_restart %s: /f or /g holds a NaN or Inf", filename);
  }
  PetscCall(PetscInfo(NULL, "Restarted from %s after %" PetscInt_FMT " Sinkhorn sweeps and %" PetscInt_FMT " Newton steps\n", filename, r->iterations_sinkhorn,
                      r->iterations_newton));
  PetscFunctionReturn(0);
}
