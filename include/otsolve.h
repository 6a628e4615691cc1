/*
  otsolve: entropy-regularised optimal transport on many MPI ranks.

  A problem (OTProblem) holds the cost matrix split by rows across the ranks of its
  communicator and the two weight vectors; a solver (OTSolver) holds the dual potentials
  and runs log-domain Sinkhorn on them. Life cycle, as in PETSc:

    OTProblemCreate(comm, &problem);  OTProblemLoad(problem, "pair.h5");
    OTSolverCreate(comm, &solver);    OTSolverSetProblem(solver, problem);
    OTSolverSetFromOptions(solver);   OTSolverSolve(solver);
    OTSolverWriteResult(solver, "result.h5");  OTSolverPrintSummary(solver);
    OTSolverDestroy(&solver);         OTProblemDestroy(&problem);
*/
#ifndef OTSOLVE_H
#define OTSOLVE_H

#include <petscsys.h>
#include <petscviewer.h>
#include <hdf5.h>

typedef struct _p_OTProblem *OTProblem;
typedef struct _p_OTSolver  *OTSolver;

/* Exit status of the otsolve program (also in -help and the README): 0 converged; 1 bad input, options or
   output paths; 2 stopped at -ot_max_it before reaching -ot_tol; 3 internal or MPI failure (the job is aborted);
   4 interrupted by SIGTERM or SIGUSR1 after writing the -ot_checkpoint file; 5 NaN or Inf in the iterates
   (numerical breakdown); 6 solved, but the result file could not be written (the summary is printed, and the state
   is in the -ot_checkpoint file where one is given); 7 interrupted by SIGTERM or SIGUSR1, and the checkpoint could
   not be written. Results are written for 2 and 5. */
#define OT_EXIT_NOT_CONVERGED 2
#define OT_EXIT_INTERNAL      3
#define OT_EXIT_INTERRUPTED   4
#define OT_EXIT_BREAKDOWN     5
#define OT_EXIT_NOT_WRITTEN   6
#define OT_EXIT_NO_CHECKPOINT 7

/* The error class of a problem the user caused (bad input, options or output path) that every rank detected
   together: the otsolve program reports it once and exits with status 1 instead of aborting the job. */
#define OT_ERR_INPUT PETSC_ERR_USER_INPUT
/* The error class of a file that could not be written (no space, quota exceeded, I/O error, permission): raised
   on every rank of the writing communicator together, after its temporary file was removed. */
#define OT_ERR_WRITE PETSC_ERR_FILE_WRITE

/* Why a solve ended. */
typedef enum {
  OT_REASON_NONE,       /* not solved yet */
  OT_REASON_CONVERGED,  /* marginal error <= -ot_tol */
  OT_REASON_MAX_IT,     /* -ot_max_it iterations without converging */
  OT_REASON_BREAKDOWN,  /* NaN or Inf in the iterates */
  OT_REASON_INTERRUPTED /* a signal asked to stop; the state is in the checkpoint file */
} OTStopReason;

/* What a finished solve reports (docs/design.md §1, §3). Every rank holds the same values. */
typedef struct {
  PetscReal    transport_cost; /* <C,P> */
  PetscReal    dual_objective; /* D(f,g) = <a,f> + <b,g> - eps sum P */
  PetscReal    entropic_cost;  /* <C,P> + eps sum P (log P - 1), the regularised primal value */
  PetscReal    marginal_error; /* |P1 - a|_1 + |P^T 1 - b|_1 */
  PetscReal    dropped_mass;   /* -ot_sinkhorn_variant truncated: the entries of P left out of the values above sum to less
                                  than this (included in marginal_error; transport_cost misses at most dropped_mass x max C) */
  PetscReal    unbalanced_objective; /* -ot_unbalanced: entropic_cost + rho_a KL(P1 | a) + rho_b KL(P^T 1 | b); NaN when balanced */
  PetscReal    transported_mass;     /* sum P (unbalanced: it differs from sum a and sum b) */
  PetscReal    kl_a, kl_b;           /* -ot_unbalanced: KL(P1 | a) and KL(P^T 1 | b) (generalised: sum x log(x/y) - x + y); 0 for a hard side */
  PetscReal    lower_bound;    /* certified lower bound on the unregularised OT cost (balanced only: NaN for unbalanced) */
  PetscReal    upper_bound;    /* certified upper bound on the unregularised OT cost */
  PetscReal    eps;
  PetscInt     iterations_sinkhorn;
  PetscInt     iterations_newton;
  PetscBool    converged;
  OTStopReason reason;
  PetscReal    wasserstein;                          /* for costs |x-y|^p (sqeuclidean: p = 2, euclidean: 1, pnorm:P): transport_cost^(1/p); else NaN */
  PetscReal    wasserstein_lower, wasserstein_upper; /* the certified bounds, to the power 1/p */
  PetscReal    sinkhorn_divergence;                  /* OT_eps(a,b) - OT_eps(a,a)/2 - OT_eps(b,b)/2 after OTSolverComputeDivergence, else NaN */
  PetscBool    divergence_converged;
  PetscReal    solve_time;            /* seconds in OTSolverSolve, with those before a restart (-ot_restart) */
  PetscReal    solve_time_restored;   /* of them, the seconds before the restart (from the checkpoint); 0 without one */
  PetscReal    sinkhorn_time;         /* seconds in the Sinkhorn sweeps */
  PetscInt     checkpoint_failures;   /* checkpoints that could not be written (the solve went on) */
  PetscBool    checkpoint_written;    /* the last checkpoint was written (after a signal: there is a state to resume from) */
  char         checkpoint_error[256]; /* why the last of them failed */
  char         status[256];
} OTResult;

