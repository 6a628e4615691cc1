/*
  Stage 2: Sinkhorn-Newton-Sparse (Tang et al., ICLR 2024; DESIGN.md §1, §2).

  A Newton step on the concave dual D(f, g) = <a,f> + <b,g> - eps sum P solves
    [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] (df, dg) = eps (a - P1, b - P^T 1)
  where Ps keeps the largest entries of P: about -ot_newton_density x (n + m) of them, chosen by one
  global threshold, plus each row's and each column's largest entry. The threshold comes from a
  histogram of the entries' bit patterns (exponent and four mantissa bits: 16 bins per factor of 2)
  reduced with MPI_Allreduce, so no rank ever sorts or gathers entries.

  Layout: the unknown is one PETSc Vec of length n + m; rank r owns its f rows, then an even share of
  the g entries. The matrix is one MATMPIAIJ. Each rank forms its f rows of Ps; the transposed entries go to
  the ranks owning their g rows, either in one MPI_Alltoallv, after which every rank hands its CSR blocks to
  MatCreateMPIAIJWithSplitArrays (-ot_newton_assembly split, the default), or through MatSetValues and
  PETSc's assembly (setvalues: the same matrix, 35-50 ns an entry slower). P's entries come from the stored
  absorbed kernel when there is one (two multiplications each), else from exponentials. (1, -1) spans the null space of the unsparsified
  matrix and changes neither P nor D: it is removed from the right-hand side (MatNullSpaceRemove), so
  the system is consistent, and any (1, -1) part of the computed step is harmless. It is not attached with MatSetNullSpace: KSP then also projects
  the preconditioned residual, and with Jacobi that made CG report DIVERGED_INDEFINITE_PC on Fashion-MNIST.
  Instead a small Levenberg-Marquardt shift, proportional to the relative marginal error, keeps the
  sparsified matrix definite and vanishes as the iteration converges.

  The step length comes from a backtracking (Armijo) line search on D; each trial is one pass over the
  rows and one allreduce. A failed search is reported, and the driver falls back to Sinkhorn sweeps.
*/
#include "otimpl.h"
#include "kernels.h"
#include <petscksp.h>

#define OT_HIST_SHIFT 48                     /* bits dropped from a positive double: bins of 1/16 octave */
#define OT_HIST_BINS  (1 << (64 - OT_HIST_SHIFT - 1))
/* The mass rule may keep up to this many times -ot_newton_density x (n + m) entries. */
#define OT_NEWTON_DENSITY_STRETCH 16
/* Scalings of the stored kernel within this (or its inverse) serve Newton's passes (see KernelScalings). */
#define OT_NEWTON_SCALING_MAX 1e100

const char *const OTNewtonAssemblies[] = {"split", "setvalues", "OTNewtonAssembly", "OT_NEWTON_ASSEMBLY_", NULL};

struct _OTNewton {
  PetscInt     g_start, g_end;      /* g entries whose rows this rank owns in the Newton system */
  PetscInt     vec_start;           /* first global index of this rank's part of the Vec */
  PetscInt    *g_index;             /* m: global Vec index of g_j */
  PetscMPIInt *g_owner;             /* m: rank that owns g_j's row */
  Vec          x, rhs, g_all;
  VecScatter   g_scatter;
  MatNullSpace null_space;
  KSP          ksp;
  int64_t     *hist;                /* OT_HIST_BINS */
  PetscReal   *col_max;             /* m pairs (value, row) for MPI_MAXLOC, stored as a double-int struct */
  PetscReal   *df, *dg, *g_trial, *row_sum, *col_sum, *col_max_value;
  PetscReal   *u, *v;                             /* n_local, m: scalings of the stored kernel at the current or trial point */
  /* work arrays kept from one Newton step to the next (grown, never shrunk): fresh allocations of megabytes
     cost a page fault every 4 kB at every step */
  PetscInt    *kept_col;                          /* the kept entries of the owned rows (KeepRows) */
  PetscReal   *kept_val;
  PetscInt     kept_cap;
  void        *work[8];                           /* AssembleSplit's buffers, see WORK_* */
  size_t       work_cap[8];
  PetscInt    *row_argmax;                        /* n_local: column of each owned row's largest entry */
  PetscReal   *col_max_row;                       /* m: row of each column's largest entry (a double: the survey's blend
                                                     then vectorises, mixed widths did not) */
  PetscBool    rtol_given;                        /* -ot_newton_ksp_rtol was given: no forcing term */
};

typedef struct {
  double value;
  int    row;
} MaxLoc;

