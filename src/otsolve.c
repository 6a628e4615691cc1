/* The otsolve program: command line -> load -> solve -> write -> summary (docs/design.md §4). Built on the
   public API (include/otsolve.h) only. */
#include <otsolve.h>
#include "options_check.h"
#include <signal.h>
#include <unistd.h>

static const char help[] = "otsolve: entropy-regularised optimal transport on many MPI ranks.\n\n"
                           "  mpirun -n 4 otsolve -problem pair.h5 -output result.h5 -ot_eps 1e-3 -ot_tol 1e-9 -ot_monitor 100\n\n"
                           "The problem file holds /C (n x m costs) or point clouds /X (n x d), /Y (m x d) with a root attribute\n"
                           "cost (sqeuclidean, euclidean, pnorm:P), and optionally /a, /b (weights; uniform if absent).\n"
                           "  mpirun -n 8 otsolve -pairs list.txt -output distances.h5   (the K x K matrix among K measures)\n"
                           "Without -problem, a built-in example (two Gaussian mixtures) is solved.\n"
                           "Exit status: 0 converged; 1 bad input or options; 2 not converged within -ot_max_it (results are\n"
                           "still written); 3 internal or MPI failure (the job is aborted); 4 interrupted by SIGTERM or SIGUSR1\n"
                           "after writing the -ot_checkpoint file (resume with -ot_restart FILE); 5 NaN or Inf in the iterates\n"
                           "(results are still written, status says where); 6 solved, but the result file could not be written (no\n"
                           "space, quota, I/O error: the summary is printed, the state saved in -ot_checkpoint where given); 7 interrupted\n"
                           "by SIGTERM or SIGUSR1, and the checkpoint could not be written. Outputs that are inputs are refused (1), and so\n"
                           "are options that nothing reads (misspelt: the message suggests the nearest) and arguments that are neither\n"
                           "options nor their values, before anything is loaded (1). The Newton solver's KSP and PC options have the\n"
                           "prefix -ot_newton_ (-ot_newton_ksp_rtol, -ot_newton_pc_type) and are listed last.\n\n";

/* The first error message of a failed call chain, kept so that the program prints it once, in its own words. */
typedef struct {
  PetscErrorCode code;
  char           message[1024];
  char           where[256];
  PetscBool      reading_options; /* set while the options are parsed: every rank parses the same, so errors are collective */
  PetscBool      in_options;      /* the error happened then */
} ErrorRecord;

static ErrorRecord error_record;

static PetscErrorCode RecordError(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode code, PetscErrorType type, const char *message,
                                  void *ctx)
{
  ErrorRecord *record = (ErrorRecord *)ctx;

  (void)comm;
  if (type == PETSC_ERROR_INITIAL && !record->code) {
    record->code     = code;
    const char *text = message;

    if (!text || !text[0]) PetscErrorMessage(code, &text, NULL);
    snprintf(record->message, sizeof(record->message), "%s", text ? text : "unknown error");
    snprintf(record->where, sizeof(record->where), "%s() at %s:%d", func, file, line);
    record->in_options = record->reading_options;
  }
  return code;
}

/* Fails on every rank if rank 0 cannot create a file next to `output`: checked before any long work. */
static PetscErrorCode CheckWritable(MPI_Comm comm, const char output[], const char option[])
{
  PetscMPIInt rank;
  int         ok = 0;
  char        probe[PETSC_MAX_PATH_LEN + 32];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(OTFileTemporaryName(comm, output, probe, sizeof(probe))); /* the name the file is written under */
  if (rank == 0) {
    FILE *fp = fopen(probe, "w");

    if (fp) {
      ok = 1;
      fclose(fp);
      unlink(probe);
    }
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, comm));
  PetscCheck(ok, comm, OT_ERR_INPUT, "%s %s: cannot write there (check that the directory exists and is writable)", option, output);
  PetscFunctionReturn(0);
}

/* The program's own options. */
typedef struct {
  char      problem[PETSC_MAX_PATH_LEN], output[PETSC_MAX_PATH_LEN], pairs[PETSC_MAX_PATH_LEN], pairs_cost[64];
  char      inputs[5][PETSC_MAX_PATH_LEN], points_cost[64]; /* -problem_cost, _x, _y, _a, _b: FILE:/path; -problem_points_cost */
  char      input_files[5][PETSC_MAX_PATH_LEN];             /* the files of inputs[] */
  char      input_paths[5][256];                            /* and the datasets in them */
  PetscBool has_problem, has_output, has_pairs, has_inputs, divergence;
  PetscInt  example_n, example_m, example_seed;
} ProgramOptions;

