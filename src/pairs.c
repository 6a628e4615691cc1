/*
  Many pairs in one run: the K x K matrix of transport costs among K measures, each an HDF5 file with
  points /X (k x d) and optional weights /a (k; uniform if absent), listed one per line in a text file. This file
  holds the solves; the list, the measure files and the distance matrix file are in pairs_io.c (what the two
  share in pairs.h).

  The K (K - 1) / 2 pairs are spread over groups of ranks: the communicator is split into G = min(size,
  tasks) sub-communicators, and group g does tasks g, g + G, g + 2G, ... one after the other, each a
  point-cloud problem distributed over the group's ranks (so a large pair can still use several ranks). The
  tasks are the pairs in row-major order of the upper triangle and, with -ot_divergence, then the K self terms
  OT_eps(a_k, a_k), each solved once per measure (OTSolveSymmetric).

  One eps for all pairs, so that the matrix compares like with like: -ot_eps E, or R x the largest max C over
  all pairs (R = -ot_eps_rel, 0.01). The max C of every pair is exact: a first pass builds every pair's problem
  (spread over the groups like the solves) and reduces the maxima, which also checks every pair's input before
  any solve. -pairs_eps_per_pair solves each pair at R x its own max C instead (no divergence then: the self
  terms need one eps).

  The list and every file are checked on every rank before any solve, and an input error that one group meets
  (OT_ERR_INPUT, raised on the group's ranks together) is made an error of every rank once all groups are done
  with their tasks (RunTasks): a bad pair must not stop one group while the others wait in the reduction. The
  results meet on rank 0 in one reduction and are written by rank 0 (pairs_io.c). Built on the public API
  (include/otsolve.h).
*/
#include "pairs.h"
#include <limits.h>

/* Reads the eps rule from the options and refuses the combinations that contradict it. The options are the same on
   every rank, so every check fails on every rank. */
static PetscErrorCode ReadEpsRule(MPI_Comm comm, PetscBool divergence, EpsRule *rule)
{
  PetscBool has_rel, has_schedule;

  PetscFunctionBegin;
  rule->eps      = 0.0;
  rule->rel      = 0.01;
  rule->per_pair = PETSC_FALSE;
  PetscCall(PetscOptionsGetReal(NULL, NULL, "-ot_eps", &rule->eps, &rule->given));
  PetscCall(PetscOptionsGetReal(NULL, NULL, "-ot_eps_rel", &rule->rel, &has_rel));
  PetscCall(PetscOptionsGetBool(NULL, NULL, "-pairs_eps_per_pair", &rule->per_pair, NULL));
  PetscCall(PetscOptionsHasName(NULL, NULL, "-ot_eps_schedule", &has_schedule));
  PetscCheck(!rule->given || !has_rel, comm, OT_ERR_INPUT,
             "-pairs: -ot_eps %g and -ot_eps_rel %g exclude each other: -ot_eps E solves every pair at E, -ot_eps_rel R at R x the largest max C over the pairs; give one",
             (double)rule->eps, (double)rule->rel);
  PetscCheck(!rule->given || rule->eps > 0, comm, OT_ERR_INPUT, "-ot_eps must be positive, got %g", (double)rule->eps);
  PetscCheck(rule->rel > 0, comm, OT_ERR_INPUT, "-ot_eps_rel must be positive, got %g", (double)rule->rel);
  PetscCheck(!rule->given || !rule->per_pair, comm, OT_ERR_INPUT,
             "-pairs: -ot_eps and -pairs_eps_per_pair exclude each other: -ot_eps E solves every pair at E, -pairs_eps_per_pair each pair at -ot_eps_rel R (0.01) x its own max C");
  PetscCheck(!divergence || !rule->per_pair, comm, OT_ERR_INPUT,
             "-pairs: -ot_divergence and -pairs_eps_per_pair exclude each other: the self terms OT_eps(a_k, a_k) of the divergences are solved once per measure, at one eps for all pairs");
  /* OTSolvePoints drops the schedule for an eps it is given; with -ot_eps the solver reads both options itself */
  PetscCheck(rule->given || !has_schedule, comm, OT_ERR_INPUT,
             "-pairs: -ot_eps_schedule needs -ot_eps (a schedule is in cost units): without -ot_eps each pair is solved at an eps from max C with the default schedule");
  PetscFunctionReturn(0);
}

/* The run, as every rank of a group holds it. Tasks 0 .. pairs - 1 are the pairs; with -ot_divergence, tasks pairs
   .. pairs + count - 1 are the self terms (k, k). */
