/*
  The command line's check: an option that no part of otsolve reads (a misspelt -ot_epss, a -problme) ends the run
  before anything is loaded, with one message that names every such option and the closest option otsolve knows,
  instead of a solve of something else with defaults (docs/design.md §4).

  PETSc marks an option used when some code queries it, and PetscOptionsLeftGet lists the others. The program reads
  all its own options, the problem's and the solver's up front, in every mode (one problem, -pairs, a restart);
  what is read only later is accounted for here:
  - the Newton system's KSP and PC options (prefix -ot_newton_, newton_step.c), read when the first Newton step sets
    up its KSP, which may never happen (-ot_method sinkhorn, a solve that converges in the warm-up): a throwaway KSP
    with that prefix and Newton's defaults (CG, Jacobi) reads them now, and one for each nested solver named on the
    command line (-ot_newton_sub_pc_type: the blocks of bjacobi or asm; mg_levels_, fieldsplit_NAME_, ...);
  - the few PETSc options that PETSc 3.18 reads only when something is viewed or at PetscFinalize (LateOptions).

  The dry pass runs before the program reads its options, with -help set and the standard output captured: each
  read then also prints its option's name, as -help does. The suggestion is the name nearest in edit distance among
  these, so the names come from the code that reads the options, with no second list to keep in step with it.
*/
#include "options_check.h"
#include <petscksp.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NEWTON_PREFIX "ot_newton_" /* KSPSetOptionsPrefix in OTNewtonSetUp (newton_step.c) */

/* Read by PETSc 3.18 only later (names without the dash): at PetscFinalize, or when the Newton step creates its
   matrix, index sets and scatters or solves. Found by running a Newton solve with each option name in PETSc's
   library of the families -ksp_, -pc_ (with the Newton prefix), -mat_, -vec, -sf_, -is_, -log_, -options_, -malloc_
   and comparing what this dry pass leaves unread with what -options_left reports after the solve. */
static const char *const LateOptions[] = {"options_left",    "options_view",
                                          "get_total_flops", NEWTON_PREFIX "ksp_converged_reason",
                                          "mat_view",        "mat_no_inode",
                                          "mat_inode_limit", "mat_no_unroll",
                                          "mat_seqaij_type", "matmult_vecscatter_view",
                                          "is_view",         "sf_type",
                                          "sf_rank_order",   "vecscatter_merge"};

/* Options PETSc reads at PetscInitialize, which -help lists there, not in the program's blocks: for suggestions only. */
static const char *const InitialOptions[] = {"help", "version", "options_file", "log_view", "info", "malloc_debug", "malloc_dump", "memory_view"};

/* A nested solver under the Newton prefix, and the types PETSc gives it: the throwaway KSP reads their options. */
typedef struct {
  const char *word, *ksp_type, *pc_type;
  PetscBool   named; /* a name follows: fieldsplit_0_, fieldsplit_u_ (others may have a number: mg_levels_1_) */
} NestedSolver;

static const NestedSolver NestedSolvers[] = {
  {"sub_",        KSPPREONLY,   PCILU, PETSC_FALSE},
  {"mg_levels_",  KSPCHEBYSHEV, PCSOR, PETSC_FALSE},
  {"mg_coarse_",  KSPPREONLY,   PCLU,  PETSC_FALSE},
  {"fieldsplit_", KSPPREONLY,   PCILU, PETSC_TRUE },
  {"redundant_",  KSPPREONLY,   PCLU,  PETSC_FALSE},
  {"telescope_",  KSPPREONLY,   PCLU,  PETSC_FALSE},
};

typedef struct {
  char   **names;
  PetscInt count, capacity;
} NameList;

static PetscErrorCode NameListAdd(NameList *list, const char name[])
{
  PetscBool same = PETSC_FALSE;

  PetscFunctionBegin;
  for (PetscInt k = 0; k < list->count && !same; k++) PetscCall(PetscStrcasecmp(list->names[k], name, &same));
  if (same) PetscFunctionReturn(0);
  if (list->count == list->capacity) {
    char **grown;

    list->capacity = PetscMax(64, 2 * list->capacity);
    PetscCall(PetscMalloc1(list->capacity, &grown));
    if (list->count) PetscCall(PetscArraycpy(grown, list->names, list->count));
    PetscCall(PetscFree(list->names));
    list->names = grown;
  }
  PetscCall(PetscStrallocpy(name, &list->names[list->count++]));
  PetscFunctionReturn(0);
}

