/*
  Multiscale eps-scaling for point clouds on the truncated kernel (-ot_multiscale, docs/design.md §1), after
  Schmitzer 2019 and GeomLoss's coarse-to-fine scheme.

  At large eps P is dense at full resolution, so the early eps stages run on coarsened measures: the points of X and
  of Y are grouped into cells (the leaves of a cell tree over all points, with at most 8^k points each), each cell
  replaced by its centroid carrying the cell's mass. Levels: the coarsest has at most -ot_multiscale_cells (4096) cells, each
  next one cells 8 times smaller, down to cells of OT_MULTISCALE_FINEST_LEAF points. A stage at eps runs on the
  coarsest level whose cells are small against the kernel's width, OT_MULTISCALE_SWITCH x r^2 <= eps (r^2: the
  mass-weighted mean squared distance of a point to its cell's centroid); the target stage, and every stage no level
  is fine enough for, runs on the points themselves. Each level starts from the potentials of the one before, carried
  through the points, extrapolated as GeomLoss does between scales: a point of X takes phi = -eps log sum_J exp((G_J -
  C(x, Y_J))/eps), an f-update per unit mass against the level's cells of Y, a point of Y the g-update against its
  cells of X (Extrapolate; a potential constant over a cell is off by its gradient times the cell's radius, many times
  eps at small eps, and the next level or the points then needed hundreds of sweeps and kernel rebuilds to recover);
  a new cell takes the mass-weighted mean of its points' phi plus eps log of its mass, and the points' own stages
  start from f = phi + eps log a, g = psi + eps log b at their first eps. The coarse levels are
  small problems of their own (row-split like any other), solved with truncated Sinkhorn to -ot_eps_stage_tol; their
  sweeps are not counted in the result's iterations, and -ot_monitor reports them per level.
*/
#include "truncated.h"

/* The finest level's cells hold at most this many points. */
#define OT_MULTISCALE_FINEST_LEAF 4
/* A level serves a stage at eps when this times its mean squared cell radius is at most eps. */
#define OT_MULTISCALE_SWITCH 1.0

/* One side of a level: its cells' centroids (cells x d) and masses, and each point's cell. */
typedef struct {
  PetscInt   cells;
  PetscReal *centroid, *mass;
  PetscInt  *cell_of;
  PetscReal  r2; /* sum over points of weight x squared distance to the centroid, over the mass */
} Side;

/* The cells of count points (point k at coords[k * stride_point + c * stride_coord]) with weights w: the leaves of a
   cell tree with at most leaf points each. Not collective. */
static PetscErrorCode SideCreate(const PetscReal *coords, const PetscReal *w, PetscInt count, PetscInt d, size_t stride_point, size_t stride_coord, PetscInt leaf,
                                 Side *side)
{
  OTCellTree tree;
  PetscReal  total = 0.0, spread = 0.0;

  PetscFunctionBegin;
  PetscCall(OTCellTreeCreate(coords, count, d, stride_point, stride_coord, leaf, &tree));
  side->cells = 0;
  for (PetscInt q = 0; q < tree.nodes; q++) side->cells += tree.node[q].left < 0;
  PetscCall(PetscCalloc2((size_t)side->cells * d, &side->centroid, side->cells, &side->mass));
  PetscCall(PetscMalloc1(count, &side->cell_of));
  for (PetscInt q = 0, cell = 0; q < tree.nodes; q++) {
    const OTCellNode *nd = &tree.node[q];
    PetscReal        *c  = side->centroid + (size_t)cell * d;

    if (nd->left >= 0) continue;
    for (PetscInt p = nd->start; p < nd->end; p++) {
      PetscReal wp = w[tree.perm[p]];

      side->cell_of[tree.perm[p]] = cell;
      side->mass[cell] += wp;
      for (PetscInt k = 0; k < d; k++) c[k] += wp * tree.points[(size_t)p * d + k];
    }
    for (PetscInt k = 0; k < d; k++) c[k] = side->mass[cell] > 0 ? c[k] / side->mass[cell] : tree.points[(size_t)nd->start * d + k];
    for (PetscInt p = nd->start; p < nd->end; p++) {
      PetscReal sq = 0.0;

      for (PetscInt k = 0; k < d; k++) sq += PetscSqr(tree.points[(size_t)p * d + k] - c[k]);
      spread += w[tree.perm[p]] * sq;
    }
    total += side->mass[cell];
    cell++;
  }
  side->r2 = total > 0 ? spread / total : 0.0;
  PetscCall(OTCellTreeDestroy(&tree));
  PetscFunctionReturn(0);
}