PetscErrorCode OTNewtonSetUp(OTSolver s)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt;
  PetscInt    *counts, *starts, *g_starts, local;
  PetscMPIInt  size = s->size;
  IS           is;
  Vec          null_vec;
  PetscScalar *nv;

  PetscFunctionBegin;
  if (s->newton) PetscFunctionReturn(0);
  PetscCall(PetscNew(&nt));
  PetscCall(OTRowSplit(pb->m, size, s->rank, &nt->g_start, &nt->g_end));
  local = pb->n_local + nt->g_end - nt->g_start;
  PetscCall(PetscMalloc3(size, &counts, size + 1, &starts, size + 1, &g_starts));
  PetscCallMPI(MPI_Allgather(&local, 1, MPIU_INT, counts, 1, MPIU_INT, s->comm));
  starts[0] = 0;
  for (PetscMPIInt r = 0; r < size; r++) starts[r + 1] = starts[r] + counts[r];
  nt->vec_start = starts[s->rank];
  PetscCall(PetscMalloc2(pb->m, &nt->g_index, pb->m, &nt->g_owner));
  for (PetscMPIInt r = 0; r < size; r++) {
    PetscInt rs, re, gs, ge;

    PetscCall(OTRowSplit(pb->n, size, r, &rs, &re));
    PetscCall(OTRowSplit(pb->m, size, r, &gs, &ge));
    for (PetscInt j = gs; j < ge; j++) {
      nt->g_index[j] = starts[r] + (re - rs) + (j - gs);
      nt->g_owner[j] = r;
    }
  }
  PetscCall(PetscFree3(counts, starts, g_starts));

  PetscCall(VecCreateMPI(s->comm, local, pb->n + pb->m, &nt->x));
  PetscCall(VecDuplicate(nt->x, &nt->rhs));
  PetscCall(VecCreateSeq(PETSC_COMM_SELF, pb->m, &nt->g_all));
  PetscCall(ISCreateGeneral(PETSC_COMM_SELF, pb->m, nt->g_index, PETSC_COPY_VALUES, &is));
  PetscCall(VecScatterCreate(nt->x, is, nt->g_all, NULL, &nt->g_scatter));
  PetscCall(ISDestroy(&is));

  /* null space: (1_n, -1_m) / sqrt(n + m) */
  PetscCall(VecDuplicate(nt->x, &null_vec));
  PetscCall(VecGetArray(null_vec, &nv));
  for (PetscInt k = 0; k < local; k++) nv[k] = (k < pb->n_local ? 1.0 : -1.0) / PetscSqrtReal((PetscReal)(pb->n + pb->m));
  PetscCall(VecRestoreArray(null_vec, &nv));
  PetscCall(MatNullSpaceCreate(s->comm, PETSC_FALSE, 1, &null_vec, &nt->null_space));
  PetscCall(VecDestroy(&null_vec));

  PetscCall(KSPCreate(s->comm, &nt->ksp));
  PetscCall(KSPSetOptionsPrefix(nt->ksp, "ot_newton_"));
  PetscCall(KSPSetType(nt->ksp, KSPCG));
  {
    PC pc;

    PetscCall(KSPGetPC(nt->ksp, &pc));
    PetscCall(PCSetType(pc, PCJACOBI));
  }
  PetscCall(KSPSetTolerances(nt->ksp, 1e-6, 1e-300, PETSC_DEFAULT, 1000));
  PetscCall(KSPSetFromOptions(nt->ksp));
  /* inexact Newton unless -ot_newton_ksp_rtol is given: see OTNewtonDirection */
  PetscCall(PetscOptionsHasName(NULL, "ot_newton_", "-ksp_rtol", &nt->rtol_given));

  PetscCall(PetscMalloc1(OT_HIST_BINS, &nt->hist));
  PetscCall(PetscMalloc1(2 * pb->m, &nt->col_max));
  PetscCall(PetscMalloc1(pb->n_local, &nt->row_argmax));
  PetscCall(PetscMalloc2(pb->m, &nt->col_max_value, pb->m, &nt->col_max_row));
  PetscCall(PetscMalloc5(pb->n_local, &nt->df, pb->m, &nt->dg, pb->m, &nt->g_trial, pb->n_local, &nt->row_sum, pb->m + 4, &nt->col_sum));
  PetscCall(PetscMalloc2(pb->n_local, &nt->u, pb->m, &nt->v));
  s->newton = nt;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonDestroy(OTNewton **newton)
{
  OTNewton *nt = *newton;

  PetscFunctionBegin;
  if (!nt) PetscFunctionReturn(0);
  PetscCall(PetscFree2(nt->g_index, nt->g_owner));
  PetscCall(VecDestroy(&nt->x));
  PetscCall(VecDestroy(&nt->rhs));
  PetscCall(VecDestroy(&nt->g_all));
  PetscCall(VecScatterDestroy(&nt->g_scatter));
  PetscCall(MatNullSpaceDestroy(&nt->null_space));
  PetscCall(KSPDestroy(&nt->ksp));
  PetscCall(PetscFree(nt->hist));
  PetscCall(PetscFree(nt->col_max));
  PetscCall(PetscFree(nt->row_argmax));
  PetscCall(PetscFree2(nt->col_max_value, nt->col_max_row));
  PetscCall(PetscFree5(nt->df, nt->dg, nt->g_trial, nt->row_sum, nt->col_sum));
  PetscCall(PetscFree2(nt->u, nt->v));
  PetscCall(PetscFree(nt->kept_col));
  PetscCall(PetscFree(nt->kept_val));
  for (int w = 0; w < 8; w++) PetscCall(PetscFree(nt->work[w]));
  PetscCall(PetscFree(*newton));
  PetscFunctionReturn(0);
}

/* The smallest value of histogram bin b. */
static inline double HistBinValue(int64_t b)
{
  union {
    double   d;
    uint64_t u;
  } bits;

  bits.u = (uint64_t)b << OT_HIST_SHIFT;
  return bits.d;
}

/* count entries of bin b: their mass, taken as count times the lower edge (bins of empty counts may stand for Inf or NaN) */
static inline double BinMass(int64_t count, int64_t b)
{
  return count > 0 ? (double)count * HistBinValue(b) : 0.0;
}

static inline int64_t HistBin(double p)
{
  union {
    double   d;
    uint64_t u;
  } bits;

  bits.d = p;
  return (int64_t)(bits.u >> OT_HIST_SHIFT);
}

/* u_i = exp((f_i + alpha df_i - f_ref_i)/eps) (df NULL: no step) and v_j = exp((g_j - g_ref_j)/eps): then P = diag(u) K diag(v) on
   the stored kernel, two multiplications per entry instead of an exponential. False where the kernel cannot
   serve: none on this rank, built for another eps, or a scaling outside [1/OT_NEWTON_SCALING_MAX,
   OT_NEWTON_SCALING_MAX] (within it the entries the kernel stores as 0, below exp(-708), stand for entries of P
   below 1e-108). Rank-local: each rank picks its own way, both give P to rounding. */
static PetscBool KernelScalings(OTSolver s, const PetscReal *f, const PetscReal *df, PetscReal alpha, const PetscReal *g, PetscReal *u, PetscReal *v)
{
  const PetscReal inv_eps = 1.0 / s->eps;
  PetscBool       in_range = PETSC_TRUE;

  if (!s->kernel || s->kernel_eps != s->eps) return PETSC_FALSE;
  for (PetscInt i = 0; i < s->problem->n_local; i++) {
    u[i]     = PetscExpReal(((df ? f[i] + alpha * df[i] : f[i]) - s->f_ref[i]) * inv_eps);
    in_range = (PetscBool)(in_range && u[i] >= 1.0 / OT_NEWTON_SCALING_MAX && u[i] <= OT_NEWTON_SCALING_MAX);
  }
  for (PetscInt j = 0; j < s->problem->m; j++) {
    v[j]     = PetscExpReal((g[j] - s->g_ref[j]) * inv_eps);
    in_range = (PetscBool)(in_range && v[j] >= 1.0 / OT_NEWTON_SCALING_MAX && v[j] <= OT_NEWTON_SCALING_MAX);
  }
  return in_range;
}

/* Row i of P, u_i K_i diag(v), into out; returns its sum. */
static inline PetscReal KernelRowPlan(PetscInt m, const PetscReal *restrict k_row, PetscReal u_i, const PetscReal *restrict v, PetscReal *restrict out)
{
  for (PetscInt j = 0; j < m; j++) out[j] = (u_i * k_row[j]) * v[j];
  return OTSum(m, out);
}

/* max_j x[j] (x >= 0, m >= 1), in eight interleaved partial maxima so that it vectorises (one running maximum is
   a chain of dependent comparisons: a third of the survey's time on Fashion-MNIST). */