static PetscErrorCode NameListDestroy(NameList *list)
{
  PetscFunctionBegin;
  for (PetscInt k = 0; k < list->count; k++) PetscCall(PetscFree(list->names[k]));
  PetscCall(PetscFree(list->names));
  list->count = list->capacity = 0;
  PetscFunctionReturn(0);
}

/* A KSP and its PC with this prefix read their options, as a solver of these types would (with Newton's tolerances
   where asked: -help then shows its defaults); then go. Collective on comm. */
static PetscErrorCode ProbeKSP(MPI_Comm comm, const char prefix[], const char ksp_type[], const char pc_type[], PetscBool newton_tolerances)
{
  KSP ksp;
  PC  pc;

  PetscFunctionBegin;
  PetscCall(KSPCreate(comm, &ksp));
  PetscCall(KSPSetOptionsPrefix(ksp, prefix));
  PetscCall(KSPSetType(ksp, ksp_type));
  PetscCall(KSPGetPC(ksp, &pc));
  PetscCall(PCSetType(pc, pc_type));
  if (newton_tolerances) PetscCall(KSPSetTolerances(ksp, 1e-6, 1e-300, PETSC_DEFAULT, 1000));
  PetscCall(KSPSetFromOptions(ksp));
  PetscCall(KSPDestroy(&ksp));
  PetscFunctionReturn(0);
}

/* If name is a nested solver's option, -ot_newton_WORDS_ksp_... or _pc_..., its prefix (ot_newton_WORDS_) and the
   types of its innermost solver; else prefix[0] = 0. */
static PetscErrorCode NestedPrefix(const char name[], char prefix[], size_t len, const NestedSolver **nested)
{
  size_t    at = sizeof(NEWTON_PREFIX) - 1, name_len;
  PetscBool newton, found = PETSC_TRUE;

  PetscFunctionBegin;
  prefix[0] = 0;
  *nested   = NULL;
  PetscCall(PetscStrncmp(name, NEWTON_PREFIX, at, &newton));
  if (!newton) PetscFunctionReturn(0);
  PetscCall(PetscStrlen(name, &name_len));
  while (found) {
    PetscBool ksp, pc;

    PetscCall(PetscStrncmp(name + at, "ksp_", 4, &ksp));
    PetscCall(PetscStrncmp(name + at, "pc_", 3, &pc));
    if (ksp || pc) break;
    found = PETSC_FALSE;
    for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(NestedSolvers) && !found; k++) {
      size_t word_len = strlen(NestedSolvers[k].word);

      PetscCall(PetscStrncmp(name + at, NestedSolvers[k].word, word_len, &found));
      if (!found) continue;
      at += word_len;
      *nested = &NestedSolvers[k];
      if (NestedSolvers[k].named) {
        while (at < name_len && name[at] != '_') at++; /* the split's name */
        if (at < name_len) at++;
      } else {
        size_t digits = at;

        while (digits < name_len && isdigit((unsigned char)name[digits])) digits++;
        if (digits > at && digits < name_len && name[digits] == '_') at = digits + 1; /* a level's number */
      }
    }
  }
  if (!found || !*nested || at >= len) PetscFunctionReturn(0);
  PetscCall(PetscStrncpy(prefix, name, at + 1));
  PetscFunctionReturn(0);
}

/* The nested solvers named by options nobody has read yet (-ot_newton_sub_pc_type ...) read their options. */
static PetscErrorCode ReadNestedOptions(void)
{
  PetscInt count;
  char   **names, **values;

  PetscFunctionBegin;
  PetscCall(PetscOptionsLeftGet(NULL, &count, &names, &values));
  for (PetscInt k = 0; k < count; k++) {
    const NestedSolver *nested;
    char                prefix[256];

    PetscCall(NestedPrefix(names[k], prefix, sizeof(prefix), &nested));
    if (prefix[0]) PetscCall(ProbeKSP(PETSC_COMM_SELF, prefix, nested->ksp_type, nested->pc_type, PETSC_FALSE));
  }
  PetscCall(PetscOptionsLeftRestore(NULL, &count, &names, &values));
  PetscFunctionReturn(0);
}

/* The option names in -help's lines ("  -ot_eps <...>: ..."), added to the list. */
static PetscErrorCode AddHelpNames(const char *text, NameList *list)
{
  PetscFunctionBegin;
  for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    const char *p = line;
    char        name[256];
    size_t      len = 0;

    while (*p == ' ') p++;
    if (p == line || p[0] != '-' || !isalpha((unsigned char)p[1])) continue;
    for (p++; (isalnum((unsigned char)*p) || *p == '_') && len < sizeof(name) - 1; p++) name[len++] = *p;
    name[len] = 0;
    PetscCall(NameListAdd(list, name));
  }
  PetscFunctionReturn(0);
}

