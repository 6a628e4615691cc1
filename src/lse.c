/* Log-sum-exp in (max, scaled sum) form, and its MPI reduction: how column log-sum-exps combine across ranks. */
#include "otimpl.h"

static MPI_Datatype ot_logsum_type = MPI_DATATYPE_NULL;
static MPI_Op       ot_logsum_op   = MPI_OP_NULL;

void OTLogSumMerge(OTLogSum *into, const OTLogSum *from)
{
  if (from->sum <= 0.0) return; /* empty: nothing to add */
  if (into->sum <= 0.0) {
    *into = *from;
    return;
  }
  if (from->max > into->max) {
    into->sum = into->sum * PetscExpReal(into->max - from->max) + from->sum;
    into->max = from->max;
  } else {
    into->sum += from->sum * PetscExpReal(from->max - into->max);
  }
}

PetscReal OTLogSumValue(const OTLogSum *s)
{
  return s->sum > 0.0 ? s->max + PetscLogReal(s->sum) : -INFINITY;
}

static void MPIAPI LogSumReduce(void *in, void *inout, int *len, MPI_Datatype *type)
{
  const OTLogSum *from = (const OTLogSum *)in;
  OTLogSum       *into = (OTLogSum *)inout;

  (void)type;
  for (int k = 0; k < *len; k++) OTLogSumMerge(&into[k], &from[k]);
}

static PetscErrorCode LogSumFreeMPI(void)
{
  PetscFunctionBegin;
  PetscCallMPI(MPI_Op_free(&ot_logsum_op));
  PetscCallMPI(MPI_Type_free(&ot_logsum_type));
  PetscFunctionReturn(0);
}

PetscErrorCode OTLogSumGetMPI(MPI_Datatype *type, MPI_Op *op)
{
  PetscFunctionBegin;
  if (ot_logsum_op == MPI_OP_NULL) {
    PetscCallMPI(MPI_Type_contiguous(2, MPI_DOUBLE, &ot_logsum_type));
    PetscCallMPI(MPI_Type_commit(&ot_logsum_type));
    PetscCallMPI(MPI_Op_create(LogSumReduce, 1, &ot_logsum_op));
    PetscCall(PetscRegisterFinalize(LogSumFreeMPI));
  }
  *type = ot_logsum_type;
  *op   = ot_logsum_op;
  PetscFunctionReturn(0);
}