/* The options that name a problem's datasets, in the order of ProgramOptions.inputs. */
static const char *const input_options[5] = {"-problem_cost", "-problem_x", "-problem_y", "-problem_a", "-problem_b"};
static const char *const input_roots[5]   = {"/C", "/X", "/Y", "/a", "/b"};
static const char *const input_help[5]    = {
  "FILE:/path of the n x m cost matrix (any dataset in any HDF5 file; default: /C of -problem)",
  "FILE:/path of the points X (n x d), e.g. cells.h5ad:/obsm/X_pca (default: /X of -problem)",
  "FILE:/path of the points Y (m x d), possibly in another file than X (default: /Y of -problem)",
  "FILE:/path of the weights a (n; e.g. an AnnData column t0.h5ad:/obs/weight); default: /a of -problem, else uniform",
  "FILE:/path of the weights b (m); default: /b of -problem, else uniform"};

static PetscErrorCode ReadProgramOptions(ProgramOptions *o)
{
  PetscReal eps_rel  = 0.01;
  PetscBool per_pair = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(PetscMemzero(o, sizeof(*o)));
  PetscCall(PetscStrcpy(o->pairs_cost, "sqeuclidean"));
  o->example_n    = 2000;
  o->example_m    = 2500;
  o->example_seed = 1;
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "otsolve program", NULL);
  PetscCall(PetscOptionsString("-problem", "HDF5 problem file (/C, or /X and /Y; optional /a, /b); none: the built-in example", NULL, o->problem, o->problem,
                               sizeof(o->problem), &o->has_problem));
  for (int r = 0; r < 5; r++) {
    PetscBool given;

    PetscCall(PetscOptionsString(input_options[r], input_help[r], NULL, o->inputs[r], o->inputs[r], sizeof(o->inputs[r]), &given));
    if (given) PetscCall(OTDatasetRefSplit(o->inputs[r], input_roots[r], o->input_files[r], sizeof(o->input_files[r]), o->input_paths[r], sizeof(o->input_paths[r])));
    o->has_inputs = (PetscBool)(o->has_inputs || given);
  }
  PetscCall(PetscOptionsString("-problem_points_cost", "Point clouds: the ground cost (sqeuclidean, euclidean, pnorm:P) instead of the root attribute cost of X's file",
                               NULL, o->points_cost, o->points_cost, sizeof(o->points_cost), NULL));
  PetscCall(PetscOptionsString("-output", "HDF5 result file to write (/f, /g, attributes, /history)", NULL, o->output, o->output, sizeof(o->output),
                               &o->has_output));
  PetscCall(PetscOptionsInt("-ot_example_n", "Points in the built-in example's first measure", NULL, o->example_n, &o->example_n, NULL));
  PetscCall(PetscOptionsInt("-ot_example_m", "Points in the built-in example's second measure", NULL, o->example_m, &o->example_m, NULL));
  PetscCall(PetscOptionsInt("-ot_example_seed", "Seed of the built-in example", NULL, o->example_seed, &o->example_seed, NULL));
  PetscCall(PetscOptionsBool("-ot_divergence", "Point clouds: also solve (X, X) and (Y, Y) at the same eps: the Sinkhorn divergence (-pairs: K x K)", NULL,
                             o->divergence, &o->divergence, NULL));
  PetscCall(PetscOptionsString("-pairs", "Text file listing K measure files (/X, optional /a), one per line: the K x K transport costs to -output", NULL,
                               o->pairs, o->pairs, sizeof(o->pairs), &o->has_pairs));
  PetscCall(PetscOptionsString("-pairs_cost", "Ground cost for -pairs: sqeuclidean, euclidean or pnorm:P", NULL, o->pairs_cost, o->pairs_cost,
                               sizeof(o->pairs_cost), NULL));
  /* listed here for -help; OTSolvePairs reads them */
  PetscCall(PetscOptionsReal("-ot_eps_rel", "-pairs without -ot_eps: eps = R x the largest max C over all pairs", NULL, eps_rel, &eps_rel, NULL));
  PetscCall(PetscOptionsBool("-pairs_eps_per_pair", "-pairs: each pair at -ot_eps_rel x its own max C (a K x K /eps)", NULL, per_pair, &per_pair, NULL));
  PetscOptionsEnd();
  PetscFunctionReturn(0);
}

/* Refuses, before anything is read, a file the run writes (-output, -ot_checkpoint) that is a file it reads
   (-problem, -ot_restart, the -pairs list) or the other file it writes: writing would destroy the input. Resuming
   with -ot_checkpoint ck.h5 -ot_restart ck.h5 is what the checkpoints are for, and stays allowed. Rank 0 decides. */