/* The dry pass: every option of every part of otsolve is read (read_all, the Newton KSP, nested solvers) with -help
   set and the standard output captured (a temporary file in place of file descriptor 1: PETSc prints help both to
   PETSC_STDOUT and to stdout), so that each read also names its option: the list of known names (complete on rank 0,
   where PETSc prints help and the message is printed). */
static PetscErrorCode DryPass(MPI_Comm comm, OTOptionsReader read_all, NameList *known)
{
  FILE          *capture = tmpfile();
  int            saved;
  long           len;
  char          *text = NULL;
  PetscErrorCode ierr, clear_ierr;

  PetscFunctionBegin;
  PetscCheck(capture, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot capture -help's output: no temporary file (tmpfile: %s)", strerror(errno));
  fflush(stdout);
  saved = dup(STDOUT_FILENO);
  PetscCheck(saved >= 0 && dup2(fileno(capture), STDOUT_FILENO) >= 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot capture -help's output (dup: %s)",
             strerror(errno));
  ierr = PetscOptionsSetValue(NULL, "-help", NULL);
  if (!ierr) ierr = read_all();
  if (!ierr) ierr = OTOptionsReadNewton(comm);
  if (!ierr) ierr = ReadNestedOptions();
  fflush(stdout);
  (void)dup2(saved, STDOUT_FILENO);
  close(saved);
  clear_ierr = PetscOptionsClearValue(NULL, "-help");
  if (!ierr && fseek(capture, 0, SEEK_END) == 0 && (len = ftell(capture)) >= 0 && (text = (char *)malloc((size_t)len + 1))) {
    rewind(capture);
    text[fread(text, 1, (size_t)len, capture)] = 0;
  }
  fclose(capture);
  if (!ierr) ierr = clear_ierr;
  if (!ierr) ierr = AddHelpNames(text, known);
  free(text);
  PetscCall(ierr); /* an error of read_all (a bad value) is the run's error, as without this pass */
  for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(InitialOptions); k++) PetscCall(NameListAdd(known, InitialOptions[k]));
  for (size_t k = 0; k < PETSC_STATIC_ARRAY_LENGTH(LateOptions); k++) PetscCall(NameListAdd(known, LateOptions[k]));
  PetscFunctionReturn(0);
}

/* The options nobody has read (names without the dash), less those PETSc reads later. */
static PetscErrorCode UnusedOptions(NameList *unknown)
{
  PetscInt count;
  char   **names, **values;

  PetscFunctionBegin;
  PetscCall(PetscOptionsLeftGet(NULL, &count, &names, &values));
  for (PetscInt k = 0; k < count; k++) {
    PetscBool late = PETSC_FALSE;

    for (size_t l = 0; l < PETSC_STATIC_ARRAY_LENGTH(LateOptions) && !late; l++) PetscCall(PetscStrcasecmp(names[k], LateOptions[l], &late));
    if (!late) PetscCall(NameListAdd(unknown, names[k]));
  }
  PetscCall(PetscOptionsLeftRestore(NULL, &count, &names, &values));
  PetscFunctionReturn(0);
}

/* Command-line arguments that are neither options nor the value right after one (otsolve pair.h5). */
static PetscErrorCode StrayArguments(NameList *stray)
{
  int       argc;
  char    **args;
  PetscBool after_key = PETSC_FALSE;

  PetscFunctionBegin;
  PetscCall(PetscGetArgs(&argc, &args));
  for (int k = 1; k < argc; k++) {
    PetscBool key;

    PetscCall(PetscOptionsValidKey(args[k], &key));
    if (!key && !after_key) PetscCall(NameListAdd(stray, args[k]));
    after_key = key; /* a key after a key: the first had no value */
  }
  PetscFunctionReturn(0);
}

/* Optimal string alignment distance (edits and transpositions of neighbours), ignoring case. */
static size_t EditDistance(const char a[], const char b[])
{
  size_t la = strlen(a), lb = strlen(b), row[3][257];

  if (la > 256 || lb > 256) return (size_t)-1;
  for (size_t j = 0; j <= lb; j++) row[0][j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t *now = row[i % 3], *before = row[(i + 2) % 3], *twice = row[(i + 1) % 3];

    now[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);

      now[j] = PetscMin(PetscMin(before[j] + 1, now[j - 1] + 1), before[j - 1] + cost);
      if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
          tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]))
        now[j] = PetscMin(now[j], twice[j - 2] + 1);
    }
  }
  return row[la % 3][lb];
}

