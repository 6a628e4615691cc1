/* Atomic files (h5io.c): the temporary name, the sync-and-rename, and the removal of the temporary on every failure. */
#include "test_common.h"
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

TestSuite(h5io, .init = OTTestInit, .fini = OTTestFini);

static void WriteText(const char *path, const char *text)
{
  FILE *fp = fopen(path, "w");

  cr_assert(fp, "cannot write %s", path);
  fputs(text, fp);
  fclose(fp);
}

static int ReadsAs(const char *path, const char *text)
{
  char  line[64] = "";
  FILE *fp       = fopen(path, "r");

  if (!fp) return 0;
  if (!fgets(line, sizeof(line), fp)) line[0] = '\0';
  fclose(fp);
  return !strcmp(line, text);
}

/* Removes path, a file or a directory with what it holds. */
static void RemoveAll(const char *path)
{
  DIR           *dir = opendir(path);
  struct dirent *entry;

  if (!dir) {
    unlink(path);
    return;
  }
  while ((entry = readdir(dir))) {
    char inner[PETSC_MAX_PATH_LEN];

    if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
    snprintf(inner, sizeof(inner), "%s/%s", path, entry->d_name);
    RemoveAll(inner);
  }
  closedir(dir);
  rmdir(path);
}

/* A fresh directory and, in it, the path of a file named name. */
static void TempPath(const char *name, char dir[64], char path[PETSC_MAX_PATH_LEN])
{
  snprintf(dir, 64, "/tmp/ot-h5io-XXXXXX");
  cr_assert(mkdtemp(dir), "mkdtemp failed");
  snprintf(path, PETSC_MAX_PATH_LEN, "%s/%s", dir, name);
}

Test(h5io, temporary_name_is_the_file_and_rank_0s_pid)
{
  char tmpname[PETSC_MAX_PATH_LEN + 32], expect[PETSC_MAX_PATH_LEN + 32];

  cr_assert(OTFileTemporaryName(PETSC_COMM_SELF, "dir/out.h5", tmpname, sizeof(tmpname)) == 0);
  snprintf(expect, sizeof(expect), "dir/out.h5.tmp.%d", (int)getpid());
  cr_assert_str_eq(tmpname, expect);
}

/* A temporary holding "new" committed over a file holding "old", the write having failed or not: the file must then
   read as expected, and the temporary be gone. */
static void CommitCase(PetscBool failed, const char *expected)
{
  char dir[64], path[PETSC_MAX_PATH_LEN], tmpname[PETSC_MAX_PATH_LEN + 32];

  TempPath("out.txt", dir, path);
  WriteText(path, "old");
  cr_assert(OTFileTemporaryName(PETSC_COMM_SELF, path, tmpname, sizeof(tmpname)) == 0);
  WriteText(tmpname, "new");
  cr_assert(OTFileCommit(PETSC_COMM_SELF, tmpname, path, failed) == 0);
  cr_assert(ReadsAs(path, expected));
  cr_assert(access(tmpname, F_OK) != 0, "the temporary is still there");
  RemoveAll(dir);
}

Test(h5io, commit_replaces_the_file_and_leaves_no_temporary)
{
  CommitCase(PETSC_FALSE, "new");
}

Test(h5io, failed_write_removes_the_temporary_and_keeps_the_old_file)
{
  CommitCase(PETSC_TRUE, "old");
}

Test(h5io, failed_rename_is_a_write_error_and_removes_the_temporary)
{
  char dir[64], path[PETSC_MAX_PATH_LEN], inside[PETSC_MAX_PATH_LEN + 16], tmpname[PETSC_MAX_PATH_LEN + 32];

  /* the final name is a non-empty directory: rename(2) refuses to replace it */
  TempPath("taken", dir, path);
  cr_assert(mkdir(path, 0700) == 0);
  snprintf(inside, sizeof(inside), "%s/keep", path);
  WriteText(inside, "keep");
  cr_assert(OTFileTemporaryName(PETSC_COMM_SELF, path, tmpname, sizeof(tmpname)) == 0);
  WriteText(tmpname, "new");
  cr_assert(PetscPushErrorHandler(PetscReturnErrorHandler, NULL) == 0);
  cr_assert_eq(OTFileCommit(PETSC_COMM_SELF, tmpname, path, PETSC_FALSE), OT_ERR_WRITE);
  cr_assert(PetscPopErrorHandler() == 0);
  cr_assert(access(tmpname, F_OK) != 0, "the temporary of a failed rename is still there");
  cr_assert(ReadsAs(inside, "keep"));
  RemoveAll(dir);
}

