/* Problem objects: their sizes and row split, arrays given in memory, and the checks every loaded problem passes
   (docs/design.md §2, §3). Reading them from HDF5 is in problem_read.c. */
#include "otimpl.h"
#include <math.h>
#include <string.h>
#include <unistd.h>

PetscErrorCode OTRowSplit(PetscInt n, PetscMPIInt size, PetscMPIInt rank, PetscInt *row_start, PetscInt *row_end)
{
  PetscInt base, extra;

  PetscFunctionBegin;
  PetscCheck(size > 0 && rank >= 0 && rank < size, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "rank %d out of range for %d ranks", rank, size);
  base       = n / size;
  extra      = n % size;
  *row_start = rank * base + PetscMin((PetscInt)rank, extra);
  *row_end   = *row_start + base + (rank < extra ? 1 : 0);
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemCreate(MPI_Comm comm, OTProblem *problem)
{
  OTProblem pb;

  PetscFunctionBegin;
  PetscCall(PetscNew(&pb));
  PetscCall(OTInitializePackage()); /* the log stage of loading */
  pb->comm     = comm;
  pb->refct    = 1;
  pb->mass_tol = 1e-6;
  pb->rho_a    = INFINITY;
  pb->rho_b    = INFINITY;
  PetscCallMPI(MPI_Comm_rank(comm, &pb->rank));
  PetscCallMPI(MPI_Comm_size(comm, &pb->size));
  PetscCall(PetscStrcpy(pb->source, "(empty)"));
  PetscCall(PetscStrcpy(pb->weight_names[0], "/a"));
  PetscCall(PetscStrcpy(pb->weight_names[1], "/b"));
  *problem = pb;
  PetscFunctionReturn(0);
}

PetscErrorCode OTNodeMemory(MPI_Comm comm, double local_bytes, double *node_bytes, double *available, PetscMPIInt *node_ranks)
{
  MPI_Comm node;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  PetscCallMPI(MPI_Comm_size(node, node_ranks));
  PetscCallMPI(MPI_Allreduce(&local_bytes, node_bytes, 1, MPI_DOUBLE, MPI_SUM, node));
  PetscCallMPI(MPI_Comm_free(&node));
  *available = (double)sysconf(_SC_AVPHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  PetscFunctionReturn(0);
}

/* The bytes of memory this node gives the job, the same in every run on it: its physical memory, or the limit of the
   memory cgroup (v1 or v2) this process runs in where lower (a batch system's --mem). */
static double NodeMemoryLimit(void)
{
  double limit = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  FILE  *groups = fopen("/proc/self/cgroup", "r");
  char   line[PETSC_MAX_PATH_LEN];

  if (!groups) return limit;
  while (fgets(line, sizeof(line), groups)) { /* "id:controllers:path" */
    char *controllers = strchr(line, ':'), *path = controllers ? strchr(controllers + 1, ':') : NULL, file[2 * PETSC_MAX_PATH_LEN];

    if (!path) continue;
    *path++ = '\0';
    path[strcspn(path, "\n")] = '\0';
    controllers++;
    for (char *cut = path + strlen(path);;) { /* the cgroup, then each parent up to the mount's root (a container's view) */
      FILE  *f;
      double value;

      *cut = '\0';
      if (!controllers[0]) (void)snprintf(file, sizeof(file), "/sys/fs/cgroup%s/memory.max", path);
      else if (strstr(controllers, "memory")) (void)snprintf(file, sizeof(file), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", path);
      else break;
      if ((f = fopen(file, "r"))) {
        if (fscanf(f, "%lf", &value) == 1 && value > 0) limit = PetscMin(limit, value); /* ("max": no limit) */
        (void)fclose(f);
      }
      if (cut == path) break;
      cut = strrchr(path, '/');
    }
  }
  (void)fclose(groups);
  return limit;
}

PetscErrorCode OTNodeMemoryShare(OTProblem pb, double *bytes)
{
  double      local, node_bytes, available, limit;
  PetscMPIInt node_ranks;

  PetscFunctionBegin;
  PetscCall(OTProblemMemoryBytes(pb, &local));
  PetscCall(OTNodeMemory(pb->comm, local, &node_bytes, &available, &node_ranks));
  limit = NodeMemoryLimit();
  *bytes = OT_MEMORY_SHARE * PetscMax(0.0, limit - node_bytes) / node_ranks;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, bytes, 1, MPI_DOUBLE, MPI_MIN, pb->comm));
  PetscCall(PetscInfo(NULL, "Memory share per rank %.6g MB: a quarter of the node's %.6g MB less the problem's %.6g MB, over %d rank(s) (least of all nodes)\n",
                      *bytes / 1e6, limit / 1e6, node_bytes / 1e6, node_ranks));
  PetscFunctionReturn(0);
}

/* Refuses, on every rank and before allocating, a problem whose rows of C would not fit in the memory
   this node has available, shared among the ranks on it. */
static PetscErrorCode CheckMemory(OTProblem pb)
{
  PetscMPIInt node_ranks;
  double      local_bytes = 8.0 * (double)pb->n_local * (double)pb->m, node_bytes, available, total = 8.0 * (double)pb->n * (double)pb->m;
  int         fits;

  PetscFunctionBegin;
  PetscCall(OTNodeMemory(pb->comm, local_bytes, &node_bytes, &available, &node_ranks));
  fits = node_bytes <= 0.9 * available;
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &fits, 1, MPI_INT, MPI_LAND, pb->comm));
  PetscCheck(fits, pb->comm, OT_ERR_INPUT,
             "%s: the cost matrix (%" PetscInt_FMT " x %" PetscInt_FMT ") needs %.3g GB in all, %.3g GB per rank on %d rank(s); a node here has %.3g GB "
             "available, so at least %.0f nodes like it are needed (run on more nodes, or on point clouds when that input is supported)",
             pb->source, pb->n, pb->m, total / 1e9, local_bytes / 1e9, pb->size, available / 1e9, ceil(total / (0.9 * available)));
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemMemoryBytes(OTProblem pb, double *bytes)
{
  PetscFunctionBegin;
  *bytes = 8.0 * ((double)pb->n_local + (double)pb->m); /* a, b */
  if (pb->cost_kind == OT_COST_DENSE) *bytes += 8.0 * (double)pb->n_local * (double)pb->m;
  else *bytes += 8.0 * ((double)pb->n_local * (double)pb->dim + (double)pb->m * (double)pb->dim + (double)pb->m);
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemSetFromOptions(OTProblem pb)
{
  PetscReal rho     = INFINITY;
  PetscBool rho_set = PETSC_FALSE;

  PetscFunctionBegin;
  PetscOptionsBegin(pb->comm, NULL, "Problem input (otsolve)", NULL);
  PetscCall(PetscOptionsReal("-ot_mass_tol", "Accepted relative difference of the total masses sum(a) and sum(b); b is then scaled to sum(a)", NULL,
                             pb->mass_tol, &pb->mass_tol, NULL));
  PetscCall(PetscOptionsBool("-ot_normalize", "Rescale both measures to total mass 1 (with a warning if their masses differ) instead of refusing a mismatch",
                             NULL, pb->normalize, &pb->normalize, NULL));
  PetscCall(PetscOptionsReal("-ot_unbalanced", "Unbalanced transport: both marginals relaxed by rho KL (POT's reg_m), so the masses may differ; inf: balanced",
                             NULL, rho, &rho, &rho_set));
  if (rho_set) pb->rho_a = pb->rho_b = rho;
  PetscCall(PetscOptionsReal("-ot_unbalanced_a", "Unbalanced transport: the KL penalty of P1 against a alone (inf: a hard constraint)", NULL, pb->rho_a, &pb->rho_a,
                             NULL));
  PetscCall(PetscOptionsReal("-ot_unbalanced_b", "Unbalanced transport: the KL penalty of P^T 1 against b alone (inf: a hard constraint)", NULL, pb->rho_b,
                             &pb->rho_b, NULL));
  PetscOptionsEnd();
  PetscCheck(pb->mass_tol >= 0, pb->comm, OT_ERR_INPUT, "-ot_mass_tol must be non-negative, got %g", (double)pb->mass_tol);
  PetscCheck(pb->rho_a > 0 && pb->rho_b > 0 && !PetscIsNanReal(pb->rho_a) && !PetscIsNanReal(pb->rho_b), pb->comm, OT_ERR_INPUT,
             "-ot_unbalanced: rho must be positive (or inf for a hard marginal constraint); got rho_a = %g, rho_b = %g", (double)pb->rho_a, (double)pb->rho_b);
  PetscFunctionReturn(0);
}

/* New sizes n x m: the row split, and the weights a (owned rows) and b (all columns), allocated anew. Not collective. */
static PetscErrorCode Resize(OTProblem pb, PetscInt n, PetscInt m)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(pb->a));
  PetscCall(PetscFree(pb->b));
  pb->n = n;
  pb->m = m;
  PetscCall(OTRowSplit(n, pb->size, pb->rank, &pb->row_start, &pb->row_end));
  pb->n_local = pb->row_end - pb->row_start;
  PetscCall(PetscMalloc1(pb->n_local, &pb->a));
  PetscCall(PetscMalloc1(m, &pb->b));
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemAllocate(OTProblem pb, PetscInt n, PetscInt m)
{
  PetscFunctionBegin;
  PetscCheck(n > 0 && m > 0, pb->comm, OT_ERR_INPUT, "%s: the problem is empty (n = %" PetscInt_FMT ", m = %" PetscInt_FMT "); both sizes must be positive",
             pb->source, n, m);
  PetscCall(PetscFree(pb->cost));
  PetscCall(Resize(pb, n, m));
  pb->cost_kind = OT_COST_DENSE;
  PetscCall(CheckMemory(pb));
  PetscCall(PetscMalloc1((size_t)pb->n_local * (size_t)m, &pb->cost));
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemGetSizes(OTProblem pb, PetscInt *n, PetscInt *m, PetscInt *row_start, PetscInt *row_end)
{
  PetscFunctionBegin;
  if (n) *n = pb->n;
  if (m) *m = pb->m;
  if (row_start) *row_start = pb->row_start;
  if (row_end) *row_end = pb->row_end;
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemGetCostMax(OTProblem pb, PetscReal *cost_max)
{
  PetscFunctionBegin;
  *cost_max = pb->cost_max;
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemGetSource(OTProblem pb, const char *source[])
{
  PetscFunctionBegin;
  *source = pb->source;
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemGetPoints(OTProblem pb, PetscInt *d, const PetscReal *x[], const PetscReal *y_t[], const char *cost[])
{
  PetscBool points = (PetscBool)(pb->cost_kind != OT_COST_DENSE);

  PetscFunctionBegin;
  if (d) *d = points ? pb->dim : 0;
  if (x) *x = points ? pb->x : NULL;
  if (y_t) *y_t = points ? pb->y_t : NULL;
  if (cost) *cost = points ? pb->cost_name : OTCostKinds[OT_COST_DENSE];
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemGetWeights(OTProblem pb, const PetscReal *a[], const PetscReal *b[])
{
  PetscFunctionBegin;
  if (a) *a = pb->a;
  if (b) *b = pb->b;
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemGetRelaxation(OTProblem pb, PetscReal *rho_a, PetscReal *rho_b)
{
  PetscFunctionBegin;
  if (rho_a) *rho_a = OTRelaxed(pb->rho_a) ? pb->rho_a : INFINITY;
  if (rho_b) *rho_b = OTRelaxed(pb->rho_b) ? pb->rho_b : INFINITY;
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemDestroy(OTProblem *problem)
{
  PetscFunctionBegin;
  if (!*problem) PetscFunctionReturn(0);
  if (--(*problem)->refct > 0) {
    *problem = NULL;
    PetscFunctionReturn(0);
  }
  PetscCall(PetscFree((*problem)->cost));
  PetscCall(PetscFree((*problem)->x));
  PetscCall(PetscFree((*problem)->y_t));
  PetscCall(PetscFree((*problem)->cost_row));
  PetscCall(PetscFree((*problem)->a));
  PetscCall(PetscFree((*problem)->b));
  PetscCall(PetscFree(*problem));
  PetscFunctionReturn(0);
}

PetscErrorCode OTFirstBadIndex(MPI_Comm comm, int64_t local_first, int64_t *first)
{
  int64_t key = local_first < 0 ? INT64_MAX : local_first;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(&key, first, 1, MPI_INT64_T, MPI_MIN, comm));
  if (*first == INT64_MAX) *first = -1;
  PetscFunctionReturn(0);
}

/* Sizes, row split and the point-cloud blocks of a problem: owned rows of X, all of Y transposed, a cost
   row, the weights. Frees what an earlier load left. Not collective. */
PetscErrorCode OTProblemAllocatePoints(OTProblem pb, PetscInt n, PetscInt m, PetscInt d)
{
  PetscFunctionBegin;
  PetscCall(PetscFree(pb->x));
  PetscCall(PetscFree(pb->y_t));
  PetscCall(PetscFree(pb->cost_row));
  PetscCall(Resize(pb, n, m));
  pb->dim = d;
  PetscCall(PetscMalloc1((size_t)pb->n_local * (size_t)d, &pb->x));
  PetscCall(PetscMalloc1((size_t)m * (size_t)d, &pb->y_t));
  PetscCall(PetscMalloc1(m, &pb->cost_row));
  PetscFunctionReturn(0);
}

PetscErrorCode OTProblemSetPoints(OTProblem pb, PetscInt n, PetscInt m, PetscInt d, const PetscReal X[], const PetscReal Y[], const PetscReal a[],
                                  const PetscReal b[], const char cost[], const char source[])
{
  PetscBool valid;
  int       bad = 0;

  PetscFunctionBegin;
  PetscCall(PetscStrncpy(pb->source, source, sizeof(pb->source)));
  PetscCheck(n > 0 && m > 0 && d > 0, pb->comm, OT_ERR_INPUT, "%s: empty point clouds (n = %" PetscInt_FMT ", m = %" PetscInt_FMT ", d = %" PetscInt_FMT ")",
             source, n, m, d);
  PetscCall(OTCostParse(cost, &pb->cost_kind, &pb->cost_power, &valid));
  PetscCheck(valid && pb->cost_kind != OT_COST_DENSE, pb->comm, OT_ERR_INPUT,
             "%s: cost '%s' is not supported; use sqeuclidean, euclidean, or pnorm:P with P > 0", source, cost);
  PetscCall(PetscStrncpy(pb->cost_name, cost, sizeof(pb->cost_name)));
  PetscCall(OTProblemAllocatePoints(pb, n, m, d));
  PetscCall(PetscArraycpy(pb->x, X + (size_t)pb->row_start * (size_t)d, (size_t)pb->n_local * (size_t)d));
  for (PetscInt j = 0; j < m; j++)
    for (PetscInt k = 0; k < d; k++) pb->y_t[(size_t)k * (size_t)m + j] = Y[(size_t)j * (size_t)d + k];
  for (PetscInt i = 0; i < pb->n_local; i++) pb->a[i] = a ? a[pb->row_start + i] : 1.0 / n;
  for (PetscInt j = 0; j < m; j++) pb->b[j] = b ? b[j] : 1.0 / m;
  for (size_t k = 0; k < (size_t)pb->n_local * (size_t)d; k++) bad |= !isfinite(pb->x[k]);
  for (size_t k = 0; k < (size_t)m * (size_t)d; k++) bad |= !isfinite(pb->y_t[k]);
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_LOR, pb->comm));
  PetscCheck(!bad, pb->comm, OT_ERR_INPUT, "%s: a coordinate is NaN or infinite", source);
  pb->symmetric = (PetscBool)(X == Y && a == b && n == m && pb->rho_a == pb->rho_b); /* OTSolveSymmetric passes the same arrays */
  PetscCall(OTProblemFinalize(pb, source));
  PetscFunctionReturn(0);
}

/* First index in v[0..len) that is not finite (kind 0) or negative (kind 1), or -1. */
static int64_t FirstBad(const PetscReal *v, size_t len, int kind)
{
  for (size_t k = 0; k < len; k++) {
    if (kind == 0 && !isfinite(v[k])) return (int64_t)k;
    if (kind == 1 && v[k] < 0.0) return (int64_t)k;
  }
  return -1;
}

PetscErrorCode OTProblemFinalize(OTProblem pb, const char what[])
{
  size_t    local_len = (size_t)pb->n_local * (size_t)pb->m;
  int64_t   bad;
  PetscReal sums[2] = {0, 0}, mass_a, mass_b, mass_tol = pb->mass_tol, local_max = 0.0;
  PetscBool any_zero_local = PETSC_FALSE, any_zero, normalize = pb->normalize, unbalanced = OTProblemIsUnbalanced(pb);

  PetscFunctionBegin;
  for (int kind = 0; kind < 2 && pb->cost_kind == OT_COST_DENSE; kind++) { /* point clouds: coordinates checked at load, costs >= 0 by construction */
    int64_t local = FirstBad(pb->cost, local_len, kind);

    PetscCall(OTFirstBadIndex(pb->comm, local < 0 ? -1 : (int64_t)pb->row_start * pb->m + local, &bad));
    PetscCheck(bad < 0, pb->comm, OT_ERR_INPUT, "%s: dataset /C has a %s entry at row %lld, column %lld; costs must be finite and non-negative", what,
               kind == 0 ? "NaN or infinite" : "negative", (long long)(bad / pb->m), (long long)(bad % pb->m));
  }
  for (int kind = 0; kind < 2; kind++) {
    int64_t local = FirstBad(pb->a, (size_t)pb->n_local, kind);

    PetscCall(OTFirstBadIndex(pb->comm, local < 0 ? -1 : pb->row_start + local, &bad));
    PetscCheck(bad < 0, pb->comm, OT_ERR_INPUT, "%s: dataset %s has a %s entry at index %lld; weights must be finite and positive", what,
               pb->weight_names[0], kind == 0 ? "NaN or infinite" : "negative", (long long)bad);
    bad = FirstBad(pb->b, (size_t)pb->m, kind);
    PetscCheck(bad < 0, pb->comm, OT_ERR_INPUT, "%s: dataset %s has a %s entry at index %lld; weights must be finite and positive", what,
               pb->weight_names[1], kind == 0 ? "NaN or infinite" : "negative", (long long)bad);
  }
  for (PetscInt i = 0; i < pb->n_local; i++) {
    sums[0] += pb->a[i];
    if (pb->a[i] == 0.0) any_zero_local = PETSC_TRUE;
  }
  PetscCallMPI(MPI_Allreduce(&any_zero_local, &any_zero, 1, MPIU_BOOL, MPI_LOR, pb->comm));
  for (PetscInt j = 0; j < pb->m; j++) {
    sums[1] += pb->b[j];
    if (pb->b[j] == 0.0) any_zero = PETSC_TRUE;
  }
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &sums[0], 1, MPIU_REAL, MPIU_SUM, pb->comm));
  mass_a = sums[0];
  mass_b = sums[1];
  PetscCheck(mass_a > 0 && mass_b > 0, pb->comm, OT_ERR_INPUT, "%s: the weights %s are all zero", what, mass_a > 0 ? "/b" : "/a");
  PetscCheck(!any_zero, pb->comm, OT_ERR_INPUT,
             "%s: a weight in /a or /b is zero; the log-domain solver needs positive weights: drop the zero-weight points or add a small floor", what);
  if (unbalanced) { /* the masses may differ: each side keeps its own (-ot_normalize: each rescaled to 1) */
    if (normalize) {
      for (PetscInt i = 0; i < pb->n_local; i++) pb->a[i] /= mass_a;
      for (PetscInt j = 0; j < pb->m; j++) pb->b[j] /= mass_b;
      mass_a = mass_b = 1.0;
    }
    pb->mass = PetscMax(mass_a, mass_b);
  } else {
    PetscCheck(normalize || PetscAbsReal(mass_a - mass_b) <= mass_tol * PetscMax(mass_a, mass_b), pb->comm, OT_ERR_INPUT,
               "%s: total masses differ: sum(a) = %.17g, sum(b) = %.17g (relative difference %.3g > -ot_mass_tol %g; -ot_normalize rescales both to 1, "
               "-ot_unbalanced RHO relaxes the marginals)",
               what, (double)mass_a, (double)mass_b, (double)(PetscAbsReal(mass_a - mass_b) / PetscMax(mass_a, mass_b)), (double)mass_tol);
    if (normalize) {
      /* both measures become probability measures: costs and bounds are then per unit of mass */
      if (PetscAbsReal(mass_a - mass_b) > mass_tol * PetscMax(mass_a, mass_b))
        PetscCall(PetscPrintf(pb->comm, "otsolve: warning: %s: total masses differ (sum(a) = %.17g, sum(b) = %.17g); -ot_normalize rescales both to 1\n", what,
                              (double)mass_a, (double)mass_b));
      for (PetscInt i = 0; i < pb->n_local; i++) pb->a[i] /= mass_a;
      mass_a = 1.0; /* b is divided by its own mass just below */
    }
    /* within the tolerance, scale b so that both masses agree to rounding: the plan's marginals must be consistent */
    for (PetscInt j = 0; j < pb->m; j++) pb->b[j] *= mass_a / mass_b;
    pb->mass = mass_a;
  }
  if (pb->cost_kind == OT_COST_DENSE) { /* decided alike on every rank (a rank without rows has cost == NULL) */
    for (size_t k = 0; k < local_len; k++) local_max = PetscMax(local_max, pb->cost[k]);
    PetscCallMPI(MPI_Allreduce(&local_max, &pb->cost_max, 1, MPIU_REAL, MPIU_MAX, pb->comm));
  } else PetscCall(OTProblemComputePointsCostMax(pb));
  PetscFunctionReturn(0);
}
