/* edgeq generated-C runtime: CONV_2D for cores with the DSP extension (Cortex-M4, M7, M33).
 *
 * The same integer arithmetic as eq_conv2d (eq_kernels.c), reorganised for dual 16-bit multiply-accumulate:
 *   - im2col: two output pixels' windows are widened to int16 with the input offset already added, into
 *     a scratch buffer the memory plan places in the arena (padding becomes 0, which is what the
 *     reference's skipped taps contribute); a 1x1 stride-free window is a plain widening copy;
 *   - the filter is stored by the generator with each group of 4 taps as (w0, w2, w1, w3), so that one
 *     SXTB16 gives the pair (w0, w1) and SXTB16 of the word rotated by 8 gives (w2, w3), matching the
 *     natural order of the int16 columns: two SMLADs per 4 taps;
 *   - 2 output channels x 2 pixels per pass: each filter word is used twice, each column word twice.
 * Every product and sum is the reference's own, only added in another order, and int32 addition is exact
 * (modulo 2^32 as the reference's), so the accumulator before requantization is the same bit for bit;
 * requantization is eq_mbqm, the plain kernel's. Without __ARM_FEATURE_DSP (host build, M55 with a soft
 * float ABI) the intrinsics are emulated in C, so the project stays bit-exact everywhere.
 */
#include <string.h>

#include "eq_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline int32_t eq_smlad(int32_t x, int32_t y, int32_t acc) { return __smlad(x, y, acc); }
static inline int32_t eq_sxtb16(uint32_t x) { return __sxtb16((int32_t)x); }
static inline int32_t eq_sadd16(int32_t x, int32_t y) { return __sadd16(x, y); }
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
#endif

static inline uint32_t eq_ror8(uint32_t x) { return (x >> 8) | (x << 24); }

static inline uint32_t eq_read32(const void* p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one (unaligned-capable) LDR on the DSP cores */
  return v;
}

static inline void eq_write32(void* p, uint32_t v) { memcpy(p, &v, 4); }

/* n int8 values widened to int16 with `offset` added (x + offset always fits int16). */
static void widen(int16_t* dst, const int8_t* src, int32_t n, int32_t offset) {
  const int32_t off2 = (int32_t)(((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16));
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32_t v = eq_read32(src + i);
    const uint32_t even = (uint32_t)eq_sadd16(eq_sxtb16(v), off2);          /* (x0, x2) */
    const uint32_t odd = (uint32_t)eq_sadd16(eq_sxtb16(eq_ror8(v)), off2); /* (x1, x3) */
    eq_write32(dst + i, (even & 0xFFFFu) | (odd << 16));                   /* (x0, x1) */
    eq_write32(dst + i + 2, (even >> 16) | (odd & 0xFFFF0000u));           /* (x2, x3) */
  }
  for (; i < n; ++i) dst[i] = (int16_t)(src[i] + offset);
}

/* The window of output pixel (oy, ox) of image in_b as K = k_h * k_w * in_c int16 values. */
static void im2col(const eq_conv_t* p, const int8_t* in_b, int32_t oy, int32_t ox, int16_t* col) {
  const int32_t in_c = p->in_c, in_w = p->in_w, in_h = p->in_h;
  const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
  if (p->k_h == 1 && p->k_w == 1 && p->pad_h == 0 && p->pad_w == 0) {
    widen(col, in_b + ((int64_t)y0 * in_w + x0) * in_c, in_c, p->in_offset);
    return;
  }
  for (int32_t ky = 0; ky < p->k_h; ++ky) {
    const int32_t iy = y0 + p->dil_h * ky;
    for (int32_t kx = 0; kx < p->k_w; ++kx, col += in_c) {
      const int32_t ix = x0 + p->dil_w * kx;
      if (iy < 0 || iy >= in_h || ix < 0 || ix >= in_w) {
        memset(col, 0, (size_t)in_c * sizeof(int16_t));
      } else {
        widen(col, in_b + ((int64_t)iy * in_w + ix) * in_c, in_c, p->in_offset);
      }
    }
  }
}

static inline int8_t requant(const eq_conv_t* p, int32_t acc, int32_t oc) {
  acc = eq_mbqm(acc, p->mult[oc], p->shift[oc]) + p->out_offset;
  return (int8_t)(acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc));
}