/* The ground cost of a problem: a stored matrix /C, or computed from points as |x - y|^2 (sqeuclidean),
   |x - y| (euclidean) or |x - y|^P (pnorm:P). OTCostKinds[kind] is its name. */
typedef enum {
  OT_COST_DENSE,
  OT_COST_SQEUCLIDEAN,
  OT_COST_EUCLIDEAN,
  OT_COST_PNORM
} OTCostKind;
PETSC_EXTERN const char *const OTCostKinds[];
/* Parses a cost name as in files and options: sqeuclidean, euclidean or pnorm:P (P > 0; pnorm:2 and pnorm:1
   are the named costs); valid is false otherwise, and power is the exponent p of |x - y|^p. Not collective. */
PETSC_EXTERN PetscErrorCode OTCostParse(const char text[], OTCostKind *kind, PetscReal *power, PetscBool *valid);
/* The exponent p of a cost |x - y|^p (W_p = cost^(1/p)); 0 for a dense /C, which is no power of a distance. */
PETSC_EXTERN PetscReal OTCostExponent(OTCostKind kind, PetscReal power);

/* Registers otsolve's log stages and events; called by OTProblemCreate and OTSolverCreate. Not collective. */
PETSC_EXTERN PetscErrorCode OTInitializePackage(void);

/* Creates an empty problem on comm. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemCreate(MPI_Comm comm, OTProblem *problem);
/* Reads -ot_mass_tol (accepted relative mismatch of the total masses) and -ot_normalize (rescale
   both measures to mass 1 instead). Call before loading. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemSetFromOptions(OTProblem problem);
/* Reads a problem file (docs/design.md §3: dense /C, optional /a, /b); each rank reads only its rows
   with MPI-IO. Bad input is reported on every rank with a message naming the file and dataset.
   Collective. */
PETSC_EXTERN PetscErrorCode OTProblemLoad(OTProblem problem, const char filename[]);
/* Where a problem's inputs are. Each dataset reference is "FILE:/path/in/the/file" (the part after the last ":/" is
   the path), or "FILE" alone for the role's root name (/C, /X, /Y, /a, /b); NULL or "" where not given. A problem is
   a cost matrix (cost) or two point clouds (x and y, which may lie in different files); file, a problem file, gives
   the roles not given (its /C, or /X and /Y, and /a, /b where present). Weights not given anywhere are uniform. */
typedef struct {
  const char *file;                /* a problem file with root names, or NULL */
  const char *cost, *x, *y, *a, *b; /* dataset references */
  const char *ground_cost;         /* point clouds: sqeuclidean, euclidean or pnorm:P, instead of the root attribute cost of x's file */
} OTProblemInputs;
/* Reads a problem from datasets anywhere in HDF5 files (float64 or float32, any chunking or gzip), as OTProblemLoad
   does from one file. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemLoadInputs(OTProblem problem, const OTProblemInputs *inputs);
/* Splits a dataset reference "FILE:/path" at its last ":/" into file and path; "FILE" alone gives default_path. Not
   collective. */
PETSC_EXTERN PetscErrorCode OTDatasetRefSplit(const char ref[], const char default_path[], char file[], size_t file_len, char path[], size_t path_len);
/* Builds a point-cloud problem from arrays that every rank passes whole: points X (n x d, row-major) and
   Y (m x d), weights a (n) and b (m) or NULL for uniform, cost "sqeuclidean", "euclidean" or "pnorm:P";
   each rank keeps its rows of X. source names the problem in messages. The same arrays for X and Y and for a and
   b (X == Y, a == b: pointers) make the problem symmetric, solved with one potential (OTSolveSymmetric). Collective. */