typedef struct {
  MPI_Comm             group;
  PetscMPIInt          group_rank;
  PetscInt             count, pairs, tasks;
  const OTMeasureFile *files;
  const char          *cost;
  EpsRule              rule;
  PetscReal            eps;      /* the one eps of all pairs and self terms (not with -pairs_eps_per_pair) */
  PetscReal            rho;      /* unbalanced with -ot_divergence: the one rho of both sides; else 0 */
  PetscReal           *cost_max; /* per pair, from the first pass */
  PetscReal           *pair_eps; /* per pair, the eps it is solved at */
  PetscReal           *results;  /* per task, PAIR_FIELDS numbers, filled by the group's rank 0 */
} PairsRun;

/* Pair number p in row-major order of the upper triangle: (0,1), (0,2), ..., (1,2), ... */
static void PairOfIndex(PetscInt count, PetscInt p, PetscInt *i, PetscInt *j)
{
  PetscInt row = 0;

  while (p >= count - 1 - row) p -= count - 1 - row++;
  *i = row;
  *j = row + 1 + p;
}

/* The first pass: the exact max C of pair p, from its problem as the solve will build it (which checks its input). */
static PetscErrorCode CostMaxTask(PairsRun *run, PetscInt p)
{
  PetscInt   i, j;
  PetscReal *x, *a, *y, *b;
  OTProblem  problem;
  char       source[2 * PETSC_MAX_PATH_LEN + 8];

  PetscFunctionBegin;
  PairOfIndex(run->count, p, &i, &j);
  PetscCall(OTPairsReadMeasure(&run->files[i], &x, &a));
  PetscCall(OTPairsReadMeasure(&run->files[j], &y, &b));
  PetscCall(PetscSNPrintf(source, sizeof(source), "%s x %s", run->files[i].path, run->files[j].path));
  PetscCall(OTProblemCreate(run->group, &problem));
  PetscCall(OTProblemSetFromOptions(problem));
  PetscCall(OTProblemSetPoints(problem, run->files[i].points, run->files[j].points, run->files[i].dim, x, y, a, b, run->cost, source));
  PetscCall(OTProblemGetCostMax(problem, &run->cost_max[p]));
  PetscCall(OTProblemDestroy(&problem));
  PetscCall(PetscFree2(x, a));
  PetscCall(PetscFree2(y, b));
  PetscFunctionReturn(0);
}

/* w_k <- w_k^power: the weights whose plans are the KL(P | a x b) plans of the unbalanced divergence (divergence.c). */
static void PowerWeights(PetscInt count, PetscReal w[], PetscReal power)
{
  for (PetscInt k = 0; k < count; k++) w[k] = PetscPowReal(w[k], power);
}

