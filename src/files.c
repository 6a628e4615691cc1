/*
  Files that are written whole or not at all, and what happens when storage fails (docs/design.md §3).

  Every file otsolve and otgen write is written under a temporary name, FILE.tmp.<pid of rank 0>, then made
  durable and renamed over FILE: a reader, or a kill or crash at any moment, sees the old file or the new one,
  whole. The rename is written once, here (OTFileCommit): rank 0 of a communicator syncs the closed temporary to
  disk, renames it, and syncs the directory, so that the data reach the disk before the name does.

  Storage failures (no space, quota exceeded, I/O error, permission) are outcomes, not crashes: before a file is
  written, rank 0 allocates its size on the disk and gives it back (ProbeSpace), so that a full disk or quota is
  found at once, before any collective write; a write step that fails anyway is agreed on every rank right after
  it (AgreeOnStep), so no rank is left inside a collective call; the temporary is removed, and the callers get the
  reason. A collective MPI-IO file passes its communicator (OTH5WriteAtomicTry); a file that one rank writes alone,
  the communicator whose rank 0 writes it (OTFileWriteSerial), or PETSC_COMM_SELF.
*/
#define _GNU_SOURCE /* fallocate (Linux), beyond the project's POSIX level */
#include "otimpl.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Why the last collective write step failed (the same text on every rank of its communicator), and the first
   error message raised inside a writer while OTH5WriteAtomicTry runs it. */
static char ot_write_failure[512];
static char ot_writer_message[512];

/* The communicator of a file opened with MPI-IO (a duplicate, to be freed), or PETSC_COMM_SELF (not to be freed). */
static PetscErrorCode FileComm(hid_t file, MPI_Comm *comm, PetscBool *dup)
{
  hid_t    fapl = H5Fget_access_plist(file);
  MPI_Info info = MPI_INFO_NULL;

  PetscFunctionBegin;
  *comm = PETSC_COMM_SELF;
  *dup  = PETSC_FALSE;
  if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_MPIO && H5Pget_fapl_mpio(fapl, comm, &info) >= 0) {
    *dup = PETSC_TRUE;
    if (info != MPI_INFO_NULL) PetscCallMPI(MPI_Info_free(&info));
  }
  if (fapl >= 0) OTH5Call(H5Pclose(fapl));
  PetscFunctionReturn(0);
}

/* After a write step that every rank of comm takes together: did it fail on any rank? Then *failed on every rank,
   and ot_write_failure says what and why (the operating system's reason where the step left one in errno).
   Collective: so that no rank goes on into the next collective call while another has left. */