static inline PetscReal RowMax(PetscInt m, const PetscReal *restrict x)
{
  PetscReal part[8] = {x[0], x[0], x[0], x[0], x[0], x[0], x[0], x[0]}, best = x[0];
  PetscInt  j       = 0;

  for (; j + 8 <= m; j += 8)
    for (int k = 0; k < 8; k++) part[k] = x[j + k] > part[k] ? x[j + k] : part[k];
  for (; j < m; j++) best = x[j] > best ? x[j] : best;
  for (int k = 0; k < 8; k++) best = part[k] > best ? part[k] : best;
  return best;
}

/* Pass over the rows at (f, g): row sums and each row's largest entry, column sums (into col_sum), each
   column's largest entry with its row (col_max_value, col_max_row), and the histogram of the entries of
   every sample_stride-th global row (the threshold needs a distribution, not every entry). P comes from the
   stored kernel when u and v are given; otherwise from exponentials, written into rebuild (the kernel,
   rebuilt at (f, g)) when given. */
OT_HOT_LOOP static void SurveyRows(OTProblem pb, PetscInt n_local, PetscInt m, PetscInt row_start, PetscReal eps, const PetscReal *f,
                                   const PetscReal *g, const PetscReal *kernel, const PetscReal *u, const PetscReal *v, PetscReal *rebuild,
                                   PetscInt sample_stride, PetscReal *row_plan, PetscReal *row_sum, PetscInt *row_argmax, PetscReal *col_sum, int64_t *hist,
                                   PetscReal *col_max_value, PetscReal *col_max_row)
{
  for (PetscInt j = 0; j < m; j++) {
    col_sum[j]       = 0.0;
    col_max_value[j] = -1.0;
    col_max_row[j]   = -1;
  }
  for (PetscInt b = 0; b < OT_HIST_BINS; b++) hist[b] = 0;
  for (PetscInt i = 0; i < n_local; i++) {
    PetscInt   row  = row_start + i;
    PetscReal *plan = rebuild ? rebuild + (size_t)i * (size_t)m : row_plan, row_max, row_value = (PetscReal)row;

    if (u) row_sum[i] = KernelRowPlan(m, kernel + (size_t)i * (size_t)m, u[i], v, plan);
    else row_sum[i] = OTProblemRowPlan(pb, i, f[i], g, 1.0 / eps, plan);
    OTAxpy(m, 1.0, plan, col_sum);
    for (PetscInt j = 0; j < m; j++) { /* branch-free, so that it vectorises */
      PetscBool larger = (PetscBool)(plan[j] > col_max_value[j]);

      col_max_value[j] = larger ? plan[j] : col_max_value[j];
      col_max_row[j]   = larger ? row_value : col_max_row[j];
    }
    row_max = RowMax(m, plan);
    for (row_argmax[i] = 0; plan[row_argmax[i]] != row_max; row_argmax[i]++) { }
    if (row % sample_stride == 0)
      for (PetscInt j = 0; j < m; j++) hist[HistBin(plan[j])]++;
  }
}

/* Sum of P at the trial potentials (f + alpha df, g + alpha dg), with its column sums and row error; on the stored
   kernel (u, v given) four rows at a time, as a Sinkhorn sweep. */
OT_HOT_LOOP static void TrialRows(OTProblem pb, PetscInt n_local, PetscInt m, const PetscReal *a, PetscReal eps, const PetscReal *f,
                                  const PetscReal *df, PetscReal alpha, const PetscReal *g_trial, const PetscReal *kernel, const PetscReal *u,
                                  const PetscReal *v, PetscReal *row_plan, PetscReal *col_sum, PetscReal sums[3])
{
  for (PetscInt j = 0; j < m; j++) col_sum[j] = 0.0;
  sums[0] = sums[1] = sums[2] = 0.0;
  for (PetscInt i = 0; i < n_local; i++) sums[0] += a[i] * (f[i] + alpha * df[i]);
  if (u) {
    for (PetscInt i = 0; i < n_local; i += 4) {
      PetscInt         rows = PetscMin(4, n_local - i);
      PetscReal        dots[4], scale[4] = {0, 0, 0, 0};
      const PetscReal *k[4];

      for (PetscInt r = 0; r < 4; r++) k[r] = kernel + (size_t)(i + PetscMin(r, rows - 1)) * (size_t)m; /* past the last row: repeat it, scale 0 */
      OTDot4(m, k[0], k[1], k[2], k[3], v, dots);
      for (PetscInt r = 0; r < rows; r++) {
        PetscReal row_sum = u[i + r] * dots[r];

        scale[r] = u[i + r];
        sums[1] += PetscAbsReal(row_sum - a[i + r]);
        sums[2] += row_sum;
      }
      OTAxpy4(m, scale, k[0], k[1], k[2], k[3], col_sum);
    }
    for (PetscInt j = 0; j < m; j++) col_sum[j] *= v[j];
    return;
  }
  for (PetscInt i = 0; i < n_local; i++) {
    PetscReal row_sum = OTProblemRowPlan(pb, i, f[i] + alpha * df[i], g_trial, 1.0 / eps, row_plan);

    OTAxpy(m, 1.0, row_plan, col_sum);
    sums[1] += PetscAbsReal(row_sum - a[i]);
    sums[2] += row_sum;
  }
}

/* D, marginal error and column sums at the trial point; collective. */
static PetscErrorCode EvaluateTrial(OTSolver s, PetscReal alpha, PetscReal *dual, PetscReal *marginal_error)
{
  OTProblem pb = s->problem;
  OTNewton *nt = s->newton;
  PetscInt  m  = pb->m;
  PetscReal bg = 0.0, col_error = 0.0;
  PetscBool use_kernel;

  PetscFunctionBegin;
  for (PetscInt j = 0; j < m; j++) {
    nt->g_trial[j] = s->g[j] + alpha * nt->dg[j];
    bg += pb->b[j] * nt->g_trial[j];
  }
  use_kernel = KernelScalings(s, s->f, nt->df, alpha, nt->g_trial, nt->u, nt->v);
  TrialRows(pb, pb->n_local, m, pb->a, s->eps, s->f, nt->df, alpha, nt->g_trial, s->kernel, use_kernel ? nt->u : NULL, nt->v, s->row_plan, nt->col_sum,
            nt->col_sum + m);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->col_sum, (PetscMPIInt)(m + 3), MPIU_REAL, MPIU_SUM, s->comm));
  for (PetscInt j = 0; j < m; j++) col_error += PetscAbsReal(nt->col_sum[j] - pb->b[j]);
  *dual           = nt->col_sum[m] + bg - s->eps * nt->col_sum[m + 2];
  *marginal_error = nt->col_sum[m + 1] + col_error;
  PetscFunctionReturn(0);
}

