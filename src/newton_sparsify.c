/*
  Sparsification, steps 1-3 of a Newton step (docs/design.md §1): the survey of P at (f, g), the global threshold,
  the kept entries Ps.

  Ps keeps the largest entries of P: about -ot_newton_density x (n + m) of them, chosen by one global threshold,
  plus each row's and each column's largest entry. The threshold comes from a histogram of the entries' bit
  patterns (exponent and four mantissa bits: 16 bins per factor of 2) reduced with MPI_Allreduce, so no rank ever
  sorts or gathers entries. P's entries come from the stored absorbed kernel when there is one (two
  multiplications each), else from exponentials (the row-kernel layer, kernel.h).
*/
#include "newton.h"
#include "truncated.h"

/* The mass rule may keep up to this many times -ot_newton_density x (n + m) entries (on the truncated kernel: as many
   as the memory budget allows, all of them entries the kernel keeps). */
#define OT_NEWTON_DENSITY_STRETCH 16
/* Newton declines a step whose kept entries, within the budget, leave out more than this share of P's mass. */
#define OT_NEWTON_MOST_DROPPED 0.5
/* Scalings of the stored kernel within this (or its inverse) serve Newton's passes (see OTNewtonKernelScalings). */
#define OT_NEWTON_SCALING_MAX 1e100

typedef struct {
  double value;
  int    row;
} MaxLoc;