static PetscErrorCode CheckCollisions(const ProgramOptions *o, const char checkpoint[], const char restart[])
{
  const char *names[10] = {"-output", "-ot_checkpoint", "-problem", "-ot_restart", "-pairs"};
  const char *paths[10] = {o->output, checkpoint, o->problem, restart, o->pairs};
  int         clash[2] = {-1, -1};
  PetscMPIInt rank;

  PetscFunctionBegin;
  for (int r = 0; r < 5; r++) names[5 + r] = input_options[r], paths[5 + r] = o->input_files[r]; /* empty where not given */
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  for (int w = 0; rank == 0 && w < 2 && clash[0] < 0; w++)
    for (int r = w + 1; r < 10 && clash[0] < 0; r++) {
      PetscBool same;

      if (w == 1 && r == 3) continue; /* -ot_checkpoint = -ot_restart: resuming */
      PetscCall(OTFileSame(paths[w], paths[r], &same));
      if (same) clash[0] = w, clash[1] = r;
    }
  PetscCallMPI(MPI_Bcast(clash, 2, MPI_INT, 0, PETSC_COMM_WORLD));
  PetscCheck(clash[0] < 0, PETSC_COMM_WORLD, OT_ERR_INPUT, "%s %s and %s %s are the same file: writing the one would destroy the other; give %s another path",
             names[clash[0]], paths[clash[0]], names[clash[1]], clash[1] >= 5 ? o->inputs[clash[1] - 5] : paths[clash[1]], names[clash[0]]);
  PetscFunctionReturn(0);
}

/* Checks, before loading, that the directories of the result and the checkpoint have room for at least their
   potentials /f and /g (8 (n + m) bytes, plus 64 KiB for HDF5's metadata and a short history); n and m come from the
   problem file's dataset shapes. The /plan and a long history can need more: those cannot be known before the solve. */
static PetscErrorCode CheckSpace(const ProgramOptions *o, const char checkpoint[])
{
  double n = (double)o->example_n, m = (double)o->example_m, bytes;

  PetscFunctionBegin;
  if (o->has_problem || o->has_inputs) {
    double dims[3][2];

    for (int r = 0; r < 3; r++) { /* /C, /X, /Y: where given, else in the problem file */
      if (o->inputs[r][0]) PetscCall(OTH5PeekDims(PETSC_COMM_WORLD, o->input_files[r], o->input_paths[r], dims[r]));
      else if (o->has_problem) PetscCall(OTH5PeekDims(PETSC_COMM_WORLD, o->problem, input_roots[r], dims[r]));
      else dims[r][0] = dims[r][1] = 0.0;
    }
    n = dims[0][0], m = dims[0][1];
    if (n == 0 || o->inputs[1][0] || o->inputs[2][0]) n = dims[1][0], m = dims[2][0];
  }
  bytes = 8.0 * (n + m) + 65536.0;
  if (o->has_output) PetscCall(OTFileCheckSpace(PETSC_COMM_WORLD, o->output, bytes, "-output"));
  if (checkpoint[0]) PetscCall(OTFileCheckSpace(PETSC_COMM_WORLD, checkpoint, bytes, "-ot_checkpoint"));
  PetscFunctionReturn(0);
}

static PetscErrorCode RunPairs(const ProgramOptions *o, OTSolver solver, int *exit_status)
{
  const char *checkpoint_file, *restart_file;
  PetscReal   plan_threshold;
  PetscInt    unconverged;

  PetscFunctionBegin;
  PetscCheck(o->has_output, PETSC_COMM_WORLD, OT_ERR_INPUT, "-pairs %s needs -output FILE for the distance matrix", o->pairs);
  PetscCheck(!o->has_problem && !o->has_inputs, PETSC_COMM_WORLD, OT_ERR_INPUT, "-pairs and -problem (or -problem_cost, -problem_x, ...) exclude each other");
  PetscCall(OTSolverGetCheckpoint(solver, &checkpoint_file, NULL));
  PetscCall(OTSolverGetRestart(solver, &restart_file));
  PetscCall(OTSolverGetPlanThreshold(solver, &plan_threshold));
  PetscCheck(!checkpoint_file[0] && !restart_file[0] && plan_threshold < 0, PETSC_COMM_WORLD, OT_ERR_INPUT,
             "-pairs solves many problems: -ot_checkpoint, -ot_restart and -ot_plan_threshold apply to one problem (-problem) only");
  PetscCall(OTSolvePairs(PETSC_COMM_WORLD, o->pairs, o->output, o->pairs_cost, o->divergence, &unconverged));
  *exit_status = unconverged ? OT_EXIT_NOT_CONVERGED : 0;
  PetscFunctionReturn(0);
}

