/*
  Generic HDF5 helpers: attributes, partial (per-rank) reads and writes, checked opening, dataset shapes. Each
  collective data write is followed by an agreement on its outcome (files.c), so that a write that fails on some
  rank fails on every rank together; so is each read of user data (OTH5Read), which tells a filter this HDF5
  lacks from a damaged file.
*/
#include "otimpl.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Largest number of doubles one read moves per rank (keeps MPI-IO requests well below 2 GiB). */
#define OT_READ_CHUNK_DOUBLES (16 * 1024 * 1024)

/* A scalar attribute of the given native type. */
static PetscErrorCode WriteScalarAttr(hid_t loc, const char name[], hid_t type, const void *value)
{
  hid_t space, attr;

  PetscFunctionBegin;
  space = H5Screate(H5S_SCALAR);
  attr  = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Awrite(attr, type, value));
  OTH5Call(H5Aclose(attr));
  OTH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteAttrDouble(hid_t loc, const char name[], PetscReal value)
{
  double v = (double)value;

  PetscFunctionBegin;
  PetscCall(WriteScalarAttr(loc, name, H5T_NATIVE_DOUBLE, &v));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteAttrInt(hid_t loc, const char name[], PetscInt value)
{
  long long v = (long long)value;

  PetscFunctionBegin;
  PetscCall(WriteScalarAttr(loc, name, H5T_NATIVE_LLONG, &v));
  PetscFunctionReturn(0);
}

/* Scalar attributes named by the words of names (separated by spaces), values[k] of the given native type and size. */
static PetscErrorCode WriteScalarAttrs(hid_t loc, const char names[], hid_t type, size_t size, PetscInt count, const void *values)
{
  const char *word = names;

  PetscFunctionBegin;
  for (PetscInt k = 0; k < count; k++) {
    char   name[64];
    size_t len = strcspn(word, " ");

    PetscAssert(len > 0 && len < sizeof(name), PETSC_COMM_SELF, PETSC_ERR_PLIB, "attribute %" PetscInt_FMT " of \"%s\": no name, or too long", k, names);
    snprintf(name, sizeof(name), "%.*s", (int)len, word);
    PetscCall(WriteScalarAttr(loc, name, type, (const char *)values + k * size));
    word += len + (word[len] == ' ');
  }
  PetscAssert(!*word, PETSC_COMM_SELF, PETSC_ERR_PLIB, "more names than values in \"%s\"", names);
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteAttrsReal(hid_t loc, const char names[], PetscInt count, const PetscReal values[])
{
  PetscFunctionBegin;
  PetscCall(WriteScalarAttrs(loc, names, H5T_NATIVE_DOUBLE, sizeof(PetscReal), count, values));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteAttrsInt(hid_t loc, const char names[], PetscInt count, const PetscInt values[])
{
  long long *wide;

  PetscFunctionBegin;
  PetscCall(PetscMalloc1(count, &wide));
  for (PetscInt k = 0; k < count; k++) wide[k] = (long long)values[k];
  PetscCall(WriteScalarAttrs(loc, names, H5T_NATIVE_LLONG, sizeof(long long), count, wide));
  PetscCall(PetscFree(wide));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteAttrString(hid_t loc, const char name[], const char value[])
{
  hid_t space, type, attr;

  PetscFunctionBegin;
  /* variable-length UTF-8, as h5py writes strings: readers get str, not bytes */
  space = H5Screate(H5S_SCALAR);
  type  = H5Tcopy(H5T_C_S1);
  OTH5Call(H5Tset_size(type, H5T_VARIABLE));
  OTH5Call(H5Tset_cset(type, H5T_CSET_UTF8));
  attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  OTH5Call(attr);
  OTH5Call(H5Awrite(attr, type, &value));
  OTH5Call(H5Aclose(attr));
  OTH5Call(H5Tclose(type));
  OTH5Call(H5Sclose(space));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5SelectPart(hid_t file_space, PetscInt start, PetscInt count, hid_t *mem_space)
{
  hsize_t offset = (hsize_t)start, cnt = (hsize_t)count;

  PetscFunctionBegin;
  if (count > 0) {
    OTH5Call(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &offset, NULL, &cnt, NULL));
    *mem_space = H5Screate_simple(1, &cnt, NULL);
  } else { /* a rank with nothing to move still takes part in the collective call */
    OTH5Call(H5Sselect_none(file_space));
    *mem_space = H5Scopy(file_space);
    OTH5Call(H5Sselect_none(*mem_space));
  }
  OTH5Call(*mem_space);
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteArrayPart(hid_t file, const char name[], hid_t type, PetscInt len, PetscInt start, PetscInt count, const void *values, hid_t xfer)
{
  hsize_t dims = (hsize_t)len;
  hid_t   file_space, mem_space, dset;

  herr_t status;
  int    error;

  PetscFunctionBegin;
  file_space = H5Screate_simple(1, &dims, NULL);
  errno      = 0;
  dset       = H5Dcreate2(file, name, type, file_space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  error      = errno;
  if (dset < 0) (void)H5Sclose(file_space);
  PetscCall(OTH5AgreeOnFileStep(file, (PetscBool)(dset < 0), error, name));
  PetscCall(OTH5SelectPart(file_space, start, count, &mem_space));
  errno  = 0;
  status = H5Dwrite(dset, type, mem_space, file_space, xfer, values);
  error  = errno;
  if (status < 0) {
    (void)H5Sclose(mem_space);
    (void)H5Sclose(file_space);
    (void)H5Dclose(dset);
  }
  PetscCall(OTH5AgreeOnFileStep(file, (PetscBool)(status < 0), error, name));
  OTH5Call(H5Sclose(mem_space));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5WriteVectorPart(hid_t file, const char name[], PetscInt len, PetscInt start, PetscInt count, const PetscReal *values, hid_t xfer)
{
  PetscFunctionBegin;
  PetscCall(OTH5WriteArrayPart(file, name, H5T_NATIVE_DOUBLE, len, start, count, values, xfer));
  PetscFunctionReturn(0);
}

/* Counts the links of a group (an H5Literate callback). */
static herr_t CountLink(hid_t group, const char *name, const H5L_info_t *info, void *count)
{
  (void)group, (void)name, (void)info;
  (*(hsize_t *)count)++;
  return 0;
}

PetscErrorCode OTH5OpenRead(MPI_Comm comm, const char filename[], int status[2], hid_t *file)
{
  PetscMPIInt rank;
  int         readable = 1;

  PetscFunctionBegin;
  *file = -1;
  OTH5Call(H5Eset_auto2(H5E_DEFAULT, NULL, NULL)); /* errors are reported by otsolve, once, in its own words */
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  status[0] = status[1] = 0;
  if (rank == 0) {
    status[0] = access(filename, R_OK) == 0;
    status[1] = status[0] && H5Fis_hdf5(filename) > 0;
  }
  PetscCallMPI(MPI_Bcast(status, 2, MPI_INT, 0, comm));
  if (status[0] && status[1]) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);

    OTH5Call(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
    *file = H5Fopen(filename, H5F_ACC_RDONLY, fapl);
    OTH5Call(H5Pclose(fapl));
  }
  if (*file >= 0) { /* the root group's links, which every look-up of a dataset reads: damaged, they would read as absent */
    H5G_info_t root;
    hsize_t    links = 0;

    readable = H5Gget_info(*file, &root) >= 0 && H5Literate(*file, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, CountLink, &links) >= 0 && links == root.nlinks;
    PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, &readable, 1, MPI_INT, MPI_LAND, comm));
    if (!readable) {
      (void)H5Fclose(*file);
      *file = -1;
    }
  }
  PetscCheck(readable, comm, OT_ERR_INPUT,
             "%s: the file is damaged (truncated or corrupted): HDF5 cannot read the list of its datasets; write it anew or restore it from a copy", filename);
  PetscFunctionReturn(0);
}

/* What opening a dataset found (InspectDataset). */
typedef enum {
  DATASET_OK,
  DATASET_MISSING,
  DATASET_NOT_A_DATASET,
  DATASET_NOT_FLOAT,
  DATASET_WRONG_RANK,
  DATASET_FILTER,
  DATASET_PAST_END, /* contiguous data that would run past the end of the file (MPI-IO may read zeros there) */
  DATASET_DAMAGED   /* HDF5 failed to read the metadata */
} DatasetVerdict;

/* The name of a filter: that of the HDF Group's registry for common filters that HDF5 itself lacks, else the one the
   file stores (a plugin's may be a sentence: its first part), else "unnamed". */
static const char *FilterName(H5Z_filter_t filter, char stored[])
{
  static const struct {
    H5Z_filter_t id;
    const char  *name;
  } known[] = {
    {307,   "bzip2"     },
    {32000, "lzf"       },
    {32001, "blosc"     },
    {32004, "lz4"       },
    {32008, "bitshuffle"},
    {32013, "zfp"       },
    {32015, "zstd"      },
    {32026, "blosc2"    }
  };

  for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
    if (known[k].id == filter) return known[k].name;
  stored[strcspn(stored, ";")] = '\0';
  return stored[0] ? stored : "unnamed";
}

/* Fills message with what to do about the first filter of dset's pipeline that this HDF5 cannot decode (built in
   or as a plugin found through HDF5_PLUGIN_PATH), or leaves it empty if there is none; with mandatory_only, only
   filters that no chunk can have skipped (an optional filter that the writer lacked leaves chunks unfiltered, and
   those read without it). Not collective. */
static PetscErrorCode FilterMessage(hid_t dset, PetscBool mandatory_only, const char filename[], const char name[], char message[], size_t len)
{
  hid_t dcpl = H5Dget_create_plist(dset);
  int   filters;

  PetscFunctionBegin;
  message[0] = '\0';
  if (dcpl < 0) PetscFunctionReturn(0); /* the read itself fails then, as damaged */
  filters = H5Pget_nfilters(dcpl);
  for (int k = 0; k < filters; k++) {
    unsigned     flags = 0, config = 0;
    size_t       values     = 0;
    char         stored[64] = "";
    H5Z_filter_t filter     = H5Pget_filter2(dcpl, (unsigned)k, &flags, &values, NULL, sizeof(stored), stored, &config);

    if (filter < 0 || (mandatory_only && (flags & H5Z_FLAG_OPTIONAL)) || H5Zfilter_avail(filter) > 0) continue;
    if (filter == 32000) /* h5py's own filter, built into h5py: no plugin of it for h5repack, but h5py can rewrite the file */
      snprintf(message, len,
               "%s: dataset %s is compressed with filter 32000 (lzf), which this HDF5 cannot decode; rewrite the file with gzip, e.g. with h5py, which has "
               "lzf: python3 -c \"import h5py, sys; s = h5py.File(sys.argv[1], 'r'); d = h5py.File(sys.argv[2], 'w'); d.attrs.update(s.attrs); "
               "[d.create_dataset(k, data=s[k][()], compression='gzip') for k in s]\" %s new.h5 (h5repack -f GZIP=4 %s new.h5 needs an lzf plugin in "
               "HDF5_PLUGIN_PATH: without one it leaves the dataset out of new.h5)",
               filename, name, filename, filename);
    else
      snprintf(message, len,
               "%s: dataset %s is compressed with filter %d (%s), which this HDF5 cannot decode (no plugin for it in HDF5_PLUGIN_PATH); rewrite the file "
               "with gzip or without compression where the filter's plugin is: HDF5_PLUGIN_PATH=FOLDER h5repack -f GZIP=4 %s new.h5 (or -f NONE), "
               "FOLDER holding the plugin (without it h5repack leaves the dataset out of new.h5); or install the plugin here",
               filename, name, (int)filter, FilterName(filter, stored), filename);
    break;
  }
  (void)H5Pclose(dcpl);
  PetscFunctionReturn(0);
}

/* Opens dataset name of file if it is a floating-point dataset (or an integer one, where integers are accepted) of
   rank_expected dimensions whose filters this HDF5 has, and says what it found; *ndims (-1 if unknown) and, where it is about filters, message for the errors. Leaves
   *dset closed (-1) unless the verdict is DATASET_OK. Not collective. */
static PetscErrorCode InspectDataset(hid_t file, const char filename[], const char name[], int rank_expected, PetscBool integers, hid_t *dset, hsize_t dims[2],
                                     int *verdict, int *ndims, hsize_t extent[3], char message[], size_t len)
{
  htri_t      exists = H5Lexists(file, name, H5P_DEFAULT);
  hid_t       type, space, object;
  H5T_class_t type_class;

  PetscFunctionBegin;
  *dset    = -1;
  *ndims   = -1;
  *verdict = exists < 0 ? DATASET_DAMAGED : exists == 0 ? DATASET_MISSING : DATASET_OK;
  if (*verdict != DATASET_OK) PetscFunctionReturn(0);
  *dset = H5Dopen2(file, name, H5P_DEFAULT);
  if (*dset < 0) { /* a group or a named type is no dataset; a dataset whose header HDF5 cannot read is damaged */
    object   = H5Oopen(file, name, H5P_DEFAULT);
    *verdict = object >= 0 && H5Iget_type(object) != H5I_DATASET ? DATASET_NOT_A_DATASET : DATASET_DAMAGED;
    if (object >= 0) (void)H5Oclose(object);
    PetscFunctionReturn(0);
  }
  type       = H5Dget_type(*dset);
  type_class = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
  if (type >= 0) (void)H5Tclose(type);
  space  = H5Dget_space(*dset);
  *ndims = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
  if (type < 0 || space < 0 || *ndims < 0) *verdict = DATASET_DAMAGED;
  else if (type_class != H5T_FLOAT && !(integers && type_class == H5T_INTEGER)) *verdict = DATASET_NOT_FLOAT;
  else if (*ndims != rank_expected) *verdict = DATASET_WRONG_RANK;
  else if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) *verdict = DATASET_DAMAGED;
  if (space >= 0) (void)H5Sclose(space);
  if (*verdict == DATASET_OK) {
    PetscCall(FilterMessage(*dset, PETSC_TRUE, filename, name, message, len));
    if (message[0]) *verdict = DATASET_FILTER;
  }
  if (*verdict == DATASET_OK) { /* contiguous data: its bytes must lie in the file (HADDR_UNDEF: chunked, or not written) */
    haddr_t offset = H5Dget_offset(*dset);

    extent[0] = offset;
    extent[1] = offset + H5Dget_storage_size(*dset);
    if (offset != HADDR_UNDEF && (H5Fget_filesize(file, &extent[2]) < 0 || extent[1] > extent[2])) *verdict = DATASET_PAST_END;
  }
  if (*verdict != DATASET_OK) {
    (void)H5Dclose(*dset);
    *dset = -1;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5OpenFloatDataset(MPI_Comm comm, hid_t file, const char filename[], const char name[], int rank_expected, hid_t *dset, hsize_t dims[2])
{
  PetscFunctionBegin;
  PetscCall(OTH5OpenNumberDataset(comm, file, filename, name, rank_expected, PETSC_FALSE, dset, dims));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5OpenNumberDataset(MPI_Comm comm, hid_t file, const char filename[], const char name[], int rank_expected, PetscBool integers, hid_t *dset,
                                     hsize_t dims[2])
{
  int     verdict, agreed, ndims;
  hsize_t extent[3]     = {0, 0, 0}; /* the data's first and last byte + 1, the file's size */
  char    message[1024] = "";

  PetscFunctionBegin;
  dims[0] = 0;
  dims[1] = 1;
  PetscCall(InspectDataset(file, filename, name, rank_expected, integers, dset, dims, &verdict, &ndims, extent, message, sizeof(message)));
  /* every rank reads the same metadata, so the verdicts agree; should a rank alone fail to read it, all stop with it */
  PetscCallMPI(MPI_Allreduce(&verdict, &agreed, 1, MPI_INT, MPI_MAX, comm));
  if (agreed != DATASET_OK && *dset >= 0) {
    (void)H5Dclose(*dset);
    *dset = -1;
  }
  if (agreed != verdict) agreed = DATASET_DAMAGED;
  PetscCheck(agreed != DATASET_MISSING, comm, OT_ERR_INPUT, "%s: dataset %s is missing", filename, name);
  PetscCheck(agreed != DATASET_NOT_A_DATASET, comm, OT_ERR_INPUT, "%s: %s is not a dataset", filename, name);
  PetscCheck(agreed != DATASET_NOT_FLOAT, comm, OT_ERR_INPUT, "%s: dataset %s must hold %s numbers (float64 or float32%s), found another type", filename,
             name, integers ? "floating-point or integer" : "floating-point", integers ? ", or integers" : "");
  PetscCheck(agreed != DATASET_WRONG_RANK, comm, OT_ERR_INPUT, "%s: dataset %s has %d dimension(s); expected %d", filename, name, ndims, rank_expected);
  PetscCheck(agreed != DATASET_FILTER, comm, OT_ERR_INPUT, "%s", message);
  PetscCheck(agreed != DATASET_PAST_END, comm, OT_ERR_INPUT,
             "%s: dataset %s is stored at bytes %llu to %llu of a file of %llu bytes: the file is damaged (truncated or corrupted); write it anew or "
             "restore it from a copy",
             filename, name, (unsigned long long)extent[0], (unsigned long long)extent[1], (unsigned long long)extent[2]);
  PetscCheck(agreed != DATASET_DAMAGED, comm, OT_ERR_INPUT,
             "%s: dataset %s could not be opened: the file is damaged (truncated or corrupted); write it anew or restore it from a copy", filename, name);
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5Read(MPI_Comm comm, hid_t dset, const char filename[], const char name[], hid_t mem_type, hid_t mem_space, hid_t file_space, hid_t xfer,
                        void *values)
{
  int  failed, any_failed;
  char message[1024];

  PetscFunctionBegin;
  failed = H5Dread(dset, mem_type, mem_space, file_space, xfer, values) < 0;
  PetscCallMPI(MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_LOR, comm));
  if (!any_failed) PetscFunctionReturn(0);
  /* a filter that the open let pass (optional, so chunks that the writer left unfiltered read without it) or damage */
  PetscCall(FilterMessage(dset, PETSC_FALSE, filename, name, message, sizeof(message)));
  PetscCheck(!message[0], comm, OT_ERR_INPUT, "%s", message);
  SETERRQ(comm, OT_ERR_INPUT, "%s: dataset %s could not be read: the file is damaged (truncated or corrupted); write it anew or restore it from a copy",
          filename, name);
}

PetscErrorCode OTReadRowBlock(MPI_Comm comm, hid_t file, const char filename[], const char name[], PetscInt n, PetscInt m, PetscInt row_start, PetscInt row_end,
                              PetscReal *block)
{
  hid_t    dset, file_space, mem_space, xfer;
  hsize_t  dims[2];
  PetscInt chunk_rows = PetscMax(1, OT_READ_CHUNK_DOUBLES / m), chunks_local, chunks;

  PetscFunctionBegin;
  PetscCall(OTH5OpenFloatDataset(comm, file, filename, name, 2, &dset, dims));
  PetscCheck(dims[0] == (hsize_t)n && dims[1] == (hsize_t)m, comm, OT_ERR_INPUT, "%s: dataset %s is %llu x %llu; expected %" PetscInt_FMT " x %" PetscInt_FMT,
             filename, name, (unsigned long long)dims[0], (unsigned long long)dims[1], n, m);
  chunks_local = (row_end - row_start + chunk_rows - 1) / chunk_rows;
  PetscCallMPI(MPI_Allreduce(&chunks_local, &chunks, 1, MPIU_INT, MPI_MAX, comm));
  file_space = H5Dget_space(dset);
  xfer       = H5Pcreate(H5P_DATASET_XFER);
  /* Independent reads: HDF5's collective read holds collectives of its own (which I/O mode, chunk counts) between
     steps that can fail on one rank alone on a damaged file (a chunk address past the end of the file: that rank
     leaves, the others wait in the collective for good), and on one rank it reads zeros past the end of the file
     instead of failing. Each rank's rows are one contiguous range, the case where collective buffering gains least. */
  OTH5Call(H5Pset_dxpl_mpio(xfer, H5FD_MPIO_INDEPENDENT));
  PetscCall(PetscLogEventBegin(OT_EVENT_READ_COST, 0, 0, 0, 0));
  /* every rank takes part in the same number of reads, a rank with no rows left reading nothing, so that after each
     the ranks agree on its outcome (OTH5Read): a read that fails on any rank stops every rank */
  for (PetscInt c = 0; c < chunks; c++) {
    PetscInt first = row_start + c * chunk_rows, rows = PetscMax(0, PetscMin(chunk_rows, row_end - first));
    hsize_t  start[2] = {(hsize_t)first, 0}, count[2] = {(hsize_t)rows, (hsize_t)m};

    if (rows > 0) {
      OTH5Call(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL));
      mem_space = H5Screate_simple(2, count, NULL);
    } else {
      OTH5Call(H5Sselect_none(file_space));
      mem_space = H5Scopy(file_space);
      OTH5Call(H5Sselect_none(mem_space));
    }
    OTH5Call(mem_space);
    PetscCall(OTH5Read(comm, dset, filename, name, H5T_NATIVE_DOUBLE, mem_space, file_space, xfer,
                       rows > 0 ? block + (size_t)(first - row_start) * (size_t)m : block));
    OTH5Call(H5Sclose(mem_space));
  }
  PetscCall(PetscLogEventEnd(OT_EVENT_READ_COST, 0, 0, 0, 0));
  OTH5Call(H5Pclose(xfer));
  OTH5Call(H5Sclose(file_space));
  OTH5Call(H5Dclose(dset));
  PetscFunctionReturn(0);
}

PetscErrorCode OTH5PeekDims(MPI_Comm comm, const char filename[], const char name[], double dims[2])
{
  PetscMPIInt rank;

  PetscFunctionBegin;
  dims[0] = dims[1] = 0.0;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  if (rank == 0 && access(filename, R_OK) == 0) {
    hid_t file, dset, space;

    (void)H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    file = H5Fis_hdf5(filename) > 0 ? H5Fopen(filename, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (file >= 0 && H5Lexists(file, name, H5P_DEFAULT) > 0 && (dset = H5Dopen2(file, name, H5P_DEFAULT)) >= 0) {
      hsize_t d[2] = {0, 1};

      space = H5Dget_space(dset);
      if (space >= 0 && H5Sget_simple_extent_ndims(space) >= 1 && H5Sget_simple_extent_ndims(space) <= 2) {
        (void)H5Sget_simple_extent_dims(space, d, NULL);
        dims[0] = (double)d[0];
        dims[1] = (double)d[1];
      }
      if (space >= 0) (void)H5Sclose(space);
      (void)H5Dclose(dset);
    }
    if (file >= 0) (void)H5Fclose(file);
  }
  PetscCallMPI(MPI_Bcast(dims, 2, MPI_DOUBLE, 0, comm));
  PetscFunctionReturn(0);
}