static PetscErrorCode SideDestroy(Side *side)
{
  PetscFunctionBegin;
  PetscCall(PetscFree2(side->centroid, side->mass));
  PetscCall(PetscFree(side->cell_of));
  PetscFunctionReturn(0);
}

/* A cell's potential from its points' potentials per unit mass phi: the mass-weighted mean, plus eps log of its mass
   (into pot, cells entries). Cells without mass take 0. Not collective. */
static void CellPotentials(const Side *side, PetscInt count, const PetscReal *w, const PetscReal *phi, PetscReal eps, PetscReal *pot)
{
  for (PetscInt c = 0; c < side->cells; c++) pot[c] = 0.0;
  for (PetscInt p = 0; p < count; p++) pot[side->cell_of[p]] += w[p] * phi[p];
  for (PetscInt c = 0; c < side->cells; c++) pot[c] = side->mass[c] > 0 ? pot[c] / side->mass[c] + eps * PetscLogReal(side->mass[c]) : 0.0;
}

/* Terms of the log-sum-exp below exp(-OT_EXTRAPOLATE_CUT) times its largest are left out (a relative 1e-21 each). */
#define OT_EXTRAPOLATE_CUT 48.0

/* out_p = -eps log sum_I exp((P_I - C(c_I, z_p))/eps) over the cells I of a level's side (centroids c_I, potentials P_I
   at eps), for count points z_p (coordinate k of point p at z[p * stride_point + k * stride_coord]): the update of a
   Sinkhorn sweep against the level's measure of the other side, per unit mass (the point's eps log weight left out).
   It carries the level's answer to the points without the error of a potential constant over each cell (of the order
   of its gradient times the cell's radius, many times eps at small eps), as GeomLoss extrapolates between scales.
   A cell tree over the centroids gives the largest term by branch and bound (OTTruncatedTreeMax), then the terms
   within OT_EXTRAPOLATE_CUT of it, so that a point costs about its neighbouring cells, not all of them. Not
   collective. */
static PetscErrorCode CellUpdate(OTProblem pb, const Side *side, const PetscReal *pot, PetscReal eps, PetscInt count, const PetscReal *z, size_t stride_point,
                                 size_t stride_coord, PetscReal *out)
{
  const PetscInt d = pb->dim;
  OTCellTree     tree;
  PetscReal     *w, *x;
  PetscInt      *stack;

  PetscFunctionBegin;
  PetscCall(OTCellTreeCreate(side->centroid, side->cells, d, (size_t)d, 1, 8, &tree));
  PetscCall(PetscMalloc3(side->cells, &w, d, &x, PetscMax(tree.nodes, OT_TREE_STACK), &stack));
  for (PetscInt c = 0; c < side->cells; c++) w[c] = side->mass[c] > 0 ? pot[c] : -INFINITY;
  OTCellTreeSetWeights(&tree, w);
  for (PetscInt p = 0; p < count; p++) {
    PetscReal top, cut, sum = 0.0;
    PetscInt  depth = 0;

    for (PetscInt k = 0; k < d; k++) x[k] = z[(size_t)p * stride_point + (size_t)k * stride_coord];
    top = OTTruncatedTreeMax(pb, &tree, NULL, x, stack);
    cut = top - OT_EXTRAPOLATE_CUT * eps;
    stack[depth++] = 0;
    while (depth > 0) {
      PetscInt b = stack[--depth];

      if (tree.wmax[b] - CostFromSquared(pb, OTCellTreePointDistance(&tree, b, x)) < cut) continue;
      if (tree.node[b].left >= 0) {
        stack[depth++] = tree.node[b].left;
        stack[depth++] = tree.node[b].right;
        continue;
      }
      for (PetscInt c = tree.node[b].start; c < tree.node[b].end; c++) {
        const PetscReal *y  = tree.points + (size_t)c * d;
        PetscReal        sq = 0.0;

        for (PetscInt k = 0; k < d; k++) sq += PetscSqr(x[k] - y[k]);
        sum += PetscExpReal((tree.w[c] - CostFromSquared(pb, sq) - top) / eps);
      }
    }
    out[p] = -(top + eps * PetscLogReal(PetscMax(sum, 1.0)));
  }
  PetscCall(PetscFree3(w, x, stack));
  PetscCall(OTCellTreeDestroy(&tree));
  PetscFunctionReturn(0);
}

