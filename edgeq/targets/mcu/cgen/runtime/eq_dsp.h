/* edgeq generated-C runtime: helpers shared by the kernels for cores with the DSP extension (Cortex-M4,
 * M7, M33): eq_conv_dsp.c and eq_dw_dsp.c. Internal (static inline only), not part of eq_kernels.h.
 *
 * Without __ARM_FEATURE_DSP (host build, M55 with a soft float ABI) the intrinsics are emulated in C, so a
 * project stays bit-exact everywhere. */
#ifndef EQ_DSP_H
#define EQ_DSP_H

#include <string.h>

#include "eq_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline int32_t eq_smlad(int32_t x, int32_t y, int32_t acc) { return __smlad(x, y, acc); }
static inline int32_t eq_sxtb16(uint32_t x) { return __sxtb16((int32_t)x); }
static inline int32_t eq_sadd16(int32_t x, int32_t y) { return __sadd16(x, y); }
static inline int32_t eq_smlabb(int32_t x, int32_t y, int32_t acc) { return __smlabb(x, y, acc); }
static inline int32_t eq_smlatt(int32_t x, int32_t y, int32_t acc) { return __smlatt(x, y, acc); }
#else
static inline int32_t eq_smlad(int32_t x, int32_t y, int32_t acc) {
  const int32_t lo = (int32_t)(int16_t)(uint16_t)((uint32_t)x) * (int16_t)(uint16_t)((uint32_t)y);
  const int32_t hi = (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16) * (int16_t)(uint16_t)((uint32_t)y >> 16);
  return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}
static inline int32_t eq_sxtb16(uint32_t x) {
  const uint32_t lo = (uint32_t)(int32_t)(int8_t)(uint8_t)x & 0xFFFFu;
  const uint32_t hi = (uint32_t)(int32_t)(int8_t)(uint8_t)(x >> 16) << 16;
  return (int32_t)(lo | hi);
}
static inline int32_t eq_sadd16(int32_t x, int32_t y) {
  const uint32_t lo = ((uint32_t)x + (uint32_t)y) & 0xFFFFu;
  const uint32_t hi = (((uint32_t)x >> 16) + ((uint32_t)y >> 16)) << 16;
  return (int32_t)(lo | hi);
}
static inline int32_t eq_smlabb(int32_t x, int32_t y, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(uint16_t)(uint32_t)x * (int16_t)(uint16_t)(uint32_t)y));
}
static inline int32_t eq_smlatt(int32_t x, int32_t y, int32_t acc) {
  return (int32_t)((uint32_t)acc +
                   (uint32_t)((int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16) * (int16_t)(uint16_t)((uint32_t)y >> 16)));
}
#endif

static inline uint32_t eq_ror8(uint32_t x) { return (x >> 8) | (x << 24); }

static inline uint32_t eq_read32(const void* p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one (unaligned-capable) LDR on the DSP cores */
  return v;
}

static inline void eq_write32(void* p, uint32_t v) { memcpy(p, &v, 4); }

/* Two words of word-aligned int16 data (one LDRD on the DSP cores). */
static inline void eq_read2x32(const int16_t* p, int32_t* a, int32_t* b) {
  int32_t v[2];
  memcpy(v, __builtin_assume_aligned(p, 4), 8);
  *a = v[0];
  *b = v[1];
}

/* SXTB16 of the word rotated by 8: the odd bytes as two int16 (one instruction on the DSP cores). */
static inline int32_t eq_sxtb16_ror8(uint32_t x) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
#else
  return eq_sxtb16(eq_ror8(x));
#endif
}

/* eq_mbqm (eq_kernels.c: TFLM's MultiplyByQuantizedMultiplier) with the same result for every multiplier
 * the generator emits (quant.quantize_multiplier: 0 or 2^30 <= mult < 2^31, never INT32_MIN, so the
 * saturating case of the doubling high multiply cannot occur), in fewer instructions:
 *   - the doubling high multiply, (a*m + nudge) / 2^31 truncated toward zero with nudge 2^30 for a*m >= 0
 *     and 1 - 2^30 below, equals floor((a*m + 2^30) / 2^31) for every a*m: for a*m < 0 the sum s is < 0
 *     and trunc(s / 2^31) = floor((s + 2^31 - 1) / 2^31), whose numerator is a*m + 2^30 again. So it
 *     is one multiply-accumulate into 64 bits (SMLAL) and a shift;
 *   - the rounding right shift keeps the reference's form, its threshold (mask >> 1) + (x < 0) written
 *     as (mask >> 1) - (x >> 31). */
static inline int32_t eq_dsp_mbqm(int32_t x, int32_t mult, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  const int32_t a = (int32_t)((uint32_t)x << left);
  const int32_t hi = (int32_t)(((int64_t)a * mult + (1LL << 30)) >> 31);
  const int32_t mask = (int32_t)((1u << right) - 1u);
  const int32_t threshold = (mask >> 1) - (hi >> 31);
  return (hi >> right) + ((hi & mask) > threshold ? 1 : 0);
}

/* The output side of requantization, read once per kernel call into locals: a byte store may alias
 * *p, so reading these through p would reload them after every output. */
typedef struct {
  int32_t out_offset, act_min, act_max;
} eq_dsp_out_t;

static inline eq_dsp_out_t eq_dsp_out(const eq_conv_t* p) {
  const eq_dsp_out_t o = {p->out_offset, p->act_min, p->act_max};
  return o;
}

/* One accumulator with its channel's multiplier and shift: eq_mbqm, the output offset, the clamp. */
static inline int32_t eq_dsp_rq(int32_t acc, int32_t mult, int32_t shift, eq_dsp_out_t o) {
  acc = eq_dsp_mbqm(acc, mult, shift) + o.out_offset;
  return acc < o.act_min ? o.act_min : (acc > o.act_max ? o.act_max : acc);
}

/* Requantize one accumulator of output channel oc: eq_mbqm, the output offset, the activation clamp. */
static inline int8_t eq_dsp_requant(const eq_conv_t* p, int32_t acc, int32_t oc) {
  return (int8_t)eq_dsp_rq(acc, p->mult[oc], p->shift[oc], eq_dsp_out(p));
}

#endif
