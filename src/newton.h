/*
  The Newton stage of SNS (docs/design.md §1, §2), private to its three files, one per step of the method:
    newton_sparsify.c  the survey of P, the histogram threshold and the kept entries (Ps),
    newton_assembly.c  the matrix [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] as one MATMPIAIJ,
    newton_step.c      the stage's options and life cycle, the direction (KSP) and the line search;
  and newton_truncated.c, the passes of steps 1-3 and of the line search over the truncated kernel.
  A new Newton option is a field here and its default and PetscOptions call in newton_step.c.
*/
#ifndef OTNEWTON_H
#define OTNEWTON_H

#include "otimpl.h"

#define OT_HIST_SHIFT 48 /* bits dropped from a positive double: bins of 1/16 octave */
#define OT_HIST_BINS  (1 << (64 - OT_HIST_SHIFT - 1))

/* The histogram bin of a positive entry of P: the top bits of its bit pattern (exponent and four mantissa bits). */
static inline int64_t OTHistBin(double p)
{
  union
  {
    double   d;
    uint64_t u;
  } bits;

  bits.d = p;
  return (int64_t)(bits.u >> OT_HIST_SHIFT);
}

struct _OTNewton {
  /* options (OTNewtonSetFromOptions) */
  PetscReal        density;    /* kept entries of P per unit of n + m (-ot_newton_density) */
  PetscReal        drop;       /* more are kept while the kept ones carry less than 1 - drop of P's mass */
  PetscReal        shift;      /* Levenberg-Marquardt shift, relative to the diagonal, times the relative marginal error */
  OTNewtonAssembly assembly;   /* CSR blocks handed to PETSc (split) or MatSetValues and PETSc's assembly */
  PetscBool        rtol_given; /* -ot_newton_ksp_rtol was given: no forcing term */
  PetscReal        memory;     /* -ot_newton_memory: MB per rank for the kept entries and the Newton matrix (0: auto) */
  double           budget;     /* the same in bytes, resolved (OTNewtonSetUp) */

  /* layout, vectors and solver (OTNewtonSetUp) */
  PetscBool    setup;
  PetscInt     g_start, g_end; /* g entries whose rows this rank owns in the Newton system */
  PetscInt     vec_start;      /* first global index of this rank's part of the Vec */
  PetscInt    *g_index;        /* m: global Vec index of g_j */
  PetscMPIInt *g_owner;        /* m: rank that owns g_j's row */
  Vec          x, rhs, g_all;
  VecScatter   g_scatter;
  MatNullSpace null_space;
  KSP          ksp;

  /* the survey at the current point */
  int64_t   *hist;    /* OT_HIST_BINS */
  PetscReal *col_max; /* m pairs (value, row) for MPI_MAXLOC, stored as a double-int struct */
  PetscReal *df, *dg, *g_trial, *row_sum, *col_sum, *col_max_value;
  PetscReal *u, *v;       /* n_local, m: scalings of the stored kernel at the current or trial point */
  PetscInt  *row_argmax;  /* n_local: column of each owned row's largest entry */
  PetscReal *col_max_row; /* m: row of each column's largest entry (a double: the survey's blend then vectorises) */

  /* work arrays kept from one Newton step to the next (grown, never shrunk): fresh allocations of megabytes
     cost a page fault every 4 kB at every step */
  PetscInt  *kept_col; /* the kept entries of the owned rows, CSR with kept_ptr */
  PetscReal *kept_val;
  PetscInt   kept_cap;
  void      *work[8]; /* the assembly's buffers (newton_assembly.c) */
  size_t     work_cap[8];

  /* on the truncated kernel (newton_truncated.c): m each, kernel order, and the kernel column of each column */
  PetscReal *t_col_sum, *t_col_max, *t_col_row;
  PetscInt  *t_column_of;
};

/* Bytes a kept entry of P costs at the peak of a Newton step: kept_col/kept_val, the entry and its transpose in the
   assembled MATMPIAIJ (value and column index each) and the assembly's CSR buffers (measured: see
   OTNewtonMemoryEstimate). */
#define OT_NEWTON_ENTRY_BYTES 96.0

/* On the truncated kernel, Newton steps whose kept entries leave out -ot_newton_drop of P's mass can converge only
   linearly: two full steps in a row that each reduce the marginal error by less than OT_NEWTON_LINEAR, where the mass
   rule (not the memory budget) set their threshold and the budget has room for twice their entries, divide the mass the
   next steps may leave out by 1 / OT_NEWTON_TIGHTEN, at most OT_NEWTON_TIGHTENINGS times an eps stage (sns.c).
   20k x 20k clustered /C, eps = 1e-4 max C: the last stage's steps reduced the error by 0.37-0.52 each (16 steps) at
   1e-4; the whole solve took 75.9 s with -ot_newton_drop 1e-6 and 73.6 s with 1e-8 against 106.9 s. */