/* count values, each rank's share [start, end) (OTRowSplit) computed in place, to all ranks. Collective. */
static PetscErrorCode GatherShares(OTSolver s, PetscInt count, PetscReal *values)
{
  PetscMPIInt *counts, *displs;

  PetscFunctionBegin;
  PetscCall(PetscMalloc2(s->size, &counts, s->size, &displs));
  for (PetscMPIInt r = 0; r < s->size; r++) {
    PetscInt start, end;

    PetscCall(OTRowSplit(count, s->size, r, &start, &end));
    counts[r] = (PetscMPIInt)(end - start);
    displs[r] = (PetscMPIInt)start;
  }
  PetscCallMPI(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, values, counts, displs, MPIU_REAL, s->comm));
  PetscCall(PetscFree2(counts, displs));
  PetscFunctionReturn(0);
}

/* The points' potentials per unit mass from a level's answer (cell potentials pot_x of X, pot_y of Y, at eps): phi_x
   of all points of X (x_all) by an f-update against the cells of Y, phi_y of all points of Y by a g-update against
   the cells of X (CellUpdate). Each rank takes a share of each, and all ranks get all. Collective. */
static PetscErrorCode Extrapolate(OTSolver s, const Side *sx, const Side *sy, const PetscReal *pot_x, const PetscReal *pot_y, PetscReal eps, const PetscReal *x_all,
                                  PetscReal *phi_x, PetscReal *phi_y)
{
  OTProblem pb = s->problem;
  PetscInt  start, end;

  PetscFunctionBegin;
  PetscCall(OTRowSplit(pb->n, s->size, s->rank, &start, &end));
  PetscCall(CellUpdate(pb, sy, pot_y, eps, end - start, x_all + (size_t)start * pb->dim, (size_t)pb->dim, 1, phi_x + start));
  PetscCall(OTRowSplit(pb->m, s->size, s->rank, &start, &end));
  PetscCall(CellUpdate(pb, sx, pot_x, eps, end - start, pb->y_t + start, 1, (size_t)pb->m, phi_y + start));
  PetscCall(GatherShares(s, pb->n, phi_x));
  PetscCall(GatherShares(s, pb->m, phi_y));
  PetscFunctionReturn(0);
}

/* Runs the stages [first, last) of the solver's schedule on one level, from the points' potentials per unit mass
   phi_x, phi_y, and leaves in them the level's answer extrapolated to the points (Extrapolate). Collective. */