/* The smallest value of histogram bin b. */
static inline double HistBinValue(int64_t b)
{
  union
  {
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

/* u_i = exp((f_i + alpha df_i - f_ref_i)/eps) (df NULL: no step) and v_j = exp((g_j - g_ref_j)/eps): then P = diag(u) K diag(v) on
   the stored kernel, two multiplications per entry instead of an exponential. False where the kernel cannot
   serve: none on this rank, built for another eps, or a scaling outside [1/OT_NEWTON_SCALING_MAX,
   OT_NEWTON_SCALING_MAX] (within it the entries the kernel stores as 0, below exp(-708), stand for entries of P
   below 1e-108). Rank-local: each rank picks its own way, both give P to rounding. */
PetscBool OTNewtonKernelScalings(OTSolver s, const PetscReal *f, const PetscReal *df, PetscReal alpha, const PetscReal *g, PetscReal *u, PetscReal *v)
{
  const PetscReal inv_eps  = 1.0 / s->eps;
  PetscBool       in_range = PETSC_TRUE;

  if (!s->store.k || s->store.eps != s->eps) return PETSC_FALSE;
  for (PetscInt i = 0; i < s->problem->n_local; i++) {
    u[i]     = PetscExpReal(((df ? f[i] + alpha * df[i] : f[i]) - s->store.f_ref[i]) * inv_eps);
    in_range = (PetscBool)(in_range && u[i] >= 1.0 / OT_NEWTON_SCALING_MAX && u[i] <= OT_NEWTON_SCALING_MAX);
  }
  for (PetscInt j = 0; j < s->problem->m; j++) {
    v[j]     = PetscExpReal((g[j] - s->store.g_ref[j]) * inv_eps);
    in_range = (PetscBool)(in_range && v[j] >= 1.0 / OT_NEWTON_SCALING_MAX && v[j] <= OT_NEWTON_SCALING_MAX);
  }
  return in_range;
}

/* Pass over the rows at (f, g): row sums and each row's largest entry, column sums (into col_sum), each column's
   largest entry with its row (col_max_value, col_max_row), and the histogram of the entries of every
   sample_stride-th global row (the threshold needs a distribution, not every entry). P comes from the stored kernel
   when u is given; otherwise from exponentials, written into the stored kernel (rebuilt at (f, g)) with rebuild. */
OT_HOT_LOOP static void SurveyRows(OTSolver s, const PetscReal *u, const PetscReal *v, PetscBool rebuild, PetscInt sample_stride)
{
  OTProblem pb = s->problem;
  OTNewton *nt = s->newton;

  for (PetscInt j = 0; j < pb->m; j++) {
    nt->col_sum[j]       = 0.0;
    nt->col_max_value[j] = -1.0;
    nt->col_max_row[j]   = -1;
  }
  for (PetscInt b = 0; b < OT_HIST_BINS; b++) nt->hist[b] = 0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    PetscInt   global_row = pb->row_start + i;
    PetscReal *out        = rebuild ? OTKernelStoredRow(&s->store, i) : s->row_plan;
    OTRow      row        = u ? OTKernelScaledRow(&s->store, i, u[i], v, out) : OTKernelPlanRow(pb, i, s->f[i], s->g, 1.0 / s->eps, out);

    nt->row_sum[i] = row.sum;
    OTRowAxpy(&row, 1.0, nt->col_sum);
    OTRowColumnMax(&row, (PetscReal)global_row, nt->col_max_value, nt->col_max_row);
    (void)OTRowMax(&row, &nt->row_argmax[i]);
    if (global_row % sample_stride == 0)
      for (PetscInt k = 0; k < row.len; k++) nt->hist[OTHistBin(row.val[k])]++;
  }
}

double OTNewtonFixedBytes(OTSolver s)
{
  OTProblem pb = s->problem;

  /* survey and direction vectors (about 14 m + 8 n_local doubles, the Vecs and the scatter included), the histogram */
  return 8.0 * (14.0 * pb->m + 8.0 * pb->n_local) + 8.0 * OT_HIST_BINS;
}

PetscErrorCode OTNewtonKeptReserve(OTNewton *nt, PetscInt used, PetscInt count)
{
  PetscFunctionBegin;
  if (used + count <= nt->kept_cap) PetscFunctionReturn(0);
  nt->kept_cap = PetscMax(2 * nt->kept_cap, used + count);
  PetscCall(PetscRealloc(sizeof(PetscInt) * (size_t)nt->kept_cap, &nt->kept_col));
  PetscCall(PetscRealloc(sizeof(PetscReal) * (size_t)nt->kept_cap, &nt->kept_val));
  PetscFunctionReturn(0);
}

/* The kept entries of the owned rows, as CSR (row_ptr, nt->kept_col, nt->kept_val): those at or above threshold,
   each row's largest (row_argmax), and the columns' largest (extra_col of row i). On the stored kernel (u given) a
   row of P costs two multiplications per entry; otherwise the threshold test is on the exponent, computed for a
   whole row in one vectorised loop, and exponentials are taken only of the entries kept. Counts the kept entries
   of each column in col_local. */
OT_HOT_LOOP static PetscErrorCode KeepRows(OTSolver s, PetscReal threshold, const PetscReal *u, const PetscReal *v, const PetscInt *extra_ptr,
                                           const PetscInt *extra_col, PetscInt *row_ptr, PetscInt *col_local)
{
  OTProblem pb    = s->problem;
  OTNewton *nt    = s->newton;
  PetscInt  kept  = 0;
  PetscReal bound = u ? threshold : (threshold > 0 ? PetscLogReal(threshold) : -INFINITY), absent = u ? 0.0 : -INFINITY;

  PetscFunctionBegin;
  row_ptr[0] = 0;
  for (PetscInt i = 0; i < pb->n_local; i++) {
    const PetscInt start = kept;
    OTRow          row;

    if (u) row = OTKernelScaledRow(&s->store, i, u[i], v, s->row_plan); /* P_ij */
    else {
      OTRow cost = OTKernelCostRow(pb, i, pb->cost_row);

      row = OTKernelLogPlanFromCost(&cost, s->f[i], s->g, 1.0 / s->eps, s->row_plan); /* log P_ij */
    }
    PetscCall(OTNewtonKeptReserve(nt, kept, row.len + 1)); /* room for a whole row */
    kept += OTRowSelect(&row, bound, nt->kept_col + kept);
    if (!(OTRowValueAt(&row, nt->row_argmax[i], absent) >= bound)) nt->kept_col[kept++] = nt->row_argmax[i];
    for (PetscInt k = extra_ptr[i]; k < extra_ptr[i + 1]; k++) {
      PetscInt j = extra_col[k];

      if (!(OTRowValueAt(&row, j, absent) >= bound) && j != nt->row_argmax[i]) {
        PetscCall(OTNewtonKeptReserve(nt, kept, 1));
        nt->kept_col[kept++] = j;
      }
    }
    for (PetscInt k = start; k < kept; k++) {
      PetscReal value = OTRowValueAt(&row, nt->kept_col[k], absent);

      nt->kept_val[k] = u ? value : OTExp(value);
      col_local[nt->kept_col[k]]++;
    }
    row_ptr[i + 1] = kept;
  }
  PetscFunctionReturn(0);
}

PetscReal OTNewtonDrop(OTSolver s)
{
  return s->newton->drop * PetscPowReal(OT_NEWTON_TIGHTEN, (PetscReal)s->sns_tightened);
}

/* The global threshold: the smallest histogram bin from the top whose cumulative count reaches the target (scaled
   to the sampled rows), lowered while the entries above it carry less than 1 - drop of the sampled mass, up to
   stretch times as many entries: where P is not that sparse (an L1 cost, a larger eps), dropping much of its mass
   makes Newton converge only linearly. Never more than most entries (the memory budget): a bin
   that would pass it is left out. A bin's mass is taken as its count times its lower edge (within 4.4%). Returns the
   threshold's bin, the sampled entries above it in *count, and whether the budget stopped it in *capped. */
static int64_t ThresholdBin(OTNewton *nt, int64_t target, int64_t stretch, int64_t most, PetscReal drop, PetscReal *dropped_mass, int64_t *count, PetscBool *capped)
{
  PetscReal total_mass = 0.0, kept_mass = 0.0;
  int64_t   cumulative = 0, threshold_bin = OT_HIST_BINS - 1;

  *capped = PETSC_FALSE;
  for (int64_t b = 0; b < OT_HIST_BINS; b++) total_mass += BinMass(nt->hist[b], b);
  for (int64_t b = OT_HIST_BINS - 1; b >= 0; b--) {
    *capped = (PetscBool)(nt->hist[b] && cumulative + nt->hist[b] > most);
    if (*capped) break;
    cumulative += nt->hist[b];
    kept_mass += BinMass(nt->hist[b], b);
    threshold_bin = b;
    if (cumulative >= target && (kept_mass >= (1.0 - drop) * total_mass || cumulative >= stretch * target)) break;
  }
  *dropped_mass = total_mass > 0 ? 1.0 - kept_mass / total_mass : 0.0;
  *count        = cumulative;
  return threshold_bin;
}

/* The threshold the sampled entries choose (their histogram in nt->hist, reduced; all_entries: how many entries they
   stand for), and the verdict on the step. */
typedef struct {
  double     sampled;         /* the sampled share of all entries */
  int64_t    target, count;   /* sampled entries: -ot_newton_density's share, and those above the threshold */
  int64_t    bin;             /* the threshold's histogram bin */
  PetscReal  dropped;         /* the share of the sampled mass below it */
  PetscBool  capped;          /* the memory budget stopped it */
  OTDeclined verdict;         /* OT_DECLINED_MEMORY: not even the target fits in the budget; OT_DECLINED_DENSE: the
                                 entries that fit leave out more than OT_NEWTON_MOST_DROPPED of P's mass */
} Threshold;

/* stretched: the mass rule may keep as many entries as the budget allows (the truncated kernel), else at most
   OT_NEWTON_DENSITY_STRETCH times the target. The mass P's dropped entries may carry: -ot_newton_drop, divided by 100
   each time SNS saw Newton converge only linearly at this eps (OTNewtonDrop). */
static Threshold ChooseThreshold(OTSolver s, double all_entries, PetscReal density, PetscBool stretched)
{
  OTProblem pb = s->problem;
  OTNewton *nt = s->newton;
  Threshold th = {0};
  int64_t   most;

  for (int64_t b = 0; b < OT_HIST_BINS; b++) th.sampled += (double)nt->hist[b];
  th.sampled /= PetscMax(all_entries, 1.0);
  th.target = PetscMax((int64_t)(density * (pb->n + pb->m) * th.sampled), 1);
  most      = (int64_t)(PetscMax(0.0, nt->budget - OTNewtonFixedBytes(s)) / OT_NEWTON_ENTRY_BYTES * s->size * th.sampled);
  th.bin     = ThresholdBin(nt, th.target, stretched ? INT64_MAX / th.target : OT_NEWTON_DENSITY_STRETCH, most, OTNewtonDrop(s), &th.dropped, &th.count, &th.capped);
  th.verdict = th.capped && th.count < th.target ? OT_DECLINED_MEMORY : (th.dropped > OT_NEWTON_MOST_DROPPED ? OT_DECLINED_DENSE : OT_DECLINED_NO);
  return th;
}

/* How many entries of P the threshold keeps (the target where not even that fits), from the sampled share. */
static int64_t ThresholdKept(const Threshold *th)
{
  return (int64_t)((th->verdict == OT_DECLINED_MEMORY ? th->target : th->count) / PetscMax(th->sampled, 1e-300));
}

/* The histogram of the sampled rows alone (every sample_stride-th global row, as the survey samples them), reduced:
   enough to see, before the survey's pass over all rows, whether a step would be declined for memory or density.
   Collective. */
static PetscErrorCode SampledHistogram(OTSolver s, PetscInt sample_stride)
{
  OTProblem pb = s->problem;
  OTNewton *nt = s->newton;
  PetscBool use_kernel = OTNewtonKernelScalings(s, s->f, NULL, 0.0, s->g, nt->u, nt->v);

  PetscFunctionBegin;
  for (PetscInt b = 0; b < OT_HIST_BINS; b++) nt->hist[b] = 0;
  for (PetscInt i = (sample_stride - pb->row_start % sample_stride) % sample_stride; i < pb->n_local; i += sample_stride) {
    OTRow row = use_kernel ? OTKernelScaledRow(&s->store, i, nt->u[i], nt->v, s->row_plan) : OTKernelPlanRow(pb, i, s->f[i], s->g, 1.0 / s->eps, s->row_plan);

    for (PetscInt k = 0; k < row.len; k++) nt->hist[OTHistBin(row.val[k])]++;
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->hist, OT_HIST_BINS, MPI_INT64_T, MPI_SUM, s->comm));
  PetscFunctionReturn(0);
}