/* The kept entries of the owned rows, as CSR (row_ptr, kept_col, kept_val, grown as needed): those at or above
   threshold, each row's largest (row_argmax), and the columns' largest (extra_col of row i). On the stored
   kernel (u given) a row of P costs two multiplications per entry; otherwise the threshold test is on the
   exponent, computed for a whole row in one vectorised loop, and exponentials are taken only of the entries
   kept. Counts the kept entries of each column in col_local. */
OT_HOT_LOOP static PetscErrorCode KeepRows(OTSolver s, PetscReal threshold, const PetscReal *u, const PetscReal *v, const PetscInt *row_argmax,
                                           const PetscInt *extra_ptr, const PetscInt *extra_col, PetscInt *kept_cap, PetscInt **kept_col,
                                           PetscReal **kept_val, PetscInt *row_ptr, PetscInt *col_local)
{
  OTProblem  pb = s->problem;
  PetscInt   m = pb->m, kept = 0;
  PetscReal *row = s->row_plan, inv_eps = 1.0 / s->eps, bound = u ? threshold : (threshold > 0 ? PetscLogReal(threshold) : -INFINITY);

  PetscFunctionBegin;
  row_ptr[0] = 0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    const PetscInt start = kept;

    if (u) (void)KernelRowPlan(m, s->kernel + (size_t)i * (size_t)m, u[i], v, row); /* P_ij */
    else {
      const PetscReal *cost_row = OTProblemCostRow(pb, i, pb->cost_row);
      const PetscReal  f_i      = s->f[i];

      for (PetscInt j = 0; j < m; j++) row[j] = ((f_i + s->g[j]) - cost_row[j]) * inv_eps; /* log P_ij */
    }
    if (kept + m + 1 > *kept_cap) { /* room for a whole row */
      *kept_cap = PetscMax(2 * *kept_cap, kept + m + 1);
      PetscCall(PetscRealloc(sizeof(PetscInt) * (size_t)*kept_cap, kept_col));
      PetscCall(PetscRealloc(sizeof(PetscReal) * (size_t)*kept_cap, kept_val));
    }
    for (PetscInt j = 0; j < m; j++) { /* branch-free: which entries pass is unpredictable */
      (*kept_col)[kept] = j;
      kept += (row[j] >= bound);
    }
    if (!(row[row_argmax[i]] >= bound)) (*kept_col)[kept++] = row_argmax[i];
    for (PetscInt k = extra_ptr[i]; k < extra_ptr[i + 1]; k++) {
      PetscInt j = extra_col[k];

      if (!(row[j] >= bound) && j != row_argmax[i]) {
        if (kept == *kept_cap) {
          *kept_cap *= 2;
          PetscCall(PetscRealloc(sizeof(PetscInt) * (size_t)*kept_cap, kept_col));
          PetscCall(PetscRealloc(sizeof(PetscReal) * (size_t)*kept_cap, kept_val));
        }
        (*kept_col)[kept++] = j;
      }
    }
    for (PetscInt k = start; k < kept; k++) {
      (*kept_val)[k] = u ? row[(*kept_col)[k]] : OTExp(row[(*kept_col)[k]]);
      col_local[(*kept_col)[k]]++;
    }
    row_ptr[i + 1] = kept;
  }
  PetscFunctionReturn(0);
}

enum { WORK_SEND_INDEX, WORK_SEND_VALUE, WORK_RECV_INDEX, WORK_RECV_VALUE, WORK_DJ, WORK_DA, WORK_OJ, WORK_OA };

/* nt->work[w] with room for at least count elements of the given size (its contents are not kept) */
static PetscErrorCode Reserve(OTNewton *nt, int w, size_t count, size_t size)
{
  PetscFunctionBegin;
  count = PetscMax(count, 1);
  if (count <= nt->work_cap[w]) PetscFunctionReturn(0);
  PetscCall(PetscFree(nt->work[w]));
  nt->work_cap[w] = count + count / 2;
  PetscCall(PetscMalloc(nt->work_cap[w] * size, &nt->work[w]));
  PetscFunctionReturn(0);
}

/* The kept entries by column of Ps, in a counting sort (f rows ascend within each column): entry t of column j,
   col_ptr[j] <= t < col_ptr[j + 1], has the global Vec index of its f row in t_row[t * row_stride] and its value
   in t_val[t]. */
static void KeptByColumn(OTNewton *nt, PetscInt n_local, PetscInt m, const PetscInt *row_ptr, const PetscInt *kept_col, const PetscReal *kept_val,
                         const PetscInt *col_local, PetscInt *col_ptr, PetscInt *t_row, PetscInt row_stride, PetscReal *t_val)
{
  col_ptr[0] = 0;
  for (PetscInt j = 0; j < m; j++) col_ptr[j + 1] = col_ptr[j] + col_local[j];
  for (PetscInt i = 0; i < n_local; i++) {
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      PetscInt slot = col_ptr[kept_col[k]]++;

      t_row[slot * row_stride] = nt->vec_start + i;
      t_val[slot]              = kept_val[k];
    }
  }
  for (PetscInt j = m; j > 0; j--) col_ptr[j] = col_ptr[j - 1]; /* the sort advanced each start to the next's */
  col_ptr[0] = 0;
}

/* [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] through PETSc's own assembly (-ot_newton_assembly setvalues):
   preallocated from the counts, each rank inserts its f rows (diagonal and kept entries, one MatSetValues per
   row) and the transposes of its kept entries (one MatSetValues per column of Ps, gathered by a counting sort);
   MatAssemblyBegin/End carry those of g rows owned elsewhere to their owners. */