static PetscErrorCode AgreeOnStep(MPI_Comm comm, PetscBool step_failed, int error, const char what[], PetscBool *failed)
{
  int local[2] = {step_failed ? 1 : 0, step_failed ? (error ? error : EIO) : 0}, all[2];

  PetscFunctionBegin;
  PetscCallMPI(MPI_Allreduce(local, all, 2, MPI_INT, MPI_MAX, comm));
  *failed = (PetscBool)(all[0] != 0);
  if (*failed) snprintf(ot_write_failure, sizeof(ot_write_failure), "%s: %s", what, strerror(all[1]));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5AgreeOnFileStep(hid_t file, PetscBool step_failed, int error, const char what[])
{
  MPI_Comm       comm;
  PetscBool      dup, failed;
  PetscErrorCode ierr;

  PetscFunctionBegin;
  PetscCall(FileComm(file, &comm, &dup));
  ierr = AgreeOnStep(comm, step_failed, error, what, &failed);
  if (dup) PetscCallMPI(MPI_Comm_free(&comm));
  PetscCall(ierr);
  PetscCheck(!failed, PETSC_COMM_SELF, OT_ERR_WRITE, "%s", ot_write_failure); /* raised on every rank alike */
  PetscFunctionReturn(0);
}

/* --- paths --- */

/* The directory of path (".", or the part before the last slash) and its last component. */
static void SplitPath(const char path[], char dir[], size_t dir_len, const char **base)
{
  const char *slash = strrchr(path, '/');

  if (!slash) {
    snprintf(dir, dir_len, ".");
    *base = path;
  } else {
    snprintf(dir, dir_len, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    *base = slash + 1;
  }
}

PetscErrorCode OTFileSame(const char a[], const char b[], PetscBool *same)
{
  struct stat sa, sb;
  char        dir_a[PETSC_MAX_PATH_LEN], dir_b[PETSC_MAX_PATH_LEN], real_a[PATH_MAX], real_b[PATH_MAX];
  const char *base_a, *base_b;

  PetscFunctionBegin;
  *same = PETSC_FALSE;
  if (!a[0] || !b[0]) PetscFunctionReturn(0);
  if (stat(a, &sa) == 0 && stat(b, &sb) == 0) { /* both exist: the same file, whatever the names (links, ./, ..) */
    *same = (PetscBool)(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
    PetscFunctionReturn(0);
  }
  /* one does not exist yet: the same directory (resolved) and the same last component */
  SplitPath(a, dir_a, sizeof(dir_a), &base_a);
  SplitPath(b, dir_b, sizeof(dir_b), &base_b);
  if (!realpath(dir_a, real_a) || !realpath(dir_b, real_b)) PetscFunctionReturn(0);
  *same = (PetscBool)(!strcmp(real_a, real_b) && !strcmp(base_a, base_b));
  PetscFunctionReturn(0);
}

PetscErrorCode OTFileCheckSpace(MPI_Comm comm, const char path[], double bytes, const char option[])
{
  PetscMPIInt    rank;
  double         free_bytes = -1.0;
  char           dir[PETSC_MAX_PATH_LEN];
  const char    *base;
  struct statvfs fs;

  PetscFunctionBegin;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) {
    SplitPath(path, dir, sizeof(dir), &base);
    if (statvfs(dir, &fs) == 0) free_bytes = (double)fs.f_bavail * (double)fs.f_frsize;
  }
  PetscCallMPI(MPI_Bcast(&free_bytes, 1, MPI_DOUBLE, 0, comm));
  PetscCheck(free_bytes < 0 || free_bytes >= bytes, comm, OT_ERR_INPUT,
             "%s %s: the file needs at least %.0f bytes, and its file system has %.0f bytes free; free some space or write it elsewhere", option, path, bytes,
             free_bytes);
  PetscFunctionReturn(0);
}

/* --- atomic files --- */

PetscErrorCode OTFileTemporaryName(MPI_Comm comm, const char filename[], char tmpname[], size_t len)
{
  int pid = (int)getpid();

  PetscFunctionBegin;
  /* rank 0's pid on every rank: all ranks of a collective write open the same temporary */
  PetscCallMPI(MPI_Bcast(&pid, 1, MPI_INT, 0, comm));
  PetscCall(PetscSNPrintf(tmpname, len, "%s.tmp.%d", filename, pid));
  PetscFunctionReturn(0);
}

/* Syncs the closed file tmpname to disk and renames it to filename, then syncs the directory; returns 0, or
   the errno of the step that failed, named in *step. */
static int SyncAndRename(const char tmpname[], const char filename[], const char **step)
{
  char  dir[PETSC_MAX_PATH_LEN];
  char *slash;
  int   fd, error = 0;

  *step = "sync";
  fd    = open(tmpname, O_RDONLY);
  if (fd < 0) return errno;
  /* EINVAL: a file system that cannot sync (nothing to wait for) */
  if (fsync(fd) != 0 && errno != EINVAL) error = errno;
  close(fd);
  if (error) return error;
  *step = "rename";
  if (rename(tmpname, filename) != 0) return errno;
  /* the new name itself reaches the disk with its directory. Best effort: the file is in place by now, and
     some file systems cannot sync a directory */
  snprintf(dir, sizeof(dir), "%s", filename);
  slash = strrchr(dir, '/');
  if (!slash) snprintf(dir, sizeof(dir), ".");
  else slash[slash == dir ? 1 : 0] = '\0';
  fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  return 0;
}

/* The commit's outcome, agreed on every rank: 0, or the errno of the step that failed (named in *step). */
static PetscErrorCode Commit(MPI_Comm comm, const char tmpname[], const char filename[], PetscBool failed, int *error, const char **step)
{
  PetscMPIInt rank;
  int         any_failed = failed ? 1 : 0;

  PetscFunctionBegin;
  *error = 0;
  *step  = "rename";
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &any_failed, 1, MPI_INT, MPI_LOR, comm));
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0) {
    if (!any_failed) *error = SyncAndRename(tmpname, filename, step);
    if (any_failed || *error) (void)unlink(tmpname); /* no half-written or unsynced file stays behind */
  }
  PetscCallMPI(MPI_Bcast(error, 1, MPI_INT, 0, comm));
  PetscFunctionReturn(0);
}

