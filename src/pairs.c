/*
  Many pairs in one run: the K x K matrix of transport costs among K measures, each an HDF5 file with
  points /X (k x d) and optional weights /a (k; uniform if absent), listed one per line in a text file.

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
  results meet on rank 0 in one reduction and are written by rank 0 to an HDF5 file (temporary name, synced,
  then renamed: OTFileCommit): K x K symmetric datasets /transport_cost (<C,P> of the entropic plan),
  /lower_bound, /upper_bound (certified bounds on the unregularised cost), /marginal_error, /seconds, the
  integer /converged and /iterations, for costs that are powers of a distance (sqeuclidean: p = 2, euclidean:
  p = 1, pnorm:P: p = P) /wasserstein = transport_cost^(1/p) (an entropic estimate) and /wasserstein_lower,
  /wasserstein_upper (the bounds to the power 1/p), and with -ot_divergence /sinkhorn_divergence,
  /divergence_converged, /self_dual_objective (K), /self_converged (K). The diagonal is exact, not solved:
  distances 0, converged 1, iterations and seconds 0. The eps is the root attribute eps, or with
  -pairs_eps_per_pair the K x K dataset /eps. Built on the public API (include/otsolve.h) and plain HDF5 calls.
*/
#include <otsolve.h>
#include <hdf5.h>
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Turns a negative HDF5 status into a PETSc error on PETSC_COMM_SELF. */
#define PairsH5Call(expr) \
  do { \
    if ((expr) < 0) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #expr); \
  } while (0)

/* What the run needs to know of one measure file. */
typedef struct {
  char     path[PETSC_MAX_PATH_LEN];
  PetscInt points, dim;
} OTMeasureFile;

/* The numbers each task reports, in this order in the results (a self term fills only the dual objective, the
   converged flag, the iterations and the seconds). */
enum {
  PAIR_COST,
  PAIR_LOWER,
  PAIR_UPPER,
  PAIR_ERROR,
  PAIR_DUAL,
  PAIR_CONVERGED,
  PAIR_ITERATIONS,
  PAIR_SECONDS,
  PAIR_FIELDS
};

/* Reads the list (rank 0) and broadcasts it. Blank lines and lines starting with # are skipped. */
static PetscErrorCode ReadList(MPI_Comm comm, const char list[], PetscInt *count, OTMeasureFile **files)
{
  PetscMPIInt rank;
  PetscInt    k = 0, cap = 16;
  int         status = 0; /* 0 ok, 1 unreadable */

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscCalloc1(cap, files));
  if (rank == 0) {
    FILE *fp = fopen(list, "r");
    char  line[PETSC_MAX_PATH_LEN + 2];

    if (!fp) status = 1;
    while (fp && fgets(line, sizeof(line), fp)) {
      char  *start = line, *end;
      size_t len;

      while (isspace((unsigned char)*start)) start++;
      len = strlen(start);
      end = start + len;
      while (end > start && isspace((unsigned char)end[-1])) *--end = '\0';
      if (!start[0] || start[0] == '#') continue;
      if (k == cap) {
        OTMeasureFile *grown;

        PetscCall(PetscCalloc1(2 * cap, &grown));
        PetscCall(PetscArraycpy(grown, *files, cap));
        PetscCall(PetscFree(*files));
        *files = grown;
        cap *= 2;
      }
      PetscCall(PetscStrncpy((*files)[k++].path, start, sizeof((*files)[0].path)));
    }
    if (fp) fclose(fp);
  }
  PetscCallMPI(MPI_Bcast(&status, 1, MPI_INT, 0, comm));
  PetscCheck(!status, comm, OT_ERR_INPUT, "-pairs %s: cannot read the list of measure files", list);
  PetscCallMPI(MPI_Bcast(&k, 1, MPIU_INT, 0, comm));
  PetscCheck(k >= 2, comm, OT_ERR_INPUT, "-pairs %s: lists %" PetscInt_FMT " measure file(s); a distance matrix needs at least 2", list, k);
  if (rank != 0 && k > cap) {
    PetscCall(PetscFree(*files));
    PetscCall(PetscCalloc1(k, files));
  }
  PetscCallMPI(MPI_Bcast(*files, (PetscMPIInt)(k * sizeof(OTMeasureFile)), MPI_BYTE, 0, comm));
  *count = k;
  PetscFunctionReturn(0);
}