static PetscErrorCode AssembleSetValues(OTSolver s, const PetscInt *row_ptr, const PetscInt *kept_col, const PetscReal *kept_val, const PetscInt *col_local,
                                        const PetscInt *col_total, PetscReal shift, Mat *A)
{
  OTProblem  pb = s->problem;
  OTNewton  *nt = s->newton;
  PetscInt   m = pb->m, n_local = pb->n_local, g_local = nt->g_end - nt->g_start, kept = row_ptr[n_local], *d_nnz, *o_nnz, *cols, *col_ptr, *t_rows;
  PetscReal *vals, *t_vals;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(n_local + g_local, &d_nnz, n_local + g_local, &o_nnz));
  for (PetscInt i = 0; i < n_local; i++) {
    d_nnz[i] = 1;
    o_nnz[i] = 0;
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      if (nt->g_owner[kept_col[k]] == s->rank) d_nnz[i]++;
      else o_nnz[i]++;
    }
  }
  for (PetscInt j = nt->g_start; j < nt->g_end; j++) {
    d_nnz[n_local + j - nt->g_start] = 1 + col_local[j];
    o_nnz[n_local + j - nt->g_start] = col_total[j] - col_local[j];
  }
  PetscCall(MatCreateAIJ(s->comm, n_local + g_local, n_local + g_local, pb->n + pb->m, pb->n + pb->m, 0, d_nnz, 0, o_nnz, A));
  PetscCall(MatSetOption(*A, MAT_NEW_NONZERO_ALLOCATION_ERR, PETSC_FALSE));
  PetscCall(PetscMalloc2(m + 1, &cols, m + 1, &vals));
  PetscCall(PetscMalloc3(m + 1, &col_ptr, PetscMax(kept, 1), &t_rows, PetscMax(kept, 1), &t_vals));
  for (PetscInt i = 0; i < n_local; i++) {
    PetscInt row = nt->vec_start + i, count = 1;

    cols[0] = row;
    vals[0] = nt->row_sum[i] * (1.0 + shift);
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++, count++) {
      cols[count] = nt->g_index[kept_col[k]];
      vals[count] = kept_val[k];
    }
    PetscCall(MatSetValues(*A, 1, &row, count, cols, vals, INSERT_VALUES));
  }
  KeptByColumn(nt, n_local, m, row_ptr, kept_col, kept_val, col_local, col_ptr, t_rows, 1, t_vals);
  for (PetscInt j = 0; j < m; j++) {
    PetscInt row = nt->g_index[j];

    if (col_ptr[j + 1] > col_ptr[j]) PetscCall(MatSetValues(*A, 1, &row, col_ptr[j + 1] - col_ptr[j], t_rows + col_ptr[j], t_vals + col_ptr[j], INSERT_VALUES));
  }
  for (PetscInt j = nt->g_start; j < nt->g_end; j++) {
    PetscInt  row  = nt->g_index[j];
    PetscReal diag = nt->col_sum[j] * (1.0 + shift);

    PetscCall(MatSetValues(*A, 1, &row, 1, &row, &diag, INSERT_VALUES));
  }
  PetscCall(MatAssemblyBegin(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(MatAssemblyEnd(*A, MAT_FINAL_ASSEMBLY));
  PetscCall(PetscFree2(d_nnz, o_nnz));
  PetscCall(PetscFree2(cols, vals));
  PetscCall(PetscFree3(col_ptr, t_rows, t_vals));
  PetscFunctionReturn(0);
}

/* The CSR blocks behind a matrix made by AssembleSplit: they must outlive it. */
typedef struct {
  PetscInt  *di, *dj, *oi, *oj;
  PetscReal *da, *oa;
} SplitArrays;

static PetscErrorCode SplitArraysFree(SplitArrays *split)
{
  PetscFunctionBegin;
  PetscCall(PetscFree2(split->di, split->oi)); /* the others are Newton's work arrays */
  PetscFunctionReturn(0);
}

/* [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] from CSR blocks built here and handed to PETSc as they are
   (MatCreateMPIAIJWithSplitArrays; -ot_newton_assembly split, the default): no per-entry insertion, which costs
   35-50 ns an entry in PETSc 3.18's MatSetValues (7.5 ms for 156,000 entries) where building the blocks costs a
   few ns. The owned f rows come from the kept entries (sorted here: KeepRows appends the row and column maxima
   after the threshold's entries); the transposed entries travel to the ranks owning their g rows in one
   MPI_Alltoallv, grouped by g row and, within it, by source rank and f row, so every row arrives with its
   columns in order. The diagonal block takes the columns this rank owns (local numbering), the off-diagonal
   block the others (global numbering). */
static PetscErrorCode AssembleSplit(OTSolver s, const PetscInt *row_ptr, PetscInt *kept_col, PetscReal *kept_val, const PetscInt *col_local, PetscReal shift, Mat *A,
                                    SplitArrays *split)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt = s->newton;
  PetscInt     m = pb->m, n_local = pb->n_local, g_local = nt->g_end - nt->g_start, local = n_local + g_local, kept = row_ptr[n_local];
  PetscInt    *col_ptr, *send_index, *recv_index, *d_cursor, *o_cursor, received, d_total, o_total;
  PetscReal   *send_value, *recv_value;
  PetscMPIInt *counts, *displs, *index_counts, *index_displs, *recv_counts, *recv_displs, *recv_index_counts, *recv_index_displs, size = s->size;

  PetscFunctionBegin;
  for (PetscInt i = 0; i < n_local; i++) {
    PetscBool sorted;

    PetscCall(PetscSortedInt(row_ptr[i + 1] - row_ptr[i], kept_col + row_ptr[i], &sorted));
    if (!sorted) PetscCall(PetscSortIntWithScalarArray(row_ptr[i + 1] - row_ptr[i], kept_col + row_ptr[i], kept_val + row_ptr[i]));
  }
  /* the transposed entries, by g row (counting sort; f rows ascend within each), as (j, global f row) pairs */
  PetscCall(PetscMalloc1(m + 1, &col_ptr));
  PetscCall(Reserve(nt, WORK_SEND_INDEX, 2 * (size_t)kept, sizeof(PetscInt)));
  PetscCall(Reserve(nt, WORK_SEND_VALUE, (size_t)kept, sizeof(PetscReal)));
  send_index = (PetscInt *)nt->work[WORK_SEND_INDEX];
  send_value = (PetscReal *)nt->work[WORK_SEND_VALUE];
  KeptByColumn(nt, n_local, m, row_ptr, kept_col, kept_val, col_local, col_ptr, send_index + 1, 2, send_value);
  for (PetscInt j = 0; j < m; j++)
    for (PetscInt t = col_ptr[j]; t < col_ptr[j + 1]; t++) send_index[2 * t] = j;
  /* g rows are owned in contiguous ranges, rank by rank: the sorted list is already grouped by destination */
  PetscCall(PetscMalloc4(size, &counts, size, &displs, size, &index_counts, size, &index_displs));
  PetscCall(PetscMalloc4(size, &recv_counts, size, &recv_displs, size, &recv_index_counts, size, &recv_index_displs));
  for (PetscMPIInt q = 0; q < size; q++) {
    PetscInt gs, ge;

    PetscCall(OTRowSplit(m, size, q, &gs, &ge));
    PetscCall(PetscMPIIntCast(col_ptr[ge] - col_ptr[gs], &counts[q]));
  }
  PetscCall(PetscFree(col_ptr));
  PetscCallMPI(MPI_Alltoall(counts, 1, MPI_INT, recv_counts, 1, MPI_INT, s->comm));
  displs[0] = recv_displs[0] = 0;
  for (PetscMPIInt q = 0; q < size; q++) {
    if (q > 0) {
      displs[q]      = displs[q - 1] + counts[q - 1];
      recv_displs[q] = recv_displs[q - 1] + recv_counts[q - 1];
    }
    PetscCheck(displs[q] <= INT_MAX / 2 - counts[q] && recv_displs[q] <= INT_MAX / 2 - recv_counts[q], PETSC_COMM_SELF, PETSC_ERR_SUP,
               "more than 2^30 kept entries of P on one rank: use more ranks or a smaller -ot_newton_density");
    index_counts[q]      = 2 * counts[q];
    index_displs[q]      = 2 * displs[q];
    recv_index_counts[q] = 2 * recv_counts[q];
    recv_index_displs[q] = 2 * recv_displs[q];
  }
  received = size > 0 ? recv_displs[size - 1] + recv_counts[size - 1] : 0;
  if (size == 1) { /* nothing to send */
    recv_index = send_index;
    recv_value = send_value;
  } else {
    PetscCall(Reserve(nt, WORK_RECV_INDEX, 2 * (size_t)received, sizeof(PetscInt)));
    PetscCall(Reserve(nt, WORK_RECV_VALUE, (size_t)received, sizeof(PetscReal)));
    recv_index = (PetscInt *)nt->work[WORK_RECV_INDEX];
    recv_value = (PetscReal *)nt->work[WORK_RECV_VALUE];
    PetscCallMPI(MPI_Alltoallv(send_index, index_counts, index_displs, MPIU_INT, recv_index, recv_index_counts, recv_index_displs, MPIU_INT, s->comm));
    PetscCallMPI(MPI_Alltoallv(send_value, counts, displs, MPIU_REAL, recv_value, recv_counts, recv_displs, MPIU_REAL, s->comm));
  }

  /* row lengths: f rows: the diagonal and the kept entries (by the owner of their g column); g rows: the
     entries from this rank's f rows and the diagonal, and those from other ranks */
  PetscCall(PetscMalloc2(local, &d_cursor, local, &o_cursor));
  for (PetscInt i = 0; i < local; i++) d_cursor[i] = o_cursor[i] = 0;
  for (PetscInt i = 0; i < n_local; i++) {
    d_cursor[i] = 1;
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      if (nt->g_owner[kept_col[k]] == s->rank) d_cursor[i]++;
      else o_cursor[i]++;
    }
  }
  for (PetscInt r = n_local; r < local; r++) d_cursor[r] = 1;
  for (PetscMPIInt q = 0; q < size; q++)
    for (PetscInt e = recv_displs[q]; e < recv_displs[q] + recv_counts[q]; e++) {
      PetscInt r = n_local + recv_index[2 * e] - nt->g_start;

      if (q == s->rank) d_cursor[r]++;
      else o_cursor[r]++;
    }
  d_total = o_total = 0;
  for (PetscInt r = 0; r < local; r++) {
    d_total += d_cursor[r];
    o_total += o_cursor[r];
  }
  PetscCall(PetscMalloc2(local + 1, &split->di, local + 1, &split->oi));
  PetscCall(Reserve(nt, WORK_DJ, (size_t)d_total, sizeof(PetscInt)));
  PetscCall(Reserve(nt, WORK_DA, (size_t)d_total, sizeof(PetscReal)));
  PetscCall(Reserve(nt, WORK_OJ, (size_t)o_total, sizeof(PetscInt)));
  PetscCall(Reserve(nt, WORK_OA, (size_t)o_total, sizeof(PetscReal)));
  split->dj = (PetscInt *)nt->work[WORK_DJ];
  split->da = (PetscReal *)nt->work[WORK_DA];
  split->oj = (PetscInt *)nt->work[WORK_OJ];
  split->oa = (PetscReal *)nt->work[WORK_OA];
  split->di[0] = split->oi[0] = 0;
  for (PetscInt r = 0; r < local; r++) {
    split->di[r + 1] = split->di[r] + d_cursor[r];
    split->oi[r + 1] = split->oi[r] + o_cursor[r];
    d_cursor[r]      = split->di[r];
    o_cursor[r]      = split->oi[r];
  }
  /* f rows: the diagonal (local column i) first, then the kept entries in order of j */
  for (PetscInt i = 0; i < n_local; i++) {
    split->dj[d_cursor[i]]   = i;
    split->da[d_cursor[i]++] = nt->row_sum[i] * (1.0 + shift);
    for (PetscInt k = row_ptr[i]; k < row_ptr[i + 1]; k++) {
      PetscInt j = kept_col[k];

      if (nt->g_owner[j] == s->rank) {
        split->dj[d_cursor[i]]   = n_local + j - nt->g_start;
        split->da[d_cursor[i]++] = kept_val[k];
      } else {
        split->oj[o_cursor[i]]   = nt->g_index[j];
        split->oa[o_cursor[i]++] = kept_val[k];
      }
    }
  }
  /* g rows: sources in rank order, f rows ascending within each: this rank's own f rows (local columns below
     n_local), then the diagonal (local column n_local + j - g_start), and the other ranks' in the off-diagonal block */
  for (PetscMPIInt q = 0; q < size; q++)
    for (PetscInt e = recv_displs[q]; e < recv_displs[q] + recv_counts[q]; e++) {
      PetscInt r = n_local + recv_index[2 * e] - nt->g_start;

      if (q == s->rank) {
        split->dj[d_cursor[r]]   = recv_index[2 * e + 1] - nt->vec_start;
        split->da[d_cursor[r]++] = recv_value[e];
      } else {
        split->oj[o_cursor[r]]   = recv_index[2 * e + 1];
        split->oa[o_cursor[r]++] = recv_value[e];
      }
    }
  for (PetscInt r = n_local; r < local; r++) {
    split->dj[d_cursor[r]]   = r;
    split->da[d_cursor[r]++] = nt->col_sum[nt->g_start + r - n_local] * (1.0 + shift);
  }
  PetscCall(PetscFree2(d_cursor, o_cursor));
  PetscCall(PetscFree4(counts, displs, index_counts, index_displs));
  PetscCall(PetscFree4(recv_counts, recv_displs, recv_index_counts, recv_index_displs));
  PetscCall(MatCreateMPIAIJWithSplitArrays(s->comm, local, local, pb->n + pb->m, pb->n + pb->m, split->di, split->dj, split->da, split->oi, split->oj, split->oa, A));
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonDirection(OTSolver s, OTNewtonInfo *info)
{
  OTProblem    pb = s->problem;
  OTNewton    *nt;
  PetscInt     m = pb->m, n_local = pb->n_local, kept = 0, *kept_col, *row_ptr, *col_local, *col_total;
  PetscInt     sample_stride;
  PetscBool    use_kernel, rebuild;
  PetscReal   *kept_val, row_error = 0.0, col_error = 0.0, af = 0.0, bg = 0.0, mass = 0.0, shift;
  MaxLoc      *col_max;
  int64_t      target, cumulative = 0, threshold_bin = 0, total_kept;
  Mat          A;
  SplitArrays  split = {NULL, NULL, NULL, NULL, NULL, NULL};
  PetscScalar *rhs;
  const PetscScalar *x;

  PetscFunctionBegin;
  PetscCall(OTNewtonSetUp(s));
  nt      = s->newton;
  col_max = (MaxLoc *)nt->col_max;
  /* 1. survey: gradient, histogram, column maxima */
  PetscCall(PetscLogEventBegin(OT_EVENT_SPARSIFY, 0, 0, 0, 0));
  /* sample about 2^16 entries for the histogram (every row if there are fewer): the threshold needs the
     distribution's upper tail to a few per cent */
  sample_stride = PetscMax(1, (PetscInt)(((double)pb->n * (double)pb->m) / (double)(1 << 16)));
  use_kernel = KernelScalings(s, s->f, NULL, 0.0, s->g, nt->u, nt->v);
  rebuild    = !use_kernel && s->kernel; /* the (double) kernel, rebuilt at (f, g) by this pass */
  SurveyRows(pb, n_local, m, pb->row_start, s->eps, s->f, s->g, s->kernel, use_kernel ? nt->u : NULL, nt->v, rebuild ? s->kernel : NULL, sample_stride,
             s->row_plan, nt->row_sum, nt->row_argmax, nt->col_sum, nt->hist, nt->col_max_value, nt->col_max_row);
  if (rebuild) {
    PetscCall(PetscArraycpy(s->f_ref, s->f, n_local));
    PetscCall(PetscArraycpy(s->g_ref, s->g, m));
    s->kernel_eps = s->eps;
    use_kernel    = KernelScalings(s, s->f, NULL, 0.0, s->g, nt->u, nt->v); /* all 1 */
  }
  for (PetscInt j = 0; j < m; j++) {
    col_max[j].value = nt->col_max_value[j];
    col_max[j].row   = (int)nt->col_max_row[j];
  }
  for (PetscInt i = 0; i < n_local; i++) {
    row_error += PetscAbsReal(nt->row_sum[i] - pb->a[i]);
    af += pb->a[i] * s->f[i];
  }
  nt->col_sum[m]     = row_error;
  nt->col_sum[m + 1] = af;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->col_sum, (PetscMPIInt)(m + 2), MPIU_REAL, MPIU_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->hist, OT_HIST_BINS, MPI_INT64_T, MPI_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_max, (PetscMPIInt)m, MPI_DOUBLE_INT, MPI_MAXLOC, s->comm));
  for (PetscInt j = 0; j < m; j++) {
    col_error += PetscAbsReal(nt->col_sum[j] - pb->b[j]);
    bg += pb->b[j] * s->g[j];
    mass += nt->col_sum[j];
  }
  info->marginal_error = nt->col_sum[m] + col_error;
  info->dual           = nt->col_sum[m + 1] + bg - s->eps * mass;
  info->dual_scale     = PetscAbsReal(nt->col_sum[m + 1]) + PetscAbsReal(bg) + s->eps * mass;

  /* 2. the global threshold: the smallest bin from the top whose cumulative count reaches the target, scaled
     to the sampled rows */
  target = (int64_t)(s->newton_density * (pb->n + pb->m) * ((double)((pb->n + sample_stride - 1) / sample_stride) / pb->n));
  target = PetscMax(target, 1);
  {
    /* ... lowered while the entries above it carry less than 1 - newton_drop of the sampled mass, up to
       OT_NEWTON_DENSITY_STRETCH times as many entries: where P is not that sparse (an L1 cost, a larger eps),
       dropping much of its mass makes Newton converge only linearly. A bin's mass is taken as its count
       times its lower edge (within 4.4%). */
    PetscReal total_mass = 0.0, kept_mass = 0.0;

    for (int64_t b = 0; b < OT_HIST_BINS; b++) total_mass += BinMass(nt->hist[b], b);
    for (int64_t b = OT_HIST_BINS - 1; b >= 0; b--) {
      cumulative += nt->hist[b];
      kept_mass += BinMass(nt->hist[b], b);
      threshold_bin = b;
      if (cumulative >= target && (kept_mass >= (1.0 - s->newton_drop) * total_mass || cumulative >= OT_NEWTON_DENSITY_STRETCH * target)) break;
    }
    info->dropped_mass = total_mass > 0 ? 1.0 - kept_mass / total_mass : 0.0;
  }

  /* 3. kept entries of the owned rows: above the threshold, or the largest of their row or column */
  if (nt->kept_cap < PetscMax(16, 2 * (PetscInt)(target / s->size) + 2 * n_local)) {
    PetscCall(PetscFree(nt->kept_col));
    PetscCall(PetscFree(nt->kept_val));
    nt->kept_cap = PetscMax(16, 2 * (PetscInt)(target / s->size) + 2 * n_local);
    PetscCall(PetscMalloc1(nt->kept_cap, &nt->kept_col));
    PetscCall(PetscMalloc1(nt->kept_cap, &nt->kept_val));
  }
  PetscCall(PetscMalloc1(n_local + 1, &row_ptr));
  PetscCall(PetscCalloc2(m, &col_local, m, &col_total));
  {
    /* each column's largest entry, if it lies in an owned row, as a CSR list over the owned rows */
    PetscInt *extra_ptr, *extra_col;

    PetscCall(PetscCalloc2(n_local + 1, &extra_ptr, m, &extra_col));
    for (PetscInt j = 0; j < m; j++) {
      PetscInt i = (PetscInt)col_max[j].row - pb->row_start;

      if (i >= 0 && i < n_local) extra_ptr[i + 1]++;
    }
    for (PetscInt i = 0; i < n_local; i++) extra_ptr[i + 1] += extra_ptr[i];
    for (PetscInt j = 0; j < m; j++) {
      PetscInt i = (PetscInt)col_max[j].row - pb->row_start;

      if (i >= 0 && i < n_local) extra_col[extra_ptr[i]++] = j;
    }
    for (PetscInt i = n_local; i > 0; i--) extra_ptr[i] = extra_ptr[i - 1];
    extra_ptr[0] = 0;
    PetscCall(KeepRows(s, HistBinValue(threshold_bin), use_kernel ? nt->u : NULL, nt->v, nt->row_argmax, extra_ptr, extra_col, &nt->kept_cap, &nt->kept_col, &nt->kept_val,
                       row_ptr, col_local));
    kept     = row_ptr[n_local];
    kept_col = nt->kept_col;
    kept_val = nt->kept_val;
    PetscCall(PetscFree2(extra_ptr, extra_col));
  }
  total_kept = kept;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &total_kept, 1, MPI_INT64_T, MPI_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(col_local, col_total, (PetscMPIInt)m, MPIU_INT, MPI_SUM, s->comm));
  info->kept = total_kept;
  PetscCall(PetscLogEventEnd(OT_EVENT_SPARSIFY, 0, 0, 0, 0));

  /* 4. assemble [[diag(P1), Ps], [Ps^T, diag(P^T 1)]] with a relative Levenberg-Marquardt shift */
  PetscCall(PetscLogEventBegin(OT_EVENT_ASSEMBLE, 0, 0, 0, 0));
  shift = s->newton_shift * PetscMin(1.0, info->marginal_error / pb->mass);
  if (s->newton_assembly == OT_NEWTON_ASSEMBLY_SETVALUES) PetscCall(AssembleSetValues(s, row_ptr, kept_col, kept_val, col_local, col_total, shift, &A));
  else PetscCall(AssembleSplit(s, row_ptr, kept_col, kept_val, col_local, shift, &A, &split));
  PetscCall(MatSetOption(A, MAT_SYMMETRIC, PETSC_TRUE));
  PetscCall(PetscFree(row_ptr));
  PetscCall(PetscFree2(col_local, col_total));
  PetscCall(PetscLogEventEnd(OT_EVENT_ASSEMBLE, 0, 0, 0, 0));

  /* 5. solve for eps (a - P1, b - P^T 1) */
  PetscCall(PetscLogEventBegin(OT_EVENT_KSP, 0, 0, 0, 0));
  PetscCall(VecGetArray(nt->rhs, &rhs));
  for (PetscInt i = 0; i < n_local; i++) rhs[i] = s->eps * (pb->a[i] - nt->row_sum[i]);
  for (PetscInt j = nt->g_start; j < nt->g_end; j++) rhs[n_local + j - nt->g_start] = s->eps * (pb->b[j] - nt->col_sum[j]);
  PetscCall(VecRestoreArray(nt->rhs, &rhs));
  PetscCall(MatNullSpaceRemove(nt->null_space, nt->rhs));
  PetscCall(KSPSetOperators(nt->ksp, A, A));
  if (!nt->rtol_given) {
    /* inexact Newton (Eisenstat-Walker's choice 2 with exponent 2 would track the same): solve to the relative
       marginal error, between 1e-6 and 1e-1. Far from the solution a rough direction is as good as an exact one
       (the line search takes care of it) at a few CG iterations; close to it the direction stays accurate to the
       order of the error, so convergence stays quadratic. */
    PetscReal rtol = PetscMin(1e-1, PetscMax(1e-6, info->marginal_error / pb->mass));

    PetscCall(KSPSetTolerances(nt->ksp, rtol, PETSC_DEFAULT, PETSC_DEFAULT, PETSC_DEFAULT));
  }
  PetscCall(VecZeroEntries(nt->x));
  PetscCall(KSPSolve(nt->ksp, nt->rhs, nt->x));
  PetscCall(KSPGetIterationNumber(nt->ksp, &info->ksp_iterations));
  PetscCall(KSPGetConvergedReason(nt->ksp, &info->ksp_reason));
  PetscCall(MatDestroy(&A));
  PetscCall(SplitArraysFree(&split));
  PetscCall(VecGetArrayRead(nt->x, &x));
  for (PetscInt i = 0; i < n_local; i++) nt->df[i] = x[i];
  PetscCall(VecRestoreArrayRead(nt->x, &x));
  PetscCall(VecScatterBegin(nt->g_scatter, nt->x, nt->g_all, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecScatterEnd(nt->g_scatter, nt->x, nt->g_all, INSERT_VALUES, SCATTER_FORWARD));
  PetscCall(VecGetArrayRead(nt->g_all, &x));
  for (PetscInt j = 0; j < m; j++) nt->dg[j] = x[j];
  PetscCall(VecRestoreArrayRead(nt->g_all, &x));
  PetscCall(PetscLogEventEnd(OT_EVENT_KSP, 0, 0, 0, 0));

  /* directional derivative of D along the step: grad . (df, dg) */
  {
    PetscReal slope = 0.0;

    for (PetscInt i = 0; i < n_local; i++) slope += (pb->a[i] - nt->row_sum[i]) * nt->df[i];
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &slope, 1, MPIU_REAL, MPIU_SUM, s->comm));
    for (PetscInt j = 0; j < m; j++) slope += (pb->b[j] - nt->col_sum[j]) * nt->dg[j];
    info->slope = slope;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonStep(OTSolver s, OTNewtonInfo *info)
{
  OTNewton *nt;
  PetscReal alpha = 1.0, dual, marginal_error;

  PetscFunctionBegin;
  PetscCall(OTNewtonDirection(s, info));
  nt             = s->newton;
  info->accepted = PETSC_FALSE;
  info->step     = 0.0;
  if (info->marginal_error <= s->tol) { /* nothing to do */
    info->dual_after           = info->dual;
    info->marginal_error_after = info->marginal_error;
    PetscFunctionReturn(0);
  }
  if (!(info->slope > 0)) PetscFunctionReturn(0); /* not an ascent direction (a failed solve) */
  PetscCall(PetscLogEventBegin(OT_EVENT_LINE_SEARCH, 0, 0, 0, 0));
  for (int trial = 0; trial < 40; trial++, alpha *= 0.5) {
    PetscCall(EvaluateTrial(s, alpha, &dual, &marginal_error));
    /* Armijo on D, which is concave: accept a step that gains at least 1e-4 of the linear prediction. Near
       the solution that gain falls below the rounding error of D itself (a sum of terms of size dual_scale):
       there a step is accepted if it reduces the marginal error, the norm of D's gradient. */
    PetscBool gain_below_rounding = (PetscBool)(alpha * info->slope <= 1e-12 * info->dual_scale);
    PetscBool armijo              = (PetscBool)(dual >= info->dual + 1e-4 * alpha * info->slope);

    if (PetscIsNormalReal(marginal_error) && (gain_below_rounding ? marginal_error < info->marginal_error : armijo)) {
      for (PetscInt i = 0; i < s->problem->n_local; i++) s->f[i] += alpha * nt->df[i];
      for (PetscInt j = 0; j < s->problem->m; j++) s->g[j] = nt->g_trial[j];
      info->accepted             = PETSC_TRUE;
      info->step                 = alpha;
      info->dual_after           = dual;
      info->marginal_error_after = marginal_error;
      break;
    }
  }
  PetscCall(PetscLogEventEnd(OT_EVENT_LINE_SEARCH, 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonGetDirection(OTSolver s, const PetscReal **df, const PetscReal **dg)
{
  PetscFunctionBegin;
  PetscCheck(s->newton, s->comm, PETSC_ERR_ARG_WRONGSTATE, "no Newton direction computed yet");
  *df = s->newton->df;
  *dg = s->newton->dg;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonView(OTSolver s, PetscViewer viewer)
{
  PetscFunctionBegin;
  PetscCall(OTNewtonSetUp(s));
  PetscCall(KSPView(s->newton->ksp, viewer));
  PetscFunctionReturn(0);
}
