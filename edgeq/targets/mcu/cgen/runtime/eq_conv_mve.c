/* CONV_2D for Cortex-M55 with Helium (MVE). See eq_kernels.h (eq_conv2d_mve).
 *
 * The plain OHWI filter and the plain parameters, with the arithmetic of eq_conv2d (TFLM's): the input
 * offset is folded out of the dot product, sum((x + off) * w) = sum(x * w) + off * wsum, exact in int32.
 * Three output pixels at a time: their im2col columns are written to the scratch (each k rounded up to
 * 16 bytes), with the input zero point for padded taps, which then add nothing once off * wsum is in; a
 * 1x1 filter with no padding reads its columns from the input instead. The dot products take VMLADAVA (16 int8 products summed
 * into an int32 per instruction), 2 output channels x 3 pixels per pass (VMLADAVA accumulates in even
 * registers only: 6 accumulators fit without spills); the last partial block of 16 taps loads with the
 * tail lanes zeroed, so it never reads past a filter row or an input pixel. The requantization is
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

/* n bytes of tap data (src, or the pad value when src is 0) to dst */
static void put_run(int8_t* dst, const int8_t* src, int32_t n, int8_t pad) {
  const int8x16_t padv = vdupq_n_s8(pad);
  for (; n > 0; n -= 16, dst += 16) {
    const mve_pred16_t m = vctp8q((uint32_t)n);
    vstrbq_p_s8(dst, src ? vldrbq_z_s8(src, m) : padv, m);
    if (src) src += 16;
  }
}

/* The im2col column of output pixel q (flattened over batch, rows, columns) to col. */
static void im2col(const eq_conv_t* p, const int8_t* in, int32_t q, int8_t* col) {
  const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, k_h = p->k_h, k_w = p->k_w;
  const int32_t dil_h = p->dil_h, dil_w = p->dil_w;
  const int32_t hw = p->out_h * p->out_w;
  const int32_t b = q / hw, r = q - b * hw;
  const int32_t oy = r / p->out_w, ox = r - oy * p->out_w;
  const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
  const int8_t pad = (int8_t)(-p->in_offset);
  const int8_t* in_b = in + (int64_t)b * in_h * in_w * in_c;
  const int row_inside = x0 >= 0 && x0 + dil_w * (k_w - 1) < in_w;
  for (int32_t ky = 0; ky < k_h; ++ky, col += k_w * in_c) {
    const int32_t iy = y0 + dil_h * ky;
    if (iy < 0 || iy >= in_h) {
      put_run(col, 0, k_w * in_c, pad);
    } else if (row_inside && dil_w == 1) { /* the row's taps are one contiguous run of the input */
      put_run(col, in_b + ((int64_t)iy * in_w + x0) * in_c, k_w * in_c, pad);
    } else {
      for (int32_t kx = 0; kx < k_w; ++kx) {
        const int32_t ix = x0 + dil_w * kx;
        const int8_t* src = ix < 0 || ix >= in_w ? 0 : in_b + ((int64_t)iy * in_w + ix) * in_c;
        put_run(col + kx * in_c, src, in_c, pad);
      }
    }
  }
}

/* A 1x1 filter with no padding reads each pixel's column straight from the input (no im2col). */
static inline const int8_t* direct(const eq_conv_t* p, const int8_t* in, int32_t q) {
  const int32_t hw = p->out_h * p->out_w;
  const int32_t b = q / hw, r = q - b * hw;
  const int32_t oy = r / p->out_w, ox = r - oy * p->out_w;
  return in + (((int64_t)b * p->in_h + oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_c;
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
  const int32_t k = p->k_h * p->k_w * p->in_c, k16 = (k + 15) & ~15;
  const int32_t blocks = k >> 4, tail = k & 15;
  const int32_t pixels = p->batches * p->out_h * p->out_w;
  const int is_direct = p->k_h == 1 && p->k_w == 1 && p->pad_h == 0 && p->pad_w == 0;
  const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
  const uint32x4_t stride = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)out_c);
  const mve_pred16_t wtail = vctp8q((uint32_t)tail);
  for (int32_t q = 0; q < pixels; q += EQ_MVE_PIX) {
    const int32_t n = pixels - q < EQ_MVE_PIX ? pixels - q : EQ_MVE_PIX;
    const int8_t* cols[EQ_MVE_PIX];
    for (int32_t j = 0; j < EQ_MVE_PIX; ++j) {
      const int32_t pj = q + (j < n ? j : 0); /* a last group of fewer pixels repeats its first one */
      if (is_direct) {
        cols[j] = direct(p, in, pj);
      } else {
        cols[j] = scratch + j * k16;
        if (j < n) im2col(p, in, pj, scratch + j * k16);
      }
    }
    const mve_pred16_t keep = vctp32q((uint32_t)n);
    int8_t* o = out + (int64_t)q * out_c;
    int32_t oc = 0;
    for (; oc + 2 <= out_c; oc += 2) {
      const int8_t *c0 = cols[0], *c1 = cols[1], *c2 = cols[2];
      const int8_t* w0 = w + (int64_t)oc * k;
      const int8_t* w1 = w0 + k;
      int32_t a0 = 0, a1 = 0, a2 = 0, b0 = 0, b1 = 0, b2 = 0;
      for (int32_t i = 0; i < blocks; ++i) {
        const int8x16_t x0 = vldrbq_s8(c0), x1 = vldrbq_s8(c1), x2 = vldrbq_s8(c2);
        const int8x16_t v0 = vldrbq_s8(w0), v1 = vldrbq_s8(w1);
        c0 += 16;
        c1 += 16;
        c2 += 16;
        w0 += 16;
        w1 += 16;
        a0 = vmladavaq_s8(a0, x0, v0);
        a1 = vmladavaq_s8(a1, x1, v0);
        a2 = vmladavaq_s8(a2, x2, v0);
        b0 = vmladavaq_s8(b0, x0, v1);
        b1 = vmladavaq_s8(b1, x1, v1);
        b2 = vmladavaq_s8(b2, x2, v1);
      }
      if (tail) { /* the last k % 16 taps: every load predicated, nothing read past a row or column */
        const int8x16_t x0 = vldrbq_z_s8(c0, wtail), x1 = vldrbq_z_s8(c1, wtail), x2 = vldrbq_z_s8(c2, wtail);
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
      const int8_t *c0 = cols[0], *c1 = cols[1], *c2 = cols[2];
      const int8_t* w0 = w + (int64_t)oc * k;
      int32_t a0 = 0, a1 = 0, a2 = 0;
      for (int32_t left = k; left > 0; left -= 16) {
        const mve_pred16_t m = vctp8q((uint32_t)left);
        const int8x16_t v0 = vldrbq_z_s8(w0, m);
        a0 = vmladavaq_s8(a0, vldrbq_z_s8(c0, m), v0);
        a1 = vmladavaq_s8(a1, vldrbq_z_s8(c1, m), v0);
        a2 = vmladavaq_s8(a2, vldrbq_z_s8(c2, m), v0);
        c0 += 16;
        c1 += 16;
        c2 += 16;
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
