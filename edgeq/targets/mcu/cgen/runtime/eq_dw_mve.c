/* edgeq generated-C runtime: DEPTHWISE_CONV_2D for Cortex-M55's Helium (MVE).
 *
 * The same integer arithmetic as eq_dwconv2d (eq_kernels.c), reorganised for 16 channels per pass:
 *   - depth multiplier 1 (output channel c reads input channel c; NHWC input and 1HWO filter are both
 *     channel-interleaved): per tap one byte vector of input and one of filter, multiplied into int16 by
 *     VMULLB / VMULLT (even and odd channels; an int8 product fits int16 exactly) and widened into four int32
 *     accumulators by VMOVLB / VMOVLT, so accumulator k holds channels base_k + 4j (base 0, 2, 1, 3);
 *   - the input offset is out of the loop: the accumulators take x * w and start from bias + in_offset *
 *     sum(w) per channel, which the generator (mve.py dw_table) precomputes: the reference's
 *     sum(w * (x + offset)) + bias regrouped, the same int32 modulo 2^32. A tap outside the image reads the
 *     input zero point (-in_offset) instead of memory: w * (zp + offset) = 0, as the reference skips it; so
 *     border pixels take the same pass, with one bounds test per tap (not per channel), interior ones none;
 *   - p->wsum points at the generator's table, per block of 16 channels and in the accumulators' channel
 *     order: the start sums, the multipliers, the left shifts max(shift, 0) and the right shifts
 *     min(shift, 0) (zero-padded past the last channel); requantization is eq_mbqm's in lanes: the left
 *     shift wraps as the reference's uint32 shift, VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul
 *     exactly, and the rounding right shift rounds half away from zero (negative values step down by one
 *     first: VRSHL alone rounds half up); the four results are narrowed back into channel order by
 *     VMOVNB / VMOVNT and stored with one (tail-predicated) byte store.
 * Other depth multipliers, and the host build (no MVE), call eq_dwconv2d with the same arguments (the plain
 * mult and shift; it does not read wsum). */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* eq_mbqm(acc, mult, shift) + out_offset, clamped, per lane; left = max(shift, 0), right = min(shift, 0). */
static inline int32x4_t eq_dw_requant(int32x4_t acc, int32x4_t mult, int32x4_t left, int32x4_t right,
                                      int32_t out_offset, int32x4_t act_min, int32x4_t act_max) {
  acc = vqrdmulhq_s32(vshlq_s32(acc, left), mult);
  acc = vqaddq_s32(acc, vshrq_n_s32(vandq_s32(acc, right), 31)); /* negatives step down when shifting */
  acc = vaddq_n_s32(vrshlq_s32(acc, right), out_offset);
  return vminq_s32(vmaxq_s32(acc, act_min), act_max);
}

/* 16 channels from c (full: 16 or more left, no predication) of the output pixel whose window starts at
 * (y0, x0); border: the window leaves the image (taps outside read the zero point). */
