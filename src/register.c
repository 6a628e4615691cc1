/*
  Package registration: otsolve's log stages and events (so that -log_view shows where the time goes) and the
  name tables of every enum the options and files use, as PETSc keeps them in dlregisksp.c and libCEED in
  ceed-types.c. A new enum value is added here and in its enum; a new cost kind in the cost-kind table below.
*/
#include "otimpl.h"

PetscLogStage OT_STAGE_LOAD, OT_STAGE_SINKHORN_LOG, OT_STAGE_NEWTON_LOG, OT_STAGE_FINISH, OT_STAGE_WRITE;
PetscLogEvent OT_EVENT_READ_COST, OT_EVENT_SWEEP, OT_EVENT_TRUNCATE, OT_EVENT_COLUMN_REDUCE, OT_EVENT_EVALUATE, OT_EVENT_BOUNDS, OT_EVENT_WRITE, OT_EVENT_SPARSIFY,
  OT_EVENT_ASSEMBLE, OT_EVENT_KSP, OT_EVENT_LINE_SEARCH;

/* PETSc's layout of an enum name table: the names, the enum's name, the prefix of its values, NULL */
const char *const OTMethods[]          = {"sns", "sinkhorn", "OTMethod", "OT_METHOD_", NULL};
const char *const OTSinkhornVariants[] = {"auto", "log", "absorb", "truncated", "OTSinkhornVariant", "OT_SINKHORN_", NULL};
const char *const OTTruncationValuesNames[] = {"auto", "stored", "computed", "OTTruncationValues", "OT_TRUNCATION_VALUES_", NULL};
const char *const OTKernelPrecisions[] = {"double", "single", "OTKernelPrecision", "OT_KERNEL_", NULL};
const char *const OTNewtonAssemblies[] = {"split", "setvalues", "OTNewtonAssembly", "OT_NEWTON_ASSEMBLY_", NULL};
const char *const OTCostKinds[]        = {"dense", "sqeuclidean", "euclidean", "pnorm", "OTCostKind", "OT_COST_", NULL};

/* The ground costs between points: the name in files and options, and the exponent p of cost = |x - y|^p
   (0: the exponent follows the name, pnorm:P). */
static const struct {
  const char *name;
  OTCostKind  kind;
  PetscReal   power;
} ot_cost_table[] = {
  {"sqeuclidean", OT_COST_SQEUCLIDEAN, 2.0},
  {"euclidean",   OT_COST_EUCLIDEAN,   1.0},
  {"pnorm:",      OT_COST_PNORM,       0.0},
};

PetscErrorCode OTCostParse(const char text[], OTCostKind *kind, PetscReal *power, PetscBool *valid)
{
  PetscFunctionBegin;
  *valid = PETSC_FALSE;
  *kind  = OT_COST_DENSE;
  *power = 0.0;
  for (size_t t = 0; t < sizeof(ot_cost_table) / sizeof(ot_cost_table[0]); t++) {
    size_t len = strlen(ot_cost_table[t].name);

    if (ot_cost_table[t].power > 0) {
      if (strcmp(text, ot_cost_table[t].name)) continue;
      *kind  = ot_cost_table[t].kind;
      *power = ot_cost_table[t].power;
      *valid = PETSC_TRUE;
      break;
    }
    if (strncmp(text, ot_cost_table[t].name, len) || !text[len]) continue;
    {
      char  *end;
      double p = strtod(text + len, &end);

      if (*end || !isfinite(p) || !(p > 0)) break;
      *kind  = ot_cost_table[t].kind;
      *power = (PetscReal)p;
      *valid = PETSC_TRUE;
      /* P = 2 and P = 1 are the named costs: computed without pow, exactly as those */
      for (size_t named = 0; named < sizeof(ot_cost_table) / sizeof(ot_cost_table[0]); named++)
        if (ot_cost_table[named].power == p) *kind = ot_cost_table[named].kind;
      break;
    }
  }
  PetscFunctionReturn(0);
}

PetscReal OTCostExponent(OTCostKind kind, PetscReal power)
{
  return kind == OT_COST_DENSE ? 0.0 : power;
}

static PetscBool ot_package_initialized = PETSC_FALSE;

static PetscErrorCode OTFinalizePackage(void)
{
  PetscFunctionBegin;
  ot_package_initialized = PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode OTInitializePackage(void)
{
  PetscClassId classid;

  PetscFunctionBegin;
  if (ot_package_initialized) PetscFunctionReturn(0);
  ot_package_initialized = PETSC_TRUE;
  PetscCall(PetscClassIdRegister("OT Solver", &classid));
  PetscCall(PetscLogStageRegister("OT Load", &OT_STAGE_LOAD));
  PetscCall(PetscLogStageRegister("OT Sinkhorn", &OT_STAGE_SINKHORN_LOG));
  PetscCall(PetscLogStageRegister("OT Newton", &OT_STAGE_NEWTON_LOG));
  PetscCall(PetscLogStageRegister("OT Finish", &OT_STAGE_FINISH));
  PetscCall(PetscLogStageRegister("OT Write", &OT_STAGE_WRITE));
  PetscCall(PetscLogEventRegister("OTReadCost", classid, &OT_EVENT_READ_COST));
  PetscCall(PetscLogEventRegister("OTSinkhornSweep", classid, &OT_EVENT_SWEEP));
  PetscCall(PetscLogEventRegister("OTTruncate", classid, &OT_EVENT_TRUNCATE));
  PetscCall(PetscLogEventRegister("OTColumnReduce", classid, &OT_EVENT_COLUMN_REDUCE));
  PetscCall(PetscLogEventRegister("OTEvaluate", classid, &OT_EVENT_EVALUATE));
  PetscCall(PetscLogEventRegister("OTBounds", classid, &OT_EVENT_BOUNDS));
  PetscCall(PetscLogEventRegister("OTWriteResult", classid, &OT_EVENT_WRITE));
  PetscCall(PetscLogEventRegister("OTSparsify", classid, &OT_EVENT_SPARSIFY));
  PetscCall(PetscLogEventRegister("OTAssemble", classid, &OT_EVENT_ASSEMBLE));
  PetscCall(PetscLogEventRegister("OTKSPSolve", classid, &OT_EVENT_KSP));
  PetscCall(PetscLogEventRegister("OTLineSearch", classid, &OT_EVENT_LINE_SEARCH));
  PetscCall(PetscRegisterFinalize(OTFinalizePackage));
  PetscFunctionReturn(0);
}