static PetscErrorCode RunLevel(OTSolver s, const Side *sx, const Side *sy, PetscInt first, PetscInt last, const PetscReal *x_all, const PetscReal *a_all,
                               PetscReal *phi_x, PetscReal *phi_y, PetscInt *sweeps_done, PetscBool *ok)
{
  OTProblem pb = s->problem, cp;
  OTSolver  cs;
  PetscReal *pot_x, eps = s->eps_schedule[first];
  PetscInt   sweeps = 0;

  PetscFunctionBegin;
  PetscCall(OTProblemCreate(s->comm, &cp));
  PetscCall(OTProblemSetPoints(cp, sx->cells, sy->cells, pb->dim, sx->centroid, sy->centroid, sx->mass, sy->mass, pb->cost_name, "multiscale level"));
  PetscCall(OTSolverCreate(s->comm, &cs));
  PetscCall(OTSolverSetProblem(cs, cp));
  cs->method     = OT_METHOD_SINKHORN;
  cs->variant    = OT_SINKHORN_TRUNCATED;
  cs->truncation = s->truncation;
  cs->truncation_values = s->truncation_values;
  cs->memory_share      = s->memory_share; /* the fine problem's share: a level's kernel lives beside it */
  cs->overrelax  = s->overrelax;
  cs->multiscale = PETSC_FALSE;
  cs->eps        = eps;
  PetscCall(OTSolverSetUp(cs));
  PetscCall(PetscMalloc1(PetscMax(sx->cells, 1), &pot_x));
  CellPotentials(sx, pb->n, a_all, phi_x, eps, pot_x);
  for (PetscInt i = 0; i < cp->n_local; i++) cs->f[i] = pot_x[cp->row_start + i];
  CellPotentials(sy, pb->m, pb->b, phi_y, eps, cs->g);
  *ok = PETSC_TRUE;
  for (PetscInt k = first; k < last && *ok; k++) {
    PetscInt  done;
    PetscBool converged;

    OTSolverCarryPotentials(cs, s->eps_schedule[k]);
    eps = cs->eps;
    cs->tol       = s->eps_stage_tol * cp->mass;
    PetscCall(OTTruncatedRun(cs, s->max_it, sweeps, PETSC_FALSE, &done, &converged));
    sweeps += done;
    *ok = converged;
  }
  /* every rank needs all the cells' potentials of X */
  PetscCall(PetscArraycpy(pot_x + cp->row_start, cs->f, cp->n_local));
  PetscCall(GatherShares(s, sx->cells, pot_x));
  PetscCall(Extrapolate(s, sx, sy, pot_x, cs->g, eps, x_all, phi_x, phi_y));
  if (s->monitor_every || s->monitor_seconds > 0)
    PetscCall(PetscPrintf(s->comm, "  multiscale: %" PetscInt_FMT " x %" PetscInt_FMT " cells, eps stages %" PetscInt_FMT "-%" PetscInt_FMT " of %" PetscInt_FMT " (eps %g to %g), %" PetscInt_FMT " sweeps, %.6g kernel entries at the end%s\n",
                          sx->cells, sy->cells, first + 1, last, s->eps_stages, (double)s->eps_schedule[first], (double)eps, sweeps, cs->trunc ? cs->trunc->kept_global : 0.0,
                          *ok ? "" : " (stage not converged: the points take over)"));
  *sweeps_done += sweeps;
  PetscCall(PetscFree(pot_x));
  PetscCall(OTSolverDestroy(&cs));
  PetscCall(OTProblemDestroy(&cp));
  PetscFunctionReturn(0);
}