/* Reads one measure: /X (points x dim) and /a (or uniform weights), on this rank alone. The file was
   checked collectively before (CheckMeasure), so failures here are internal errors. */
static PetscErrorCode ReadMeasure(const OTMeasureFile *mf, PetscReal **points, PetscReal **weights)
{
  hid_t file, dset;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2((size_t)mf->points * (size_t)mf->dim, points, mf->points, weights));
  file = H5Fopen(mf->path, H5F_ACC_RDONLY, H5P_DEFAULT);
  PairsH5Call(file);
  dset = H5Dopen2(file, "/X", H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *points));
  PairsH5Call(H5Dclose(dset));
  if (H5Lexists(file, "/a", H5P_DEFAULT) > 0) {
    dset = H5Dopen2(file, "/a", H5P_DEFAULT);
    PairsH5Call(dset);
    PairsH5Call(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *weights));
    PairsH5Call(H5Dclose(dset));
  } else
    for (PetscInt i = 0; i < mf->points; i++) (*weights)[i] = 1.0 / mf->points;
  PairsH5Call(H5Fclose(file));
  PetscFunctionReturn(0);
}

/* Rank 0 opens every file and checks /X and /a; the verdict (a message) is broadcast, so that every rank
   stops together on a bad file. */
static PetscErrorCode CheckMeasures(MPI_Comm comm, PetscInt count, OTMeasureFile files[])
{
  PetscMPIInt rank;
  char        message[PETSC_MAX_PATH_LEN + 256] = "";

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PairsH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL));
  for (PetscInt k = 0; rank == 0 && k < count && !message[0]; k++) {
    OTMeasureFile *mf = &files[k];
    hid_t          file, dset, space, type;
    hsize_t        dims[2] = {0, 0};
    int            ndims;

    if (access(mf->path, R_OK) != 0 || H5Fis_hdf5(mf->path) <= 0) {
      snprintf(message, sizeof(message), "%s (measure %" PetscInt_FMT " of the list): missing, unreadable or not an HDF5 file", mf->path, k + 1);
      break;
    }
    file = H5Fopen(mf->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0 || H5Lexists(file, "/X", H5P_DEFAULT) <= 0) {
      snprintf(message, sizeof(message), "%s: no dataset /X (the measure's points, k x d)", mf->path);
      if (file >= 0) H5Fclose(file);
      break;
    }
    dset  = H5Dopen2(file, "/X", H5P_DEFAULT);
    space = H5Dget_space(dset);
    type  = H5Dget_type(dset);
    ndims = H5Sget_simple_extent_ndims(space);
    if (ndims == 2) H5Sget_simple_extent_dims(space, dims, NULL);
    if (H5Tget_class(type) != H5T_FLOAT || ndims != 2 || dims[0] == 0 || dims[1] == 0)
      snprintf(message, sizeof(message), "%s: dataset /X must be a non-empty k x d array of floating-point numbers", mf->path);
    else if (k > 0 && (PetscInt)dims[1] != files[0].dim)
      snprintf(message, sizeof(message), "%s: points of dimension %llu, but %s has dimension %" PetscInt_FMT, mf->path, (unsigned long long)dims[1],
               files[0].path, files[0].dim);
    mf->points = (PetscInt)dims[0];
    mf->dim    = (PetscInt)dims[1];
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
    if (!message[0] && H5Lexists(file, "/a", H5P_DEFAULT) > 0) {
      hsize_t len = 0;

      dset  = H5Dopen2(file, "/a", H5P_DEFAULT);
      space = H5Dget_space(dset);
      type  = H5Dget_type(dset);
      if (H5Sget_simple_extent_ndims(space) == 1) H5Sget_simple_extent_dims(space, &len, NULL);
      if (H5Tget_class(type) != H5T_FLOAT || len != dims[0])
        snprintf(message, sizeof(message), "%s: dataset /a must hold %llu floating-point weights, one per point of /X", mf->path, (unsigned long long)dims[0]);
      H5Tclose(type);
      H5Sclose(space);
      H5Dclose(dset);
    }
    H5Fclose(file);
  }
  PetscCallMPI(MPI_Bcast(message, sizeof(message), MPI_CHAR, 0, comm));
  PetscCheck(!message[0], comm, OT_ERR_INPUT, "-pairs: %s", message);
  PetscCallMPI(MPI_Bcast(files, (PetscMPIInt)(count * sizeof(OTMeasureFile)), MPI_BYTE, 0, comm));
  PetscFunctionReturn(0);
}