/* Writes the result; a storage failure (no space, quota, I/O error) is an outcome here, with its reason: the run
   then still prints its summary and saves its state in the checkpoint file (RunOne). */
static PetscErrorCode WriteResult(OTSolver solver, const char output[], PetscBool *written, char reason[], size_t len)
{
  PetscErrorCode ierr;

  PetscFunctionBegin;
  *written = PETSC_TRUE;
  ierr     = OTSolverWriteResult(solver, output);
  if (ierr != OT_ERR_WRITE) PetscCall(ierr);
  if (!ierr) PetscFunctionReturn(0);
  *written = PETSC_FALSE; /* every rank alike: OT_ERR_WRITE is raised collectively */
  PetscCall(PetscSNPrintf(reason, len, "%s", error_record.message));
  error_record.code       = 0; /* handled here, not an error of the run */
  error_record.message[0] = '\0';
  PetscFunctionReturn(0);
}

static PetscErrorCode RunOne(const ProgramOptions *o, OTSolver solver, OTProblem problem, const char checkpoint[], int *exit_status)
{
  OTResult  result;
  PetscBool written = PETSC_TRUE, saved = PETSC_FALSE;
  char      reason[1024] = "";

  PetscFunctionBegin;
  if (o->has_problem || o->has_inputs) {
    OTProblemInputs inputs = {o->has_problem ? o->problem : NULL, o->inputs[0], o->inputs[1], o->inputs[2], o->inputs[3], o->inputs[4], o->points_cost};

    PetscCall(OTProblemLoadInputs(problem, &inputs));
  }
  else {
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "otsolve: no -problem given; solving the built-in example (see -help)\n"));
    PetscCall(OTProblemSetExample(problem, o->example_n, o->example_m, o->example_seed));
  }
  PetscCall(OTSolverSetProblem(solver, problem));
  PetscCall(OTSolverSolve(solver));
  PetscCall(OTSolverGetResult(solver, &result));
  if (o->divergence && result.reason != OT_REASON_INTERRUPTED) PetscCall(OTSolverComputeDivergence(solver));
  if (o->has_output && result.reason != OT_REASON_INTERRUPTED) PetscCall(WriteResult(solver, o->output, &written, reason, sizeof(reason)));
  if (!written && checkpoint[0]) PetscCall(OTSolverWriteCheckpoint(solver, checkpoint, &saved));
  PetscCall(OTSolverGetResult(solver, &result));
  /* the run is over: a time limit's SIGTERM or SIGUSR1 from here on has nothing to stop, and must not turn a run
     that wrote its answer into one killed by a signal (exit 138 for the job script); the solver, destroyed later,
     leaves these in place */
  if (checkpoint[0]) {
    (void)signal(SIGTERM, SIG_IGN);
    (void)signal(SIGUSR1, SIG_IGN);
  }
  PetscCall(OTSolverPrintSummary(solver));
  if (o->has_output && result.reason != OT_REASON_INTERRUPTED) PetscCall(PetscPrintf(PETSC_COMM_WORLD, "result_written = %d\n", (int)written));
  switch (result.reason) {
  case OT_REASON_CONVERGED:
    *exit_status = 0;
    break;
  case OT_REASON_INTERRUPTED:
    *exit_status = result.checkpoint_written ? OT_EXIT_INTERRUPTED : OT_EXIT_NO_CHECKPOINT;
    break;
  case OT_REASON_BREAKDOWN:
    *exit_status = OT_EXIT_BREAKDOWN;
    break;
  default:
    *exit_status = OT_EXIT_NOT_CONVERGED;
  }
  if (!written) {
    *exit_status = OT_EXIT_NOT_WRITTEN;
    PetscCall(PetscFPrintf(PETSC_COMM_WORLD, stderr, "otsolve: error: %s\n", reason));
    if (saved)
      PetscCall(PetscFPrintf(PETSC_COMM_WORLD, stderr,
                             "otsolve: the state of this run is saved in %s: run again with the same problem and options and -ot_restart %s -output OTHER.h5 to write the result (no iteration)\n",
                             checkpoint, checkpoint));
    else if (checkpoint[0])
      PetscCall(PetscFPrintf(PETSC_COMM_WORLD, stderr, "otsolve: the checkpoint %s could not be written either: %s\n", checkpoint, result.checkpoint_error));
  }
  PetscFunctionReturn(0);
}

/* Every option otsolve reads in any mode, on throwaway objects: OTOptionsCheckUnused's dry pass (the run's own
   objects read the same options next, in Run). */