PETSC_EXTERN PetscErrorCode OTProblemSetPoints(OTProblem problem, PetscInt n, PetscInt m, PetscInt d, const PetscReal X[], const PetscReal Y[],
                                               const PetscReal a[], const PetscReal b[], const char cost[], const char source[]);
/* Builds the built-in example: two Gaussian mixtures in 2-D, n and m points, squared Euclidean
   cost; each rank computes only its own rows. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemSetExample(OTProblem problem, PetscInt n, PetscInt m, PetscInt seed);
/* Global sizes and this rank's rows [row_start, row_end). Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemGetSizes(OTProblem problem, PetscInt *n, PetscInt *m, PetscInt *row_start, PetscInt *row_end);
/* Largest cost entry over all ranks. Not collective (computed at load). */
PETSC_EXTERN PetscErrorCode OTProblemGetCostMax(OTProblem problem, PetscReal *cost_max);
/* A point-cloud problem's points as this rank holds them: the dimension d, the rank's rows of X (rows row_start
   .. row_end - 1 of OTProblemGetSizes; x[i * d + k] is coordinate k of row row_start + i), all of Y transposed
   (coordinate k of point j at y_t[k * m + j]), and the cost as given (sqeuclidean, euclidean or pnorm:P). A
   dense problem (/C) gives d = 0, x = y_t = NULL and the cost "dense". The arrays belong to the problem; any
   output may be NULL. Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemGetPoints(OTProblem problem, PetscInt *d, const PetscReal *x[], const PetscReal *y_t[], const char *cost[]);
/* The weights as this rank holds them, after the checks and rescaling of the load: a for the rank's rows
   (row_end - row_start entries) and all of b (m). They belong to the problem; either output may be NULL.
   Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemGetWeights(OTProblem problem, const PetscReal *a[], const PetscReal *b[]);
/* The KL penalties of the marginals (-ot_unbalanced, -ot_unbalanced_a, -ot_unbalanced_b): INFINITY for a hard constraint
   (balanced transport has both). Either output may be NULL. Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemGetRelaxation(OTProblem problem, PetscReal *rho_a, PetscReal *rho_b);
/* The problem's name in messages and files: the problem file, the built-in example, or the source given to
   OTProblemSetPoints. It belongs to the problem. Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemGetSource(OTProblem problem, const char *source[]);
PETSC_EXTERN PetscErrorCode OTProblemDestroy(OTProblem *problem);

/* Creates a solver on comm. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverCreate(MPI_Comm comm, OTSolver *solver);
/* Attaches the problem (the solver takes a reference). Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetProblem(OTSolver solver, OTProblem problem);
/* Reads the -ot_ options (-help lists them): -ot_eps, -ot_tol, -ot_max_it, -ot_method, -ot_monitor [k],
   -ot_view, -ot_checkpoint, -ot_checkpoint_interval, -ot_restart, the SNS options. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetFromOptions(OTSolver solver);
/* The solver's communicator. Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetComm(OTSolver solver, MPI_Comm *comm);
/* The problem given to OTSolverSetProblem (no new reference: the caller does not destroy it). Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetProblem(OTSolver solver, OTProblem *problem);
/* Sets eps, the entropic regularisation in cost units, as -ot_eps does; eps <= 0: the default, 0.01 * max C.
   It takes effect at the next OTSolverSetUp (which OTSolverSolve makes), which starts again from f = g = 0.
   Not collective (give every rank the same value). */
PETSC_EXTERN PetscErrorCode OTSolverSetEps(OTSolver solver, PetscReal eps);
/* eps: before set-up the value set (<= 0: the default); after OTSolverSetUp the eps in use, and after
   OTSolverSolve the final one (the target of the eps schedule, unless the solve stopped in an earlier stage).
   Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetEps(OTSolver solver, PetscReal *eps);
/* Sets the eps schedule as -ot_eps_schedule does: "E0:F", "E1,E2,...", "none" or "auto"; NULL or "" for the
   default (auto for -ot_method sns, none for sinkhorn). It is checked, and takes effect, at the next
   OTSolverSetUp, which starts again from f = g = 0. Not collective (give every rank the same value). */
PETSC_EXTERN PetscErrorCode OTSolverSetEpsSchedule(OTSolver solver, const char spec[]);
/* Sets the checkpoints as -ot_checkpoint and -ot_checkpoint_interval do: written to file (NULL or "": no
   checkpoints, and SIGTERM/SIGUSR1 keep their default action) every interval seconds (<= 0: only on SIGTERM or
   SIGUSR1, which then stop the solve). Not collective (give every rank the same values). */