/* Each column's largest entry, where it lies in an owned row, as CSR lists over the owned rows. */
static PetscErrorCode ColumnMaximaByRow(OTProblem pb, const MaxLoc *col_max, PetscInt **extra_ptr, PetscInt **extra_col)
{
  PetscFunctionBegin;
  PetscCall(PetscCalloc2(pb->n_local + 1, extra_ptr, pb->m, extra_col));
  for (PetscInt j = 0; j < pb->m; j++) {
    PetscInt i = (PetscInt)col_max[j].row - pb->row_start;

    if (i >= 0 && i < pb->n_local) (*extra_ptr)[i + 1]++;
  }
  for (PetscInt i = 0; i < pb->n_local; i++) (*extra_ptr)[i + 1] += (*extra_ptr)[i];
  for (PetscInt j = 0; j < pb->m; j++) {
    PetscInt i = (PetscInt)col_max[j].row - pb->row_start;

    if (i >= 0 && i < pb->n_local) (*extra_col)[(*extra_ptr)[i]++] = j;
  }
  for (PetscInt i = pb->n_local; i > 0; i--) (*extra_ptr)[i] = (*extra_ptr)[i - 1];
  (*extra_ptr)[0] = 0;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonSparsify(OTSolver s, OTNewtonInfo *info, OTKept *kept)
{
  OTProblem   pb = s->problem;
  OTNewton   *nt = s->newton;
  PetscInt    m = pb->m, n_local = pb->n_local, sample_stride, *extra_ptr, *extra_col;
  PetscBool   use_kernel = PETSC_FALSE, rebuild = PETSC_FALSE, truncated = OTNewtonOnTruncated(s);
  PetscReal   row_error = 0.0, af = 0.0, density = nt->density * PetscPowReal(4.0, (PetscReal)s->sns_boosts), dropped_now = 0.0;
  MaxLoc     *col_max = (MaxLoc *)nt->col_max;
  int64_t     total_kept, largest_kept;
  OTMarginals marginals;
  Threshold   th;

  PetscFunctionBegin;
  kept->row_ptr = kept->col_local = kept->col_total = NULL;
  info->declined                                  = OT_DECLINED_NO;
  /* 1. survey: gradient, histogram, column maxima. About 2^16 entries are sampled for the histogram (every row if
     there are fewer): the threshold needs the distribution's upper tail to a few per cent */
  if (truncated) {
    PetscCall(OTNewtonTruncatedPrepare(s));
    sample_stride = PetscMax(1, (PetscInt)(s->trunc->kept_global / (double)(1 << 16)));
    PetscCall(OTNewtonTruncatedSurvey(s, sample_stride, &dropped_now));
  } else {
    sample_stride = PetscMax(1, (PetscInt)(((double)pb->n * (double)pb->m) / (double)(1 << 16)));
    if (sample_stride > 1) { /* a step the sampled rows already decline costs them alone, not a pass over all pairs */
      PetscCall(SampledHistogram(s, sample_stride));
      th = ChooseThreshold(s, (double)pb->n * (double)pb->m, density, PETSC_FALSE);
      if (th.verdict != OT_DECLINED_NO) {
        info->declined       = th.verdict;
        info->kept           = ThresholdKept(&th);
        info->dropped_mass   = th.dropped;
        info->marginal_error = s->history_len ? s->history[s->history_len - 1].marginal_error : PETSC_INFINITY; /* the state of the last sweep */
        info->dual           = s->history_len ? s->history[s->history_len - 1].dual_objective : NAN;
        PetscFunctionReturn(0);
      }
    }
    use_kernel    = OTNewtonKernelScalings(s, s->f, NULL, 0.0, s->g, nt->u, nt->v);
    rebuild       = (PetscBool)(!use_kernel && s->store.k); /* the (double) kernel, rebuilt at (f, g) by this pass */
    SurveyRows(s, use_kernel ? nt->u : NULL, nt->v, rebuild, sample_stride);
  }
  if (rebuild) {
    PetscCall(PetscArraycpy(s->store.f_ref, s->f, n_local));
    PetscCall(PetscArraycpy(s->store.g_ref, s->g, m));
    s->store.eps = s->eps;
    use_kernel   = OTNewtonKernelScalings(s, s->f, NULL, 0.0, s->g, nt->u, nt->v); /* all 1 */
  }
  for (PetscInt j = 0; j < m; j++) {
    col_max[j].value = nt->col_max_value[j];
    col_max[j].row   = (int)nt->col_max_row[j];
  }
  for (PetscInt i = 0; i < n_local; i++) {
    row_error += PetscAbsReal(nt->row_sum[i] - OTMarginalTarget(pb->rho_a, pb->a[i], s->f[i]));
    af += OTMarginalDualTerm(pb->rho_a, pb->a[i], s->f[i]);
  }
  nt->col_sum[m]     = row_error;
  nt->col_sum[m + 1] = af;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->col_sum, (PetscMPIInt)(m + 2), MPIU_REAL, MPIU_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, nt->hist, OT_HIST_BINS, MPI_INT64_T, MPI_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, col_max, (PetscMPIInt)m, MPI_DOUBLE_INT, MPI_MAXLOC, s->comm));
  OTMarginalsFromColumns(pb, s->eps, nt->col_sum, s->g, nt->col_sum[m + 1], nt->col_sum[m], &marginals);
  info->marginal_error = marginals.marginal_error + 2.0 * dropped_now; /* the truncated kernel's dropped entries move each marginal by less */
  info->dual           = marginals.dual;
  info->dual_scale     = marginals.dual_scale;

  /* 2. the global threshold, within the memory budget: the sampled rows stand for all (their share of the entries) */
  th                 = ChooseThreshold(s, truncated ? s->trunc->kept_global : (double)pb->n * (double)pb->m, density, truncated);
  info->kept         = ThresholdKept(&th);
  info->dropped_mass = th.dropped;
  if (info->marginal_error <= s->tol) PetscFunctionReturn(0); /* converged already: the caller takes no step */
  if (th.verdict == OT_DECLINED_MEMORY) { /* not even -ot_newton_density's entries fit */
    info->declined = th.verdict;
    PetscFunctionReturn(0);
  }
  if (s->newton_kept_cap > 0 && info->kept > s->newton_kept_cap) {
    info->declined = OT_DECLINED_WORK; /* (the estimate: the same on every rank) */
    PetscFunctionReturn(0);
  }
  if (th.verdict == OT_DECLINED_DENSE) { /* the entries that fit leave out most of P: Newton's matrix would not be near its Hessian */
    info->declined = th.verdict;
    PetscFunctionReturn(0);
  }

  /* 3. kept entries of the owned rows: above the threshold, or the largest of their row or column */
  if (!truncated) PetscCall(OTNewtonKeptReserve(nt, 0, PetscMax(16, 2 * (PetscInt)(th.target / th.sampled / s->size) + 2 * n_local)));
  PetscCall(PetscMalloc1(n_local + 1, &kept->row_ptr));
  PetscCall(PetscCalloc2(m, &kept->col_local, m, &kept->col_total));
  PetscCall(ColumnMaximaByRow(pb, col_max, &extra_ptr, &extra_col));
  if (truncated) {
    PetscInt *start_of;

    PetscCall(PetscMalloc1(n_local + 1, &start_of));
    OTNewtonTruncatedKeepRoom(s, HistBinValue(th.bin), extra_ptr, start_of);
    PetscCall(OTNewtonKeptReserve(nt, 0, start_of[n_local]));
    PetscCall(OTNewtonTruncatedKeep(s, HistBinValue(th.bin), extra_ptr, extra_col, start_of, kept->row_ptr, kept->col_local));
    PetscCall(PetscFree(start_of));
  }
  else PetscCall(KeepRows(s, HistBinValue(th.bin), use_kernel ? nt->u : NULL, nt->v, extra_ptr, extra_col, kept->row_ptr, kept->col_local));
  PetscCall(PetscFree2(extra_ptr, extra_col));
  total_kept   = kept->row_ptr[n_local];
  largest_kept = total_kept;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &total_kept, 1, MPI_INT64_T, MPI_SUM, s->comm));
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &largest_kept, 1, MPI_INT64_T, MPI_MAX, s->comm));
  PetscCallMPI(MPI_Allreduce(kept->col_local, kept->col_total, (PetscMPIInt)m, MPIU_INT, MPI_SUM, s->comm));
  info->kept = total_kept;
  /* the sample's estimate may fall short on a rank that holds more than its share */
  if (OTNewtonFixedBytes(s) + OT_NEWTON_ENTRY_BYTES * (double)largest_kept > nt->budget) info->declined = OT_DECLINED_MEMORY;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNewtonKeptFree(OTKept *kept)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(kept->row_ptr));
  PetscCall(PetscFree2(kept->col_local, kept->col_total));
  PetscFunctionReturn(0);
}
