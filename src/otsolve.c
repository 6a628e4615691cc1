/* The otsolve program: command line -> load -> solve -> write -> summary (docs/design.md §4). Built on the
   public API (include/otsolve.h) only. */
#include <otsolve.h>
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
                           "(results are still written, status says where).\n\n";

/* The first error message of a failed call chain, kept so that the program prints it once, in its own words. */
typedef struct {
  PetscErrorCode code;
  char           message[1024];
  char           where[256];
  PetscBool      reading_options; /* set while the options are parsed: every rank parses the same, so errors are collective */
  PetscBool      in_options;      /* the error happened then */
} ErrorRecord;

static ErrorRecord error_record;

static PetscErrorCode RecordError(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode code, PetscErrorType type,
                                  const char *message, void *ctx)
{
  ErrorRecord *record = (ErrorRecord *)ctx;

  (void)comm;
  if (type == PETSC_ERROR_INITIAL && !record->code) {
    record->code = code;
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

static PetscErrorCode Run(int *exit_status)
{
  char      problem_file[PETSC_MAX_PATH_LEN] = "", output_file[PETSC_MAX_PATH_LEN] = "";
  char      pairs_file[PETSC_MAX_PATH_LEN] = "", pairs_cost[64] = "sqeuclidean";
  PetscBool has_problem, has_output, help_only = PETSC_FALSE, divergence = PETSC_FALSE, has_pairs;
  PetscInt  example_n = 2000, example_m = 2500, example_seed = 1;
  OTProblem   problem;
  OTSolver    solver;
  OTResult    result;
  const char *checkpoint_file, *restart_file;
  PetscReal   plan_threshold;

  PetscFunctionBegin;
  error_record.reading_options = PETSC_TRUE;
  PetscOptionsBegin(PETSC_COMM_WORLD, NULL, "otsolve program", NULL);
  PetscCall(PetscOptionsString("-problem", "HDF5 problem file (/C, optional /a, /b); none: the built-in example", NULL, problem_file, problem_file,
                               sizeof(problem_file), &has_problem));
  PetscCall(PetscOptionsString("-output", "HDF5 result file to write (/f, /g, attributes, /history)", NULL, output_file, output_file, sizeof(output_file),
                               &has_output));
  PetscCall(PetscOptionsInt("-ot_example_n", "Points in the built-in example's first measure", NULL, example_n, &example_n, NULL));
  PetscCall(PetscOptionsInt("-ot_example_m", "Points in the built-in example's second measure", NULL, example_m, &example_m, NULL));
  PetscCall(PetscOptionsInt("-ot_example_seed", "Seed of the built-in example", NULL, example_seed, &example_seed, NULL));
  PetscCall(PetscOptionsBool("-ot_divergence", "Point clouds: also solve (X, X) and (Y, Y) at the same eps and report the debiased Sinkhorn divergence", NULL,
                             divergence, &divergence, NULL));
  PetscCall(PetscOptionsString("-pairs", "Text file listing K measure files (/X points, optional /a weights), one per line: write the K x K matrix of transport costs to -output",
                               NULL, pairs_file, pairs_file, sizeof(pairs_file), &has_pairs));
  PetscCall(PetscOptionsString("-pairs_cost", "Ground cost for -pairs: sqeuclidean, euclidean or pnorm:P", NULL, pairs_cost, pairs_cost, sizeof(pairs_cost), NULL));
  PetscOptionsEnd();
  PetscCall(PetscOptionsHasHelp(NULL, &help_only));

  PetscCall(OTProblemCreate(PETSC_COMM_WORLD, &problem));
  PetscCall(OTProblemSetFromOptions(problem));
  PetscCall(OTSolverCreate(PETSC_COMM_WORLD, &solver));
  PetscCall(OTSolverSetFromOptions(solver));
  error_record.reading_options = PETSC_FALSE;
  if (help_only) {
    PetscCall(OTProblemDestroy(&problem));
    PetscCall(OTSolverDestroy(&solver));
    *exit_status = 0;
    PetscFunctionReturn(0);
  }
  if (has_output) PetscCall(CheckWritable(PETSC_COMM_WORLD, output_file, "-output"));
  if (has_pairs) {
    PetscCheck(has_output, PETSC_COMM_WORLD, OT_ERR_INPUT, "-pairs %s needs -output FILE for the distance matrix", pairs_file);
    PetscCheck(!has_problem, PETSC_COMM_WORLD, OT_ERR_INPUT, "-pairs and -problem exclude each other");
    PetscCall(OTSolverGetCheckpoint(solver, &checkpoint_file, NULL));
    PetscCall(OTSolverGetRestart(solver, &restart_file));
    PetscCall(OTSolverGetPlanThreshold(solver, &plan_threshold));
    PetscCheck(!checkpoint_file[0] && !restart_file[0] && !divergence && plan_threshold < 0, PETSC_COMM_WORLD, OT_ERR_INPUT,
               "-pairs solves many problems: -ot_checkpoint, -ot_restart, -ot_divergence and -ot_plan_threshold apply to one problem (-problem) only");
    PetscCall(OTProblemDestroy(&problem));
    PetscCall(OTSolverDestroy(&solver));
    PetscInt unconverged;

    PetscCall(OTSolvePairs(PETSC_COMM_WORLD, pairs_file, output_file, pairs_cost, &unconverged));
    *exit_status = unconverged ? OT_EXIT_NOT_CONVERGED : 0;
    PetscFunctionReturn(0);
  }
  PetscCall(OTSolverGetCheckpoint(solver, &checkpoint_file, NULL));
  if (checkpoint_file[0]) PetscCall(CheckWritable(PETSC_COMM_WORLD, checkpoint_file, "-ot_checkpoint"));

  if (has_problem) PetscCall(OTProblemLoad(problem, problem_file));
  else {
    PetscCall(PetscPrintf(PETSC_COMM_WORLD, "otsolve: no -problem given; solving the built-in example (see -help)\n"));
    PetscCall(OTProblemSetExample(problem, example_n, example_m, example_seed));
  }
  PetscCall(OTSolverSetProblem(solver, problem));
  PetscCall(OTProblemDestroy(&problem));
  PetscCall(OTSolverSolve(solver));
  PetscCall(OTSolverGetResult(solver, &result));
  if (divergence && result.reason != OT_REASON_INTERRUPTED) {
    PetscCall(OTSolverComputeDivergence(solver));
    PetscCall(OTSolverGetResult(solver, &result));
  }
  if (has_output && result.reason != OT_REASON_INTERRUPTED) PetscCall(OTSolverWriteResult(solver, output_file));
  PetscCall(OTSolverPrintSummary(solver));
  switch (result.reason) {
  case OT_REASON_CONVERGED: *exit_status = 0; break;
  case OT_REASON_INTERRUPTED: *exit_status = OT_EXIT_INTERRUPTED; break;
  case OT_REASON_BREAKDOWN: *exit_status = OT_EXIT_BREAKDOWN; break;
  default: *exit_status = OT_EXIT_NOT_CONVERGED;
  }
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
    if (record->code == OT_ERR_INPUT || record->in_options) {
      /* every rank found the same problem together: say it once and leave cleanly */
      if (rank == 0) fprintf(stderr, "otsolve: error: %s%s\n", record->in_options && record->code != OT_ERR_INPUT ? "bad option: " : "", record->message);
      PetscFinalize();
      return 1;
    }
    /* an error on some ranks only: others may wait in a collective, so end the whole job */
    fprintf(stderr, "otsolve: error on rank %d: %s [%s]\n", rank, record->message, record->where);
    fflush(stderr);
    MPI_Abort(PETSC_COMM_WORLD, OT_EXIT_INTERNAL);
  }
  PetscCall(PetscFinalize());
  return exit_status;
}
