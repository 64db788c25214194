// The x86 packers and tiles of the mixed-precision GEMM (gemm_bf16.c drives them): AVX512_BF16's vcvtne2ps2bf16
// and vdpbf16ps; without AVX512_BF16, the same bf16 values through f32 FMA (an 8 x 32 tile on AVX-512F over A widened
// when packed, 4 x 16 blocks on AVX2+FMA; both give the same bits). Layouts: gemm_bf16_kernels.h.
#include "gemm_bf16_kernels.h"
#include "rk_gemv.h"
#include "rk_internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#include <immintrin.h>

// rk_pack_pairs_bf16 with vcvtne(2)ps2bf16 (round to nearest even; the instruction treats denormal inputs as zero,
// which vdpbf16ps would do with them anyway, and quiets NaN). Rows contiguous in X (trans): 16 rows of k and of k+1
// per load, interleaved into pairs with one vpermw. Pairs contiguous in X (!trans): 8 x 8 transposes (below).
__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))) void
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

// The two AVX-512 tiles' prefetches, as the float micro-kernel's (gemm_template.h): the C tile's rows (32 floats each)
// fetched while the sums run, and the B panel 16 pairs ahead. They change no value.
static inline void prefetch_c_rows(float *C, ptrdiff_t ldc, int rows) {
    for (int r = 0; r < rows; r++) __builtin_prefetch(C + r * ldc, 1, 3), __builtin_prefetch(C + r * ldc + 31, 1, 3);
}

static inline void prefetch_b_ahead(const uint32_t *b, ptrdiff_t q) {
    __builtin_prefetch(b + (q + 16) * BF_NR, 0, 3);
    __builtin_prefetch(b + (q + 16) * BF_NR + 16, 0, 3);
}

__attribute__((target("avx512f,avx512bf16"))) void rk_tile_bf16_avx512(ptrdiff_t kp, const uint32_t *a,
                                                                              const uint32_t *b, float *C, ptrdiff_t ldc,
                                                                              int rows, int cols, float alpha,
                                                                              float beta) {
    __m512 c[BF_MR][2];
    for (int r = 0; r < BF_MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    prefetch_c_rows(C, ldc, rows);
    for (ptrdiff_t q = 0; q < kp; q++) {
        prefetch_b_ahead(b, q);
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
__attribute__((target("avx2"))) void rk_pack_pairs_bf16_avx2(const float *X, ptrdiff_t ld, int trans,
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
__attribute__((target("avx2,fma"))) void rk_tile_bf16_avx2(ptrdiff_t kp, const uint32_t *a, const uint32_t *b,
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

// ---- AVX-512F without AVX512_BF16: A widened once when packed, B's pairs widened in registers ----

// Rewrites `groups` packed A pairs (groups x BF_MR uint32, as rk_pack_pairs_bf16 writes them) in place as floats:
// pair g's row r becomes f32 (k even) at [(2g) * BF_MR + r] and (k odd) at [(2g + 1) * BF_MR + r]. Walking g downward
// never overwrites a pair before it is read (pair g moves to 2g, 2g + 1 >= g).
__attribute__((target("avx2"))) static void rk_widen_pairs_a_avx2(uint32_t *buf, ptrdiff_t groups) {
    const __m256i high = _mm256_set1_epi32((int)0xFFFF0000u);
    for (ptrdiff_t g = groups - 1; g >= 0; g--) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(buf + g * BF_MR));
        _mm256_storeu_si256((__m256i *)(buf + (2 * g + 1) * BF_MR), _mm256_and_si256(v, high));
        _mm256_storeu_si256((__m256i *)(buf + 2 * g * BF_MR), _mm256_slli_epi32(v, 16));
    }
}

// rk_pack_pairs_bf16_avx2 for A (width BF_MR), then widened: panel p, k at ((p * 2 * KP + k) * BF_MR + r) as f32.
__attribute__((target("avx2"))) void rk_pack_a_widened_avx2(const float *X, ptrdiff_t ld, int trans,
                                                                   ptrdiff_t r0, ptrdiff_t rows, ptrdiff_t k0,
                                                                   ptrdiff_t kc, int width, uint32_t *out) {
    rk_pack_pairs_bf16_avx2(X, ld, trans, r0, rows, k0, kc, width, out);
    rk_widen_pairs_a_avx2(out, (rows + width - 1) / width * ((kc + 1) / 2));
}

// The 8 x 32 tile with 16 f32 accumulators: per pair, B's two vectors of pairs widen to four f32 vectors (k even: the
// low half shifted up; k odd: the high half masked; four integer operations per 32 FMAs) and A's values, widened when
// packed, are broadcast from memory. Each pair's even k first, then its odd k, per accumulator: the order (and so the
// bits) of rk_tile_bf16_avx2.
__attribute__((target("avx512f"))) void rk_tile_bf16_avx512f(ptrdiff_t kp, const uint32_t *a,
                                                                    const uint32_t *b, float *C, ptrdiff_t ldc,
                                                                    int rows, int cols, float alpha, float beta) {
    const float *af = (const float *)a;
    const __m512i high = _mm512_set1_epi32((int)0xFFFF0000u);
    __m512 c[BF_MR][2];
    for (int r = 0; r < BF_MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
    prefetch_c_rows(C, ldc, rows);
    for (ptrdiff_t q = 0; q < kp; q++) {
        prefetch_b_ahead(b, q);
        __m512i b0 = _mm512_loadu_si512(b + q * BF_NR), b1 = _mm512_loadu_si512(b + q * BF_NR + 16);
        __m512 b0e = _mm512_castsi512_ps(_mm512_slli_epi32(b0, 16)), b0o = _mm512_castsi512_ps(_mm512_and_si512(b0, high));
        __m512 b1e = _mm512_castsi512_ps(_mm512_slli_epi32(b1, 16)), b1o = _mm512_castsi512_ps(_mm512_and_si512(b1, high));
        const float *ae = af + 2 * q * BF_MR, *ao = ae + BF_MR;
        for (int r = 0; r < BF_MR; r++) {
            __m512 e = _mm512_set1_ps(ae[r]), o = _mm512_set1_ps(ao[r]);
            c[r][0] = _mm512_fmadd_ps(o, b0o, _mm512_fmadd_ps(e, b0e, c[r][0]));
            c[r][1] = _mm512_fmadd_ps(o, b1o, _mm512_fmadd_ps(e, b1e, c[r][1]));
        }
    }
    float tile[BF_MR][BF_NR];
    for (int r = 0; r < BF_MR; r++) {
        _mm512_storeu_ps(tile[r], c[r][0]);
        _mm512_storeu_ps(tile[r] + 16, c[r][1]);
    }
    for (int r = 0; r < rows; r++) // C = alpha * acc + beta * C for the columns that exist, as rk_tile_bf16_avx2
        for (int j = 0; j < cols; j++) {
            float *cr = C + r * ldc + j;
            *cr = alpha * tile[r][j] + (beta == 0.0f ? 0.0f : beta == 1.0f ? *cr : beta * *cr);
        }
}
#endif
