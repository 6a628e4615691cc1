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

typedef struct _p_OTProblem *OTProblem;
typedef struct _p_OTSolver  *OTSolver;

/* Exit status of the otsolve program (also in -help and the README): 0 converged; 1 bad input or
   options; 2 stopped at -ot_max_it before reaching -ot_tol; 3 internal or MPI failure (the job is
   aborted); 4 interrupted by SIGTERM or SIGUSR1 after writing the -ot_checkpoint file; 5 NaN or Inf
   in the iterates (numerical breakdown). Results are written for 2 and 5. */
#define OT_EXIT_NOT_CONVERGED 2
#define OT_EXIT_INTERNAL      3
#define OT_EXIT_INTERRUPTED   4
#define OT_EXIT_BREAKDOWN     5

/* Why a solve ended. */
typedef enum {
  OT_REASON_NONE,        /* not solved yet */
  OT_REASON_CONVERGED,   /* marginal error <= -ot_tol */
  OT_REASON_MAX_IT,      /* -ot_max_it iterations without converging */
  OT_REASON_BREAKDOWN,   /* NaN or Inf in the iterates */
  OT_REASON_INTERRUPTED  /* a signal asked to stop; the state is in the checkpoint file */
} OTStopReason;

/* What a finished solve reports (DESIGN.md §1, §3). Every rank holds the same values. */
typedef struct {
  PetscReal transport_cost;      /* <C,P> */
  PetscReal dual_objective;      /* D(f,g) = <a,f> + <b,g> - eps sum P */
  PetscReal entropic_cost;       /* <C,P> + eps sum P (log P - 1), the regularised primal value */
  PetscReal marginal_error;      /* |P1 - a|_1 + |P^T 1 - b|_1 */
  PetscReal lower_bound;         /* certified lower bound on the unregularised OT cost */
  PetscReal upper_bound;         /* certified upper bound on the unregularised OT cost */
  PetscReal eps;
  PetscInt  iterations_sinkhorn;
  PetscInt  iterations_newton;
  PetscBool converged;
  OTStopReason reason;
  PetscReal wasserstein;         /* for costs |x-y|^p (sqeuclidean: p = 2, euclidean: 1, pnorm:P): transport_cost^(1/p); else NaN */
  PetscReal wasserstein_lower, wasserstein_upper; /* the certified bounds, to the power 1/p */
  PetscReal sinkhorn_divergence; /* OT_eps(a,b) - OT_eps(a,a)/2 - OT_eps(b,b)/2 after OTSolverComputeDivergence, else NaN */
  PetscBool divergence_converged;
  PetscReal solve_time;          /* seconds in OTSolverSolve */
  PetscReal sinkhorn_time;       /* seconds in the Sinkhorn sweeps */
  char      status[256];
} OTResult;

/* The ground cost of a problem: a stored matrix /C, or computed from points as |x - y|^2 (sqeuclidean),
   |x - y| (euclidean) or |x - y|^P (pnorm:P). OTCostKinds[kind] is its name. */
typedef enum { OT_COST_DENSE, OT_COST_SQEUCLIDEAN, OT_COST_EUCLIDEAN, OT_COST_PNORM } OTCostKind;
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
/* Reads a problem file (DESIGN.md §3: dense /C, optional /a, /b); each rank reads only its rows
   with MPI-IO. Bad input is reported on every rank with a message naming the file and dataset.
   Collective. */
PETSC_EXTERN PetscErrorCode OTProblemLoad(OTProblem problem, const char filename[]);
/* Builds a point-cloud problem from arrays that every rank passes whole: points X (n x d, row-major) and
   Y (m x d), weights a (n) and b (m) or NULL for uniform, cost "sqeuclidean", "euclidean" or "pnorm:P";
   each rank keeps its rows of X. source names the problem in messages. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemSetPoints(OTProblem problem, PetscInt n, PetscInt m, PetscInt d, const PetscReal X[], const PetscReal Y[], const PetscReal a[],
                                               const PetscReal b[], const char cost[], const char source[]);
/* Builds the built-in example: two Gaussian mixtures in 2-D, n and m points, squared Euclidean
   cost; each rank computes only its own rows. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemSetExample(OTProblem problem, PetscInt n, PetscInt m, PetscInt seed);
/* Global sizes and this rank's rows [row_start, row_end). Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemGetSizes(OTProblem problem, PetscInt *n, PetscInt *m, PetscInt *row_start, PetscInt *row_end);
/* Largest cost entry over all ranks. Not collective (computed at load). */
PETSC_EXTERN PetscErrorCode OTProblemGetCostMax(OTProblem problem, PetscReal *cost_max);
PETSC_EXTERN PetscErrorCode OTProblemDestroy(OTProblem *problem);

/* Creates a solver on comm. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverCreate(MPI_Comm comm, OTSolver *solver);
/* Attaches the problem (the solver takes a reference). Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetProblem(OTSolver solver, OTProblem problem);
/* Reads the -ot_ options (-help lists them): -ot_eps, -ot_tol, -ot_max_it, -ot_method, -ot_monitor [k],
   -ot_view, -ot_checkpoint, -ot_checkpoint_interval, -ot_restart, the SNS options. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetFromOptions(OTSolver solver);
/* Allocates the potentials and work space. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetUp(OTSolver solver);
/* Runs log-domain Sinkhorn until the marginal error is at most -ot_tol or -ot_max_it sweeps,
   then evaluates the result and the certified bounds. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSolve(OTSolver solver);
/* Copies the result of the last solve. Not collective. */
PETSC_EXTERN PetscErrorCode OTSolverGetResult(OTSolver solver, OTResult *result);
/* Writes the result file (DESIGN.md §3) to a temporary name, then renames it. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverWriteResult(OTSolver solver, const char filename[]);
/* Writes the solver's state (potentials, counters, stage, history) to an HDF5 checkpoint file,
   atomically: a temporary file renamed over the previous checkpoint. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverWriteCheckpoint(OTSolver solver, const char filename[]);
/* Makes the next OTSolverSolve resume from a checkpoint file written by OTSolverWriteCheckpoint, on
   any number of ranks; the problem and eps must be those of the checkpoint. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSetRestart(OTSolver solver, const char filename[]);
/* After OTSolverSolve on a point-cloud problem: solves the two symmetric problems (X, X) and (Y, Y) at the
   same eps and sets the result's sinkhorn_divergence. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverComputeDivergence(OTSolver solver);
/* The K x K matrix of transport costs among the measures listed in the text file `list` (one HDF5 file
   per line, each with points /X and optional weights /a), pairs spread over groups of ranks; written to
   `output` (HDF5); unconverged counts the pairs that did not converge. Reads the solver options for
   every pair. Collective. */
PETSC_EXTERN PetscErrorCode OTSolvePairs(MPI_Comm comm, const char list[], const char output[], const char cost[], PetscInt *unconverged);
/* Prints the final `key = value` lines on rank 0. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverPrintSummary(OTSolver solver);
/* Prints the solver's configuration. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverView(OTSolver solver, PetscViewer viewer);
PETSC_EXTERN PetscErrorCode OTSolverDestroy(OTSolver *solver);

#endif
