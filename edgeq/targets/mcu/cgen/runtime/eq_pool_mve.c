/* edgeq generated-C runtime: MAX_POOL_2D and AVERAGE_POOL_2D for Cortex-M55's Helium (MVE).
 *
 * The same integer arithmetic as eq_max_pool / eq_avg_pool (eq_kernels.c), the window clipped to the image
 * once per output pixel:
 *   - max: 16 channels per vector, VMAX.S8 over the window's taps from -128, then clamped to the activation
 *     range; the last vector tail-predicated;
 *   - average: 4 channels per vector, the window's bytes widened (VLDRB.S32) and summed in int32, then each
 *     sum divided by the tap count with the reference's rounding (half away from zero) in scalar code, the
 *     division C's truncating one as the reference's.
 * The host build (no MVE) calls the plain kernels with the same arguments. */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* The taps of a window starting at v0 with k taps inside [0, n): t0 <= t < t1. */
static inline void eq_pool_clip(int32_t v0, int32_t k, int32_t n, int32_t* t0, int32_t* t1) {
  *t0 = v0 < 0 ? -v0 : 0;
  *t1 = n - v0 < k ? n - v0 : k;
}

void eq_max_pool_mve(const eq_pool_t* p, const int8_t* in, int8_t* out) {
  const int32_t c_n = p->c, in_h = p->in_h, in_w = p->in_w, out_h = p->out_h, out_w = p->out_w;
  const int8x16_t act_min = vdupq_n_s8((int8_t)p->act_min), act_max = vdupq_n_s8((int8_t)p->act_max);
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + b * in_h * in_w * c_n;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      eq_pool_clip(y0, p->k_h, in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        eq_pool_clip(x0, p->k_w, in_w, &kx0, &kx1);
        int8_t* o = out + ((b * out_h + oy) * out_w + ox) * c_n;
        for (int32_t c = 0; c < c_n; c += 16) {
          const mve_pred16_t pred = vctp8q((uint32_t)(c_n - c));
          int8x16_t m = vdupq_n_s8(-128);
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int8_t* px = in_b + ((y0 + ky) * in_w + x0 + kx0) * c_n + c;
            for (int32_t kx = kx0; kx < kx1; ++kx, px += c_n) m = vmaxq_s8(m, vldrbq_z_s8(px, pred));
          }
          vstrbq_p_s8(o + c, vminq_s8(vmaxq_s8(m, act_min), act_max), pred);
        }
      }
    }
  }
}

void eq_avg_pool_mve(const eq_pool_t* p, const int8_t* in, int8_t* out) {
  const int32_t c_n = p->c, in_h = p->in_h, in_w = p->in_w, out_h = p->out_h, out_w = p->out_w;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + b * in_h * in_w * c_n;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      int32_t ky0, ky1;
      eq_pool_clip(y0, p->k_h, in_h, &ky0, &ky1);
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        int32_t kx0, kx1;
        eq_pool_clip(x0, p->k_w, in_w, &kx0, &kx1);
        int32_t count = (ky1 > ky0 && kx1 > kx0) ? (ky1 - ky0) * (kx1 - kx0) : 0;
        if (count == 0) count = 1; /* an empty window: TFLite refuses such models at prepare */
        int8_t* o = out + ((b * out_h + oy) * out_w + ox) * c_n;
        for (int32_t c = 0; c < c_n; c += 4) {
          const mve_pred16_t pred = vctp32q((uint32_t)(c_n - c));
          int32x4_t acc = vdupq_n_s32(0);
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int8_t* px = in_b + ((y0 + ky) * in_w + x0 + kx0) * c_n + c;
            for (int32_t kx = kx0; kx < kx1; ++kx, px += c_n) acc = vaddq_s32(acc, vldrbq_z_s32(px, pred));
          }
          int32_t sums[4];
          vst1q_s32(sums, acc);
          const int32_t n = c_n - c < 4 ? c_n - c : 4;
          for (int32_t i = 0; i < n; ++i) {
            const int32_t s = sums[i];
            const int32_t v = s > 0 ? (s + count / 2) / count : (s - count / 2) / count;
            o[c + i] = (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
          }
        }
      }
    }
  }
}

#else /* no MVE (the host build): the plain kernels, same arguments */

void eq_max_pool_mve(const eq_pool_t* p, const int8_t* in, int8_t* out) { eq_max_pool(p, in, out); }
void eq_avg_pool_mve(const eq_pool_t* p, const int8_t* in, int8_t* out) { eq_avg_pool(p, in, out); }

#endif
