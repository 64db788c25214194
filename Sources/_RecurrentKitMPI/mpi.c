#include "rk_mpi.h"

void rk_mpi_finalize(void);

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The two ABIs. Open MPI: MPI_Comm, MPI_Datatype and MPI_Op are pointers to the exported objects ompi_mpi_comm_world,
// ompi_mpi_float, ompi_mpi_double, ompi_mpi_op_sum; MPI_IN_PLACE is (void *)1. MPICH: they are ints with fixed values
// (mpi.h: MPI_COMM_WORLD 0x44000000, MPI_FLOAT 0x4c00040a, MPI_DOUBLE 0x4c00080b, MPI_SUM 0x58000003);
// MPI_IN_PLACE is (void *)-1. MPI_THREAD_FUNNELED is 1 in both.
typedef int (*init_thread_fn)(int *, char ***, int, int *);
typedef int (*initialized_fn)(int *);
typedef int (*finalize_fn)(void);
typedef int (*library_version_fn)(char *, int *);
typedef int (*ompi_rank_fn)(void *, int *);
typedef int (*ompi_allreduce_fn)(const void *, void *, int, void *, void *, void *);
typedef int (*ompi_abort_fn)(void *, int);
typedef int (*mpich_rank_fn)(int, int *);
typedef int (*mpich_allreduce_fn)(const void *, void *, int, int, int, int);
typedef int (*mpich_abort_fn)(int, int);

static struct {
    int open, openMPI, rank, size, finalized;
    void *library;
    void *comm, *floatType, *doubleType, *sum; // Open MPI handles
    finalize_fn finalize;
    library_version_fn version;
    void *allreduce, *abort; // cast to the ABI's type at the call
} mpi;

static const int mpichCommWorld = 0x44000000, mpichFloat = 0x4c00040a, mpichDouble = 0x4c00080b, mpichSum = 0x58000003;

static int environmentInt(const char *name) {
    const char *value = getenv(name);
    if (!value || !*value) return 0;
    char *end = NULL;
    long n = strtol(value, &end, 10);
    return (*end == 0 && n > 0 && n < INT_MAX) ? (int)n : 0;
}

int rk_mpi_launched(int *size) {
    static const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_WORLD_SIZE", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        // SLURM_NTASKS alone is not a launch (an sbatch script runs once before srun); it counts only with a rank.
        if (i == 4 && !getenv("SLURM_PROCID")) continue;
        int n = environmentInt(names[i]);
        if (n > 0) { if (size) *size = n; return n > 1; }
    }
    if (size) *size = 1;
    return 0;
}