PETSC_EXTERN PetscErrorCode OTSolverSetCheckpoint(OTSolver solver, const char file[], PetscReal interval);
/* The checkpoint file ("" for none) and the interval in seconds; either output may be NULL. Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetCheckpoint(OTSolver solver, const char *file[], PetscReal *interval);
/* The checkpoint file the next solve resumes from (-ot_restart or OTSolverSetRestart; "" for none). Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetRestart(OTSolver solver, const char *file[]);
/* Sets what -ot_plan_threshold does: OTSolverWriteResult also writes /plan, the entries of P that are at least
   threshold times max P (0 <= threshold <= 1; 0: all of them); threshold < 0: no /plan. Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetPlanThreshold(OTSolver solver, PetscReal threshold);
/* The plan threshold (< 0: no /plan). Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetPlanThreshold(OTSolver solver, PetscReal *threshold);
/* Allocates the potentials and work space. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetUp(OTSolver solver);
/* Runs log-domain Sinkhorn until the marginal error is at most -ot_tol or -ot_max_it sweeps,
   then evaluates the result and the certified bounds. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSolve(OTSolver solver);
/* Copies the result of the last solve. Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetResult(OTSolver solver, OTResult *result);
/* Writes the result file (docs/design.md §3) to a temporary name, then renames it. A storage failure (no space,
   quota, I/O error, permission) is an OT_ERR_WRITE error on every rank, with the reason; the temporary is removed
   and the solver's state is kept (OTSolverWriteCheckpoint can still save it). Collective. */
PETSC_EXTERN PetscErrorCode OTSolverWriteResult(OTSolver solver, const char filename[]);
/* Writes the solver's state (potentials, counters, stage, history) to an HDF5 checkpoint file,
   atomically: a temporary file renamed over the previous checkpoint. A storage failure is not an error: written
   is false (on every rank), the reason is in the result's checkpoint_error, the previous checkpoint stays.
   Collective. */
PETSC_EXTERN PetscErrorCode OTSolverWriteCheckpoint(OTSolver solver, const char filename[], PetscBool *written);
/* Makes the next OTSolverSolve resume from a checkpoint file written by OTSolverWriteCheckpoint, on
   any number of ranks; the problem and eps must be those of the checkpoint. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetRestart(OTSolver solver, const char filename[]);
/* After OTSolverSolve on a point-cloud problem: solves the two symmetric problems (X, X) and (Y, Y) at the
   same eps and sets the result's sinkhorn_divergence. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverComputeDivergence(OTSolver solver);
/* Records a Sinkhorn divergence in the result of the last solve (sinkhorn_divergence, and divergence_converged:
   whether all its solves converged), as OTSolverComputeDivergence does; OTSolverWriteResult and
   OTSolverPrintSummary then report it. Not collective (give every rank the same values). */
PETSC_EXTERN PetscErrorCode OTSolverSetDivergence(OTSolver solver, PetscReal divergence, PetscBool converged);
/* Solves one point-cloud problem on comm, from arrays that every rank passes whole as to OTProblemSetPoints (X:
   n x d, Y: m x d, weights a and b or NULL for uniform, cost, source), with the -ot_ options, as one of many
   small problems: no checkpoints, no restart, no /plan. eps > 0: solved at this eps, with the default eps
   schedule (an -ot_eps_schedule given in another problem's cost units need not suit this one); eps <= 0:
   -ot_eps, or its default 0.01 * max C, and -ot_eps_schedule. Every rank gets the same result. Collective. */
PETSC_EXTERN PetscErrorCode OTSolvePoints(MPI_Comm comm, PetscInt n, PetscInt m, PetscInt d, const PetscReal X[], const PetscReal Y[], const PetscReal a[],
                                          const PetscReal b[], const char cost[], const char source[], PetscReal eps, OTResult *result);
/* The symmetric problem (X, X) with weights a on both sides (X: n x d, a or NULL for uniform, whole on every rank),
   as OTSolvePoints solves it, with its symmetric structure: one potential (f = g). Its dual objective is the self
   term OT_eps(a, a) of a Sinkhorn divergence. Collective. */
PETSC_EXTERN PetscErrorCode OTSolveSymmetric(MPI_Comm comm, PetscInt n, PetscInt d, const PetscReal X[], const PetscReal a[], const char cost[],
                                             const char source[], PetscReal eps, OTResult *result);
