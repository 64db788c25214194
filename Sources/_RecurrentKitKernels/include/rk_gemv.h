#ifndef RK_GEMV_H
#define RK_GEMV_H
#include <stddef.h>
#include <stdint.h>

/// dst[i] = bf16(src[i]) for n elements, round to nearest even; NaN stays NaN (quieted, sign kept), overflow gives +-inf.
void rk_f32_to_bf16(const float *src, uint16_t *dst, ptrdiff_t n);
/// dst[i] = float(src[i]) for n elements (exact: the bf16 bits become the high half of the float).
void rk_bf16_to_f32(const uint16_t *src, float *dst, ptrdiff_t n);
/// y[r] = sum_{k<cols} float(w[r*ldw + k]) * x[k] + beta * y[r] for r < rows: bf16 weights w (rows, ldw >= cols),
/// f32 x (cols) and y (rows), f32 accumulation. When beta == 0, y is not read. Each row's result depends only on
/// that row, cols and the instruction-set level (not on rows, the row offset or the thread count).
void rk_gemv_bf16(ptrdiff_t rows, ptrdiff_t cols, const uint16_t *w, ptrdiff_t ldw, const float *x, float beta,
                  float *y);
/// y[r] = alpha * sum_{k<cols} w[r*ldw + k] * x[k] + beta * y[r] for r < rows: f32 weights w (rows, ldw >= cols),
/// x (cols), y (rows). When beta == 0, y is not read (NaN in y does not propagate). Each row's result depends only
/// on that row, cols, alpha and the instruction-set level (not on rows, the row offset or the thread count).
/// rk_sgemm uses it for M == 1 with op(B) = B^T.
void rk_gemv_f32(ptrdiff_t rows, ptrdiff_t cols, const float *w, ptrdiff_t ldw, const float *x, float alpha,
                 float beta, float *y);
/// Per-row int8 quantization of a (rows, cols) f32 matrix: scales[r] = max_k |src[r*cols + k]| / 127 (0 for a zero row),
/// dst[r*cols + k] = round-to-nearest-even(src / scales[r]) in [-127, 127], and sums[r] = sum_k dst[r*cols + k] (what
/// rk_gemv_i8 needs to undo x's zero point). Returns 0, or -1 when a value is not finite (outputs then unspecified).
int rk_quantize_i8_rows(const float *src, int8_t *dst, float *scales, int32_t *sums, ptrdiff_t rows, ptrdiff_t cols);
/// y[r] = scales[r] * sx * sum_{k<cols} w[r*ldw + k] * xq[k] + beta * y[r] for r < rows (dynamic quantization of x,
/// symmetric): int8 weights w (rows, ldw >= cols) with one f32 scale per row and their row sums from rk_quantize_i8_rows;
/// x (cols, f32) is quantized per call to xq = round(x / sx) in [-127, 127], sx = max |x| / 127, and the sums are
/// exact in 32-bit integers (AVX512-VNNI vpdpbusd on x + 128 as unsigned bytes where the CPU has it, else exact
/// 16-bit products), so the result is bit-identical on every instruction-set level and thread count. When beta == 0,
/// y is not read. A non-finite x gives NaN rows. Rows longer than 65,536 are summed in 64-bit integers (still exact).
void rk_gemv_i8(ptrdiff_t rows, ptrdiff_t cols, const int8_t *w, ptrdiff_t ldw, const float *scales,
                const int32_t *sums, const float *x, float beta, float *y);
#endif