/* The eps rule of a run: -ot_eps E for every pair (given), else R x max C with R = -ot_eps_rel (0.01): the largest
   max C over all pairs, or with -pairs_eps_per_pair each pair's own. */
typedef struct {
  PetscBool given, per_pair;
  PetscReal eps, rel;
} EpsRule;

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
  PetscCall(ReadMeasure(&run->files[i], &x, &a));
  PetscCall(ReadMeasure(&run->files[j], &y, &b));
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

/* Solves task t on the group; its rank 0 fills the task's results and prints a line. */
static PetscErrorCode SolveTask(PairsRun *run, PetscInt t)
{
  PetscInt   i, j;
  OTResult   result;
  PetscReal *x, *a, *y, *b, *row = run->results + (size_t)t * PAIR_FIELDS, eps;
  char       source[2 * PETSC_MAX_PATH_LEN + 8];
  double     start = MPI_Wtime();

  PetscFunctionBegin;
  if (t < run->pairs) PairOfIndex(run->count, t, &i, &j);
  else i = j = t - run->pairs;
  /* with -ot_eps, 0: the solver takes -ot_eps and -ot_eps_schedule from the options, as for one problem */
  eps = run->rule.given ? 0.0 : (t < run->pairs ? run->pair_eps[t] : run->eps);
  PetscCall(ReadMeasure(&run->files[i], &x, &a));
  if (i == j) {
    PetscCall(PetscSNPrintf(source, sizeof(source), "%s (self term)", run->files[i].path));
    PetscCall(OTSolveSymmetric(run->group, run->files[i].points, run->files[i].dim, x, a, run->cost, source, eps, &result));
  } else {
    PetscCall(ReadMeasure(&run->files[j], &y, &b));
    PetscCall(PetscSNPrintf(source, sizeof(source), "%s x %s", run->files[i].path, run->files[j].path));
    PetscCall(OTSolvePoints(run->group, run->files[i].points, run->files[j].points, run->files[i].dim, x, y, a, b, run->cost, source, eps, &result));
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
    if (i == j)
      PetscCall(PetscPrintf(PETSC_COMM_SELF, "  self %" PetscInt_FMT ": dual_objective %.17g  iterations %" PetscInt_FMT "  converged %d  %.2f s\n", i,
                            (double)result.dual_objective, iterations, (int)result.converged, row[PAIR_SECONDS]));
    else {
      char eps_text[64] = "", dual_text[64] = "";

      if (run->rule.per_pair) PetscCall(PetscSNPrintf(eps_text, sizeof(eps_text), "eps %.17g  ", (double)run->pair_eps[t]));
      /* the divergence needs the self terms too: its parts are all in these lines, should the file not be written */
      if (run->tasks > run->pairs) PetscCall(PetscSNPrintf(dual_text, sizeof(dual_text), "  dual_objective %.17g", (double)result.dual_objective));
      PetscCall(PetscPrintf(PETSC_COMM_SELF,
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

/* What the distance matrix file holds besides the matrices. */
typedef struct {
  const char          *cost;
  PetscReal            power; /* p of the cost |x - y|^p: /wasserstein = transport_cost^(1/p) */
  PetscInt             count, pairs, unconverged, unconverged_self;
  PetscMPIInt          groups;
  PetscBool            divergence;
  const PairsRun      *run;
  PetscReal            cost_max; /* the largest max C over all pairs */
  const OTMeasureFile *files;
  double               start;
} PairsSummary;

/* Writes a dataset of the given HDF5 type from doubles (rank 0 only, serial HDF5): HDF5 converts them to the
   dataset's type, exactly for the integers (counts and flags) that the integer datasets hold. */
static PetscErrorCode WriteArray(hid_t file, const char name[], hid_t type, int rank, PetscInt count, const PetscReal values[])
{
  hsize_t dims[2] = {(hsize_t)count, (hsize_t)count};
  hid_t   space, dset;

  PetscFunctionBegin;
  space = H5Screate_simple(rank, dims, NULL);
  PairsH5Call(space);
  dset = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values));
  PairsH5Call(H5Dclose(dset));
  PairsH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

/* Writes the K x K symmetric matrix with per_pair[p] at the pair p and its mirror, and diagonal on the diagonal. */
static PetscErrorCode WriteMatrix(hid_t file, const char name[], hid_t type, PetscInt count, PetscReal diagonal, const PetscReal per_pair[], PetscReal matrix[])
{
  PetscInt p = 0;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < count; i++) {
    matrix[i * count + i] = diagonal;
    for (PetscInt j = i + 1; j < count; j++, p++) matrix[i * count + j] = matrix[j * count + i] = per_pair[p];
  }
  PetscCall(WriteArray(file, name, type, 2, count, matrix));
  PetscFunctionReturn(0);
}

/* The divergences' datasets: /sinkhorn_divergence = OT_eps(a_i, a_j) - (OT_eps(a_i, a_i) + OT_eps(a_j, a_j)) / 2 from
   the dual objectives, /divergence_converged (the pair and both self terms converged), and the self terms. */
static PetscErrorCode WriteDivergences(hid_t file, const PairsSummary *sum, const PetscReal results[], PetscReal per_pair[], PetscReal matrix[])
{
  const PetscReal *self  = results + (size_t)sum->pairs * PAIR_FIELDS;
  PetscInt         count = sum->count, p = 0;
  PetscReal       *self_values;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < count; i++)
    for (PetscInt j = i + 1; j < count; j++, p++)
      per_pair[p] = results[(size_t)p * PAIR_FIELDS + PAIR_DUAL] - 0.5 * (self[i * PAIR_FIELDS + PAIR_DUAL] + self[j * PAIR_FIELDS + PAIR_DUAL]);
  PetscCall(WriteMatrix(file, "/sinkhorn_divergence", H5T_NATIVE_DOUBLE, count, 0.0, per_pair, matrix));
  p = 0;
  for (PetscInt i = 0; i < count; i++)
    for (PetscInt j = i + 1; j < count; j++, p++)
      per_pair[p] = results[(size_t)p * PAIR_FIELDS + PAIR_CONVERGED] && self[i * PAIR_FIELDS + PAIR_CONVERGED] && self[j * PAIR_FIELDS + PAIR_CONVERGED];
  PetscCall(WriteMatrix(file, "/divergence_converged", H5T_NATIVE_INT, count, 1.0, per_pair, matrix));
  PetscCall(PetscMalloc1(count, &self_values));
  for (PetscInt k = 0; k < count; k++) self_values[k] = self[k * PAIR_FIELDS + PAIR_DUAL];
  PetscCall(WriteArray(file, "/self_dual_objective", H5T_NATIVE_DOUBLE, 1, count, self_values));
  for (PetscInt k = 0; k < count; k++) self_values[k] = self[k * PAIR_FIELDS + PAIR_CONVERGED];
  PetscCall(WriteArray(file, "/self_converged", H5T_NATIVE_INT, 1, count, self_values));
  PetscCall(PetscFree(self_values));
  PetscFunctionReturn(0);
}

/* The distance matrix file's contents, written into file by rank 0 alone, which then closes it: the K x K matrices,
   /files, the root attributes. */
static PetscErrorCode WriteContents(hid_t file, const PairsSummary *sum, const PetscReal results[])
{
  /* the pairs' fields as they are, then the Wasserstein values from three of them */
  const struct {
    const char *name;
    int         field;
    hid_t       type;
    PetscReal   diagonal;
  } direct[] = {
    {"/transport_cost", PAIR_COST,       H5T_NATIVE_DOUBLE, 0.0},
    {"/lower_bound",    PAIR_LOWER,      H5T_NATIVE_DOUBLE, 0.0},
    {"/upper_bound",    PAIR_UPPER,      H5T_NATIVE_DOUBLE, 0.0},
    {"/marginal_error", PAIR_ERROR,      H5T_NATIVE_DOUBLE, 0.0},
    {"/seconds",        PAIR_SECONDS,    H5T_NATIVE_DOUBLE, 0.0},
    {"/converged",      PAIR_CONVERGED,  H5T_NATIVE_INT,    1.0},
    {"/iterations",     PAIR_ITERATIONS, H5T_NATIVE_LLONG,  0.0},
  };
  const char  *roots[3] = {"/wasserstein", "/wasserstein_lower", "/wasserstein_upper"};
  const int    bases[3] = {PAIR_COST, PAIR_LOWER, PAIR_UPPER};
  PetscInt     count    = sum->count;
  PetscReal   *matrix, *per_pair;
  const char **paths;
  hid_t        string_type, space, dset;
  hsize_t      len      = (hsize_t)count;
  PetscInt     ints[4]  = {count, sum->pairs, sum->unconverged, (PetscInt)sum->groups};
  PetscReal    reals[2] = {MPI_Wtime() - sum->start, sum->cost_max};

  PetscFunctionBegin;
  PetscCall(PetscMalloc3((size_t)count * (size_t)count, &matrix, sum->pairs, &per_pair, count, &paths));
  for (size_t d = 0; d < sizeof(direct) / sizeof(direct[0]); d++) {
    for (PetscInt p = 0; p < sum->pairs; p++) per_pair[p] = results[(size_t)p * PAIR_FIELDS + direct[d].field];
    PetscCall(WriteMatrix(file, direct[d].name, direct[d].type, count, direct[d].diagonal, per_pair, matrix));
  }
  for (int w = 0; w < 3 && sum->power > 0; w++) {
    for (PetscInt p = 0; p < sum->pairs; p++) per_pair[p] = PetscPowReal(PetscMax(results[(size_t)p * PAIR_FIELDS + bases[w]], 0.0), 1.0 / sum->power);
    PetscCall(WriteMatrix(file, roots[w], H5T_NATIVE_DOUBLE, count, 0.0, per_pair, matrix));
  }
  if (sum->run->rule.per_pair) PetscCall(WriteMatrix(file, "/eps", H5T_NATIVE_DOUBLE, count, 0.0, sum->run->pair_eps, matrix));
  if (sum->divergence) PetscCall(WriteDivergences(file, sum, results, per_pair, matrix));
  /* strings as h5py writes them, variable-length UTF-8: readers get str, not bytes */
  string_type = H5Tcopy(H5T_C_S1);
  PairsH5Call(H5Tset_size(string_type, H5T_VARIABLE));
  PairsH5Call(H5Tset_cset(string_type, H5T_CSET_UTF8));
  for (PetscInt k = 0; k < count; k++) paths[k] = sum->files[k].path;
  space = H5Screate_simple(1, &len, NULL);
  dset  = H5Dcreate2(file, "/files", string_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  PairsH5Call(dset);
  PairsH5Call(H5Dwrite(dset, string_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, paths));
  PairsH5Call(H5Dclose(dset));
  PairsH5Call(H5Sclose(space));
  PetscCall(OTH5WriteAttrString(file, "cost", sum->cost));
  PetscCall(OTH5WriteAttrsInt(file, "measures pairs unconverged groups", 4, ints));
  if (sum->divergence) PetscCall(OTH5WriteAttrInt(file, "unconverged_self", sum->unconverged_self));
  PetscCall(OTH5WriteAttrsReal(file, "seconds cost_max", 2, reals));
  /* eps_rel where it set the eps; eps where it is one for all pairs (else the dataset /eps) */
  if (!sum->run->rule.given) PetscCall(OTH5WriteAttrDouble(file, "eps_rel", sum->run->rule.rel));
  if (!sum->run->rule.per_pair) PetscCall(OTH5WriteAttrDouble(file, "eps", sum->run->eps));
  PairsH5Call(H5Tclose(string_type));
  PairsH5Call(H5Fclose(file));
  PetscCall(PetscFree3(matrix, per_pair, paths));
  PetscFunctionReturn(0);
}

/* Refuses an output that is one of the measure files (writing it would destroy the measure). Rank 0 decides. */
static PetscErrorCode CheckOutputIsNoMeasure(MPI_Comm comm, const char list[], const char output[], PetscInt count, const OTMeasureFile files[])
{
  PetscMPIInt rank;
  PetscInt    clash = -1;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  for (PetscInt k = 0; rank == 0 && k < count && clash < 0; k++) {
    PetscBool same;

    PetscCall(OTFileSame(output, files[k].path, &same));
    if (same) clash = k;
  }
  PetscCallMPI(MPI_Bcast(&clash, 1, MPIU_INT, 0, comm));
  PetscCheck(clash < 0, comm, OT_ERR_INPUT,
             "-output %s and the measure file %s (measure %" PetscInt_FMT
             " of -pairs %s) are the same file: writing the one would destroy the other; give -output another path",
             output, clash >= 0 ? files[clash].path : "", clash + 1, list);
  PetscFunctionReturn(0);
}

/* What WriteDistances writes. */
typedef struct {
  const PairsSummary *sum;
  const PetscReal    *results;
} PairsOutput;

/* The distance matrix file, written by rank 0 alone with serial HDF5 (an OTFileWriteFn). */
static PetscErrorCode WriteDistances(void *ctx, const char tmpname[])
{
  PairsOutput   *out  = (PairsOutput *)ctx;
  hid_t          file = H5Fcreate(tmpname, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCheck(file >= 0, PETSC_COMM_SELF, OT_ERR_WRITE, "cannot create %s", tmpname);
  ierr = WriteContents(file, out->sum, out->results);
  if (ierr) (void)H5Fclose(file);
  PetscCall(ierr);
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
  PairsSummary   sum = {cost, 0.0, 0, 0, 0, 0, 0, divergence, &run, 0.0, NULL, MPI_Wtime()};
  char           reason[512], eps_text[64];

  PetscFunctionBegin;
  PetscCall(PetscMemzero(&run, sizeof(run)));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCall(OTCostParse(cost, &kind, &power, &valid));
  PetscCheck(valid && kind != OT_COST_DENSE, comm, OT_ERR_INPUT, "-pairs_cost %s: use sqeuclidean, euclidean or pnorm:P with P > 0", cost);
  sum.power = OTCostExponent(kind, power);
  PetscCall(ReadEpsRule(comm, divergence, &run.rule));
  PetscCall(ReadList(comm, list, &sum.count, &files));
  PetscCall(CheckMeasures(comm, sum.count, files));
  PetscCall(CheckOutputIsNoMeasure(comm, list, output, sum.count, files));
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
  {
    PairsOutput out = {&sum, run.results};

    /* K x K doubles for each of up to 14 matrices, the self terms, and the paths */
    PetscCall(OTFileWriteSerial(comm, output, 8.0 * 16 * (double)sum.count * (double)sum.count + 4096.0 * (double)sum.count, WriteDistances, &out, &written,
                                reason, sizeof(reason)));
  }
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