int rk_mpi_local_size(void) {
    int n = environmentInt("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!n) n = environmentInt("MPI_LOCALNRANKS");
    if (!n) n = environmentInt("PMI_LOCAL_SIZE");
    return n;
}

static void *symbol(const char *name, char *message, size_t capacity) {
    void *p = dlsym(mpi.library, name);
    if (!p) snprintf(message, capacity, "the MPI library has no %s", name);
    return p;
}

int rk_mpi_open(char *message, size_t capacity) {
    if (mpi.open) return 0;
    // The launcher tells which MPI started us: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE, MPICH's Hydra (and Intel
    // MPI) PMI_SIZE; its own library comes first (another MPI's library would see a job of one process).
    const int hydra = !getenv("OMPI_COMM_WORLD_SIZE") && getenv("PMI_SIZE");
    const char *candidates[] = {getenv("RK_MPI_LIBRARY"),
                                hydra ? "libmpi.so.12" : "libmpi.so.40", hydra ? "libmpich.so.12" : "libmpi.so.12",
                                hydra ? "libmpi.so.40" : "libmpich.so.12", "libmpi.so",
                                "libmpi.40.dylib", "libmpi.12.dylib", "libmpi.dylib"};
    const char *tried = NULL;
    const int named = candidates[0] && *candidates[0]; // RK_MPI_LIBRARY: that library or none
    for (size_t i = named ? 0 : 1; i < (named ? 1 : sizeof candidates / sizeof candidates[0]) && !mpi.library; i++) {
        // RTLD_GLOBAL: Open MPI's plugins resolve libmpi's symbols from the global namespace.
        mpi.library = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
        if (!mpi.library && i == 0) tried = candidates[0];
    }
    if (!mpi.library) {
        if (tried) snprintf(message, capacity, "cannot load the MPI library %s named by RK_MPI_LIBRARY (%s)", tried, dlerror());
        else snprintf(message, capacity, "no MPI library found (libmpi.so.40 or libmpi.so.12): install Open MPI "
                      "(Debian/Ubuntu: apt install openmpi-bin; macOS: brew install open-mpi) or MPICH, or set RK_MPI_LIBRARY to its path");
        return -1;
    }
    init_thread_fn initThread = (init_thread_fn)symbol("MPI_Init_thread", message, capacity);
    initialized_fn initialized = (initialized_fn)symbol("MPI_Initialized", message, capacity);
    mpi.finalize = (finalize_fn)symbol("MPI_Finalize", message, capacity);
    mpi.allreduce = symbol("MPI_Allreduce", message, capacity);
    mpi.abort = symbol("MPI_Abort", message, capacity);
    void *rankFunction = symbol("MPI_Comm_rank", message, capacity);
    void *sizeFunction = symbol("MPI_Comm_size", message, capacity);
    mpi.version = (library_version_fn)dlsym(mpi.library, "MPI_Get_library_version"); // MPI-3; optional
    if (!initThread || !initialized || !mpi.finalize || !mpi.allreduce || !mpi.abort || !rankFunction || !sizeFunction) return -1;
    mpi.comm = dlsym(mpi.library, "ompi_mpi_comm_world");
    mpi.openMPI = mpi.comm != NULL;
    if (mpi.openMPI) {
        mpi.floatType = symbol("ompi_mpi_float", message, capacity);
        mpi.doubleType = symbol("ompi_mpi_double", message, capacity);
        mpi.sum = symbol("ompi_mpi_op_sum", message, capacity);
        if (!mpi.floatType || !mpi.doubleType || !mpi.sum) return -1;
    }
    int done = 0, provided = 0;
    initialized(&done);
    if (!done && initThread(NULL, NULL, 1 /* MPI_THREAD_FUNNELED */, &provided) != 0) {
        snprintf(message, capacity, "MPI_Init_thread failed");
        return -1;
    }
    int ok = mpi.openMPI ? ((ompi_rank_fn)rankFunction)(mpi.comm, &mpi.rank) | ((ompi_rank_fn)sizeFunction)(mpi.comm, &mpi.size)
                         : ((mpich_rank_fn)rankFunction)(mpichCommWorld, &mpi.rank) | ((mpich_rank_fn)sizeFunction)(mpichCommWorld, &mpi.size);
    if (ok != 0 || mpi.size < 1 || mpi.rank < 0 || mpi.rank >= mpi.size) {
        snprintf(message, capacity, "MPI_Comm_rank/MPI_Comm_size failed");
        return -1;
    }
    mpi.open = 1;
    atexit(rk_mpi_finalize); // a normal exit finalizes; failures call rk_mpi_abort so that no process waits forever
    return 0;
}

int rk_mpi_rank(void) { return mpi.rank; }
int rk_mpi_size(void) { return mpi.open ? mpi.size : 1; }

static int allreduce(void *values, int64_t count, size_t width, int isDouble) {
    if (!mpi.open) return 0;
    // MPI counts are int: pieces of at most 2^30 elements.
    for (int64_t done = 0; done < count;) {
        int piece = (int)((count - done) < (1 << 30) ? (count - done) : (1 << 30));
        char *start = (char *)values + (size_t)done * width;
        int status = mpi.openMPI
            ? ((ompi_allreduce_fn)mpi.allreduce)((void *)1, start, piece, isDouble ? mpi.doubleType : mpi.floatType, mpi.sum, mpi.comm)
            : ((mpich_allreduce_fn)mpi.allreduce)((void *)-1, start, piece, isDouble ? mpichDouble : mpichFloat, mpichSum, mpichCommWorld);
        if (status != 0) return status;
        done += piece;
    }
    return 0;
}

int rk_mpi_allreduce_sum_float(float *values, int64_t count) { return allreduce(values, count, sizeof(float), 0); }
int rk_mpi_allreduce_sum_double(double *values, int64_t count) { return allreduce(values, count, sizeof(double), 1); }

void rk_mpi_library_version(char *buffer, size_t capacity) {
    if (capacity == 0) return;
    buffer[0] = 0;
    if (!mpi.library || !mpi.version) return;
    char text[8192]; // MPI_MAX_LIBRARY_VERSION_STRING: 256 in Open MPI, 8192 in MPICH
    text[0] = 0;
    int length = 0;
    if (mpi.version(text, &length) != 0) return;
    text[length > 0 && length < (int)sizeof text ? length : (int)sizeof text - 1] = 0;
    size_t n = strcspn(text, "\n,");
    if (n >= capacity) n = capacity - 1;
    memcpy(buffer, text, n);
    buffer[n] = 0;
}

void rk_mpi_abort(int code) {
    if (!mpi.open) exit(code);
    if (mpi.openMPI) ((ompi_abort_fn)mpi.abort)(mpi.comm, code);
    else ((mpich_abort_fn)mpi.abort)(mpichCommWorld, code);
    exit(code);
}

void rk_mpi_finalize(void) {
    if (!mpi.open || mpi.finalized) return;
    mpi.finalized = 1;
    mpi.finalize();
}
