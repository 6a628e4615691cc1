/* Private definitions of otsolve: object bodies and rank-local kernels shared by src/ and tests/. */
#ifndef OTIMPL_H
#define OTIMPL_H

#include <otsolve.h>
#include <hdf5.h>
#include <petscksp.h>
#include <math.h>

/* Turns a negative HDF5 status into a PETSc error on PETSC_COMM_SELF. */
#define OTH5Call(expr) \
  do { \
    if ((expr) < 0) SETERRQ(PETSC_COMM_SELF, PETSC_ERR_LIB, "HDF5 call failed: %s", #expr); \
  } while (0)

struct _p_OTProblem {
  MPI_Comm    comm;
  PetscMPIInt rank, size;
  PetscInt    refct;
  PetscInt    n, m;               /* global sizes */
  PetscInt    row_start, row_end; /* owned rows [row_start, row_end) */
  PetscInt    n_local;
  PetscReal  *cost; /* dense: n_local x m, row-major; NULL for point clouds */
  OTCostKind  cost_kind;
  PetscReal   cost_power;    /* pnorm:P: P (cost |x - y|^P) */
  char        cost_name[64]; /* point clouds: the cost as written (sqeuclidean, euclidean, pnorm:P) */
  PetscInt    dim;           /* point clouds: d */
  PetscReal  *x;             /* point clouds: the owned points of X, n_local x d, row-major */
  PetscReal  *y_t;           /* point clouds: all points of Y, transposed: d x m */
  PetscReal  *cost_row;      /* point clouds: m, a row of costs for stages that need the costs themselves */
  PetscReal  *a;             /* n_local: weights of the owned rows */
  PetscReal  *b;             /* m: all column weights, on every rank */
  PetscReal   cost_max;
  PetscReal   mass;      /* sum of a (= sum of b) */
  PetscReal   mass_tol;  /* -ot_mass_tol: accepted relative mismatch of sum(a) and sum(b) */
  PetscBool   normalize; /* -ot_normalize: rescale both measures to mass 1 */
  PetscReal   rho_a, rho_b; /* -ot_unbalanced_a, _b: the KL penalties of the marginals (unbalanced transport); infinite: hard constraints */
  PetscBool   symmetric; /* the problem (X, X) with a = b (OTSolveSymmetric): the optimum has f = g (symmetric.c) */
  char        source[PETSC_MAX_PATH_LEN];
  char        weight_names[2][320]; /* a and b in messages: /a, /b, or FILE:/path where given elsewhere */
};

/* Whether a marginal is relaxed (unbalanced transport, a finite KL penalty rho) rather than a hard constraint. */
static inline PetscBool OTRelaxed(PetscReal rho)
{
  return (PetscBool)(rho < PETSC_INFINITY);
}

/* Whether a problem is unbalanced: a marginal relaxed (-ot_unbalanced). */
#define OTProblemIsUnbalanced(pb) (OTRelaxed((pb)->rho_a) || OTRelaxed((pb)->rho_b))

/* The dual's term of one marginal with weights w and potential f: <w, f> for a hard constraint, and for a relaxed one
   (KL penalty rho) -rho <w, exp(-f/rho) - 1>, the Legendre transform of rho KL(. | w) at -f. */
static inline PetscReal OTMarginalDualTerm(PetscReal rho, PetscReal w, PetscReal f)
{
  return OTRelaxed(rho) ? -rho * w * expm1(-f / rho) : w * f;
}

/* The factor of the damped Sinkhorn update of a potential (Chizat et al. 2018): rho / (rho + eps) for a relaxed marginal,
   1 for a hard one. */
static inline PetscReal OTDamping(PetscReal rho, PetscReal eps)
{
  return OTRelaxed(rho) ? rho / (rho + eps) : 1.0;
}

/* The marginal that a potential f asks for at the optimum: w for a hard constraint, w exp(-f/rho) for a relaxed one. */
static inline PetscReal OTMarginalTarget(PetscReal rho, PetscReal w, PetscReal f)
{
  return OTRelaxed(rho) ? w * PetscExpReal(-f / rho) : w;
}

/* One term of the generalised KL divergence KL(x | y) = sum x log(x / y) - x + y. */
static inline PetscReal OTKLTerm(PetscReal x, PetscReal y)
{
  return (x > 0 ? x * PetscLogReal(x / y) : 0.0) - x + y;
}

/* eps times the curvature that a relaxed marginal adds to the negated dual's Hessian at potential f (0 for a hard side):
   the second derivative of rho <w, exp(-f/rho) - 1> is w exp(-f/rho) / rho. */
static inline PetscReal OTMarginalCurvature(PetscReal rho, PetscReal w, PetscReal f, PetscReal eps)
{
  return OTRelaxed(rho) ? eps * w * PetscExpReal(-f / rho) / rho : 0.0;
}

#include "kernel.h" /* the row-kernel layer: how the entries of rows of C and P are obtained */

typedef enum {
  OT_STAGE_SINKHORN = 0,
  OT_STAGE_NEWTON   = 1
} OTStage;

/* Room after the m column sums for the scalars a sweep reduces with them (<a,f>, counters). */
#define OT_COLUMN_EXTRA 8

/* How Sinkhorn sweeps are computed: always in the log domain, or on a stored absorbed kernel (see sinkhorn.c). */
typedef enum {
  OT_SINKHORN_AUTO,
  OT_SINKHORN_LOG,
  OT_SINKHORN_ABSORB,
  OT_SINKHORN_TRUNCATED
} OTSinkhornVariant;

/* Whether the truncated kernel keeps its values (-ot_truncation_values): stored (8 bytes an entry), computed from the
   points or rows of C by each pass that reads them (about 2 bytes an entry: their positions only), or stored where they
   fit in their share of the node's memory (auto, OTNodeMemoryShare). The values are the same to the last bit either way. */
typedef enum {
  OT_TRUNCATION_VALUES_AUTO,
  OT_TRUNCATION_VALUES_STORED,
  OT_TRUNCATION_VALUES_COMPUTED
} OTTruncationValues;

/* The precision of the stored absorbed kernel: double, or float sweeps finished by double ones (see sinkhorn.c). */
typedef enum {
  OT_KERNEL_DOUBLE,
  OT_KERNEL_SINGLE
} OTKernelPrecision;

typedef struct {
  int       stage;
  PetscInt  iteration;
  PetscReal time;
  PetscReal marginal_error;
  PetscReal dual_objective;
  PetscReal eps; /* the eps of this iteration (an eps schedule changes it) */
} OTHistoryRow;

/* Most eps values in an eps schedule (-ot_eps_schedule), the target eps included. */
#define OT_MAX_EPS_STAGES 64
/* The share of a node's memory (less what the problem holds) that each optional large array may take, shared among the
   node's ranks: the stored kernel that -ot_sinkhorn_variant auto picks or a truncated kernel's stored values, and a
   Newton step's matrix (-ot_newton_memory 0). Together they stay within half of it, so that the default method's
   memory is bounded on any input. */
#define OT_MEMORY_SHARE 0.25

typedef enum {
  OT_METHOD_SNS,
  OT_METHOD_SINKHORN
} OTMethod;

/* How the Newton matrix is assembled (see newton_assembly.c). */
typedef enum {
  OT_NEWTON_ASSEMBLY_SPLIT,
  OT_NEWTON_ASSEMBLY_SETVALUES
} OTNewtonAssembly;

/* The name tables of these enums, for options and files (register.c). */
PETSC_EXTERN const char *const OTSinkhornVariants[], *const OTTruncationValuesNames[], *const OTKernelPrecisions[], *const OTMethods[], *const OTNewtonAssemblies[];

typedef struct _OTTruncated OTTruncated; /* the truncated kernel of -ot_sinkhorn_variant truncated (truncated.h) */
typedef struct _OTNewton OTNewton; /* the Newton stage: its options, layout, vectors and KSP (newton.h) */

/* Why a Newton step was declined after its survey (sns.c says so and hands the stage to Sinkhorn). */
typedef enum {
  OT_DECLINED_NO,     /* not declined */
  OT_DECLINED_WORK,   /* more kept entries than the solver's newton_kept_cap: more work than Sinkhorn needs */
  OT_DECLINED_MEMORY, /* the kept entries would not fit in the Newton memory budget (-ot_newton_memory) */
  OT_DECLINED_DENSE   /* the entries that fit leave out most of P's mass: P is not sparse at this eps */
} OTDeclined;

/* What one Newton step did, for the monitor and the history. */
typedef struct {
  PetscReal          marginal_error, dual;             /* at the start of the step */
  PetscReal          marginal_error_after, dual_after; /* after it (if accepted) */
  PetscReal          dropped_after;                    /* truncated kernel: a bound on what its dropped entries add to the error after it */
  PetscReal          slope;                            /* directional derivative of D along the step */
  PetscReal          step;                             /* accepted step length, 0 if none */
  int64_t            kept;                             /* entries of P kept in the sparsified Hessian */
  PetscReal          dual_scale;                       /* |<a,f>| + |<b,g>| + eps sum P: the size of D's rounding errors, relative */
  PetscReal          dropped_mass;                     /* fraction of P's mass left out of it (estimated from the histogram) */
  PetscInt           ksp_iterations;
  PetscInt           trials; /* points the line search evaluated */
  KSPConvergedReason ksp_reason;
  PetscBool          accepted;
  OTDeclined         declined; /* no assembly, no step, and why */
} OTNewtonInfo;

struct _p_OTSolver {
  MPI_Comm    comm;
  PetscMPIInt rank, size;
  OTProblem   problem;

  /* options */
  PetscReal eps;            /* <= 0 until set: then eps_rel * max C */
  PetscReal eps_rel;        /* -ot_eps_rel: eps relative to max C where no eps is given (0.01) */
  PetscBool eps_given;      /* -ot_eps, -ot_eps_rel or OTSolverSetEps: a restart must agree with it */
  PetscBool schedule_given; /* -ot_eps_schedule or OTSolverSetEpsSchedule: a restart must agree with it */
  PetscReal tol;
  PetscInt  max_it;
  PetscInt  monitor_every;   /* 0: no monitor */
  PetscReal monitor_seconds; /* without monitor_every: a progress line this often */
  PetscReal last_monitor;
  OTMethod  method;
  PetscBool method_given; /* -ot_method was given (not the default) */
  PetscInt  warmup_max;        /* SNS: most Sinkhorn sweeps before the first Newton step */
  PetscReal newton_switch;     /* SNS: leave the warm-up when the marginal error is below this fraction of the mass */
  PetscBool newton_switch_given; /* -ot_newton_switch was given */
  PetscInt  fallback_sweeps;   /* SNS: Sinkhorn sweeps after a failed Newton step */
  PetscBool newton_time_check; /* SNS: weigh Newton against Sinkhorn in counted work (sns.c) */
  PetscReal newton_slow;       /* a Newton step reducing the error by less than this factor is slow */
  PetscBool view;
  char      checkpoint_file[PETSC_MAX_PATH_LEN]; /* "" : no checkpoints, signals keep their default action */
  PetscReal checkpoint_interval;                 /* seconds between periodic checkpoints; <= 0: only on a signal */
  char      restart_file[PETSC_MAX_PATH_LEN];    /* "" : start from f = g = 0 */
  char      eps_schedule_spec[256];              /* -ot_eps_schedule as given: "" (none), "E0:F" or "E1,E2,..." */
  PetscReal eps_stage_tol;                       /* intermediate eps stages stop at marginal error <= this times the mass */
  PetscReal plan_threshold;                      /* < 0: no /plan in the result; else keep P_ij >= plan_threshold * max P */

  /* state */
  PetscBool         setup;
  PetscReal        *f;        /* n_local */
  PetscReal        *g;        /* m */
  PetscReal        *row_plan; /* m: one row of P, work space */
  PetscReal        *col_sum;  /* m + OT_COLUMN_EXTRA: column sums of P and a few scalars, reduced together */
  OTSinkhornVariant variant;
  OTKernelPrecision kernel_precision;
  OTKernelStore     store;             /* the stored absorbed kernel (kernel.h), if any */
  PetscBool         single_phase_over; /* the single-precision sweeps have handed over to double ones */
  PetscReal        *u;                 /* n_local: scalings of the owned rows on the stored kernel */
  PetscReal        *v;                 /* m */
  PetscReal         truncation;        /* -ot_truncation tau: the truncated kernel drops entries below tau mass / (n m) */
  OTTruncationValues truncation_values; /* -ot_truncation_values */
  double             memory_share;      /* bytes per rank for each optional large array (OTNodeMemoryShare); < 0 until set up */
  OTTruncated      *trunc;
  PetscBool         overrelax;         /* -ot_sinkhorn_overrelax: the truncated variant's sweeps over-relax (truncated.c) */
  PetscBool         multiscale;
  PetscInt          multiscale_cells;  /* -ot_multiscale_cells: the coarsest level has at most this many cells a side */        /* -ot_multiscale: the truncated variant runs early eps stages on coarsened point clouds */
  PetscInt          absorptions;
  OTNewton         *newton;

  PetscInt rescued_rows, rescued_columns; /* underflow rescues (rows: this rank's) */

  /* the eps schedule: eps_schedule[0 .. eps_stages), decreasing, the last one the target eps */
  PetscReal eps_schedule[OT_MAX_EPS_STAGES];
  PetscInt  eps_stages, eps_stage;

  /* SNS progress, kept in checkpoints so that a restart continues where the run stopped */
  PetscInt  sns_phase;          /* 0: Sinkhorn warm-up, 1: Newton steps (with fallback sweeps), 2: Sinkhorn finish */
  PetscInt  sns_boosts;         /* times the density was raised */
  PetscInt  sns_returns;        /* times Sinkhorn handed the stage back to Newton (sns.c) */
  PetscReal newton_rate;        /* the last accepted Newton step's log error reduction per unit of counted work (sns.c) */
  PetscReal newton_work;        /* the last Newton step's counted work */
  PetscInt  newton_ksp;         /* the last Newton step's KSP iterations */
  int64_t   newton_kept_cap;    /* a Newton step keeping more entries is declined before its assembly (sns.c); <= 0: none */
  PetscInt  close_after;        /* SNS's warm-up leaves for Newton at the first iteration >= this that is close enough */
  PetscInt  sns_chunk_end;      /* the sweep count at which SNS's current run of Sinkhorn sweeps ends (0: none under way) */
  PetscInt  sns_losing;         /* Newton steps in a row that lost against Sinkhorn's rate (sns.c) */
  PetscInt  sns_slow;           /* slow Newton steps in a row (sns.c) */
  PetscInt  sns_linear;         /* Newton steps in a row on the truncated kernel that converged only linearly (sns.c) */
  PetscInt  sns_tightened;      /* times the mass Newton's kept entries may leave out was divided by 100 at this eps */
  PetscBool g_update_pending;   /* a run of sweeps left before its last g-update: col_sum holds the column sums it needs */
  PetscReal g_update_eps;       /* at this eps */
  PetscReal sinkhorn_run_start; /* MPI_Wtime() when the current run of sweeps began, 0 outside one */
  PetscReal last_checkpoint;    /* MPI_Wtime() of the last checkpoint (or of the start) */
  PetscInt  checkpoints_written;

  OTHistoryRow *history;
  PetscInt      history_len, history_cap;

  OTResult  result;
  PetscReal solve_start;
};

/* Log stages and events (registered by OTInitializePackage). */
PETSC_EXTERN PetscLogStage OT_STAGE_LOAD, OT_STAGE_SINKHORN_LOG, OT_STAGE_FINISH, OT_STAGE_WRITE;
PETSC_EXTERN PetscLogStage OT_STAGE_NEWTON_LOG;
PETSC_EXTERN PetscLogEvent OT_EVENT_READ_COST, OT_EVENT_SWEEP, OT_EVENT_TRUNCATE, OT_EVENT_COLUMN_REDUCE, OT_EVENT_EVALUATE, OT_EVENT_BOUNDS, OT_EVENT_WRITE, OT_EVENT_SPARSIFY,
  OT_EVENT_ASSEMBLE, OT_EVENT_KSP, OT_EVENT_LINE_SEARCH;

/* --- row split (problem_io.c) --- */
/* PETSc's default split of n rows over size ranks: rank r gets n/size rows, plus one if r < n % size. */
PETSC_EXTERN PetscErrorCode OTRowSplit(PetscInt n, PetscMPIInt size, PetscMPIInt rank, PetscInt *row_start, PetscInt *row_end);
/* Allocates the owned blocks, fixes the split; used by the loaders. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemAllocate(OTProblem problem, PetscInt n, PetscInt m);
/* Checks the weights and costs of a filled problem (positivity, finiteness, masses) collectively, and
   computes cost_max and mass. Collective. */
PETSC_EXTERN PetscErrorCode OTProblemFinalize(OTProblem problem, const char what[]);
/* Sizes, row split and the point-cloud arrays of a problem (owned rows of X, all of Y transposed, a cost row, the
   weights), allocated anew. Not collective. */
PETSC_INTERN PetscErrorCode OTProblemAllocatePoints(OTProblem problem, PetscInt n, PetscInt m, PetscInt d);
/* The smallest of the ranks' local_first (a global index, -1 for none) over comm, or -1 if none. Collective. */
PETSC_INTERN PetscErrorCode OTFirstBadIndex(MPI_Comm comm, int64_t local_first, int64_t *first);
/* The bytes that all ranks on this rank's node hold together when each holds local_bytes, the memory this node has
   available, and how many ranks share it. Collective. */
PETSC_EXTERN PetscErrorCode OTNodeMemory(MPI_Comm comm, double local_bytes, double *node_bytes, double *available, PetscMPIInt *node_ranks);
/* OT_MEMORY_SHARE of what the node gives the job (its physical memory, or its memory cgroup's limit where lower) less
   what the problem holds on it, shared among its ranks, the smallest over all nodes: the bytes per rank that each of
   the stored kernel (-ot_sinkhorn_variant auto), the stored values of a truncated kernel and a Newton step may take.
   Not the memory free at the time, so that a run takes the same path whatever else the node holds. Collective. */
PETSC_EXTERN PetscErrorCode OTNodeMemoryShare(OTProblem problem, double *bytes);
/* Bytes this rank holds for the problem (costs or points, weights, work row). Not collective. */
PETSC_EXTERN PetscErrorCode OTProblemMemoryBytes(OTProblem problem, double *bytes);

/* --- log-sum-exp (lse.c) --- */
/* A log-sum-exp accumulated in two parts: value = max + log(sum); an empty one has max = -inf, sum = 0. */
typedef struct {
  PetscReal max;
  PetscReal sum;
} OTLogSum;
PETSC_EXTERN void      OTLogSumMerge(OTLogSum *into, const OTLogSum *from);
PETSC_EXTERN PetscReal OTLogSumValue(const OTLogSum *s);
/* An MPI reduction (MPI_Op) and datatype for OTLogSum, created on first use, freed at PetscFinalize. */
PETSC_EXTERN PetscErrorCode OTLogSumGetMPI(MPI_Datatype *type, MPI_Op *op);

/* --- kernels (kernels.h, inline) and Sinkhorn (sinkhorn.c) --- */
PETSC_EXTERN void OTAdviseHugePages(void *start, size_t bytes);
/* Runs at most max_sweeps Sinkhorn iterations from the solver's current (f, g), numbering them after
   first_iteration; stops early when the marginal error is at most the solver's tol or, with stop_when_close,
   at most newton_switch times the mass. Collective. */
PETSC_EXTERN PetscErrorCode OTSinkhornRun(OTSolver solver, PetscInt max_sweeps, PetscInt first_iteration, PetscBool stop_when_close, PetscInt *sweeps,
                                          PetscBool *converged);

/* After a sweep: the history row and monitor line of the state, and whether the run ends here (converged, close
   enough for Newton with stop_when_close, or NaN/Inf, which also sets the result's reason). Not collective. */
PETSC_EXTERN PetscErrorCode OTSinkhornVerdict(OTSolver s, PetscInt iteration, PetscReal marginal_error, PetscReal dual, PetscBool stop_when_close,
                                              PetscBool *converged, PetscBool *leave);
/* Decides -ot_sinkhorn_variant auto (at set-up, so that the SNS decisions that weigh the variant's work are the same
   after a restart): the kernel is used if it fits in the rank's share of the node's memory (OTNodeMemoryShare, a
   quarter). Collective. */
PETSC_EXTERN PetscErrorCode OTSinkhornChooseVariant(OTSolver solver);
/* The stored kernel (sinkhorn_store.c): allocated where the variant asks for one (use_kernel; single: the float kernel
   is in use), the same branches on every rank (a rank without rows has a NULL kernel). Collective. */
PETSC_EXTERN PetscErrorCode OTSinkhornSetUpKernel(OTSolver solver, PetscBool *use_kernel, PetscBool *single);
/* Whether a run can resume on the stored double kernel: built at this eps, scalings u, v of the state all in range
   (then set). Collective. */
PETSC_EXTERN PetscErrorCode OTSinkhornResumeAbsorbed(OTSolver solver, PetscBool use_kernel, PetscBool single, PetscBool *absorbed);
/* Frees the float kernel and allocates the double one, which the next log-domain pass builds. Not collective. */
PETSC_EXTERN PetscErrorCode OTSinkhornHandOverToDouble(OTSolver solver, PetscInt iteration, PetscReal marginal_error);
/* OTSinkhornRun on the truncated kernel (truncated.c). Collective. */
PETSC_EXTERN PetscErrorCode OTTruncatedRun(OTSolver solver, PetscInt max_sweeps, PetscInt first_iteration, PetscBool stop_when_close, PetscInt *sweeps,
                                           PetscBool *converged);
PETSC_EXTERN PetscErrorCode OTTruncatedCreate(OTSolver solver);
PETSC_EXTERN PetscErrorCode OTTruncatedDestroy(OTTruncated **trunc);
/* Builds the truncated kernel at the solver's (f, g) and eps with the floor given (log K_ij >= log_floor kept), for
   tests of the pruning. Collective. */
/* The evaluation and the certified bounds of a truncated solve over the kept entries, the dropped ones accounted for
   (truncated_finish.c). Collective. */
PETSC_EXTERN PetscErrorCode OTTruncatedEvaluate(OTSolver solver, OTResult *result);
PETSC_EXTERN PetscErrorCode OTTruncatedBounds(OTSolver solver, PetscReal *lower, PetscReal *upper);
PETSC_EXTERN PetscErrorCode OTTruncatedBuildAt(OTSolver solver, PetscReal log_floor);
/* Runs the eps stages that coarsened measures serve (multiscale.c), leaving (f, g) and eps_stage for the points' first
   stage; nothing unless the truncated variant solves a point-cloud problem from its first stage. Collective. */
PETSC_EXTERN PetscErrorCode OTMultiscaleRun(OTSolver solver);
/* OTSinkhornRun for a symmetric problem: the averaged iteration on the one potential (symmetric.c). Collective. */
PETSC_EXTERN PetscErrorCode OTSymmetricRun(OTSolver solver, PetscInt max_sweeps, PetscInt first_iteration, PetscBool stop_when_close, PetscInt *sweeps,
                                           PetscBool *converged);
/* --- the stages' options: each reads its own (-help lists them by stage). Collective. --- */
PETSC_EXTERN PetscErrorCode OTSinkhornSetFromOptions(OTSolver solver);   /* sinkhorn.c */
PETSC_EXTERN PetscErrorCode OTSNSSetFromOptions(OTSolver solver);        /* sns.c */
PETSC_EXTERN PetscErrorCode OTNewtonSetFromOptions(OTSolver solver);     /* newton_step.c */
PETSC_EXTERN PetscErrorCode OTCheckpointSetFromOptions(OTSolver solver); /* checkpoint.c */

/* --- SNS policy and eps-scaling (sns.c) --- */
/* Builds the eps schedule from -ot_eps_schedule and the target eps. Collective (same on every rank). */
PETSC_EXTERN PetscErrorCode OTSolverBuildEpsSchedule(OTSolver solver);
/* Resets the SNS path's state (phase, density raises, returns, runs of sweeps, step counts, Newton's rate) for a new
   eps stage. Not collective. */
PETSC_EXTERN void OTSNSResetStage(OTSolver solver);
/* Carries the potentials to the next eps stage: f_i += (eps_new - eps) log a_i, g_j += (eps_new - eps) log b_j, and
   s->eps = eps_new. P = exp((f + g - C)/eps) absorbs the weights: f = phi + eps log a, where phi is the part that
   carries across stages (the potentials of GeomLoss's convention). Left as they were, a stage's first kernel at the
   smaller eps sees every entry of P too small by (a_i b_j)^(eps/eps_new - 1): e^-92 on 10^5 points at a factor 5,
   so that a truncated kernel keeps almost nothing. Rank-local. */
PETSC_EXTERN void OTSolverCarryPotentials(OTSolver s, PetscReal eps_new);
/* Runs the eps stages above the target, each to -ot_eps_stage_tol; stops in a stage that did not converge. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverRunEpsStages(OTSolver solver, PetscBool *converged);
/* Runs the method (SNS or Sinkhorn) at the current eps to -ot_tol or -ot_max_it. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverRunStage(OTSolver solver, PetscBool *converged);

/* --- history and monitors (monitor.c) --- */
PETSC_EXTERN PetscErrorCode OTSolverHistoryAppend(OTSolver solver, OTStage stage, PetscInt iteration, PetscReal marginal_error, PetscReal dual_objective);
/* Prints a progress line every -ot_monitor k iterations, and always when last is true. */
PETSC_EXTERN PetscErrorCode OTSolverMonitor(OTSolver solver, OTStage stage, PetscInt iteration, PetscReal marginal_error, PetscReal dual_objective,
                                            PetscBool last);
/* With -ot_monitor: the estimated bytes of the largest rank. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverMonitorMemory(OTSolver solver);

/* --- Newton stage (newton_step.c; private parts in newton.h) --- */
/* The Newton stage with its default options. Not collective. */
PETSC_EXTERN PetscErrorCode OTNewtonCreate(OTNewton **newton);
/* Estimated bytes of the Newton stage on this rank, and at most where P is not sparse. Not collective. */
PETSC_EXTERN PetscErrorCode OTNewtonMemoryEstimate(OTSolver solver, double *bytes, double *most_bytes);
/* Creates the Newton system's layout, vectors, null space and KSP (prefix -ot_newton_). Collective. */
PETSC_EXTERN PetscErrorCode OTNewtonSetUp(OTSolver solver);
PETSC_EXTERN PetscErrorCode OTNewtonDestroy(OTNewton **newton);
/* The SNS direction at the solver's (f, g), left in the Newton work space (df, dg); fills the "before"
   fields of info. Collective. */
PETSC_EXTERN PetscErrorCode OTNewtonDirection(OTSolver solver, OTNewtonInfo *info);
/* Direction, then backtracking line search on D; updates (f, g) if a step is accepted. Collective. */
PETSC_EXTERN PetscErrorCode OTNewtonStep(OTSolver solver, OTNewtonInfo *info);
/* Shows the Newton KSP's configuration. Collective. */
PETSC_EXTERN PetscErrorCode OTNewtonView(OTSolver solver, PetscViewer viewer);
/* The last direction (df: n_local entries, dg: m entries). */
PETSC_EXTERN PetscErrorCode OTNewtonGetDirection(OTSolver solver, const PetscReal **df, const PetscReal **dg);
/* --- checkpoints and signals (checkpoint.c) --- */
/* Safe points: where the state (f, g) alone describes the run, between two Sinkhorn sweeps or Newton steps.
   A rank fills its requests (a SIGTERM/SIGUSR1 arrived here; the checkpoint interval has passed on rank 0's
   clock) into flags[0..1], the caller sums them across ranks (riding on a reduction it makes anyway),
   and OTSolverSafePoint acts on the sums on every rank alike: writes a checkpoint if any is set and says
   whether to stop (a signal). Counts are the iterations done so far. */
#define OT_SAFE_POINT_FLAGS 2
PETSC_EXTERN void           OTSolverSafePointRequests(OTSolver s, PetscReal flags[OT_SAFE_POINT_FLAGS]);
PETSC_EXTERN PetscErrorCode OTSolverSafePoint(OTSolver s, const PetscReal flags[OT_SAFE_POINT_FLAGS], PetscInt iterations_sinkhorn, PetscInt iterations_newton,
                                              PetscBool *stop);
/* The same, with its own reduction (for the Newton loop, one per step). Collective. */
PETSC_EXTERN PetscErrorCode OTSolverSafePointReduce(OTSolver s, PetscInt iterations_sinkhorn, PetscInt iterations_newton, PetscBool *stop);
/* Catches SIGTERM and SIGUSR1 from the start of a solve with -ot_checkpoint (handlers set a flag) until
   OTSolverDestroy, which restores the previous handlers. Not collective. */
PETSC_EXTERN PetscErrorCode OTSignalsCatch(void);
PETSC_EXTERN PetscErrorCode OTSignalsRelease(void);
/* Reads the checkpoint named by -ot_restart into the solver's state. Collective. */
PETSC_EXTERN PetscErrorCode OTSolverLoadCheckpoint(OTSolver s, const char filename[]);

/* --- HDF5 helpers (h5io.c): attributes, partial reads and writes, checked opening, atomic files --- */
/* Selects entries [start, start + count) of a 1-D file space (none if count = 0) and creates the matching memory space. */
PETSC_EXTERN PetscErrorCode OTH5SelectPart(hid_t file_space, PetscInt start, PetscInt count, hid_t *mem_space);
/* Writes entries [start, start + count) of a 1-D dataset of the given type and length len. Collective. */
PETSC_EXTERN PetscErrorCode OTH5WriteArrayPart(hid_t file, const char name[], hid_t type, PetscInt len, PetscInt start, PetscInt count, const void *values,
                                               hid_t xfer);
/* The same for float64. Collective. */
PETSC_EXTERN PetscErrorCode OTH5WriteVectorPart(hid_t file, const char name[], PetscInt len, PetscInt start, PetscInt count, const PetscReal *values,
                                                hid_t xfer);
/* Rank 0 checks that filename is readable (status[0]) and HDF5 (status[1]), every rank learns it, and if
   both hold the file is opened read-only with MPI-IO (file < 0 if HDF5 fails). A file whose root group (the list
   of its datasets) HDF5 cannot read is refused as damaged (OT_ERR_INPUT on every rank). HDF5's own error printing
   is switched off. Collective. */
PETSC_EXTERN PetscErrorCode OTH5OpenRead(MPI_Comm comm, const char filename[], int status[2], hid_t *file);
/* Opens dataset name, checking that it exists, is floating point, has rank_expected dimensions and no filter that
   every read needs and this HDF5 lacks (h5py's lzf, blosc, ... without their plugins: the message says how to
   rewrite the file); returns the dimensions in dims (dims[1] = 1 for a vector). Every rank sees the same metadata,
   and the ranks agree on the verdict, so every rank raises the same OT_ERR_INPUT error, naming filename; metadata
   HDF5 cannot read is reported as a damaged file. Collective. */
PETSC_EXTERN PetscErrorCode OTH5OpenFloatDataset(MPI_Comm comm, hid_t file, const char filename[], const char name[], int rank_expected, hid_t *dset,
                                                 hsize_t dims[2]);
/* The same, accepting integer datasets too where integers is true (weights: counts, such as an AnnData /obs column;
   H5Dread converts them to doubles). Collective. */
PETSC_EXTERN PetscErrorCode OTH5OpenNumberDataset(MPI_Comm comm, hid_t file, const char filename[], const char name[], int rank_expected, PetscBool integers,
                                                  hid_t *dset, hsize_t dims[2]);
/* H5Dread(dset, mem_type, mem_space, file_space, xfer, values) for dataset name of filename, then an agreement:
   if it failed on any rank of comm, every rank raises the same OT_ERR_INPUT error, naming file and dataset, for a
   filter this HDF5 lacks (with how to rewrite the file) or else for a damaged (truncated or corrupted) file.
   Collective on comm (PETSC_COMM_SELF for a rank's own serial read). */
PETSC_EXTERN PetscErrorCode OTH5Read(MPI_Comm comm, hid_t dset, const char filename[], const char name[], hid_t mem_type, hid_t mem_space, hid_t file_space,
                                     hid_t xfer, void *values);
/* Reads rows [row_start, row_end) of the 2-D float dataset `name` (global shape n x m) into block
   (row-major, doubles), in chunks of independent MPI-IO reads, the ranks agreeing after each (OTH5Read): a chunk that
   fails on any rank stops every rank. Collective on comm. */
PETSC_EXTERN PetscErrorCode OTReadRowBlock(MPI_Comm comm, hid_t file, const char filename[], const char name[], PetscInt n, PetscInt m, PetscInt row_start,
                                           PetscInt row_end, PetscReal *block);
/* After a collective write step on file (files.c): its failure on any rank (step_failed, with errno error) becomes
   an OT_ERR_WRITE error on every rank of the file's communicator, with the reason. Collective. */
PETSC_EXTERN PetscErrorCode OTH5AgreeOnFileStep(hid_t file, PetscBool step_failed, int error, const char what[]);
/* Writes the contents of a file created by OTH5WriteAtomic, with the collective transfer list xfer. */
typedef PetscErrorCode (*OTH5WriteFn)(void *ctx, hid_t file, hid_t xfer);
/* Writes filename atomically with MPI-IO on comm: checks that the disk has room for bytes of data (plus HDF5's
   metadata) where the file system can tell, creates FILE.tmp.<pid of rank 0>, calls write(ctx, file, xfer), closes it and commits it with OTFileCommit (synced, renamed over filename). A storage failure (no space,
   quota, I/O error, permission) on any rank is agreed on every rank after each collective step (no rank is left
   in a collective call): the temporary is removed, *written is false on every rank and reason says what failed
   and why. A writer's OT_ERR_INPUT is raised on every rank after the temporary is gone; another error on some
   rank only is raised there (the program then ends the job). Collective. */
PETSC_EXTERN PetscErrorCode OTH5WriteAtomicTry(MPI_Comm comm, const char filename[], double bytes, OTH5WriteFn write, void *ctx, PetscBool *written,
                                               char reason[], size_t len);
/* The same, a storage failure raised as OT_ERR_WRITE on every rank. Collective. */
PETSC_EXTERN PetscErrorCode OTH5WriteAtomic(MPI_Comm comm, const char filename[], double bytes, OTH5WriteFn write, void *ctx);

/* --- the result file (result_io.c) and its /plan (plan.c) --- */
/* The compound type of /history rows as stored in files. */
typedef struct {
  int       stage;
  long long iteration;
  double    time, marginal_error, dual_objective, eps;
} OTHistoryFileRow;
PETSC_EXTERN PetscErrorCode OTH5HistoryType(hid_t *type);
/* Writes the solver's state, /f (each rank its rows), /g and /history (rank 0), into a result or checkpoint file. Collective. */
PETSC_EXTERN PetscErrorCode OTH5WriteState(OTSolver s, hid_t file, hid_t xfer);
/* The bytes of the solver's state in a file: /f, /g and /history (without HDF5's metadata). Not collective. */
PETSC_EXTERN double OTStateBytes(OTSolver s);
/* The entries of P that /plan keeps (>= -ot_plan_threshold x max P, decided in the log domain): counted once, before
   the file is written, so that its size is known for the room probe. */
typedef struct {
  PetscReal max_exponent, cut; /* max_ij (f_i + g_j - C_ij), and the cut max + eps log threshold */
  int64_t   nnz_local, nnz_total;
  double    bytes;  /* of /plan's three datasets */
  PetscBool kernel; /* the entries come from the truncated kernel, which holds every one of them (plan.c) */
} OTPlanCount;
/* Counts them. Collective. */
PETSC_EXTERN PetscErrorCode OTPlanCountEntries(OTSolver s, OTPlanCount *count);
/* Writes /plan (CSR: indptr, indices, data) with the counted entries (plan.c). Collective. */
PETSC_EXTERN PetscErrorCode OTWritePlan(OTSolver s, const OTPlanCount *count, hid_t file, hid_t xfer);

/* --- evaluation (evaluate.c) and bounds (bounds.c) --- */
/* What the reduced column sums of P say about a state, with the reduced <a,f> and row error sum_i |(P1)_i - a_i|. */
typedef struct {
  PetscReal marginal_error; /* row error + sum_j |(P^T 1)_j - b_j| */
  PetscReal dual;           /* D = <a,f> + <b,g> - eps sum P */
  PetscReal dual_scale;     /* |<a,f>| + |<b,g>| + eps sum P: the size of D's rounding errors, relative */
  PetscReal plan_mass;      /* sum P */
  PetscReal g_colmass;      /* sum_j g_j (P^T 1)_j */
} OTMarginals;
PETSC_EXTERN void OTMarginalsFromColumns(OTProblem problem, PetscReal eps, const PetscReal col_sum[], const PetscReal g[], PetscReal a_f, PetscReal row_error,
                                         OTMarginals *marginals);
/* Fills transport_cost, dual_objective, entropic_cost and marginal_error of result from (f, g). Collective. */
PETSC_EXTERN PetscErrorCode OTEvaluate(OTProblem problem, PetscReal eps, const PetscReal f[], const PetscReal g[], OTResult *result);
/* Certified bounds on the unregularised OT cost from (f, g): lower from the c-transform of f,
   upper from the Altschuler-Weed-Rigollet rounding of P. Collective. */
PETSC_EXTERN PetscErrorCode OTComputeBounds(OTProblem problem, PetscReal eps, const PetscReal f[], const PetscReal g[], PetscReal *lower, PetscReal *upper);

#endif
