// Mixed-precision GEMM building block: operands rounded to bfloat16 when packed, f32 accumulation. The AVX512_BF16
// micro-kernel (8 rows x 32 columns, 16 accumulators) reads packed A and B as pairs of consecutive k in one 32-bit
// lane, the layout vdpbf16ps multiplies: lane j of a B panel holds (b[k][j], b[k+1][j]); a broadcast A pair holds
// (a[i][k], a[i][k+1]). K is padded to even with zeros. Without AVX512_BF16 the same bf16 values are widened and
// multiplied with f32 FMA: vectorised on AVX2+FMA (and AVX-512F) machines, one k at a time in the portable path.
#include "gemm_bf16_kernels.h"
#include "rk_gemm_bf16.h"
#include "rk_gemv.h"
#include "rk_internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


// op(X)(i, k) for a row-major X with leading dimension ld.
static inline float rk_op_at(const float *X, ptrdiff_t ld, int trans, ptrdiff_t i, ptrdiff_t k) {
    return trans ? X[k * ld + i] : X[i * ld + k];
}

// Packs rows r0 .. r0+rows of op(X) (rows indexed first), columns k0 .. k0+kc, as bf16 pairs of consecutive k in
// panels of `width` rows: panel p, pair q, row r at ((p*KP + q)*width + r); missing rows and the odd k are zeros.
// A is packed with X = A (op(A) rows), B with X = B viewed transposed (op(B)^T rows, i.e. the columns of op(B)).
static void rk_pack_pairs_bf16(const float *X, ptrdiff_t ld, int trans, ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                               ptrdiff_t kc, int width, uint32_t *out) {
    ptrdiff_t kp = (kc + 1) / 2;
    for (ptrdiff_t p = 0; p < (rows + width - 1) / width; p++)
        for (ptrdiff_t q = 0; q < kp; q++)
            for (int r = 0; r < width; r++) {
                ptrdiff_t i = p * width + r, k = 2 * q;
                uint32_t lo = 0, hi = 0;
                if (i < rows) {
                    lo = rk_bf16_from_f32(rk_op_at(X, ld, trans, r0 + i, k0 + k));
                    if (k + 1 < kc) hi = rk_bf16_from_f32(rk_op_at(X, ld, trans, r0 + i, k0 + k + 1));
                }
                out[(p * kp + q) * width + r] = lo | hi << 16;
            }
}


// One MR x NR tile over kp pairs: C[r][c] = alpha * sum + beta * C[r][c] for the rows x cols that exist (C is not
// read when beta == 0; the driver passes the caller's beta with the first k block and 1 after it).
static void rk_tile_bf16_portable(ptrdiff_t kp, const uint32_t *a, const uint32_t *b, float *C, ptrdiff_t ldc,
                                  int rows, int cols, float alpha, float beta) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float s = 0;
            for (ptrdiff_t q = 0; q < kp; q++) {
                uint32_t x = a[q * BF_MR + r], y = b[q * BF_NR + c];
                s += rk_f32_from_bf16((uint16_t)x) * rk_f32_from_bf16((uint16_t)y);
                s += rk_f32_from_bf16((uint16_t)(x >> 16)) * rk_f32_from_bf16((uint16_t)(y >> 16));
            }
            float *cr = C + r * ldc + c;
            *cr = (beta == 0.0f ? 0.0f : beta == 1.0f ? *cr : beta * *cr) + alpha * s;
        }
}


static _Atomic int rk_bf16_dot_allowed = 1;

int rk_set_bf16_dot(int allowed) {
    atomic_store_explicit(&rk_bf16_dot_allowed, allowed != 0, memory_order_relaxed);
    return rk_bf16_dot_available();
}

int rk_bf16_dot_available(void) {
#if defined(__x86_64__)
    return rk_active_level() >= RK_LEVEL_AVX512 && atomic_load_explicit(&rk_bf16_dot_allowed, memory_order_relaxed) &&
           __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}


