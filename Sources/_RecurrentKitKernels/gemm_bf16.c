// Mixed-precision GEMM building block: operands rounded to bfloat16 when packed, f32 accumulation. The AVX512_BF16
// micro-kernel (8 rows x 32 columns, 16 accumulators) reads packed A and B as pairs of consecutive k in one 32-bit
// lane, the layout vdpbf16ps multiplies: lane j of a B panel holds (b[k][j], b[k+1][j]); a broadcast A pair holds
// (a[i][k], a[i][k+1]). K is padded to even with zeros. Without AVX512_BF16 the same bf16 values are widened and
// multiplied with f32 FMA: vectorised on AVX2+FMA (and AVX-512F) machines, one k at a time in the portable path.
#include "rk_gemm_bf16.h"
#include "rk_gemv.h"
#include "rk_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// KC 512 measured 1.5-4% faster end to end than 256 at 1 and 2 threads (fewer passes over C per product).
enum { BF_MR = 8, BF_NR = 32, BF_KC = 512, BF_MC = 128 };

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

#if defined(__x86_64__)
#include <immintrin.h>

// rk_pack_pairs_bf16 with vcvtne(2)ps2bf16 (round to nearest even; the instruction treats denormal inputs as zero,
// which vdpbf16ps would do with them anyway, and quiets NaN). Rows contiguous in X (trans): 16 rows of k and of k+1
// per load, interleaved into pairs with one vpermw. Pairs contiguous in X (!trans): 8 x 8 transposes (below).
__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) static void
rk_pack_pairs_bf16_avx512(const float *X, ptrdiff_t ld, int trans, ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                          ptrdiff_t kc, int width, uint32_t *out) {
    ptrdiff_t kp = (kc + 1) / 2, panels = (rows + width - 1) / width;
    if (trans) {
        const __m512i mix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                             6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        // 16 rows per load; their halves go to the panel (and place) of rows g and g + 8 (two panels when width 8).
        ptrdiff_t padded = panels * width;
        for (ptrdiff_t g = 0; g < padded; g += 16) {
            ptrdiff_t n = rows - g < 16 ? rows - g : 16;
            __mmask16 m = n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
            const float *x = X + k0 * ld + r0 + g;
            uint32_t *lo8 = out + g / width * kp * width + g % width;
            uint32_t *hi8 = g + 8 < padded ? out + (g + 8) / width * kp * width + (g + 8) % width : NULL;
            for (ptrdiff_t q = 0; q < kp; q++, x += 2 * ld) {
                __m512 lo = _mm512_maskz_loadu_ps(m, x);
                __m512 hi = 2 * q + 1 < kc ? _mm512_maskz_loadu_ps(m, x + ld) : _mm512_setzero_ps();
                __m512i v = _mm512_permutexvar_epi16(mix, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
                _mm256_storeu_si256((__m256i *)(lo8 + q * width), _mm512_castsi512_si256(v));
                if (hi8) _mm256_storeu_si256((__m256i *)(hi8 + q * width), _mm512_extracti64x4_epi64(v, 1));
            }
        }
        return;
    }
    // Pairs contiguous in X: per 8 rows and 16 pairs, one vcvtne2ps2bf16 per row (32 floats, masked past kc, so
    // the odd k's partner is zero and nothing past the block is read), then two 8 x 8 transposes of 32-bit pairs.
    for (ptrdiff_t p = 0; p < panels; p++)
        for (int r = 0; r < width; r += 8) {
            ptrdiff_t n = rows - p * width - r;
            if (n > 8) n = 8;
            const float *x = X + (r0 + p * width + r) * ld + k0;
            uint32_t *o = out + p * kp * width + r;
            for (ptrdiff_t q0 = 0; q0 < kp; q0 += 16) {
                ptrdiff_t left = kc - 2 * q0; // floats of this chunk that exist
                __mmask16 mlo = left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1);
                __mmask16 mhi = left >= 32 ? 0xFFFF : left <= 16 ? 0 : (__mmask16)((1u << (left - 16)) - 1);
                __m256i v[8][2];
                for (int t = 0; t < 8; t++) {
                    __m512i w = _mm512_setzero_si512();
                    if (t < n) {
                        const float *xt = x + t * ld + 2 * q0;
                        w = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, xt + 16), _mm512_maskz_loadu_ps(mlo, xt));
                    }
                    v[t][0] = _mm512_castsi512_si256(w);
                    v[t][1] = _mm512_extracti64x4_epi64(w, 1);
                }
                for (int h = 0; h < 2; h++) { // pairs q0 + 8h .. q0 + 8h + 7
                    __m256i t0 = _mm256_unpacklo_epi32(v[0][h], v[1][h]), t1 = _mm256_unpackhi_epi32(v[0][h], v[1][h]);
                    __m256i t2 = _mm256_unpacklo_epi32(v[2][h], v[3][h]), t3 = _mm256_unpackhi_epi32(v[2][h], v[3][h]);
                    __m256i t4 = _mm256_unpacklo_epi32(v[4][h], v[5][h]), t5 = _mm256_unpackhi_epi32(v[4][h], v[5][h]);
                    __m256i t6 = _mm256_unpacklo_epi32(v[6][h], v[7][h]), t7 = _mm256_unpackhi_epi32(v[6][h], v[7][h]);
                    __m256i u[8] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                                    _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3),
                                    _mm256_unpacklo_epi64(t4, t6), _mm256_unpackhi_epi64(t4, t6),
                                    _mm256_unpacklo_epi64(t5, t7), _mm256_unpackhi_epi64(t5, t7)};
                    __m256i col[8];
                    for (int j = 0; j < 4; j++) {
                        col[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
                        col[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
                    }
                    for (int j = 0; j < 8 && q0 + 8 * h + j < kp; j++)
                        _mm256_storeu_si256((__m256i *)(o + (q0 + 8 * h + j) * width), col[j]);
                }
            }
        }
}
#endif

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

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bf16"))) static void rk_tile_bf16_avx512(ptrdiff_t kp, const uint32_t *a,
                                                                              const uint32_t *b, float *C, ptrdiff_t ldc,
                                                                              int rows, int cols, float alpha,
                                                                              float beta) {
    __m512 c[BF_MR][2];
    for (int r = 0; r < BF_MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    for (ptrdiff_t q = 0; q < kp; q++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + q * BF_NR), b1 = (__m512bh)_mm512_loadu_si512(b + q * BF_NR + 16);
        for (int r = 0; r < BF_MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[q * BF_MR + r]);
            c[r][0] = _mm512_dpbf16_ps(c[r][0], x, b0);
            c[r][1] = _mm512_dpbf16_ps(c[r][1], x, b1);
        }
    }
    __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    __mmask16 m0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
    __mmask16 m1 = cols >= 32 ? 0xFFFF : cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1);
    for (int r = 0; r < rows; r++) { // C = alpha * acc + beta * C, masked to the columns that exist
        float *cr = C + r * ldc;
        __m512 p0 = _mm512_setzero_ps(), p1 = _mm512_setzero_ps();
        if (beta != 0.0f) {
            p0 = _mm512_maskz_loadu_ps(m0, cr);
            p1 = _mm512_maskz_loadu_ps(m1, cr + 16);
            if (beta != 1.0f) p0 = _mm512_mul_ps(be, p0), p1 = _mm512_mul_ps(be, p1);
        }
        _mm512_mask_storeu_ps(cr, m0, _mm512_fmadd_ps(al, c[r][0], p0));
        _mm512_mask_storeu_ps(cr + 16, m1, _mm512_fmadd_ps(al, c[r][1], p1));
    }
}
// ---- AVX2+FMA (and AVX-512F without AVX512_BF16): the same bf16 values, products through f32 FMA ----

