/* edgeq generated-C runtime: FULLY_CONNECTED for Cortex-M55's Helium (MVE).
 *
 * The same integer arithmetic as eq_fully_connected (eq_kernels.c), reorganised:
 *   - the plain [out_depth, in_depth] weights; 16 taps per vector, 4 rows per pass sharing each input
 *     vector: one VMLADAVA.S8 (16 multiply-accumulates into a scalar) per row per 16 taps, the last vector
 *     of a row tail-predicated (zeroed lanes add nothing);
 *   - the offsets are folded out of the loop: sum((w + wo)(x + xo)) = sum(w x) + xo sum(w) + wo sum(x)
 *     + k wo xo. The generator (mve.py, dsp.fc_bias) adds xo sum(w) + k wo xo to each row's bias (modulo
 *     2^32, as the reference's int32 sum), so the bias is always given; the kernel adds wo sum(x) once per
 *     batch (wo is 0 for symmetric filters);
 *   - requantization is eq_mbqm per output channel, the plain kernel's (TFLM's).
 * int32 addition is exact modulo 2^32, so the accumulator is the reference's bit for bit. Without MVE (the
 * host build) the same folded arithmetic runs in scalar C. */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>
#endif

static inline int32_t eq_fc_mve_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

static inline int8_t eq_fc_mve_out(const eq_fc_t* p, int32_t acc, int32_t o) {
  const int32_t c = p->per_channel ? o : 0;
  acc = eq_mbqm(acc, p->mult[c], p->shift[c]) + p->out_offset;
  return (int8_t)(acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc));
}

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)

void eq_fully_connected_mve(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  const int32_t k = p->in_depth, n_out = p->out_depth;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* x = in + b * k;
    int8_t* y = out + b * n_out;
    int32_t sum_x = 0;
    if (p->w_offset != 0) {
      for (int32_t i = 0; i < k; i += 16) sum_x = vaddvaq_s8(sum_x, vldrbq_z_s8(x + i, vctp8q((uint32_t)(k - i))));
    }
    const int32_t wo_sum_x = (int32_t)((uint32_t)p->w_offset * (uint32_t)sum_x);
    int32_t o = 0;
    for (; o + 4 <= n_out; o += 4) {
      const int8_t* r0 = w + o * k;
      const int8_t *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
      int32_t a0 = eq_fc_mve_add(bias[o], wo_sum_x), a1 = eq_fc_mve_add(bias[o + 1], wo_sum_x);
      int32_t a2 = eq_fc_mve_add(bias[o + 2], wo_sum_x), a3 = eq_fc_mve_add(bias[o + 3], wo_sum_x);
      for (int32_t i = 0; i < k; i += 16) {
        const mve_pred16_t pred = vctp8q((uint32_t)(k - i));
        const int8x16_t xv = vldrbq_z_s8(x + i, pred);
        a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(r0 + i, pred));
        a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(r1 + i, pred));
        a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(r2 + i, pred));
        a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(r3 + i, pred));
      }
      y[o] = eq_fc_mve_out(p, a0, o);
      y[o + 1] = eq_fc_mve_out(p, a1, o + 1);
      y[o + 2] = eq_fc_mve_out(p, a2, o + 2);
      y[o + 3] = eq_fc_mve_out(p, a3, o + 3);
    }
    for (; o < n_out; ++o) {
      const int8_t* r = w + o * k;
      int32_t acc = eq_fc_mve_add(bias[o], wo_sum_x);
      for (int32_t i = 0; i < k; i += 16) {
        const mve_pred16_t pred = vctp8q((uint32_t)(k - i));
        acc = vmladavaq_s8(acc, vldrbq_z_s8(x + i, pred), vldrbq_z_s8(r + i, pred));
      }
      y[o] = eq_fc_mve_out(p, acc, o);
    }
  }
}

#else /* no MVE (the host build): the same folded arithmetic in scalar C */

void eq_fully_connected_mve(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  const int32_t k = p->in_depth, n_out = p->out_depth;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* x = in + (int64_t)b * k;
    uint32_t sum_x = 0;
    for (int32_t i = 0; i < k; ++i) sum_x += (uint32_t)(int32_t)x[i];
    for (int32_t o = 0; o < n_out; ++o) {
      const int8_t* r = w + (int64_t)o * k;
      uint32_t acc = (uint32_t)bias[o] + (uint32_t)p->w_offset * sum_x;
      for (int32_t i = 0; i < k; ++i) acc += (uint32_t)((int32_t)r[i] * x[i]);
      out[(int64_t)b * n_out + o] = eq_fc_mve_out(p, (int32_t)acc, o);
    }
  }
}

#endif