// The packers and tile of this machine's level: vcvtne2ps2bf16 and vdpbf16ps with AVX512_BF16; without it, the same
// bf16 values through f32 FMA: on AVX-512F an 8 x 32 tile over A widened when packed (`a_words` 2: two f32 per pair
// of k), on AVX2+FMA 4 x 16 blocks; scalar elsewhere. B is packed as pairs at every level.
typedef struct {
    rk_bf16_pack_fn pack_a, pack_b;
    rk_bf16_tile_fn tile;
    int a_words; // 32-bit words of packed A per row and pair of k: 1 (bf16 pairs) or 2 (widened to f32)
} rk_bf16_kernels;

static rk_bf16_kernels rk_bf16_level(void) {
    rk_bf16_kernels k = {rk_pack_pairs_bf16, rk_pack_pairs_bf16, rk_tile_bf16_portable, 1};
#if defined(__x86_64__)
    if (rk_bf16_dot_available())
        k = (rk_bf16_kernels){rk_pack_pairs_bf16_avx512, rk_pack_pairs_bf16_avx512, rk_tile_bf16_avx512, 1};
    else if (rk_active_level() >= RK_LEVEL_AVX512)
        k = (rk_bf16_kernels){rk_pack_a_widened_avx2, rk_pack_pairs_bf16_avx2, rk_tile_bf16_avx512f, 2};
    else if (rk_active_level() >= RK_LEVEL_AVX2_FMA)
        k = (rk_bf16_kernels){rk_pack_pairs_bf16_avx2, rk_pack_pairs_bf16_avx2, rk_tile_bf16_avx2, 1};
#endif
    return k;
}

// Pairs of k in the blocks of KC before block kb (every earlier block is full).
static ptrdiff_t rk_bf16_pairs_before(ptrdiff_t kb) { return kb * (BF_KC / 2); }

size_t rk_sgemm_bf16_pack_b_size(ptrdiff_t K, ptrdiff_t N) {
    if (K <= 0 || N <= 0) return 64;
    ptrdiff_t npad = (N + BF_NR - 1) / BF_NR * BF_NR, blocks = (K + BF_KC - 1) / BF_KC;
    ptrdiff_t last = K - (blocks - 1) * BF_KC;
    return (size_t)((blocks - 1) * (BF_KC / 2) + (last + 1) / 2) * (size_t)npad * 4 + 64;
}

enum { BF_PACK_PANELS = 8 }; // column panels per chunk of a threaded B packing

typedef struct {
    rk_bf16_pack_fn pack;
    int transB;
    ptrdiff_t K, N, ldb, groups;
    const float *B;
    uint32_t *out;
} rk_bf16_pack_job;

// Chunk c: one k block's group of BF_PACK_PANELS column panels.
static void rk_bf16_pack_task(void *ctx, int c, int nchunks) {
    (void)nchunks;
    const rk_bf16_pack_job *j = ctx;
    ptrdiff_t kb = c / j->groups, g = c % j->groups, k0 = kb * BF_KC, kc = j->K - k0 < BF_KC ? j->K - k0 : BF_KC;
    ptrdiff_t n0 = g * BF_PACK_PANELS * BF_NR, n = j->N - n0 < BF_PACK_PANELS * BF_NR ? j->N - n0 : BF_PACK_PANELS * BF_NR;
    ptrdiff_t npad = (j->N + BF_NR - 1) / BF_NR * BF_NR;
    j->pack(j->B, j->ldb, !j->transB, n0, n, k0, kc, BF_NR, j->out + rk_bf16_pairs_before(kb) * npad + n0 * ((kc + 1) / 2));
}