/* name without the -ot_newton_ or -ot_ it may begin with (-eps for -ot_eps, -ksp_rtol for -ot_newton_ksp_rtol) */
static const char *Unprefixed(const char name[])
{
  if (!strncmp(name, NEWTON_PREFIX, sizeof(NEWTON_PREFIX) - 1)) return name + sizeof(NEWTON_PREFIX) - 1;
  if (!strncmp(name, "ot_", 3)) return name + 3;
  return name;
}

/* The known name nearest to name, or NULL where none is within max(2, a third of its length) edits. */
static const char *Nearest(const char name[], const NameList *known)
{
  const char *best      = NULL;
  size_t      best_dist = PetscMax(2, strlen(name) / 3) + 1;

  for (PetscInt k = 0; k < known->count; k++) {
    const char *c    = known->names[k];
    size_t      dist = PetscMin(EditDistance(name, c), PetscMin(EditDistance(Unprefixed(name), c), EditDistance(name, Unprefixed(c))));

    if (dist < best_dist) best = c, best_dist = dist;
  }
  return best;
}

/* The one line that names the unknown options (at most 8, then how many more) and the stray arguments. */
static PetscErrorCode Message(const NameList *unknown, const NameList *stray, const NameList *known, char message[], size_t len)
{
  PetscBool unhelped = PETSC_FALSE;
  char      item[640];

  PetscFunctionBegin;
  message[0] = 0;
  if (unknown->count) PetscCall(PetscStrlcat(message, unknown->count > 1 ? "unknown options" : "unknown option", len));
  for (PetscInt k = 0; k < PetscMin(unknown->count, 8); k++) {
    const char *nearest = Nearest(unknown->names[k], known);

    if (nearest) PetscCall(PetscSNPrintf(item, sizeof(item), "%s -%s (did you mean -%s?)", k ? "," : "", unknown->names[k], nearest));
    else PetscCall(PetscSNPrintf(item, sizeof(item), "%s -%s", k ? "," : "", unknown->names[k]));
    unhelped = (PetscBool)(unhelped || !nearest);
    PetscCall(PetscStrlcat(message, item, len));
  }
  if (unknown->count > 8) {
    PetscCall(PetscSNPrintf(item, sizeof(item), " and %" PetscInt_FMT " more", unknown->count - 8));
    PetscCall(PetscStrlcat(message, item, len));
  }
  for (PetscInt k = 0; k < PetscMin(stray->count, 8); k++) {
    PetscCall(PetscSNPrintf(item, sizeof(item), "%s%s%s", k ? ", " : (unknown->count ? "; " : ""),
                            k ? "" : "arguments that are neither options nor their values: ", stray->names[k]));
    PetscCall(PetscStrlcat(message, item, len));
  }
  if (unhelped || stray->count) PetscCall(PetscStrlcat(message, " (otsolve -help lists the options)", len));
  PetscFunctionReturn(0);
}

PetscErrorCode OTOptionsReadNewton(MPI_Comm comm)
{
  PetscFunctionBegin;
  PetscCall(ProbeKSP(comm, NEWTON_PREFIX, KSPCG, PCJACOBI, PETSC_TRUE)); /* as OTNewtonSetUp makes it */
  PetscFunctionReturn(0);
}

PetscErrorCode OTOptionsCheckUnused(MPI_Comm comm, OTOptionsReader read_all)
{
  NameList unknown = {NULL, 0, 0}, stray = {NULL, 0, 0}, known = {NULL, 0, 0};
  PetscInt found, found_anywhere;
  char     message[1024] = "";

  PetscFunctionBegin;
  PetscCall(DryPass(comm, read_all, &known));
  PetscCall(UnusedOptions(&unknown));
  PetscCall(StrayArguments(&stray));
  found = unknown.count + stray.count;
  /* every rank holds the same options: this only makes sure that all decide alike */
  PetscCallMPI(MPI_Allreduce(&found, &found_anywhere, 1, MPIU_INT, MPI_MAX, comm));
  if (found_anywhere) PetscCall(Message(&unknown, &stray, &known, message, sizeof(message)));
  PetscCall(NameListDestroy(&unknown));
  PetscCall(NameListDestroy(&stray));
  PetscCall(NameListDestroy(&known));
  PetscCheck(!found_anywhere, comm, OT_ERR_INPUT, "%s", message[0] ? message : "unknown options on some ranks (otsolve -help lists the options)");
  PetscFunctionReturn(0);
}
