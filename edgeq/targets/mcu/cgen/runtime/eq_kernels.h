/* edgeq generated-C runtime: int8 kernels with TFLite's reference arithmetic (bit-exact with BUILTIN_REF).
 *
 * Every parameter that TFLite computes in Prepare (multipliers, shifts, padding, activation bounds) is
 * computed by edgeq in Python and passed in as constants; these kernels only do the integer work.
 * C99, no allocation, no floating point.
 */
#ifndef EQ_KERNELS_H
#define EQ_KERNELS_H

#include <stdint.h>

/* CONV_2D and DEPTHWISE_CONV_2D (NHWC input and output; OHWI filter for conv, 1HWO for depthwise). */
typedef struct {
  int32_t batches, in_h, in_w, in_c, out_h, out_w, out_c;
  int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, depth_mult;
  int32_t in_offset, out_offset, act_min, act_max;
  const int32_t* mult; /* per output channel */
  const int32_t* shift;
  const int32_t* wsum; /* conv: the sum of each output channel's filter, for windows with no padding */
} eq_conv_t;

void eq_conv2d(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);
void eq_dwconv2d(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);

/* FULLY_CONNECTED: weights [out_depth, in_depth]; per_channel selects mult/shift[o] or [0].
 * Requantized as TFLM's reference FULLY_CONNECTED does (what runs on the device): the int32 accumulator
 * times a Q31 multiplier with a power-of-two shift (MultiplyByQuantizedMultiplier), computed per output
 * channel when the filter is per-channel. LiteRT's BUILTIN_REF rescales in double instead, which rounds
 * differently by one step on rare accumulators; the proof reports which reference each build matched. */
typedef struct {
  int32_t batches, in_depth, out_depth;
  int32_t in_offset, w_offset, out_offset, act_min, act_max, per_channel;
  const int32_t* mult;
  const int32_t* shift;
} eq_fc_t;

void eq_fully_connected(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);

/* MAX_POOL_2D and AVERAGE_POOL_2D. */
typedef struct {
  int32_t batches, in_h, in_w, c, out_h, out_w;
  int32_t k_h, k_w, stride_h, stride_w, pad_h, pad_w, act_min, act_max;
} eq_pool_t;

void eq_max_pool(const eq_pool_t* p, const int8_t* in, int8_t* out);
void eq_avg_pool(const eq_pool_t* p, const int8_t* in, int8_t* out);

/* SOFTMAX over the last axis, int8 in, int8 out (zero point -128, scale 1/256). */
typedef struct {
  int32_t outer, depth, in_mult, in_left_shift, diff_min;
} eq_softmax_t;

void eq_softmax(const eq_softmax_t* p, const int8_t* in, int8_t* out);

/* ADD and MUL, element-wise, with optional broadcast given as per-input strides over a 4-D output. */
typedef struct {
  int32_t dims[4];
  int32_t strides1[4], strides2[4];
  int32_t in1_offset, in2_offset, out_offset, act_min, act_max;
  int32_t left_shift, in1_mult, in1_shift, in2_mult, in2_shift, out_mult, out_shift;
} eq_binary_t;

void eq_add(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out);
void eq_mul(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out);

/* MEAN over any of 4 axes (reduce[a] != 0), output in row-major order of the kept axes. mode selects
 * LiteRT's reference path: 1 = same input and output quantization (sum, then C division); 2 = the sum
 * rescaled by a multiplier that folds in 1/count. */
typedef struct {
  int32_t dims[4], reduce[4], count, in_zp, out_zp, mult, shift, mode;
} eq_mean_t;

void eq_mean(const eq_mean_t* p, const int8_t* in, int8_t* out);

/* CONCATENATION of inputs with equal quantization along one axis: outer x (inner sizes of each input). */
void eq_concat(int32_t outer, int32_t n, const int8_t* const* ins, const int32_t* inner, int8_t* out);

/* PAD of a 4-D tensor with a constant (the zero point). */
typedef struct {
  int32_t in_dims[4], out_dims[4], before[4], value;
} eq_pad_t;

void eq_pad(const eq_pad_t* p, const int8_t* in, int8_t* out);

/* An element-wise int8 op as a 256-entry table indexed by (uint8_t)x. */
void eq_lut(const int8_t* table, const int8_t* in, int8_t* out, int32_t size);

/* Copy (RESHAPE when the planner cannot alias the buffers). */
void eq_copy(const int8_t* in, int8_t* out, int32_t size);

/* QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32 at the model's edges (float I/O). */
void eq_quantize_f32(const float* in, int8_t* out, int32_t size, float scale, int32_t zero_point);
void eq_dequantize_f32(const int8_t* in, float* out, int32_t size, double scale, int32_t zero_point);

/* TFLite's fixed-point primitives, exposed for the unit tests. */
int32_t eq_srdhm(int32_t a, int32_t b);
int32_t eq_rdbpot(int32_t x, int32_t exponent);
int32_t eq_mbqm(int32_t x, int32_t mult, int32_t shift);

