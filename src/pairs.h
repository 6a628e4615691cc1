/*
  -pairs (many pairs in one run), private to its two files:
    pairs.c     the solves: the eps rule, the first pass over the pairs (max C), the tasks spread over groups of
                ranks, the self terms, input errors made collective, OTSolvePairs;
    pairs_io.c  the files: the list of measure files, each measure read and checked, and the distance matrix file.
  What they share: a measure file's description, the order of a task's numbers, the eps rule and what the
  distance matrix file holds besides the matrices.
*/
#ifndef OTPAIRS_H
#define OTPAIRS_H

#include <otsolve.h>

/* What the run needs to know of one measure: its line in the list, where its points and weights are (a weights file
   "" for uniform weights), their sizes. */
typedef struct {
  char     path[PETSC_MAX_PATH_LEN]; /* the line as written: FILE, FILE:/path, or FILE:/path WFILE:/wpath */
  char     x_file[PETSC_MAX_PATH_LEN], x_name[256], w_file[PETSC_MAX_PATH_LEN], w_name[256];
  PetscInt points, dim;
} OTMeasureFile;

/* The numbers each task reports, in this order in the results (a self term fills only the dual objective, the
   converged flag, the iterations and the seconds). */
enum {
  PAIR_COST,
  PAIR_LOWER,
  PAIR_UPPER,
  PAIR_ERROR,
  PAIR_DUAL,
  PAIR_CONVERGED,
  PAIR_ITERATIONS,
  PAIR_SECONDS,
  PAIR_OBJECTIVE, /* unbalanced transport: the unbalanced objective */
  PAIR_MASS,      /* unbalanced transport: the transported mass */
  PAIR_DIV_MASS,  /* unbalanced divergence: the transported mass with weights to the power 1 + eps/rho (divergence.c) */
  PAIR_DIV_OK,    /* and whether that solve converged */
  PAIR_FIELDS
};

/* The eps rule of a run: -ot_eps E for every pair (given), else R x max C with R = -ot_eps_rel (0.01): the largest
   max C over all pairs, or with -pairs_eps_per_pair each pair's own. */
typedef struct {
  PetscBool given, per_pair;
  PetscReal eps, rel;
} EpsRule;

/* What the distance matrix file holds besides the matrices. */
typedef struct {
  const char          *cost;
  PetscReal            power; /* p of the cost |x - y|^p: /wasserstein = transport_cost^(1/p) */
  PetscInt             count, pairs, unconverged, unconverged_self;
  PetscMPIInt          groups;
  PetscBool            divergence;
  PetscBool            unbalanced; /* -ot_unbalanced: objective and transported mass instead of bounds and W_p */
  PetscReal            rho;        /* unbalanced with -ot_divergence: the one rho of both sides */
  const EpsRule       *rule;
  PetscReal            eps;      /* the one eps of all pairs (not with -pairs_eps_per_pair) */
  const PetscReal     *pair_eps; /* per pair, the eps it was solved at (/eps with -pairs_eps_per_pair) */
  PetscReal            cost_max; /* the largest max C over all pairs */
  const OTMeasureFile *files;
  double               start;
} PairsSummary;

/* Reads the list of measure files (rank 0, broadcast), checks every file, and refuses an output that is one of them:
   the same on every rank, each failure an OT_ERR_INPUT on every rank of comm. Free *files with PetscFree(). */
PETSC_INTERN PetscErrorCode OTPairsReadList(MPI_Comm comm, const char list[], const char output[], PetscInt *count, OTMeasureFile **files);
/* Reads one checked measure on this rank alone: /X and /a (or uniform weights). Free with PetscFree2(*points, *weights). */
PETSC_INTERN PetscErrorCode OTPairsReadMeasure(const OTMeasureFile *mf, PetscReal **points, PetscReal **weights);
/* Writes the distance matrix file output from the results (rank 0, serial HDF5, whole or not at all: OTFileWriteSerial,
   collective on comm); *written and reason as OTFileWriteSerial gives them. */
PETSC_INTERN PetscErrorCode OTPairsWriteOutput(MPI_Comm comm, const char output[], const PairsSummary *sum, const PetscReal results[], PetscBool *written,
                                               char reason[], size_t reason_size);

#endif