PetscErrorCode OTFileCommit(MPI_Comm comm, const char tmpname[], const char filename[], PetscBool failed)
{
  int         error;
  const char *step;

  PetscFunctionBegin;
  PetscCall(Commit(comm, tmpname, filename, failed, &error, &step));
  PetscCheck(!error, comm, OT_ERR_WRITE, "%s not written: could not %s the finished file %s%s (%s); it was removed", filename, step, tmpname,
             strcmp(step, "rename") ? "" : " to it", strerror(error));
  PetscFunctionReturn(0);
}

/* Makes sure, on rank 0 and before any HDF5 call, that the disk (and the user's quota) has room for bytes: allocates
   them to the temporary file, then gives them back. Where there is no room this fails at once and cleanly, before
   the collective writes, which the MPI-IO layers cannot fail together (measured here on a full tmpfs: Open MPI's
   ROMIO hangs, its OMPIO reports success on some ranks, and HDF5 crashes at exit over the half-created file).
   Returns 0, or the errno; a file system that cannot allocate ahead (EOPNOTSUPP) is left to the writes themselves. */
static int ProbeSpace(const char tmpname[], double bytes)
{
  int error = 0;
#if defined(__linux__)
  int fd = open(tmpname, O_WRONLY | O_CREAT | O_TRUNC, 0666);

  if (fd < 0) return errno;
  if (bytes > 0 && fallocate(fd, 0, 0, (off_t)bytes) != 0) error = errno;
  if (error == EOPNOTSUPP || error == ENOSYS) error = 0;
  close(fd);
  (void)unlink(tmpname);
#else
  (void)tmpname;
  (void)bytes;
#endif
  return error;
}

/* An error handler for the writers run by OTH5WriteAtomicTry: keeps the first message, prints nothing (an expected
   failure is reported once, by the caller, in its own words). */
static PetscErrorCode KeepMessage(MPI_Comm comm, int line, const char *func, const char *file, PetscErrorCode code, PetscErrorType type, const char *message,
                                  void *ctx)
{
  (void)comm;
  (void)line;
  (void)func;
  (void)file;
  (void)ctx;
  if (type == PETSC_ERROR_INITIAL && !ot_writer_message[0]) snprintf(ot_writer_message, sizeof(ot_writer_message), "%s", message ? message : "unknown error");
  return code;
}