// Eight floats to bf16 in the low half of each 32-bit lane, the same bits as rk_bf16_from_f32 (nearest even; NaN
// truncated and quieted; denormals kept).
__attribute__((target("avx2"))) static inline __m256i rk_bf16x8_avx2(__m256i u) {
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)), _mm256_set1_epi32(0x7F800000));
    __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    return _mm256_blendv_epi8(rounded, quiet, nan);
}

// rk_pack_pairs_bf16 with the rounding above: rows contiguous in X, 8 rows of k and k+1 per step; pairs contiguous
// in X, one row's 8 floats (4 pairs) per step, each pair a 32-bit store into its place in the panel.
__attribute__((target("avx2"))) static void rk_pack_pairs_bf16_avx2(const float *X, ptrdiff_t ld, int trans,
                                                                    ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                                                                    ptrdiff_t kc, int width, uint32_t *out) {
    ptrdiff_t kp = (kc + 1) / 2, panels = (rows + width - 1) / width;
    if (trans) {
        for (ptrdiff_t g = 0; g < panels * width; g += 8) { // width is a multiple of 8
            ptrdiff_t n = rows - g < 8 ? rows - g : 8;
            uint32_t *o = out + g / width * kp * width + g % width;
            const float *x = X + k0 * ld + r0 + g;
            if (n < 8) { // a panel's last rows: the scalar packing, zeros past the matrix
                for (ptrdiff_t q = 0; q < kp; q++)
                    for (int t = 0; t < 8; t++) {
                        uint32_t lo = t < n ? rk_bf16_from_f32(x[2 * q * ld + t]) : 0;
                        uint32_t hi = t < n && 2 * q + 1 < kc ? rk_bf16_from_f32(x[(2 * q + 1) * ld + t]) : 0;
                        o[q * width + t] = lo | hi << 16;
                    }
                continue;
            }
            for (ptrdiff_t q = 0; q < kp; q++, x += 2 * ld) {
                __m256i lo = rk_bf16x8_avx2(_mm256_loadu_si256((const __m256i *)x));
                __m256i hi = 2 * q + 1 < kc ? rk_bf16x8_avx2(_mm256_loadu_si256((const __m256i *)(x + ld))) : _mm256_setzero_si256();
                _mm256_storeu_si256((__m256i *)(o + q * width), _mm256_or_si256(lo, _mm256_slli_epi32(hi, 16)));
            }
        }
        return;
    }
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    for (ptrdiff_t i = 0; i < panels * width; i++) {
        uint32_t *o = out + i / width * kp * width + i % width;
        if (i >= rows) {
            for (ptrdiff_t q = 0; q < kp; q++) o[q * width] = 0;
            continue;
        }
        const float *x = X + (r0 + i) * ld + k0;
        ptrdiff_t q = 0;
        for (; 2 * q + 8 <= kc; q += 4) { // (even k | odd k << 16) in the even lanes, gathered to the low half
            __m256i v = rk_bf16x8_avx2(_mm256_loadu_si256((const __m256i *)(x + 2 * q)));
            __m256i pairs = _mm256_or_si256(v, _mm256_srli_epi64(v, 16));
            pairs = _mm256_permutevar8x32_epi32(pairs, pick);
            uint32_t four[8];
            _mm256_storeu_si256((__m256i *)four, pairs);
            for (int t = 0; t < 4; t++) o[(q + t) * width] = four[t];
        }
        for (; q < kp; q++) {
            uint32_t lo = rk_bf16_from_f32(x[2 * q]), hi = 2 * q + 1 < kc ? rk_bf16_from_f32(x[2 * q + 1]) : 0;
            o[q * width] = lo | hi << 16;
        }
    }
}