/* Solves task t on the group; its rank 0 fills the task's results and prints a line. */
static PetscErrorCode SolveTask(PairsRun *run, PetscInt t)
{
  PetscInt   i, j;
  OTResult   result;
  PetscReal *x, *a, *y, *b, *row = run->results + (size_t)t * PAIR_FIELDS, eps;
  char       source[2 * PETSC_MAX_PATH_LEN + 64];
  double     start    = MPI_Wtime();
  PetscReal  div_mass = NAN;
  PetscBool  div_ok   = PETSC_TRUE;

  PetscFunctionBegin;
  if (t < run->pairs) PairOfIndex(run->count, t, &i, &j);
  else i = j = t - run->pairs;
  /* with -ot_eps, 0: the solver takes -ot_eps and -ot_eps_schedule from the options, as for one problem */
  eps = run->rule.given ? 0.0 : (t < run->pairs ? run->pair_eps[t] : run->eps);
  PetscCall(OTPairsReadMeasure(&run->files[i], &x, &a));
  if (i == j) {
    if (run->rho > 0) PowerWeights(run->files[i].points, a, 1.0 + run->eps / run->rho); /* the unbalanced divergence's self term */
    PetscCall(PetscSNPrintf(source, sizeof(source), "%s (self term)", run->files[i].path));
    PetscCall(OTSolveSymmetric(run->group, run->files[i].points, run->files[i].dim, x, a, run->cost, source, eps, &result));
    div_mass = result.transported_mass, div_ok = result.converged;
  } else {
    PetscCall(OTPairsReadMeasure(&run->files[j], &y, &b));
    PetscCall(PetscSNPrintf(source, sizeof(source), "%s x %s", run->files[i].path, run->files[j].path));
    PetscCall(OTSolvePoints(run->group, run->files[i].points, run->files[j].points, run->files[i].dim, x, y, a, b, run->cost, source, eps, &result));
    if (run->rho > 0 && run->tasks > run->pairs) { /* the unbalanced divergence's own solve of the pair (divergence.c) */
      OTResult weighted;

      PowerWeights(run->files[i].points, a, 1.0 + run->eps / run->rho);
      PowerWeights(run->files[j].points, b, 1.0 + run->eps / run->rho);
      PetscCall(PetscStrlcat(source, " (weights to the power 1 + eps/rho)", sizeof(source)));
      PetscCall(OTSolvePoints(run->group, run->files[i].points, run->files[j].points, run->files[i].dim, x, y, a, b, run->cost, source, eps, &weighted));
      div_mass = weighted.transported_mass, div_ok = weighted.converged;
    }
    PetscCall(PetscFree2(y, b));
  }
  PetscCall(PetscFree2(x, a));
  if (run->group_rank == 0) {
    PetscInt iterations = result.iterations_sinkhorn + result.iterations_newton;

    row[PAIR_COST]       = result.transport_cost;
    row[PAIR_LOWER]      = result.lower_bound;
    row[PAIR_UPPER]      = result.upper_bound;
    row[PAIR_ERROR]      = result.marginal_error;
    row[PAIR_DUAL]       = result.dual_objective;
    row[PAIR_CONVERGED]  = result.converged ? 1 : 0;
    row[PAIR_ITERATIONS] = (PetscReal)iterations;
    row[PAIR_SECONDS]    = MPI_Wtime() - start;
    row[PAIR_OBJECTIVE]  = result.unbalanced_objective;
    row[PAIR_MASS]       = result.transported_mass;
    row[PAIR_DIV_MASS]   = div_mass;
    row[PAIR_DIV_OK]     = div_ok ? 1 : 0;
    if (i == j)
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "  self %" PetscInt_FMT ": dual_objective %.17g  iterations %" PetscInt_FMT "  converged %d  %.2f s\n", i,
                            (double)result.dual_objective, iterations, (int)result.converged, row[PAIR_SECONDS]));
    else {
      char eps_text[64] = "", dual_text[64] = "";

      if (run->rule.per_pair) PetscCall(PetscSNPrintf(eps_text, sizeof(eps_text), "eps %.17g  ", (double)run->pair_eps[t]));
      /* the divergence needs the self terms too: its parts are all in these lines, should the file not be written */
      if (run->tasks > run->pairs) PetscCall(PetscSNPrintf(dual_text, sizeof(dual_text), "  dual_objective %.17g", (double)result.dual_objective));
      if (!PetscIsNanReal(result.unbalanced_objective))
        PetscCall(PetscPrintf(PETSC_COMM_SELF,
                              "  pair %" PetscInt_FMT " %" PetscInt_FMT ": %sunbalanced_objective %.17g  transported_mass %.17g  transport_cost %.17g  iterations %" PetscInt_FMT
                              "  converged %d  %.2f s\n",
                              i, j, eps_text, (double)result.unbalanced_objective, (double)result.transported_mass, (double)result.transport_cost, iterations,
                              (int)result.converged, row[PAIR_SECONDS]));
      else PetscCall(PetscPrintf(PETSC_COMM_SELF,
                            "  pair %" PetscInt_FMT " %" PetscInt_FMT
                            ": %swasserstein_lower %.17g  wasserstein_upper %.17g  transport_cost %.17g%s  iterations %" PetscInt_FMT
                            "  converged %d  %.2f s\n",
                            i, j, eps_text, (double)result.wasserstein_lower, (double)result.wasserstein_upper, (double)result.transport_cost, dual_text,
                            iterations, (int)result.converged, row[PAIR_SECONDS]));
    }
  }
  PetscFunctionReturn(0);
}

/* The first error message met during a task (an error handler, pushed around each task). */
typedef struct {
  char message[1024];
} CapturedError;

static PetscErrorCode CaptureError(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode code, PetscErrorType type, const char *message,
                                   void *ctx)
{
  CapturedError *captured = (CapturedError *)ctx;

  (void)comm, (void)line, (void)func, (void)file;
  if (type == PETSC_ERROR_INITIAL && !captured->message[0]) {
    const char *text = message;

    if (!text || !text[0]) PetscErrorMessage(code, &text, NULL);
    snprintf(captured->message, sizeof(captured->message), "%s", text ? text : "unknown error");
  }
  return code;
}

