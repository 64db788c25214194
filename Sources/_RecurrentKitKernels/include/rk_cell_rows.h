#ifndef RK_CELL_ROWS_H
#define RK_CELL_ROWS_H
#include <stddef.h>

// Element-wise work of one LSTM time step over rows [begin, end) of the batch, in Float. The equations are those of
// Sources/RecurrentKit/Cells/LSTMCell.swift, with the same operations in the same order (no fused multiply-add), so
// every instruction-set level gives the bits of that file's scalar loop (LSTMCellRowTests checks it bitwise). Rows:
// gates and dGates have 4H values per row (i|f|g|o), every other array H.

/// i, f, o = sigmoid and g = tanh of the pre-activations (in place, through rk_sigmoid_f32 / rk_tanh_f32);
/// c = (f * cPrev) + (i * g); tanhCell = tanh(c) (rk_tanh_f32); out = o * tanhCell. cPrev may equal c.
void rk_lstm_forward_rows_f32(float *gates, float *c, const float *cPrev, float *tanhCell, float *out, ptrdiff_t begin,
                              ptrdiff_t end, ptrdiff_t H);

/// dhT = dh + dOut; dcT = dc + (dhT * o) * (1 - tanhC * tanhC); di = ((dcT * g) * i) * (1 - i);
/// df = ((dcT * cPrev) * f) * (1 - f); dg = (dcT * i) * (1 - g * g); do = ((dhT * tanhC) * o) * (1 - o); dc = dcT * f.
void rk_lstm_backward_rows_f32(const float *gates, float *dGates, const float *cPrev, const float *tanhCell,
                               const float *dh, float *dc, const float *dOut, ptrdiff_t begin, ptrdiff_t end,
                               ptrdiff_t H);
/// x[r * n + j] += row[j] for r < rows, j < n (a bias added to every row), split over the kernel pool when rows * n
/// is large; the same sums at every level and thread count.
void rk_add_row_f32(float *x, const float *row, ptrdiff_t rows, ptrdiff_t n);
#endif
