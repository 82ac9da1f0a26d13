/* edgeq generated-C runtime: ADD for Cortex-M55's Helium (MVE).
 *
 * The same integer arithmetic as eq_add (eq_kernels.c, TFLM's reference ADD), 4 int32 lanes per pass when
 * neither input broadcasts (both laid out as the output): each input widened from bytes (VLDRB.S32), its
 * offset added and shifted left by left_shift, rescaled by its multiplier, the sum rescaled by the output
 * multiplier, offset and clamped; the last pass tail-predicated. Each rescale is eq_mbqm in lanes: the left
 * shift wraps as the reference's, VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly, and the
 * rounding right shift rounds half away from zero (negative values step down by one first: VRSHL alone
 * rounds half up). A broadcasting ADD, and the host build (no MVE), call eq_add with the same arguments. */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* eq_mbqm(x, mult, shift) per lane, the shift split once: left = max(shift, 0), right = min(shift, 0). */
static inline int32x4_t eq_add_mbqm(int32x4_t x, int32_t mult, int32x4_t left, int32x4_t right) {
  x = vqrdmulhq_n_s32(vshlq_s32(x, left), mult);
  x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
  return vrshlq_s32(x, right);
}

static int eq_add_dense(const eq_binary_t* p, const int32_t* strides) {
  int32_t step = 1;
  for (int a = 3; a >= 0; --a) {
    if (p->dims[a] != 1 && strides[a] != step) return 0;
    step *= p->dims[a];
  }
  return 1;
}

void eq_add_mve(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  if (!eq_add_dense(p, p->strides1) || !eq_add_dense(p, p->strides2)) {
    eq_add(p, in1, in2, out);
    return;
  }
  const int32_t n = p->dims[0] * p->dims[1] * p->dims[2] * p->dims[3];
  const int32_t off1 = p->in1_offset, off2 = p->in2_offset, out_offset = p->out_offset;
  const int32_t m1 = p->in1_mult, m2 = p->in2_mult, mo = p->out_mult;
  const int32x4_t ls = vdupq_n_s32(p->left_shift);
  const int32x4_t l1 = vdupq_n_s32(p->in1_shift > 0 ? p->in1_shift : 0);
  const int32x4_t r1 = vdupq_n_s32(p->in1_shift > 0 ? 0 : p->in1_shift);
  const int32x4_t l2 = vdupq_n_s32(p->in2_shift > 0 ? p->in2_shift : 0);
  const int32x4_t r2 = vdupq_n_s32(p->in2_shift > 0 ? 0 : p->in2_shift);
  const int32x4_t lo = vdupq_n_s32(p->out_shift > 0 ? p->out_shift : 0);
  const int32x4_t ro = vdupq_n_s32(p->out_shift > 0 ? 0 : p->out_shift);
  const int32x4_t act_min = vdupq_n_s32(p->act_min), act_max = vdupq_n_s32(p->act_max);
  for (int32_t i = 0; i < n; i += 4) {
    const mve_pred16_t pred = vctp32q((uint32_t)(n - i));
    const int32x4_t v1 = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in1 + i, pred), off1), ls);
    const int32x4_t v2 = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(in2 + i, pred), off2), ls);
    const int32x4_t sum = vaddq_s32(eq_add_mbqm(v1, m1, l1, r1), eq_add_mbqm(v2, m2, l2, r2));
    int32x4_t r = vaddq_n_s32(eq_add_mbqm(sum, mo, lo, ro), out_offset);
    r = vminq_s32(vmaxq_s32(r, act_min), act_max);
    vstrbq_p_s32(out + i, r, pred);
  }
}

#else /* no MVE (the host build): the plain kernel, same arguments */

void eq_add_mve(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out) { eq_add(p, in1, in2, out); }

#endif