/* Does the tasks first, first + stride, ... < ntasks on this rank's group. An input error (OT_ERR_INPUT, which the
   group's ranks raise together) ends the group's tasks; once every group is done, the first such error, by task,
   is raised on every rank of comm with its message. Any other error may have left the group's other ranks in a
   collective: it is raised at once, on this rank (the program then aborts the job). */
static PetscErrorCode RunTasks(MPI_Comm comm, PairsRun *run, PetscInt ntasks, PetscInt first, PetscInt stride, PetscErrorCode (*task)(PairsRun *, PetscInt))
{
  CapturedError captured = {""};
  PetscMPIInt   rank;
  struct {
    int task, rank;
  } mine, failed;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  mine.task = INT_MAX;
  mine.rank = rank;
  for (PetscInt t = first; t < ntasks; t += stride) {
    PetscErrorCode ierr;

    PetscCall(PetscPushErrorHandler(CaptureError, &captured));
    ierr = task(run, t);
    PetscCall(PetscPopErrorHandler());
    if (ierr == OT_ERR_INPUT) {
      mine.task = (int)t;
      break;
    }
    PetscCheck(!ierr, PETSC_COMM_SELF, ierr, "%s", captured.message);
  }
  PetscCallMPI(MPI_Allreduce(&mine, &failed, 1, MPI_2INT, MPI_MINLOC, comm));
  if (failed.task == INT_MAX) PetscFunctionReturn(0);
  PetscCallMPI(MPI_Bcast(captured.message, sizeof(captured.message), MPI_CHAR, failed.rank, comm));
  SETERRQ(comm, OT_ERR_INPUT, "%s", captured.message);
}