PetscErrorCode OTMultiscaleRun(OTSolver s)
{
  OTProblem    pb = s->problem;
  PetscInt     leaf = 1, levels = 0, d = pb->dim, stage = 0, sweeps = 0;
  PetscInt     big = PetscMax(pb->n, pb->m);
  PetscReal   *x_all, *a_all, *phi_x, *phi_y;
  PetscMPIInt *counts, *displs;
  Side         sx[8], sy[8];

  PetscFunctionBegin;
  if (!s->multiscale || s->variant != OT_SINKHORN_TRUNCATED || pb->cost_kind == OT_COST_DENSE || s->eps_stage != 0 || s->eps_stages < 2) PetscFunctionReturn(0);
  while (big / leaf > s->multiscale_cells) leaf *= 8;
  if (leaf < 8) PetscFunctionReturn(0); /* few enough points for one level of cells of a point each */
  /* all points of X and their weights on every rank (the cells group points of all ranks) */
  PetscCall(PetscMalloc6((size_t)pb->n * d, &x_all, pb->n, &a_all, pb->n, &phi_x, pb->m, &phi_y, s->size, &counts, s->size, &displs));
  for (PetscMPIInt r = 0; r < s->size; r++) {
    PetscInt start, end;

    PetscCall(OTRowSplit(pb->n, s->size, r, &start, &end));
    counts[r] = (PetscMPIInt)(end - start);
    displs[r] = (PetscMPIInt)start;
  }
  PetscCallMPI(MPI_Allgatherv(pb->a, (PetscMPIInt)pb->n_local, MPIU_REAL, a_all, counts, displs, MPIU_REAL, s->comm));
  for (PetscMPIInt r = 0; r < s->size; r++) {
    counts[r] *= (PetscMPIInt)d;
    displs[r] *= (PetscMPIInt)d;
  }
  PetscCallMPI(MPI_Allgatherv(pb->x, (PetscMPIInt)(pb->n_local * d), MPIU_REAL, x_all, counts, displs, MPIU_REAL, s->comm));
  for (; leaf >= OT_MULTISCALE_FINEST_LEAF && levels < 8; leaf /= 8, levels++) {
    PetscCall(SideCreate(x_all, a_all, pb->n, d, (size_t)d, 1, leaf, &sx[levels]));
    PetscCall(SideCreate(pb->y_t, pb->b, pb->m, d, 1, (size_t)pb->m, leaf, &sy[levels]));
  }
  for (PetscInt i = 0; i < pb->n; i++) phi_x[i] = 0.0;
  for (PetscInt j = 0; j < pb->m; j++) phi_y[j] = 0.0;
  /* each level takes the stages it is fine enough for, coarsest first; the target stage is always the points' */
  for (PetscInt l = 0; l < levels; l++) {
    PetscReal r2    = PetscMax(sx[l].r2, sy[l].r2);
    PetscInt  first = stage;
    PetscBool ok    = PETSC_TRUE;

    while (stage < s->eps_stages - 1 && OT_MULTISCALE_SWITCH * r2 <= s->eps_schedule[stage]) stage++;
    if (stage == first) continue;
    PetscCall(RunLevel(s, &sx[l], &sy[l], first, stage, x_all, a_all, phi_x, phi_y, &sweeps, &ok));
    if (!ok) break;
  }
  if (stage > 0) { /* the points start from the last level's potentials extrapolated to them, at their first eps */
    PetscReal shift = 0.0; /* the gauge (f + c, g - c) that balances <a, f> and <b, g>, so that D is not a difference of large sums */

    s->eps_stage = stage;
    s->eps       = s->eps_schedule[stage];
    for (PetscInt i = 0; i < pb->n; i++) shift += a_all[i] * phi_x[i];
    for (PetscInt j = 0; j < pb->m; j++) shift -= pb->b[j] * phi_y[j];
    shift /= 2.0 * pb->mass;
    for (PetscInt i = 0; i < pb->n_local; i++) s->f[i] = phi_x[pb->row_start + i] - shift + s->eps * PetscLogReal(PetscMax(pb->a[i], 1e-300));
    for (PetscInt j = 0; j < pb->m; j++) s->g[j] = phi_y[j] + shift + s->eps * PetscLogReal(PetscMax(pb->b[j], 1e-300));
  }
  for (PetscInt l = 0; l < levels; l++) {
    PetscCall(SideDestroy(&sx[l]));
    PetscCall(SideDestroy(&sy[l]));
  }
  PetscCall(PetscFree6(x_all, a_all, phi_x, phi_y, counts, displs));
  PetscCall(PetscInfo(NULL, "Multiscale: %" PetscInt_FMT " levels, %" PetscInt_FMT " of %" PetscInt_FMT " eps stages on them, %" PetscInt_FMT " sweeps\n", levels, stage,
                      s->eps_stages, sweeps));
  PetscFunctionReturn(0);
}
