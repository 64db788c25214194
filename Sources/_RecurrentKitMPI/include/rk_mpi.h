// MPI loaded at run time (dlopen), so that neither the default build nor the `rnn` binary links an MPI library.
// Open MPI and MPICH (and its derivatives: Intel MPI, MVAPICH) have different handle types: Open MPI's are pointers
// to exported objects, MPICH's are fixed integers. The calls below hide both behind one interface.
#ifndef RK_MPI_H
#define RK_MPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Whether the environment says this process was started by an MPI launcher with more than one process
/// (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`, `PMIX_SIZE` or `MPI_LOCALNRANKS`-style variables); writes the size when known.
int rk_mpi_launched(int *size);

/// Loads the MPI library (the path or name `RK_MPI_LIBRARY` gives when set, and only that; else the launcher's:
/// Open MPI's libmpi.so.40 under its mpirun, MPICH's libmpi.so.12 / libmpich.so.12 under Hydra's, then the others,
/// libmpi.so and the macOS names), initialises MPI (thread level FUNNELED) unless already initialised,
/// and reads rank and size. Returns 0, or -1 with a one-line reason in `message`. Safe to call again (no-op).
int rk_mpi_open(char *message, size_t capacity);

/// Rank in MPI_COMM_WORLD and its size (after rk_mpi_open).
int rk_mpi_rank(void);
int rk_mpi_size(void);

/// Processes of this job on this host (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS), or 0 when unknown.
int rk_mpi_local_size(void);

/// In-place sums over every process of MPI_COMM_WORLD; counts beyond INT_MAX are sent in pieces. Returns 0, or the
/// MPI error code (the default error handler aborts the job before that).
int rk_mpi_allreduce_sum_float(float *values, int64_t count);
int rk_mpi_allreduce_sum_double(double *values, int64_t count);

/// The library's version string (MPI_Get_library_version), first line, into `buffer`.
void rk_mpi_library_version(char *buffer, size_t capacity);

/// MPI_Abort(MPI_COMM_WORLD, code): ends every process of the job.
void rk_mpi_abort(int code);

/// MPI_Finalize, once.
void rk_mpi_finalize(void);

#ifdef __cplusplus
}
#endif

#endif