PetscErrorCode OTH5WriteAtomicTry(MPI_Comm comm, const char filename[], double bytes, OTH5WriteFn write, void *ctx, PetscBool *written, char reason[],
                                  size_t len)
{
  char           tmpname[PETSC_MAX_PATH_LEN + 32];
  hid_t          fapl, file, xfer;
  PetscErrorCode ierr;
  PetscBool      failed;
  int            error;
  const char    *step;

  PetscFunctionBegin;
  *written  = PETSC_FALSE;
  reason[0] = '\0';
  PetscCall(OTFileTemporaryName(comm, filename, tmpname, sizeof(tmpname)));
  {
    PetscMPIInt rank;
    double      total = bytes + 65536.0 + 0.01 * bytes; /* the data, and room for HDF5's metadata */
    char        what[128];

    PetscCallMPI(MPI_Comm_rank(comm, &rank));
    error = rank == 0 ? ProbeSpace(tmpname, total) : 0;
    PetscCall(PetscSNPrintf(what, sizeof(what), "no room for its %.0f bytes", total));
    PetscCall(AgreeOnStep(comm, (PetscBool)(error != 0), error, what, &failed));
    if (failed) {
      PetscCall(PetscSNPrintf(reason, len, "%s", ot_write_failure));
      PetscFunctionReturn(0);
    }
  }
  OTH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL));
  xfer = H5Pcreate(H5P_DATASET_XFER);
  OTH5Call(xfer);
  OTH5Call(H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE));
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  OTH5Call(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
  errno = 0;
  file  = H5Fcreate(tmpname, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  error = errno;
  OTH5Call(H5Pclose(fapl));
  PetscCall(AgreeOnStep(comm, (PetscBool)(file < 0), error, "cannot create the temporary file", &failed));
  if (failed) {
    OTH5Call(H5Pclose(xfer));
    if (file >= 0) (void)H5Fclose(file);
    PetscCall(Commit(comm, tmpname, filename, PETSC_TRUE, &error, &step)); /* removes whatever the failed create left */
    PetscCall(PetscSNPrintf(reason, len, "%s", ot_write_failure));
    PetscFunctionReturn(0);
  }
  /* the writer's errors are kept, not raised: the temporary goes first, and an I/O failure is an outcome */
  ot_writer_message[0] = '\0';
  PetscCall(PetscPushErrorHandler(KeepMessage, NULL));
  ierr = write(ctx, file, xfer);
  PetscCall(PetscPopErrorHandler());
  if (ierr && ierr != OT_ERR_WRITE && ierr != OT_ERR_INPUT) {
    /* maybe on this rank only: the others may be inside another collective call, so none may follow (the program
       ends the job); any rank can remove the temporary */
    (void)unlink(tmpname);
    SETERRQ(PETSC_COMM_SELF, ierr, "writing %s: %s", tmpname, ot_writer_message);
  }
  if (ierr) { /* found by every rank together: they close and remove the temporary together */
    (void)H5Pclose(xfer);
    (void)H5Fclose(file);
    PetscCall(Commit(comm, tmpname, filename, PETSC_TRUE, &error, &step));
    PetscCheck(ierr != OT_ERR_INPUT, comm, OT_ERR_INPUT, "%s", ot_writer_message);
    PetscCall(PetscSNPrintf(reason, len, "%s", ot_write_failure));
    PetscFunctionReturn(0);
  }
  OTH5Call(H5Pclose(xfer));
  errno  = 0;
  failed = (PetscBool)(H5Fclose(file) < 0); /* the metadata reach the file here */
  error  = errno;
  PetscCall(AgreeOnStep(comm, failed, error, "closing the file", &failed));
  PetscCall(Commit(comm, tmpname, filename, failed, &error, &step));
  if (failed) PetscCall(PetscSNPrintf(reason, len, "%s", ot_write_failure));
  else if (error) PetscCall(PetscSNPrintf(reason, len, "could not %s the finished file: %s", step, strerror(error)));
  else *written = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteAtomic(MPI_Comm comm, const char filename[], double bytes, OTH5WriteFn write, void *ctx)
{
  PetscBool written;
  char      reason[512];

  PetscFunctionBegin;
  PetscCall(OTH5WriteAtomicTry(comm, filename, bytes, write, ctx, &written, reason, sizeof(reason)));
  PetscCheck(written, comm, OT_ERR_WRITE, "%s not written: %s (its temporary file was removed)", filename, reason);
  PetscFunctionReturn(0);
}

PetscErrorCode OTFileWriteSerial(MPI_Comm comm, const char filename[], double bytes, OTFileWriteFn write, void *ctx, PetscBool *written, char reason[],
                                 size_t len)
{
  char        tmpname[PETSC_MAX_PATH_LEN + 32];
  PetscMPIInt rank;
  int         status[3] = {0, 0, 0}; /* no room (errno), the writer's error code, errno after it */
  int         error;
  const char *step;
  double      total = bytes + 65536.0 + 0.01 * bytes;

  PetscFunctionBegin;
  *written  = PETSC_FALSE;
  reason[0] = '\0';
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(OTFileTemporaryName(comm, filename, tmpname, sizeof(tmpname)));
  ot_writer_message[0] = '\0';
  if (rank == 0) {
    status[0] = ProbeSpace(tmpname, total);
    if (!status[0]) {
      (void)H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the reason is reported once, in the caller's words */
      PetscCall(PetscPushErrorHandler(KeepMessage, NULL));
      errno     = 0;
      status[1] = (int)write(ctx, tmpname);
      status[2] = errno;
      PetscCall(PetscPopErrorHandler());
    }
  }
  PetscCallMPI(MPI_Bcast(status, 3, MPI_INT, 0, comm));
  PetscCallMPI(MPI_Bcast(ot_writer_message, sizeof(ot_writer_message), MPI_CHAR, 0, comm));
  PetscCall(Commit(comm, tmpname, filename, (PetscBool)(status[0] || status[1]), &error, &step));
  PetscCheck(status[1] != OT_ERR_INPUT, comm, OT_ERR_INPUT, "%s", ot_writer_message);
  if (status[0]) PetscCall(PetscSNPrintf(reason, len, "no room for its %.0f bytes: %s", total, strerror(status[0])));
  else if (status[1]) PetscCall(PetscSNPrintf(reason, len, "%s%s%s", status[2] ? strerror(status[2]) : "", status[2] ? "; " : "", ot_writer_message));
  else if (error) PetscCall(PetscSNPrintf(reason, len, "could not %s the finished file: %s", step, strerror(error)));
  else *written = PETSC_TRUE;
  PetscFunctionReturn(0);
}