static PetscErrorCode WriteAnswer(void *ctx, hid_t file, hid_t xfer)
{
  (void)xfer;
  PetscFunctionBegin;
  PetscCall(OTH5WriteAttrInt(file, "answer", *(PetscInt *)ctx));
  PetscFunctionReturn(0);
}

static PetscErrorCode RefuseInput(void *ctx, hid_t file, hid_t xfer)
{
  (void)ctx;
  (void)file;
  (void)xfer;
  PetscFunctionBegin;
  SETERRQ(PETSC_COMM_SELF, OT_ERR_INPUT, "refused, as every rank would");
}

Test(h5io, atomic_hdf5_file_is_written_whole)
{
  char      dir[64], path[PETSC_MAX_PATH_LEN], tmpname[PETSC_MAX_PATH_LEN + 32];
  PetscInt  answer = 42;
  long long got    = 0;
  hid_t     file, attr;

  TempPath("out.h5", dir, path);
  cr_assert(OTH5WriteAtomic(PETSC_COMM_SELF, path, 64.0, WriteAnswer, &answer) == 0);
  cr_assert(OTFileTemporaryName(PETSC_COMM_SELF, path, tmpname, sizeof(tmpname)) == 0);
  cr_assert(access(tmpname, F_OK) != 0, "the temporary is still there");
  file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  cr_assert(file >= 0);
  attr = H5Aopen(file, "answer", H5P_DEFAULT);
  cr_assert(H5Aread(attr, H5T_NATIVE_LLONG, &got) >= 0);
  H5Aclose(attr);
  H5Fclose(file);
  cr_assert_eq(got, 42);
  RemoveAll(dir);
}

Test(h5io, atomic_hdf5_file_refused_by_the_writer_leaves_the_old_file_and_no_temporary)
{
  char dir[64], path[PETSC_MAX_PATH_LEN], tmpname[PETSC_MAX_PATH_LEN + 32];

  TempPath("out.h5", dir, path);
  WriteText(path, "old");
  cr_assert(PetscPushErrorHandler(PetscReturnErrorHandler, NULL) == 0);
  cr_assert_eq(OTH5WriteAtomic(PETSC_COMM_SELF, path, 64.0, RefuseInput, NULL), OT_ERR_INPUT);
  cr_assert(PetscPopErrorHandler() == 0);
  cr_assert(OTFileTemporaryName(PETSC_COMM_SELF, path, tmpname, sizeof(tmpname)) == 0);
  cr_assert(access(tmpname, F_OK) != 0, "the temporary of a refused write is still there");
  cr_assert(ReadsAs(path, "old"));
  RemoveAll(dir);
}

/* More bytes than any disk has (ext4 and tmpfs refuse the reservation at once): the write fails cleanly, as an
   outcome with the operating system's reason, the old file stays and no temporary is left. */
Test(h5io, atomic_hdf5_file_without_room_fails_cleanly_and_keeps_the_old_file)
{
  char      dir[64], path[PETSC_MAX_PATH_LEN], tmpname[PETSC_MAX_PATH_LEN + 32], reason[512];
  PetscInt  answer  = 42;
  PetscBool written = PETSC_TRUE;

  TempPath("out.h5", dir, path);
  WriteText(path, "old");
  cr_assert(OTH5WriteAtomicTry(PETSC_COMM_SELF, path, 1e18, WriteAnswer, &answer, &written, reason, sizeof(reason)) == 0);
  cr_assert(!written, "a file of 1e18 bytes was written");
  cr_assert(strstr(reason, "no room") != NULL, "reason: %s", reason);
  cr_assert(OTFileTemporaryName(PETSC_COMM_SELF, path, tmpname, sizeof(tmpname)) == 0);
  cr_assert(access(tmpname, F_OK) != 0, "the temporary of a failed write is still there");
  cr_assert(ReadsAs(path, "old"));
  cr_assert(PetscPushErrorHandler(PetscReturnErrorHandler, NULL) == 0);
  cr_assert_eq(OTH5WriteAtomic(PETSC_COMM_SELF, path, 1e18, WriteAnswer, &answer), OT_ERR_WRITE);
  cr_assert(PetscPopErrorHandler() == 0);
  RemoveAll(dir);
}