// The 8 x 32 tile as four 4 x 16 blocks (8 accumulators each, within AVX2's 16 registers): each pair widens to two
// f32 vectors (k even: the low half shifted up; k odd: the high half masked) and two FMAs.
__attribute__((target("avx2,fma"))) static void rk_tile_bf16_avx2(ptrdiff_t kp, const uint32_t *a, const uint32_t *b,
                                                                  float *C, ptrdiff_t ldc, int rows, int cols,
                                                                  float alpha, float beta) {
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    for (int r0 = 0; r0 < rows; r0 += 4)
        for (int c0 = 0; c0 < cols; c0 += 16) {
            __m256 acc[4][2];
            for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            for (ptrdiff_t q = 0; q < kp; q++) {
                __m256i b0 = _mm256_loadu_si256((const __m256i *)(b + q * BF_NR + c0));
                __m256i b1 = _mm256_loadu_si256((const __m256i *)(b + q * BF_NR + c0 + 8));
                __m256 b0e = _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16)), b0o = _mm256_castsi256_ps(_mm256_and_si256(b0, high));
                __m256 b1e = _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16)), b1o = _mm256_castsi256_ps(_mm256_and_si256(b1, high));
                for (int r = 0; r < 4; r++) {
                    __m256i pair = _mm256_set1_epi32((int)a[q * BF_MR + r0 + r]); // a broadcast load
                    __m256 ae = _mm256_castsi256_ps(_mm256_slli_epi32(pair, 16)), ao = _mm256_castsi256_ps(_mm256_and_si256(pair, high));
                    acc[r][0] = _mm256_fmadd_ps(ao, b0o, _mm256_fmadd_ps(ae, b0e, acc[r][0]));
                    acc[r][1] = _mm256_fmadd_ps(ao, b1o, _mm256_fmadd_ps(ae, b1e, acc[r][1]));
                }
            }
            float tile[4][16];
            for (int r = 0; r < 4; r++) {
                _mm256_storeu_ps(tile[r], acc[r][0]);
                _mm256_storeu_ps(tile[r] + 8, acc[r][1]);
            }
            for (int r = 0; r < 4 && r0 + r < rows; r++) // C = alpha * acc + beta * C for the columns that exist
                for (int c = 0; c < 16 && c0 + c < cols; c++) {
                    float *cr = C + (r0 + r) * ldc + c0 + c;
                    *cr = alpha * tile[r][c] + (beta == 0.0f ? 0.0f : beta == 1.0f ? *cr : beta * *cr);
                }
        }
}
#endif

