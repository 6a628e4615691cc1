/*
  The result file (docs/design.md §3): /f, /g, /history, the root attributes and, with -ot_plan_threshold, /plan;
  written atomically (OTH5WriteAtomic, h5io.c). /f, /g and /history are the solver's state, which a checkpoint
  holds too (checkpoint.c writes them with OTH5WriteState).
*/
#include "otimpl.h"

PetscErrorCode OTH5HistoryType(hid_t *type)
{
  hid_t       stage_type;
  const char *stage_names[] = {"sinkhorn", "newton"};

  PetscFunctionBegin;
  stage_type = H5Tenum_create(H5T_NATIVE_INT);
  for (int k = 0; k < 2; k++) OTH5Call(H5Tenum_insert(stage_type, stage_names[k], &k));
  *type = H5Tcreate(H5T_COMPOUND, sizeof(OTHistoryFileRow));
  OTH5Call(H5Tinsert(*type, "stage", HOFFSET(OTHistoryFileRow, stage), stage_type));
  OTH5Call(H5Tinsert(*type, "iteration", HOFFSET(OTHistoryFileRow, iteration), H5T_NATIVE_LLONG));
  OTH5Call(H5Tinsert(*type, "time", HOFFSET(OTHistoryFileRow, time), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(*type, "marginal_error", HOFFSET(OTHistoryFileRow, marginal_error), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(*type, "dual_objective", HOFFSET(OTHistoryFileRow, dual_objective), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tinsert(*type, "eps", HOFFSET(OTHistoryFileRow, eps), H5T_NATIVE_DOUBLE));
  OTH5Call(H5Tclose(stage_type));
  PetscFunctionReturn(0);
}

/* /history: one row per iteration, a compound of (stage, iteration, time, marginal_error, dual_objective); rank 0 writes it. */
static PetscErrorCode WriteHistory(OTSolver s, hid_t file, hid_t xfer)
{
  hsize_t           len = (hsize_t)s->history_len;
  hid_t             type, file_space, mem_space, dset;
  OTHistoryFileRow *rows;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(PetscMax(1, s->history_len), &rows));
  for (PetscInt k = 0; k < s->history_len; k++) {
    rows[k].stage          = s->history[k].stage;
    rows[k].iteration      = s->history[k].iteration;
    rows[k].time           = s->history[k].time;
    rows[k].marginal_error = s->history[k].marginal_error;
    rows[k].dual_objective = s->history[k].dual_objective;
    rows[k].eps            = s->history[k].eps;
  }
  PetscCall(OTH5HistoryType(&type));
  file_space = H5Screate_simple(1, &len, NULL);
  dset       = H5Dcreate2(file, "/history", type, file_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(dset);
  mem_space = H5Scopy(file_space);
  if (s->rank != 0 || len == 0) {
    OTH5Call(H5Sselect_none(file_space));
    OTH5Call(H5Sselect_none(mem_space));
  }
  OTH5Call(H5Dwrite(dset, type, mem_space, file_space, xfer, rows));
  PetscCall(PetscFree(rows));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Tclose(type));
  PetscCall(OTH5WriteAttrString(dset, "stages",
                                "stage 0 = sinkhorn sweep, 1 = newton step; time in seconds since the solve began; eps of the iteration (it changes along an eps schedule)"));
  OTH5Call(H5Dclose(dset));
  PetscFunctionReturn(0);
}

double OTStateBytes(OTSolver s)
{
  return 8.0 * ((double)s->problem->n + (double)s->problem->m) + (double)sizeof(OTHistoryFileRow) * (double)s->history_len;
}

PetscErrorCode OTH5WriteState(OTSolver s, hid_t file, hid_t xfer)
{
  OTProblem pb = s->problem;

  PetscFunctionBegin;
  PetscCall(OTH5WriteVectorPart(file, "/f", pb->n, pb->row_start, pb->n_local, s->f, xfer));
  PetscCall(OTH5WriteVectorPart(file, "/g", pb->m, 0, s->rank == 0 ? pb->m : 0, s->g, xfer));
  PetscCall(WriteHistory(s, file, xfer));
  PetscFunctionReturn(0);
}

/* What the result file is written from: the solver, and the plan's entries counted before the file is created. */
typedef struct {
  OTPlanCount plan; /* with -ot_plan_threshold */
  OTSolver    s;
} ResultContext;

/* The contents of the result file (an OTH5WriteFn; ctx is a ResultContext). */
static PetscErrorCode WriteResultFile(void *ctx, hid_t file, hid_t xfer)
{
  OTSolver           s       = ((ResultContext *)ctx)->s;
  const OTPlanCount *plan    = &((ResultContext *)ctx)->plan;
  OTProblem          pb      = s->problem;
  OTResult          *r       = &s->result;
  const PetscReal    reals[] = {r->transport_cost, r->dual_objective, r->entropic_cost, r->marginal_error, r->eps, s->tol, r->solve_time, r->solve_time_restored};
  const PetscReal    bounds[] = {r->lower_bound, r->upper_bound}, unbalanced[] = {r->unbalanced_objective, r->transported_mass, r->kl_a, r->kl_b, OTRelaxed(pb->rho_a) ? pb->rho_a : INFINITY, OTRelaxed(pb->rho_b) ? pb->rho_b : INFINITY};
  const PetscReal    distances[] = {r->wasserstein, r->wasserstein_lower, r->wasserstein_upper};
  const PetscInt     ints[]      = {s->eps_stages, r->iterations_sinkhorn, r->iterations_newton, r->converged ? 1 : 0, pb->n, pb->m, s->size};

  PetscFunctionBegin;
  PetscCall(OTH5WriteState(s, file, xfer));
  PetscCall(OTH5WriteAttrsReal(file, "transport_cost dual_objective entropic_cost marginal_error eps tol solve_time solve_time_restored", 8, reals));
  /* the certified bounds hold for balanced transport; an unbalanced problem has its objective and KL terms instead */
  if (OTProblemIsUnbalanced(pb)) PetscCall(OTH5WriteAttrsReal(file, "unbalanced_objective transported_mass kl_a kl_b rho_a rho_b", 6, unbalanced));
  else PetscCall(OTH5WriteAttrsReal(file, "lower_bound upper_bound", 2, bounds));
  /* the Wasserstein values for costs |x - y|^p only, the divergence where it was computed */
  if (!PetscIsNanReal(r->wasserstein)) PetscCall(OTH5WriteAttrsReal(file, "wasserstein wasserstein_lower wasserstein_upper", 3, distances));
  if (s->variant == OT_SINKHORN_TRUNCATED) PetscCall(OTH5WriteAttrDouble(file, "dropped_mass", r->dropped_mass));
  if (!PetscIsNanReal(r->sinkhorn_divergence)) {
    PetscCall(OTH5WriteAttrDouble(file, "sinkhorn_divergence", r->sinkhorn_divergence));
    PetscCall(OTH5WriteAttrInt(file, "divergence_converged", r->divergence_converged ? 1 : 0));
  }
  PetscCall(OTH5WriteAttrsInt(file, "eps_stages iterations_sinkhorn iterations_newton converged n m ranks", 7, ints));
  PetscCall(OTH5WriteAttrString(file, "status", r->status));
  PetscCall(OTH5WriteAttrString(file, "problem", pb->source));
  if (s->plan_threshold >= 0) PetscCall(OTWritePlan(s, plan, file, xfer));
  PetscFunctionReturn(0);
}

PetscErrorCode OTSolverWriteResult(OTSolver s, const char filename[])
{
  ResultContext ctx = {.s = s}; /* no plan: nothing counted */
  PetscBool     written;
  char          reason[512];

  PetscFunctionBegin;
  PetscCall(PetscLogStagePush(OT_STAGE_WRITE));
  PetscCall(PetscLogEventBegin(OT_EVENT_WRITE, 0, 0, 0, 0));
  if (s->plan_threshold >= 0) PetscCall(OTPlanCountEntries(s, &ctx.plan));
  PetscCall(OTH5WriteAtomicTry(s->comm, filename, OTStateBytes(s) + ctx.plan.bytes, WriteResultFile, &ctx, &written, reason, sizeof(reason)));
  PetscCall(PetscLogEventEnd(OT_EVENT_WRITE, 0, 0, 0, 0));
  PetscCall(PetscLogStagePop());
  PetscCheck(written, s->comm, OT_ERR_WRITE, "result %s not written: %s (its temporary file was removed)", filename, reason);
  PetscFunctionReturn(0);
}