void rk_sgemm_bf16_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb, void *packed) {
    if (K <= 0 || N <= 0) return;
    ptrdiff_t groups = (N + BF_PACK_PANELS * BF_NR - 1) / (BF_PACK_PANELS * BF_NR), blocks = (K + BF_KC - 1) / BF_KC;
    rk_bf16_pack_job job = {rk_bf16_level().pack_b, transB, K, N, ldb, groups, B, packed};
    int chunks = (int)(groups * blocks);
    if (rk_threads() > 1 && chunks > 1 && (double)K * (double)N >= 256.0 * 1024) rk_parallel(chunks, rk_bf16_pack_task, &job);
    else for (int c = 0; c < chunks; c++) rk_bf16_pack_task(&job, c, chunks);
}

typedef struct {
    rk_bf16_kernels k;
    int transA;
    ptrdiff_t M, N, K, lda, ldc, mblocks, panels, panelsPerChunk;
    const float *A;
    const uint32_t *pa; // A packed for every k block when it is shared (a single row block), else NULL
    const uint32_t *pb; // the packed B
    float alpha, beta;  // beta: applied with the first k block
    float *C;
} rk_bf16_job;

// Packed A, per thread, grown once to the largest block (so a call allocates nothing once warm).
static _Thread_local uint32_t *rk_bf16_tls_a;

static uint32_t *rk_bf16_a_buffer(void) {
    if (!rk_bf16_tls_a) { // room for the widened layout (two words per pair) whatever the level
        rk_bf16_tls_a = rk_alloc((size_t)(BF_MC + BF_MR) * BF_KC * 4);
        if (!rk_bf16_tls_a) abort();
    }
    return rk_bf16_tls_a;
}

// A single row block packed for every k block (the caller's, shared by the threads), grown on demand.
static _Thread_local void *rk_bf16_tls_shared_a;
static _Thread_local size_t rk_bf16_tls_shared_a_n;

// A per-thread buffer of at least `need` bytes, grown (never shrunk) on demand: a warm call allocates nothing.
static void *rk_bf16_reserve(void **buffer, size_t *bytes, size_t need) {
    if (*bytes < need) {
        rk_free(*buffer);
        *buffer = rk_alloc(need);
        if (!*buffer) abort();
        *bytes = need;
    }
    return *buffer;
}

// Chunk c over every k block: an MC block of rows, which it packs block by block (when there are several), or a
// group of column panels over the shared packed A (for few rows). One parallel region per product.
static void rk_bf16_task(void *ctx, int c, int nchunks) {
    (void)nchunks;
    const rk_bf16_job *j = ctx;
    ptrdiff_t i0 = 0, mc = j->M, p0 = 0, p1 = j->panels;
    if (j->mblocks > 1) {
        i0 = (ptrdiff_t)c * BF_MC;
        mc = j->M - i0 < BF_MC ? j->M - i0 : BF_MC;
    } else {
        p0 = (ptrdiff_t)c * j->panelsPerChunk;
        p1 = p0 + j->panelsPerChunk < j->panels ? p0 + j->panelsPerChunk : j->panels;
    }
    ptrdiff_t npad = j->panels * BF_NR, mpad = (j->M + BF_MR - 1) / BF_MR * BF_MR;
    for (ptrdiff_t k0 = 0, kb = 0; k0 < j->K; k0 += BF_KC, kb++) {
        ptrdiff_t kc = j->K - k0 < BF_KC ? j->K - k0 : BF_KC, kp = (kc + 1) / 2;
        const uint32_t *pa, *pb = j->pb + rk_bf16_pairs_before(kb) * npad;
        const ptrdiff_t aw = j->k.a_words;
        if (j->mblocks > 1) {
            uint32_t *own = rk_bf16_a_buffer();
            j->k.pack_a(j->A, j->lda, j->transA, i0, mc, k0, kc, BF_MR, own);
            pa = own;
        } else {
            pa = j->pa + aw * rk_bf16_pairs_before(kb) * mpad;
        }
        float beta = kb == 0 ? j->beta : 1.0f;
        // Few rows: panel by panel, so each B panel (KC x NR bf16, 32 KB at most) is read from memory once and stays in L1 while
        // the row tiles pass over it (a recurrent W_hh can exceed L2). A row block: tile row by tile row (measured
        // faster there: the A tile stays in L1 while B's panels stream).
        ptrdiff_t tilesM = (mc + BF_MR - 1) / BF_MR, tilesN = p1 - p0;
        for (ptrdiff_t t = 0; t < tilesM * tilesN; t++) {
            ptrdiff_t ip = j->mblocks > 1 ? t / tilesN : t % tilesM, jp = p0 + (j->mblocks > 1 ? t % tilesN : t / tilesM);
            ptrdiff_t rows = mc - ip * BF_MR < BF_MR ? mc - ip * BF_MR : BF_MR;
            ptrdiff_t cols = j->N - jp * BF_NR < BF_NR ? j->N - jp * BF_NR : BF_NR;
            j->k.tile(kp, pa + aw * ip * kp * BF_MR, pb + jp * kp * BF_NR, j->C + (i0 + ip * BF_MR) * j->ldc + jp * BF_NR,
                    j->ldc, (int)rows, (int)cols, j->alpha, beta);
        }
    }
}