/* ---- streaming models (eq_stream.c): int8 data moves, exact by construction ---------------------- */
#ifndef EQ_STREAM_H
#define EQ_STREAM_H
/* STRIDED_SLICE over 4-D (leading axes padded with 1): out[a][b][c][d] = in at start[k] + i_k * step[k]
 * on each axis k (in_stride: the input's element strides). Edgeq computes the window in Python with TFLM's
 * masks and clamping and checks it lies inside the input. */
typedef struct {
  int32_t start[4], step[4], count[4], in_stride[4];
} eq_slice_t;

void eq_strided_slice(const eq_slice_t* p, const int8_t* in, int8_t* out);
/* SPLIT_V (and SPLIT): for each of `outer` blocks, `inner[k]` bytes to output k in turn. */
void eq_split(int32_t outer, int32_t n, const int8_t* in, const int32_t* inner, int8_t* const* outs);
/* A resource variable's initial value when every element is the same. */
void eq_fill(int8_t* out, int8_t value, int32_t size);
#endif

/* CONV_2D for cores with the DSP extension (eq_conv_dsp.c): the filter in the generator's DSP layout
 * (edgeq/targets/mcu/cgen/dsp.py: output channels paired, interleaved by groups of 4 taps), scratch for two interleaved int16 im2col columns (EQ_CONV_DSP_SCRATCH bytes, planned in the arena). Bit-exact with eq_conv2d. */
#define EQ_CONV_DSP_SCRATCH(k) (4 * ((k) + ((k) & 1)))
void eq_conv2d_dsp(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int16_t* scratch);

/* FULLY_CONNECTED for cores with the DSP extension (eq_fc_dsp.c): the weights in the generator's DSP layout
 * (dsp.py dsp_filter: rows paired, interleaved by groups of 4 taps), the bias always present and holding the
 * folded input offset (in_offset * sum(w) + in_depth * in_offset * w_offset per row). Bit-exact with
 * eq_fully_connected. */
void eq_fully_connected_dsp(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);
/* MAX_POOL_2D for cores with the DSP extension (eq_pool_dsp.c): 4 channels per word (SSUB8 + SEL). Bit-exact
 * with eq_max_pool. */
void eq_max_pool_dsp(const eq_pool_t* p, const int8_t* in, int8_t* out);
/* DEPTHWISE_CONV_2D for cores with the DSP extension (eq_dw_dsp.c): interior
 * pixels without bounds tests, depth multiplier 1 four channels per pass with SXTB16 / SMLABB / SMLATT.
 * The plain 1HWO filter, no scratch. Bit-exact with eq_dwconv2d. */
void eq_dwconv2d_dsp(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);

/* ADD for cores with the DSP extension (eq_add_dsp.c): without broadcast one flat loop, parameters in
 * locals, requantization in one SMLAL and a shift; with broadcast eq_add. Bit-exact with eq_add. */
void eq_add_dsp(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out);

/* CONV_2D for Cortex-M55 with Helium (eq_conv_mve.c): the plain OHWI filter and parameters (wsum included),
 * scratch (planned in the arena, 4-byte aligned) for 3 int32 requantization constants per channel (out_c
 * rounded up to 4), 3 pixels' int32 accumulators (out_c rounded up to even) and, unless the filter is 1x1
 * with no padding and k a multiple of 16, their im2col columns each padded to 16 bytes:
 * EQ_CONV_MVE_SCRATCH bytes. Bit-exact with eq_conv2d; without MVE (the host) it calls eq_conv2d. */
#define EQ_CONV_MVE_SCRATCH(k, out_c, direct)                                            \
  (12 * (((out_c) + 3) / 4 * 4) + 12 * (((out_c) + 1) / 2 * 2) +                         \
   ((direct) ? 0 : 3 * (((k) + 15) / 16 * 16)))
void eq_conv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int8_t* scratch);

/* ---- Cortex-M55 Helium (MVE) kernels: bit-exact with the plain kernels; on a build without MVE (the host)
 * each runs its plain kernel's arithmetic in C. ------------------------------------------------------------ */
/* DEPTHWISE_CONV_2D (eq_dw_mve.c): depth multiplier 1, 16 channels per pass, p->wsum pointing at the
 * generator's per-channel table (mve.py dw_table: start sums, multipliers, split shifts per block of 16,
 * then one flags word);
 * any other depth multiplier, or no table, runs eq_dwconv2d. */
void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);

/* FULLY_CONNECTED (eq_fc_mve.c): the plain weights, 16 taps per VMLADAVA, 4 rows per pass; the bias always
 * given, holding the folded input offset as eq_fully_connected_dsp's (dsp.py fc_bias). */
void eq_fully_connected_mve(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out);

/* ADD (eq_add_mve.c): 4 lanes per pass when neither input broadcasts; a broadcasting ADD runs eq_add. */
void eq_add_mve(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out);

/* MAX_POOL_2D and AVERAGE_POOL_2D (eq_pool_mve.c): max 16 channels per vector, average 4 (int32 sums). */
void eq_max_pool_mve(const eq_pool_t* p, const int8_t* in, int8_t* out);
void eq_avg_pool_mve(const eq_pool_t* p, const int8_t* in, int8_t* out);

#endif