/* The K x K matrix of transport costs among the measures listed in the text file `list` (one HDF5 file
   per line, each with points /X and optional weights /a), pairs spread over groups of ranks; written to
   `output` (HDF5: README, -pairs). One eps for all pairs: -ot_eps, else -ot_eps_rel R (0.01) x the largest
   max C over all pairs (each pair's own with -pairs_eps_per_pair). divergence: also the K self terms
   OT_eps(a_k, a_k), once per measure, and the K x K Sinkhorn divergences. unconverged counts the solves (pairs
   and self terms) that did not converge. Reads the solver options for every solve. Collective. */
PETSC_EXTERN PetscErrorCode OTSolvePairs(MPI_Comm comm, const char list[], const char output[], const char cost[], PetscBool divergence, PetscInt *unconverged);
/* Prints the final `key = value` lines on rank 0. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverPrintSummary(OTSolver solver);
/* Prints the solver's configuration. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverView(OTSolver solver, PetscViewer viewer);
PETSC_EXTERN PetscErrorCode OTSolverDestroy(OTSolver *solver);

/* Atomic files (docs/design.md §3): FILE is written under the temporary name FILE.tmp.<pid of rank 0 of comm>
   (OTFileTemporaryName), then OTFileCommit has rank 0 of comm sync it to disk, rename it over FILE and sync the
   directory, so that a reader, or a crash at any moment, sees the old file or the new one, whole. A file that
   one rank writes alone passes PETSC_COMM_SELF on that rank, or a communicator whose rank 0 writes it; a file
   written with MPI-IO, its communicator. Both are collective on comm. */
PETSC_EXTERN PetscErrorCode OTFileTemporaryName(MPI_Comm comm, const char filename[], char tmpname[], size_t len);
/* Scalar attributes of an HDF5 object: one, or count of them named by the words of names (separated by spaces),
   as h5py reads them (strings: variable-length UTF-8). Not collective (in a file opened with MPI-IO: every rank
   writes the same attributes). */
PETSC_EXTERN PetscErrorCode OTH5WriteAttrDouble(hid_t loc, const char name[], PetscReal value);
PETSC_EXTERN PetscErrorCode OTH5WriteAttrInt(hid_t loc, const char name[], PetscInt value);
PETSC_EXTERN PetscErrorCode OTH5WriteAttrString(hid_t loc, const char name[], const char value[]);
PETSC_EXTERN PetscErrorCode OTH5WriteAttrsReal(hid_t loc, const char names[], PetscInt count, const PetscReal values[]);
PETSC_EXTERN PetscErrorCode OTH5WriteAttrsInt(hid_t loc, const char names[], PetscInt count, const PetscInt values[]);
/* Writes the file named by its argument tmpname (a file that one rank writes alone, with its own calls). */
typedef PetscErrorCode (*OTFileWriteFn)(void *ctx, const char tmpname[]);
/* Writes filename atomically on rank 0 of comm: checks that the disk has room for bytes (plus 64 KiB), calls
   write(ctx, tmpname) on rank 0 alone, commits the temporary (OTFileCommit). A storage failure (no space, quota, I/O
   error, permission) is an outcome, the same on every rank: written is false, reason says why, the temporary is
   gone. A writer's OT_ERR_INPUT is raised on every rank. Collective. */
PETSC_EXTERN PetscErrorCode OTFileWriteSerial(MPI_Comm comm, const char filename[], double bytes, OTFileWriteFn write, void *ctx, PetscBool *written,
                                              char reason[], size_t len);
/* Whether paths a and b name the same file: the same device and inode where both exist (through links and any
   spelling of the path), else the same resolved directory and name. Not collective. */
PETSC_EXTERN PetscErrorCode OTFileSame(const char a[], const char b[], PetscBool *same);
/* Fails (OT_ERR_INPUT, with both numbers) if the file system of path's directory has fewer than bytes free, as
   rank 0 sees it (statvfs). option names the path in the message. Collective. */
PETSC_EXTERN PetscErrorCode OTFileCheckSpace(MPI_Comm comm, const char path[], double bytes, const char option[]);
/* The shape of dataset name in an HDF5 file, read by rank 0 without reading the data (dims[1] = 1 for a vector;
   both 0 where the file or dataset cannot be read: the loader reports that). Collective. */
PETSC_EXTERN PetscErrorCode OTH5PeekDims(MPI_Comm comm, const char filename[], const char name[], double dims[2]);
/* Call with the file closed. failed (on any rank): the writing failed, and the temporary is only removed (the
   callers return their own errors). If the sync or the rename fails, the temporary is removed too, and every
   rank gets an error of class OT_ERR_WRITE naming the file. */
PETSC_EXTERN PetscErrorCode OTFileCommit(MPI_Comm comm, const char tmpname[], const char filename[], PetscBool failed);

#endif
