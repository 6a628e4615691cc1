/* The command line's check for options that nothing reads (options_check.c): part of the otsolve program, not of
   the library. */
#ifndef OT_OPTIONS_CHECK_H
#define OT_OPTIONS_CHECK_H
#include <otsolve.h>

/* Reads every option the program reads, in any mode (the program's own, the problem's, the solver's), on throwaway
   objects. */
typedef PetscErrorCode (*OTOptionsReader)(void);

/* Fails (OT_ERR_INPUT, on every rank) if the options database holds an option that nothing of otsolve reads, or the
   command line an argument that is neither an option nor an option's value; the message names each, with the
   closest option that -help lists. Runs read_all (with -help set, its output captured), so call it first, before
   the program reads its options and before anything is loaded; not with -help. Collective. */
PetscErrorCode OTOptionsCheckUnused(MPI_Comm comm, OTOptionsReader read_all);

/* Reads the Newton solver's KSP and PC options (prefix -ot_newton_) on a throwaway KSP, so that -help lists them
   (the solver creates its KSP only at its first Newton step). Collective. */
PetscErrorCode OTOptionsReadNewton(MPI_Comm comm);

#endif
