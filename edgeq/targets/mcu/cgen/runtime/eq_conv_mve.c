/* CONV_2D for Cortex-M55 with Helium (MVE). See eq_kernels.h (eq_conv2d_mve).
 *
 * The plain OHWI filter and the plain parameters, with the arithmetic of eq_conv2d (TFLM's): the input
 * offset is folded out of the dot product, sum((x + off) * w) = sum(x * w) + off * wsum, exact in int32.
 * Three output pixels at a time: their im2col columns are written to the scratch interleaved by 16 bytes
 * (tap t of column j at byte 48 * (t / 16) + 16 * j + t % 16), with the input zero point for padded taps,
 * which then add nothing once off * wsum is in. The dot products take VMLADAVA (16 int8 products summed
 * into an int32 per instruction), 2 output channels x 3 pixels per pass (VMLADAVA accumulates in even
 * registers only: 6 accumulators fit without spills); the last partial block of 16 taps loads the filter
 * with the tail lanes zeroed, so it never reads past a filter row. The requantization is
 * MultiplyByQuantizedMultiplier on the 3 pixels at once: VQRDMULH is gemmlowp's rounding doubling high
 * multiply, and the right shift rounds half away from zero as the plain kernel's (a negative value is
 * nudged by -1 before VRSHL's round-half-up).
 *
 * Without MVE (the host build) it is the plain kernel, so the host proofs run the same project.
 */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

#define EQ_MVE_PIX 3 /* output pixels per pass: 3 x 2 channels = 6 accumulators, in the even registers VMLADAVA takes */

/* n bytes of tap data (src, or the pad value when src is 0) into column j (colj = scratch + 16 j) from tap t */
static void put_run(int8_t* colj, int32_t t, const int8_t* src, int32_t n, int8_t pad) {
  const int8x16_t padv = vdupq_n_s8(pad);
  while (n > 0) {
    const int32_t off = t & 15;
    const int32_t chunk = 16 - off < n ? 16 - off : n;
    const mve_pred16_t m = vctp8q((uint32_t)chunk);
    const int8x16_t v = src ? vldrbq_z_s8(src, m) : padv;
    vstrbq_p_s8(colj + (t >> 4) * (16 * EQ_MVE_PIX) + off, v, m);
    if (src) src += chunk;
    t += chunk;
    n -= chunk;
  }
}

/* The im2col column of output pixel q (flattened over batch, rows, columns) into column j. */
static void im2col(const eq_conv_t* p, const int8_t* in, int32_t q, int8_t* colj) {
  const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_h = p->k_h, k_w = p->k_w;
  const int32_t dil_h = p->dil_h, dil_w = p->dil_w;
  const int32_t hw = p->out_h * p->out_w;
  const int32_t b = q / hw, r = q - b * hw;
  const int32_t oy = r / p->out_w, ox = r - oy * p->out_w;
  const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
  const int8_t pad = (int8_t)(-p->in_offset);
  const int8_t* in_b = in + (int64_t)b * in_h * in_w * in_c;
  const int row_inside = x0 >= 0 && x0 + dil_w * (k_w - 1) < in_w;
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int32_t iy = y0 + dil_h * ky;
    const int32_t t = ky * k_w * in_c;
    if (iy < 0 || iy >= in_h) {
      put_run(colj, t, 0, k_w * in_c, pad);
    } else if (row_inside && dil_w == 1) { /* the row's taps are one contiguous run of the input */
      put_run(colj, t, in_b + ((int64_t)iy * in_w + x0) * in_c, k_w * in_c, pad);
    } else {
      for (int32_t kx = 0; kx < k_w; ++kx) {
        const int32_t ix = x0 + dil_w * kx;
        const int8_t* src = ix < 0 || ix >= in_w ? 0 : in_b + ((int64_t)iy * in_w + ix) * in_c;
        put_run(colj, t + kx * in_c, src, in_c, pad);
      }
    }
  }
}

/* MultiplyByQuantizedMultiplier of 4 accumulators, the output offset added and clamped. */
static inline int32x4_t requant(int32x4_t acc, int32_t mult, int32_t shift, int32_t out_offset, int32x4_t lo,
                                int32x4_t hi) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  acc = vqrdmulhq_n_s32(vshlq_r_s32(acc, left), mult);
  /* round half away from zero: -1 for a negative value when there is a right shift, then round half up */
  const int32x4_t fix = vshrq_n_s32(vandq_s32(acc, vdupq_n_s32(-right)), 31);
  acc = vrshlq_n_s32(vqaddq_s32(acc, fix), -right);
  return vminq_s32(vmaxq_s32(vaddq_n_s32(acc, out_offset), lo), hi);
}

/* The 3 pixels' accumulators of one channel, each plus the channel's base (bias + off * wsum); lane 3 unused. */
static inline int32x4_t lanes(int32_t a0, int32_t a1, int32_t a2, int32_t base) {
  int32x4_t v = vdupq_n_s32(a0);
  v = vsetq_lane_s32(a1, v, 1);
  v = vsetq_lane_s32(a2, v, 2);
  return vaddq_n_s32(v, base);
}