/* Two pixels (columns c0, c1) x two output channels (reordered filter rows w0, w1). */
static void dot_2x2(const int8_t* w0, const int8_t* w1, const int16_t* c0, const int16_t* c1, int32_t k, int32_t acc[4]) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  int32_t i = 0;
  for (; i + 4 <= k; i += 4) {
    const int32_t x0a = (int32_t)eq_read32(c0 + i), x0b = (int32_t)eq_read32(c0 + i + 2);
    const int32_t x1a = (int32_t)eq_read32(c1 + i), x1b = (int32_t)eq_read32(c1 + i + 2);
    uint32_t v = eq_read32(w0 + i);
    int32_t wa = eq_sxtb16(v), wb = eq_sxtb16(eq_ror8(v));
    a00 = eq_smlad(wa, x0a, a00);
    a00 = eq_smlad(wb, x0b, a00);
    a01 = eq_smlad(wa, x1a, a01);
    a01 = eq_smlad(wb, x1b, a01);
    v = eq_read32(w1 + i);
    wa = eq_sxtb16(v);
    wb = eq_sxtb16(eq_ror8(v));
    a10 = eq_smlad(wa, x0a, a10);
    a10 = eq_smlad(wb, x0b, a10);
    a11 = eq_smlad(wa, x1a, a11);
    a11 = eq_smlad(wb, x1b, a11);
  }
  for (; i < k; ++i) {
    a00 += (int32_t)w0[i] * c0[i];
    a01 += (int32_t)w0[i] * c1[i];
    a10 += (int32_t)w1[i] * c0[i];
    a11 += (int32_t)w1[i] * c1[i];
  }
  acc[0] = a00, acc[1] = a01, acc[2] = a10, acc[3] = a11;
}

/* One pixel (column c) x one output channel. */
static int32_t dot_1x1(const int8_t* w0, const int16_t* c, int32_t k, int32_t acc) {
  int32_t i = 0;
  for (; i + 4 <= k; i += 4) {
    const uint32_t v = eq_read32(w0 + i);
    acc = eq_smlad(eq_sxtb16(v), (int32_t)eq_read32(c + i), acc);
    acc = eq_smlad(eq_sxtb16(eq_ror8(v)), (int32_t)eq_read32(c + i + 2), acc);
  }
  for (; i < k; ++i) acc += (int32_t)w0[i] * c[i];
  return acc;
}

/* Output channels of one or two pixels (c1 NULL: one); o0, o1 their output rows. */
static void channels(const eq_conv_t* p, const int8_t* w, const int32_t* bias, const int16_t* c0, const int16_t* c1,
                     int8_t* o0, int8_t* o1) {
  const int32_t k = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
  int32_t oc = 0;
  if (c1) {
    for (; oc + 2 <= out_c; oc += 2) {
      const int8_t* w0 = w + (int64_t)oc * k;
      const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc + 1] : 0;
      int32_t acc[4] = {b0, b0, b1, b1};
      dot_2x2(w0, w0 + k, c0, c1, k, acc);
      o0[oc] = requant(p, acc[0], oc);
      o1[oc] = requant(p, acc[1], oc);
      o0[oc + 1] = requant(p, acc[2], oc + 1);
      o1[oc + 1] = requant(p, acc[3], oc + 1);
    }
  }
  for (; oc < out_c; ++oc) {
    const int8_t* w0 = w + (int64_t)oc * k;
    const int32_t b = bias ? bias[oc] : 0;
    o0[oc] = requant(p, dot_1x1(w0, c0, k, b), oc);
    if (c1) o1[oc] = requant(p, dot_1x1(w0, c1, k, b), oc);
  }
}

void eq_conv2d_dsp(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int16_t* scratch) {
  const int32_t k = p->k_h * p->k_w * p->in_c;
  const int32_t stride = k + (k & 1); /* keeps the second column 4-byte aligned */
  const int32_t pixels = p->out_h * p->out_w;
  int16_t* c0 = scratch;
  int16_t* c1 = scratch + stride;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + (int64_t)b * p->in_h * p->in_w * p->in_c;
    int8_t* out_b = out + (int64_t)b * pixels * p->out_c;
    int32_t px = 0;
    for (; px + 2 <= pixels; px += 2) {
      im2col(p, in_b, px / p->out_w, px % p->out_w, c0);
      im2col(p, in_b, (px + 1) / p->out_w, (px + 1) % p->out_w, c1);
      channels(p, w, bias, c0, c1, out_b + (int64_t)px * p->out_c, out_b + (int64_t)(px + 1) * p->out_c);
    }
    if (px < pixels) {
      im2col(p, in_b, px / p->out_w, px % p->out_w, c0);
      channels(p, w, bias, c0, 0, out_b + (int64_t)px * p->out_c, 0);
    }
  }
}