int rk_bf16_dot_available(void) {
#if defined(__x86_64__)
    return rk_active_level() >= RK_LEVEL_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

typedef void (*rk_bf16_pack_fn)(const float *, ptrdiff_t, int, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, int, uint32_t *);
typedef void (*rk_bf16_tile_fn)(ptrdiff_t, const uint32_t *, const uint32_t *, float *, ptrdiff_t, int, int, float, float);

// The packer and tile of this machine's level: vcvtne2ps2bf16 and vdpbf16ps with AVX512_BF16; the same bf16 values
// through f32 FMA with AVX2+FMA (AVX-512F machines without AVX512_BF16 use these too); scalar elsewhere.
static void rk_bf16_level(rk_bf16_pack_fn *pack, rk_bf16_tile_fn *tile) {
    *pack = rk_pack_pairs_bf16;
    *tile = rk_tile_bf16_portable;
#if defined(__x86_64__)
    if (rk_bf16_dot_available()) *pack = rk_pack_pairs_bf16_avx512, *tile = rk_tile_bf16_avx512;
    else if (rk_active_level() >= RK_LEVEL_AVX2_FMA) *pack = rk_pack_pairs_bf16_avx2, *tile = rk_tile_bf16_avx2;
#endif
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
    rk_bf16_pack_fn pack;
    rk_bf16_tile_fn tile;
    rk_bf16_level(&pack, &tile);
    ptrdiff_t groups = (N + BF_PACK_PANELS * BF_NR - 1) / (BF_PACK_PANELS * BF_NR), blocks = (K + BF_KC - 1) / BF_KC;
    rk_bf16_pack_job job = {pack, transB, K, N, ldb, groups, B, packed};
    int chunks = (int)(groups * blocks);
    if (rk_threads() > 1 && chunks > 1 && (double)K * (double)N >= 256.0 * 1024) rk_parallel(chunks, rk_bf16_pack_task, &job);
    else for (int c = 0; c < chunks; c++) rk_bf16_pack_task(&job, c, chunks);
}

typedef struct {
    rk_bf16_pack_fn pack;
    rk_bf16_tile_fn tile;
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
    if (!rk_bf16_tls_a) {
        rk_bf16_tls_a = rk_alloc((size_t)(BF_MC + BF_MR) * (BF_KC / 2) * 4);
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
        if (j->mblocks > 1) {
            uint32_t *own = rk_bf16_a_buffer();
            j->pack(j->A, j->lda, j->transA, i0, mc, k0, kc, BF_MR, own);
            pa = own;
        } else {
            pa = j->pa + rk_bf16_pairs_before(kb) * mpad;
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
            j->tile(kp, pa + ip * kp * BF_MR, pb + jp * kp * BF_NR, j->C + (i0 + ip * BF_MR) * j->ldc + jp * BF_NR,
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
    rk_bf16_pack_fn pack;
    rk_bf16_tile_fn tile;
    rk_bf16_level(&pack, &tile);
    ptrdiff_t panels = (N + BF_NR - 1) / BF_NR;
    int nt = rk_threads();
    rk_bf16_job job = {pack, tile, transA, M, N, K, lda, ldc, (M + BF_MC - 1) / BF_MC, panels, 0, A, NULL, packedB,
                       alpha, beta, C};
    if (job.mblocks == 1) { // few rows: A packed once here for every k block (the layout of a packed B, rows for columns)
        uint32_t *shared = rk_bf16_reserve(&rk_bf16_tls_shared_a, &rk_bf16_tls_shared_a_n, rk_sgemm_bf16_pack_b_size(K, M));
        ptrdiff_t mpad = (M + BF_MR - 1) / BF_MR * BF_MR;
        for (ptrdiff_t k0 = 0, kb = 0; k0 < K; k0 += BF_KC, kb++)
            pack(A, lda, transA, 0, M, k0, K - k0 < BF_KC ? K - k0 : BF_KC, BF_MR, shared + rk_bf16_pairs_before(kb) * mpad);
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

// ---- The Float GEMM entry points: f32, or bf16 products when the calling thread asked for them ----

static _Thread_local int rk_tls_bf16_products;

void rk_set_bf16_products(int on) { rk_tls_bf16_products = on != 0; }
int rk_bf16_products(void) { return rk_tls_bf16_products; }

void rk_sgemm(int transA, int transB, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
              const float *B, ptrdiff_t ldb, float beta, float *C, ptrdiff_t ldc) {
    if (rk_tls_bf16_products) rk_sgemm_bf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else rk_sgemm_f32(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// A bf16-packed buffer carries this tag after its panels (in the 64 spare bytes), so a buffer packed in one mode and
// used in the other stops the process instead of computing garbage.
static const uint64_t rk_bf16_packed_tag = 0x3631666250414B52ull; // "RKAPbf16"

size_t rk_sgemm_pack_b_size(ptrdiff_t K, ptrdiff_t N) {
    size_t f = rk_sgemm_f32_pack_b_size(K, N), b = rk_sgemm_bf16_pack_b_size(K, N);
    return f > b ? f : b; // either layout fits, whatever the mode when it is packed
}

void rk_sgemm_pack_b(int transB, ptrdiff_t K, ptrdiff_t N, const float *B, ptrdiff_t ldb, void *packed) {
    if (!rk_tls_bf16_products) {
        rk_sgemm_f32_pack_b(transB, K, N, B, ldb, packed);
        return;
    }
    rk_sgemm_bf16_pack_b(transB, K, N, B, ldb, packed);
    memcpy((char *)packed + rk_sgemm_bf16_pack_b_size(K, N) - 64, &rk_bf16_packed_tag, 8);
}

void rk_sgemm_packed(int transA, ptrdiff_t M, ptrdiff_t N, ptrdiff_t K, float alpha, const float *A, ptrdiff_t lda,
                     const void *packedB, float beta, float *C, ptrdiff_t ldc) {
    if (!rk_tls_bf16_products) {
        rk_sgemm_f32_packed(transA, M, N, K, alpha, A, lda, packedB, beta, C, ldc);
        return;
    }
    uint64_t tag = 0;
    memcpy(&tag, (const char *)packedB + rk_sgemm_bf16_pack_b_size(K, N) - 64, 8);
    if (tag != rk_bf16_packed_tag) {
        fprintf(stderr, "_RecurrentKitKernels: rk_sgemm_packed with bf16 products on a buffer not packed with them\n");
        abort();
    }
    rk_sgemm_bf16_packed(transA, M, N, K, alpha, A, lda, packedB, beta, C, ldc);
}