void eq_conv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int8_t* scratch) {
  const int32_t out_c = p->out_c, in_offset = p->in_offset, out_offset = p->out_offset;
  const int32_t k = p->k_h * p->k_w * p->in_c;
  const int32_t blocks = k >> 4, tail = k & 15;
  const int32_t pixels = p->batches * p->out_h * p->out_w;
  const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
  const uint32x4_t stride = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)out_c);
  const mve_pred16_t wtail = vctp8q((uint32_t)tail);
  for (int32_t q = 0; q < pixels; q += EQ_MVE_PIX) {
    const int32_t n = pixels - q < EQ_MVE_PIX ? pixels - q : EQ_MVE_PIX;
    for (int32_t j = 0; j < n; ++j) im2col(p, in, q + j, scratch + 16 * j);
    const mve_pred16_t keep = vctp32q((uint32_t)n); /* a last group of fewer pixels */
    int8_t* o = out + (int64_t)q * out_c;
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2) {
      const int8_t* pc = scratch;
      const int8_t* w0 = w + (int64_t)oc * k;
      const int8_t* w1 = w0 + k;
      int32_t a0 = 0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0;
      for (int32_t i = 0; i < blocks; ++i) {
        const int8x16_t x0 = vldrbq_s8(pc), x1 = vldrbq_s8(pc + 16), x2 = vldrbq_s8(pc + 32);
        const int8x16_t v0 = vldrbq_s8(w0), v1 = vldrbq_s8(w1);
        pc += 16 * EQ_MVE_PIX;
        w0 += 16;
        w1 += 16;
        a0 = vmladavaq_s8(a0, x0, v0);
        a1 = vmladavaq_s8(a1, x1, v0);
        a2 = vmladavaq_s8(a2, x2, v0);
        b0 = vmladavaq_s8(b0, x0, v1);
        b1 = vmladavaq_s8(b1, x1, v1);
        b2 = vmladavaq_s8(b2, x2, v1);
      }
      if (tail) { /* the columns' tail bytes are stale: the zeroed filter lanes cancel them */
        const int8x16_t x0 = vldrbq_s8(pc), x1 = vldrbq_s8(pc + 16), x2 = vldrbq_s8(pc + 32);
        const int8x16_t v0 = vldrbq_z_s8(w0, wtail), v1 = vldrbq_z_s8(w1, wtail);
        a0 = vmladavaq_s8(a0, x0, v0);
        a1 = vmladavaq_s8(a1, x1, v0);
        a2 = vmladavaq_s8(a2, x2, v0);
        b0 = vmladavaq_s8(b0, x0, v1);
        b1 = vmladavaq_s8(b1, x1, v1);
        b2 = vmladavaq_s8(b2, x2, v1);
      }
      const int32_t base0 = (bias ? bias[oc] : 0) + p->wsum[oc] * in_offset;
      const int32_t base1 = (bias ? bias[oc + 1] : 0) + p->wsum[oc + 1] * in_offset;
      const int32x4_t r0 = requant(lanes(a0, a1, a2, base0), p->mult[oc], p->shift[oc], out_offset, lo, hi);
      const int32x4_t r1 = requant(lanes(b0, b1, b2, base1), p->mult[oc + 1], p->shift[oc + 1], out_offset, lo, hi);
      vstrbq_scatter_offset_p_s32(o + oc, stride, r0, keep);
      vstrbq_scatter_offset_p_s32(o + oc + 1, stride, r1, keep);
    }
    if (oc < out_c) { /* an odd last channel */
      const int8_t* pc = scratch;
      const int8_t* w0 = w + (int64_t)oc * k;
      int32_t a0 = 0, a1 = 0, a2 = 0;
      for (int32_t i = 0; i < blocks + (tail != 0); ++i) {
        const int8x16_t v0 = i < blocks ? vldrbq_s8(w0) : vldrbq_z_s8(w0, wtail);
        a0 = vmladavaq_s8(a0, vldrbq_s8(pc), v0);
        a1 = vmladavaq_s8(a1, vldrbq_s8(pc + 16), v0);
        a2 = vmladavaq_s8(a2, vldrbq_s8(pc + 32), v0);
        pc += 16 * EQ_MVE_PIX;
        w0 += 16;
      }
      const int32_t base0 = (bias ? bias[oc] : 0) + p->wsum[oc] * in_offset;
      const int32x4_t r0 = requant(lanes(a0, a1, a2, base0), p->mult[oc], p->shift[oc], out_offset, lo, hi);
      vstrbq_scatter_offset_p_s32(o + oc, stride, r0, keep);
    }
  }
}

#else

void eq_conv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int8_t* scratch) {
  (void)scratch;
  eq_conv2d(p, in, w, bias, out);
}

#endif