void rk_sgemm_bf16_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
                          const void *packedB, float beta, float *C, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        if (beta != 1.0f)
            for (ptrdiff_t i = 0; i < M; i++)
                for (ptrdiff_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    rk_bf16_kernels kernels = rk_bf16_level();
    ptrdiff_t panels = (N + BF_NR - 1) / BF_NR;
    int nt = rk_threads();
    rk_bf16_job job = {kernels, transA, M, N, K, lda, ldc, (M + BF_MC - 1) / BF_MC, panels, 0, A, NULL, packedB,
                       alpha, beta, C};
    if (job.mblocks == 1) { // few rows: A packed once here for every k block (the layout of a packed B, rows for columns)
        // Sized for the widened layout whatever the level, so a change of level never grows it.
        uint32_t *shared = rk_bf16_reserve(&rk_bf16_tls_shared_a, &rk_bf16_tls_shared_a_n, 2 * rk_sgemm_bf16_pack_b_size(K, M));
        ptrdiff_t mpad = (M + BF_MR - 1) / BF_MR * BF_MR;
        for (ptrdiff_t k0 = 0, kb = 0; k0 < K; k0 += BF_KC, kb++)
            kernels.pack_a(A, lda, transA, 0, M, k0, K - k0 < BF_KC ? K - k0 : BF_KC, BF_MR,
                           shared + kernels.a_words * rk_bf16_pairs_before(kb) * mpad);
        job.pa = shared;
    }
    // Several row blocks: one chunk each; a single block: the column panels in groups, about 4 per thread (one
    // group on one thread).
    job.panelsPerChunk = job.mblocks > 1 ? panels : nt > 1 ? (panels + 4 * nt - 1) / (4 * nt) : panels;
    int chunks = (int)(job.mblocks > 1 ? job.mblocks : (panels + job.panelsPerChunk - 1) / job.panelsPerChunk);
    if (nt > 1 && chunks > 1 && (double)M * (double)N * (double)K >= 64.0 * 1024) rk_parallel(chunks, rk_bf16_task, &job);
    else for (int c = 0; c < chunks; c++) rk_bf16_task(&job, c, chunks);
}

// The unpacked entry packs op(B) into a per-thread buffer grown on demand.
static _Thread_local void *rk_bf16_tls_b;
static _Thread_local size_t rk_bf16_tls_b_n;

void rk_sgemm_bf16(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A,
                   ptrdiff_t lda, const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc) {
    if (M <= 0 || N <= 0) return;
    void *packed = rk_bf16_reserve(&rk_bf16_tls_b, &rk_bf16_tls_b_n, rk_sgemm_bf16_pack_b_size(K, N));
    if (K > 0 && alpha != 0.0f) rk_sgemm_bf16_pack_b(transB, K, N, B, ldb, packed);
    rk_sgemm_bf16_packed(transA, M, N, K, alpha, A, lda, packed, beta, C, ldc);
}