static PetscErrorCode ReadEveryOption(void)
{
  ProgramOptions o;
  OTProblem      problem;
  OTSolver       solver;

  PetscFunctionBegin;
  PetscCall(ReadProgramOptions(&o));
  PetscCall(OTProblemCreate(PETSC_COMM_WORLD, &problem));
  PetscCall(OTProblemSetFromOptions(problem));
  PetscCall(OTProblemDestroy(&problem));
  PetscCall(OTSolverCreate(PETSC_COMM_WORLD, &solver));
  PetscCall(OTSolverSetFromOptions(solver));
  PetscCall(OTSolverDestroy(&solver));
  PetscFunctionReturn(0);
}

static PetscErrorCode Run(int *exit_status)
{
  ProgramOptions o;
  PetscBool      help_only = PETSC_FALSE;
  OTProblem      problem;
  OTSolver       solver;
  const char    *checkpoint, *restart;

  PetscFunctionBegin;
  error_record.reading_options = PETSC_TRUE;
  PetscCall(PetscOptionsHasHelp(NULL, &help_only));
  /* before anything is loaded: a misspelt option must not run a solve with defaults */
  if (!help_only) PetscCall(OTOptionsCheckUnused(PETSC_COMM_WORLD, ReadEveryOption));
  PetscCall(ReadProgramOptions(&o));
  PetscCall(OTProblemCreate(PETSC_COMM_WORLD, &problem));
  PetscCall(OTProblemSetFromOptions(problem));
  {
    PetscReal rho_a, rho_b;

    PetscCall(OTProblemGetRelaxation(problem, &rho_a, &rho_b));
    PetscCheck(rho_a == rho_b || !o.divergence, PETSC_COMM_WORLD, OT_ERR_INPUT,
               "-ot_divergence with unbalanced transport needs one rho for both sides (-ot_unbalanced RHO); got rho_a = %g, rho_b = %g", (double)rho_a, (double)rho_b);
  }
  PetscCall(OTSolverCreate(PETSC_COMM_WORLD, &solver));
  PetscCall(OTSolverSetFromOptions(solver));
  if (help_only) PetscCall(OTOptionsReadNewton(PETSC_COMM_WORLD)); /* -help lists them too */
  error_record.reading_options = PETSC_FALSE;
  *exit_status                 = 0;
  if (!help_only) {
    PetscCall(OTSolverGetCheckpoint(solver, &checkpoint, NULL));
    PetscCall(OTSolverGetRestart(solver, &restart));
    PetscCall(CheckCollisions(&o, checkpoint, restart));
    if (o.has_output) PetscCall(CheckWritable(PETSC_COMM_WORLD, o.output, "-output"));
    if (o.has_pairs) PetscCall(RunPairs(&o, solver, exit_status));
    else {
      if (checkpoint[0]) PetscCall(CheckWritable(PETSC_COMM_WORLD, checkpoint, "-ot_checkpoint"));
      PetscCall(CheckSpace(&o, checkpoint));
      PetscCall(RunOne(&o, solver, problem, checkpoint, exit_status));
    }
  }
  PetscCall(OTProblemDestroy(&problem));
  PetscCall(OTSolverDestroy(&solver));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  ErrorRecord   *record = &error_record;
  PetscErrorCode ierr;
  int            exit_status = 0;
  PetscMPIInt    rank;

  PetscCall(PetscInitialize(&argc, &argv, NULL, help));
  PetscCallMPI(MPI_Comm_rank(PETSC_COMM_WORLD, &rank));
  PetscCall(PetscPushErrorHandler(RecordError, record));
  ierr = Run(&exit_status);
  PetscCall(PetscPopErrorHandler());
  if (ierr) {
    if (record->code == OT_ERR_INPUT || record->code == OT_ERR_WRITE || record->in_options) {
      /* every rank found the same problem together: say it once and leave cleanly (a file not written: 6) */
      if (rank == 0) fprintf(stderr, "otsolve: error: %s%s\n", record->in_options && record->code != OT_ERR_INPUT ? "bad option: " : "", record->message);
      PetscFinalize();
      return record->code == OT_ERR_WRITE && !record->in_options ? OT_EXIT_NOT_WRITTEN : 1;
    }
    /* an error on some ranks only: others may wait in a collective, so end the whole job */
    fprintf(stderr, "otsolve: error on rank %d: %s [%s]\n", rank, record->message, record->where);
    fflush(stderr);
    MPI_Abort(PETSC_COMM_WORLD, OT_EXIT_INTERNAL);
  }
  PetscCall(PetscFinalize());
  return exit_status;
}