static inline __attribute__((always_inline)) void eq_dw_mve_block16(const eq_conv_t* p, const int8_t* in_b,
                                                                    int32_t y0, int32_t x0, const int8_t* w,
                                                                    int8_t* o, int32_t c, int full, int border) {
  const int32_t c_n = p->in_c, k_h = p->k_h, k_w = p->k_w, in_h = p->in_h, in_w = p->in_w;
  const int32_t dil_h = p->dil_h, dil_w = p->dil_w, col_step = dil_w * c_n;
  const mve_pred16_t p8 = vctp8q((uint32_t)(c_n - c));
  const int8x16_t zp = vdupq_n_s8((int8_t)-p->in_offset);
  const int32_t* t = p->wsum + (c >> 4) * 64; /* start sums, mult, left, right: 16 each */
  int32x4_t a0 = vldrwq_s32(t), a1 = vldrwq_s32(t + 4), a2 = vldrwq_s32(t + 8), a3 = vldrwq_s32(t + 12);
  const int8_t* wp = w + c;
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int32_t iy = y0 + dil_h * ky;
    const int row_in = !border || (iy >= 0 && iy < in_h);
    int32_t at = (iy * in_w + x0) * c_n + c;
    for (int32_t kx = 0; kx < k_w; ++kx, at += col_step, wp += c_n) {
      int8x16_t xv;
      if (border && !(row_in && x0 + dil_w * kx >= 0 && x0 + dil_w * kx < in_w))
        xv = zp;
      else
        xv = full ? vldrbq_s8(in_b + at) : vldrbq_z_s8(in_b + at, p8);
      const int8x16_t wv = full ? vldrbq_s8(wp) : vldrbq_z_s8(wp, p8);
      const int16x8_t even = vmullbq_int_s8(xv, wv), odd = vmulltq_int_s8(xv, wv);
      a0 = vaddq_s32(a0, vmovlbq_s16(even));
      a1 = vaddq_s32(a1, vmovltq_s16(even));
      a2 = vaddq_s32(a2, vmovlbq_s16(odd));
      a3 = vaddq_s32(a3, vmovltq_s16(odd));
    }
  }
  const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
  const int32_t zo = p->out_offset;
  a0 = eq_dw_requant(a0, vldrwq_s32(t + 16), vldrwq_s32(t + 32), vldrwq_s32(t + 48), zo, lo, hi);
  a1 = eq_dw_requant(a1, vldrwq_s32(t + 20), vldrwq_s32(t + 36), vldrwq_s32(t + 52), zo, lo, hi);
  a2 = eq_dw_requant(a2, vldrwq_s32(t + 24), vldrwq_s32(t + 40), vldrwq_s32(t + 56), zo, lo, hi);
  a3 = eq_dw_requant(a3, vldrwq_s32(t + 28), vldrwq_s32(t + 44), vldrwq_s32(t + 60), zo, lo, hi);
  /* back to channel order: int16 lane m of even is channel 2m, of odd 2m + 1; then bytes 2m and 2m + 1 */
  const int16x8_t even = vmovntq_s32(vmovnbq_s32(vdupq_n_s16(0), a0), a1);
  const int16x8_t odd = vmovntq_s32(vmovnbq_s32(vdupq_n_s16(0), a2), a3);
  const int8x16_t res = vmovntq_s16(vmovnbq_s16(vdupq_n_s8(0), even), odd);
  if (full)
    vstrbq_s8(o + c, res);
  else
    vstrbq_p_s8(o + c, res, p8);
}

static void eq_dw_mve_pixel16(const eq_conv_t* p, const int8_t* in_b, int32_t y0, int32_t x0, const int8_t* w,
                              int8_t* o, int border) {
  int32_t c = 0;
  if (border) {
    for (; c + 16 <= p->in_c; c += 16) eq_dw_mve_block16(p, in_b, y0, x0, w, o, c, 1, 1);
    if (c < p->in_c) eq_dw_mve_block16(p, in_b, y0, x0, w, o, c, 0, 1);
  } else {
    for (; c + 16 <= p->in_c; c += 16) eq_dw_mve_block16(p, in_b, y0, x0, w, o, c, 1, 0);
    if (c < p->in_c) eq_dw_mve_block16(p, in_b, y0, x0, w, o, c, 0, 0);
  }
}

void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  if (p->depth_mult != 1 || p->wsum == 0) {
    eq_dwconv2d(p, in, w, bias, out);
    return;
  }
  const int32_t in_h = p->in_h, in_w = p->in_w, c_n = p->in_c, out_h = p->out_h, out_w = p->out_w;
  const int32_t span_h = p->dil_h * (p->k_h - 1), span_w = p->dil_w * (p->k_w - 1);
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + b * in_h * in_w * c_n;
    int8_t* out_b = out + b * out_h * out_w * c_n;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int row_border = y0 < 0 || y0 + span_h >= in_h;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int border = row_border || x0 < 0 || x0 + span_w >= in_w;
        eq_dw_mve_pixel16(p, in_b, y0, x0, w, out_b + (oy * out_w + ox) * c_n, border);
      }
    }
  }
}

#else /* no MVE (the host build): the plain kernel, same arguments */

void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  eq_dwconv2d(p, in, w, bias, out);
}

#endif
