/* edgeq generated-C runtime: DEPTHWISE_CONV_2D for Cortex-M55's Helium (MVE).
 *
 * The same integer arithmetic as eq_dwconv2d (eq_kernels.c), reorganised for 4 int32 vector lanes:
 *   - depth multiplier 1 (output channel c reads input channel c): 4 channels per pass, one widening byte
 *     load of input and one of filter per tap (VLDRB.S32), a vector multiply and add; the last pass is
 *     tail-predicated (VCTP), so any channel count runs without a scalar tail;
 *   - interior pixels (the whole window inside the image) take no bounds test and start from p->wsum, which
 *     the generator (mve.py) fills with bias + in_offset * sum(w) per channel: the reference's
 *     sum(w * (x + offset)) + bias regrouped, the same int32 modulo 2^32, so only x * w is left per tap;
 *   - border pixels clip their window once and add the offset in-lane: w * (x + offset), as the reference;
 *   - requantization is eq_mbqm's in lanes (eq_requant_mve): the left shift wraps as the reference's
 *     uint32 shift, VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly, and the rounding right
 *     shift rounds half away from zero (negative values step down by one first: VRSHL alone rounds half up).
 * Other depth multipliers, and the host build (no MVE), call eq_dwconv2d with the same arguments. */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* eq_mbqm(acc, mult, shift) + out_offset, clamped, per lane. */
static inline int32x4_t eq_dw_requant(int32x4_t acc, int32x4_t mult, int32x4_t shift, int32_t out_offset,
                                      int32_t act_min, int32_t act_max) {
  const int32x4_t zero = vdupq_n_s32(0);
  const int32x4_t right = vminq_s32(shift, zero); /* -right shift, or 0 */
  acc = vshlq_s32(acc, vmaxq_s32(shift, zero));
  acc = vqrdmulhq_s32(acc, mult);
  acc = vqaddq_s32(acc, vshrq_n_s32(vandq_s32(acc, right), 31)); /* negatives step down when shifting */
  acc = vrshlq_s32(acc, right);
  acc = vaddq_n_s32(acc, out_offset);
  return vminq_s32(vmaxq_s32(acc, vdupq_n_s32(act_min)), vdupq_n_s32(act_max));
}

/* One output pixel, depth multiplier 1, over taps ky0 <= ky < ky1, kx0 <= kx < kx1 (all inside the image).
 * interior: the whole window, accumulators start at p->wsum and take x * w; otherwise they start at the bias
 * and take w * (x + offset). px: the input pixel under tap (ky0, kx0). */
static void eq_dw_mve_pixel(const eq_conv_t* p, const int8_t* px, const int8_t* w, const int32_t* bias,
                            int32_t ky0, int32_t ky1, int32_t kx0, int32_t kx1, int interior, int8_t* o) {
  const int32_t c_n = p->in_c, k_w = p->k_w, n_y = ky1 - ky0, n_x = kx1 - kx0;
  const int32_t row_step = p->dil_h * p->in_w * c_n, col_step = p->dil_w * c_n, w_row = k_w * c_n;
  const int32_t in_offset = p->in_offset, out_offset = p->out_offset, act_min = p->act_min, act_max = p->act_max;
  const int8_t* const w0 = w + (ky0 * k_w + kx0) * c_n;
  const int32_t* start = interior ? p->wsum : bias;
  for (int32_t c = 0; c < c_n; c += 4) {
    const mve_pred16_t pred = vctp32q((uint32_t)(c_n - c));
    int32x4_t acc = start ? vldrwq_z_s32(start + c, pred) : vdupq_n_s32(0);
    for (int32_t ky = 0; ky < n_y; ++ky) {
      const int8_t* xp = px + ky * row_step + c;
      const int8_t* wp = w0 + ky * w_row + c;
      if (interior) {
        for (int32_t kx = 0; kx < n_x; ++kx, xp += col_step, wp += c_n)
          acc = vaddq_s32(acc, vmulq_s32(vldrbq_z_s32(xp, pred), vldrbq_z_s32(wp, pred)));
      } else {
        for (int32_t kx = 0; kx < n_x; ++kx, xp += col_step, wp += c_n)
          acc = vaddq_s32(acc, vmulq_s32(vaddq_n_s32(vldrbq_z_s32(xp, pred), in_offset), vldrbq_z_s32(wp, pred)));
      }
    }
    const int32x4_t mult = vldrwq_z_s32(p->mult + c, pred), shift = vldrwq_z_s32(p->shift + c, pred);
    vstrbq_p_s32(o + c, eq_dw_requant(acc, mult, shift, out_offset, act_min, act_max), pred);
  }
}

void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  if (p->depth_mult != 1 || p->wsum == 0) {
    eq_dwconv2d(p, in, w, bias, out);
    return;
  }
  const int32_t in_h = p->in_h, in_w = p->in_w, c_n = p->in_c, out_h = p->out_h, out_w = p->out_w;
  const int32_t k_h = p->k_h, k_w = p->k_w, dil_h = p->dil_h, dil_w = p->dil_w;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + b * in_h * in_w * c_n;
    int8_t* out_b = out + b * out_h * out_w * c_n;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      /* the taps inside the image: ky0 <= ky < ky1 */
      int32_t ky0 = 0, ky1 = k_h;
      while (ky0 < k_h && y0 + dil_h * ky0 < 0) ++ky0;
      while (ky1 > ky0 && y0 + dil_h * (ky1 - 1) >= in_h) --ky1;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        int32_t kx0 = 0, kx1 = k_w;
        while (kx0 < k_w && x0 + dil_w * kx0 < 0) ++kx0;
        while (kx1 > kx0 && x0 + dil_w * (kx1 - 1) >= in_w) --kx1;
        int8_t* o = out_b + (oy * out_w + ox) * c_n;
        const int interior = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
        if (ky0 >= ky1 || kx0 >= kx1) { /* no tap inside: the bias alone, as the reference */
          eq_dw_mve_pixel(p, in_b, w, bias, 0, 0, 0, 0, 0, o);
          continue;
        }
        const int8_t* px = in_b + ((y0 + dil_h * ky0) * in_w + x0 + dil_w * kx0) * c_n;
        eq_dw_mve_pixel(p, px, w, bias, ky0, ky1, kx0, kx1, interior, o);
      }
    }
  }
}

#else /* no MVE (the host build): the plain kernel, same arguments */

void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  eq_dwconv2d(p, in, w, bias, out);
}

#endif