#define OT_NEWTON_LINEAR      0.25
#define OT_NEWTON_TIGHTEN     0.01
#define OT_NEWTON_TIGHTENINGS 2

/* The kept entries of the owned rows as CSR: row i's are kept_col/kept_val[row_ptr[i] .. row_ptr[i + 1]); col_local[j]
   counts those of column j on this rank, col_total[j] on all ranks. */
typedef struct {
  PetscInt *row_ptr, *col_local, *col_total;
} OTKept;

/* The CSR blocks behind a matrix made by the split assembly: they must outlive it. */
typedef struct {
  PetscInt  *di, *dj, *oi, *oj;
  PetscReal *da, *oa;
} OTSplitArrays;

/* u_i = exp((f_i + alpha df_i - f_ref_i)/eps) (df NULL: no step) and v_j = exp((g_j - g_ref_j)/eps), and whether the
   stored kernel can serve Newton's passes at that point (P = diag(u) K diag(v)). Rank-local. */
PETSC_INTERN PetscBool OTNewtonKernelScalings(OTSolver s, const PetscReal *f, const PetscReal *df, PetscReal alpha, const PetscReal *g, PetscReal *u,
                                              PetscReal *v);
/* Steps 1-3 of a Newton step: survey of P at (f, g) (gradient, marginal error, D into info), the global threshold,
   the kept entries. Collective. */
PETSC_INTERN PetscErrorCode OTNewtonSparsify(OTSolver s, OTNewtonInfo *info, OTKept *kept);
PETSC_INTERN PetscErrorCode OTNewtonKeptFree(OTKept *kept);
/* Room for count more kept entries after the first used ones (kept_col, kept_val). Not collective. */
PETSC_INTERN PetscErrorCode OTNewtonKeptReserve(OTNewton *nt, PetscInt used, PetscInt count);
/* The share of P's mass a Newton step's dropped entries may carry: -ot_newton_drop, divided by 100 each time SNS
   tightened it at this eps (s->sns_tightened, sns.c; newton_sparsify.c). Not collective. */
PETSC_INTERN PetscReal OTNewtonDrop(OTSolver s);
/* The bytes of a Newton step's fixed work arrays (O(n_local + m)) on this rank (newton_sparsify.c). */
PETSC_INTERN double OTNewtonFixedBytes(OTSolver s);

/* Newton's passes over the truncated kernel (newton_truncated.c), used where the solver's variant is truncated. */
PETSC_INTERN PetscBool OTNewtonOnTruncated(OTSolver s);
/* Rebuilds the kernel at (f, g) where it was built at another eps or its dropped entries could now matter. Collective. */
PETSC_INTERN PetscErrorCode OTNewtonTruncatedPrepare(OTSolver s);
/* The survey's pass (as SurveyRows in newton_sparsify.c) over the kept entries; the bound on the dropped entries of P
   at (f, g) into dropped_now. Collective (one reduction of a scalar). */
PETSC_INTERN PetscErrorCode OTNewtonTruncatedSurvey(OTSolver s, PetscInt sample_stride, PetscReal *dropped_now);
/* The room each owned row's kept entries of Ps may take at threshold (with its largest and the column maxima that
   extra_ptr lists), as offsets start_of (n_local + 1). Not collective. */
PETSC_INTERN void OTNewtonTruncatedKeepRoom(OTSolver s, PetscReal threshold, const PetscInt *extra_ptr, PetscInt *start_of);
/* The kept entries of Ps (as KeepRows in newton_sparsify.c), into kept_col/kept_val reserved for start_of[n_local]
   entries. Not collective. */
PETSC_INTERN PetscErrorCode OTNewtonTruncatedKeep(OTSolver s, PetscReal threshold, const PetscInt *extra_ptr, const PetscInt *extra_col, const PetscInt *start_of,
                                                  PetscInt *row_ptr, PetscInt *col_local);
/* A line-search trial's pass (as TrialRows in newton_step.c), and the bound on the dropped entries of P there. Collective
   (one reduction of a scalar). */
PETSC_INTERN PetscErrorCode OTNewtonTruncatedTrial(OTSolver s, PetscReal alpha, PetscReal sums[3], PetscReal *dropped_now);
/* Step 4: the Newton matrix with a relative Levenberg-Marquardt shift, by -ot_newton_assembly. Collective. */
PETSC_INTERN PetscErrorCode OTNewtonAssemble(OTSolver s, const OTKept *kept, PetscReal shift, Mat *A, OTSplitArrays *split);
PETSC_INTERN PetscErrorCode OTSplitArraysFree(OTSplitArrays *split);

#endif