/* Sets the eps of every pair from the rule and the max C of the pairs (the same on every rank). */
static PetscErrorCode SetEps(MPI_Comm comm, PairsRun *run, PetscReal *largest)
{
  PetscInt zero = -1;

  PetscFunctionBegin;
  *largest = 0.0;
  for (PetscInt p = 0; p < run->pairs; p++) {
    *largest = PetscMax(*largest, run->cost_max[p]);
    if (run->cost_max[p] <= 0 && zero < 0) zero = p;
  }
  if (run->rule.given) run->eps = run->rule.eps;
  else run->eps = run->rule.rel * *largest;
  PetscCheck(run->eps > 0, comm, OT_ERR_INPUT, "-pairs: all costs among the measures are zero, so eps = -ot_eps_rel x max C is zero; give -ot_eps");
  if (run->rule.per_pair && zero >= 0) {
    PetscInt i, j;

    PairOfIndex(run->count, zero, &i, &j);
    SETERRQ(comm, OT_ERR_INPUT,
            "-pairs_eps_per_pair: the costs between %s and %s are all zero, so their eps = -ot_eps_rel x max C is zero; drop -pairs_eps_per_pair",
            run->files[i].path, run->files[j].path);
  }
  for (PetscInt p = 0; p < run->pairs; p++) run->pair_eps[p] = run->rule.per_pair ? run->rule.rel * run->cost_max[p] : run->eps;
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolvePairs(MPI_Comm comm, const char list[], const char output[], const char cost[], PetscBool divergence, PetscInt *unconverged_solves)
{
  PetscMPIInt    rank, size;
  OTMeasureFile *files;
  PairsRun       run;
  PetscReal      power;
  OTCostKind     kind;
  PetscBool      valid, written;
  PairsSummary   sum = {.cost = cost, .divergence = divergence, .rule = &run.rule, .start = MPI_Wtime()};
  char           reason[512], eps_text[64];

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&run, sizeof(run)));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(OTCostParse(cost, &kind, &power, &valid));
  PetscCheck(valid && kind != OT_COST_DENSE, comm, OT_ERR_INPUT, "-pairs_cost %s: use sqeuclidean, euclidean or pnorm:P with P > 0", cost);
  sum.power = OTCostExponent(kind, power);
  PetscCall(ReadEpsRule(comm, divergence, &run.rule));
  { /* the marginal penalties of every pair's problem (-ot_unbalanced): read here as each pair's problem reads them */
    OTProblem probe;
    PetscReal rho_a, rho_b;

    PetscCall(OTProblemCreate(comm, &probe));
    PetscCall(OTProblemSetFromOptions(probe));
    PetscCall(OTProblemGetRelaxation(probe, &rho_a, &rho_b));
    PetscCall(OTProblemDestroy(&probe));
    sum.unbalanced = (PetscBool)(!isinf(rho_a) || !isinf(rho_b));
    PetscCheck(!(sum.unbalanced && divergence) || rho_a == rho_b, comm, OT_ERR_INPUT,
               "-ot_divergence with unbalanced transport needs one rho for both sides (-ot_unbalanced RHO); got rho_a = %g, rho_b = %g", (double)rho_a,
               (double)rho_b);
    run.rho = sum.rho = sum.unbalanced && divergence ? rho_a : 0.0;
  }
  PetscCall(OTPairsReadList(comm, list, output, &sum.count, &files));
  sum.files  = files;
  sum.pairs  = sum.count * (sum.count - 1) / 2;
  run.count  = sum.count;
  run.pairs  = sum.pairs;
  run.tasks  = sum.pairs + (divergence ? sum.count : 0);
  run.files  = files;
  run.cost   = cost;
  sum.groups = (PetscMPIInt)PetscMin((PetscInt)size, run.tasks);
  PetscCallMPI(MPI_Comm_split(comm, rank % sum.groups, rank, &run.group));
  PetscCallMPI(MPI_Comm_rank(run.group, &run.group_rank));
  PetscCall(PetscPrintf(comm, "otsolve: %" PetscInt_FMT " measures, %" PetscInt_FMT " pairs%s on %d group(s) of ranks, cost %s\n", sum.count, sum.pairs,
                        divergence ? " and their self terms" : "", sum.groups, cost));
  PetscCall(PetscCalloc3(sum.pairs, &run.cost_max, sum.pairs, &run.pair_eps, (size_t)run.tasks * PAIR_FIELDS, &run.results));

  /* the first pass: every pair's max C, which sets the eps, and its input checked before any solve */
  PetscCall(RunTasks(comm, &run, run.pairs, rank % sum.groups, sum.groups, CostMaxTask));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, run.cost_max, (PetscMPIInt)sum.pairs, MPIU_REAL, MPIU_MAX, comm));
  PetscCall(SetEps(comm, &run, &sum.cost_max));
  sum.eps      = run.eps;
  sum.pair_eps = run.pair_eps;
  if (run.rule.per_pair) PetscCall(PetscSNPrintf(eps_text, sizeof(eps_text), "per pair"));
  else PetscCall(PetscSNPrintf(eps_text, sizeof(eps_text), "%.17g", (double)run.eps));
  if (run.rule.given) PetscCall(PetscPrintf(comm, "otsolve: eps = %s (-ot_eps) for every pair; the largest max C is %.17g\n", eps_text, (double)sum.cost_max));
  else if (run.rule.per_pair) PetscCall(PetscPrintf(comm, "otsolve: eps = %g x each pair's max C (-pairs_eps_per_pair)\n", (double)run.rule.rel));
  else PetscCall(PetscPrintf(comm, "otsolve: eps = %s = %g x the largest max C %.17g, for every pair\n", eps_text, (double)run.rule.rel, (double)sum.cost_max));

  PetscCall(RunTasks(comm, &run, run.tasks, rank % sum.groups, sum.groups, SolveTask));
  PetscCallMPI(MPI_Comm_free(&run.group));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, run.results, (PetscMPIInt)(run.tasks * PAIR_FIELDS), MPIU_REAL, MPIU_SUM, comm));
  for (PetscInt t = 0; t < run.tasks; t++) {
    PetscBool failed = (PetscBool)(run.results[(size_t)t * PAIR_FIELDS + PAIR_CONVERGED] == 0);

    if (t < run.pairs) sum.unconverged += failed;
    else sum.unconverged_self += failed;
  }
  PetscCall(OTPairsWriteOutput(comm, output, &sum, run.results, &written, reason, sizeof(reason)));
  *unconverged_solves = sum.unconverged + sum.unconverged_self;
  PetscCall(PetscPrintf(comm, "pairs = %" PetscInt_FMT "\nmeasures = %" PetscInt_FMT "\neps = %s\nunconverged = %" PetscInt_FMT "\n", sum.pairs, sum.count,
                        eps_text, sum.unconverged));
  if (divergence) PetscCall(PetscPrintf(comm, "unconverged_self = %" PetscInt_FMT "\n", sum.unconverged_self));
  PetscCall(PetscPrintf(comm, "seconds = %.3f\noutput = %s\noutput_written = %d\n", MPI_Wtime() - sum.start, output, (int)written));
  PetscCall(PetscFree3(run.cost_max, run.pair_eps, run.results));
  PetscCall(PetscFree(files));
  PetscCheck(written, comm, OT_ERR_WRITE, "-output %s not written: %s (its temporary file was removed); the distances above are in the pair lines", output,
             reason);
  PetscFunctionReturn(0);
}
