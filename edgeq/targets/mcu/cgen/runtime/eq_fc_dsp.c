/* edgeq generated-C runtime: FULLY_CONNECTED for cores with the DSP extension (Cortex-M4, M7, M33).
 *
 * The same integer arithmetic as eq_fully_connected (eq_kernels.c), reorganised for dual 16-bit
 * multiply-accumulate:
 *   - the generator stores the weight rows paired, (2m, 2m+1), their whole groups of 4 taps interleaved
 *     and then each row's k % 4 tail (dsp.py dsp_filter, the DSP CONV_2D's layout); a lone last row
 *     stays a row;
 *   - each input word (4 taps) is widened once with SXTB16 into (x0, x2) and (x1, x3) and used by 4 rows
 *     (two pair blocks; then a pair, then a lone row for the rest); each weight word gives (w0, w2) and
 *     (w1, w3) the same way: two SMLADs per row per 4 taps, 16 multiply-accumulates in 8 SMLADs and 10
 *     SXTB16s per input word;
 *   - the offsets are folded out of the loop: sum((w + wo)(x + xo)) = sum(w x) + xo sum(w) + wo sum(x)
 *     + k wo xo. The generator adds xo sum(w) + k wo xo to each row's bias (modulo 2^32, as the
 *     reference's int32 sum), the kernel adds wo sum(x) once per batch (wo is 0 for symmetric filters).
 * int32 addition is exact modulo 2^32, so the accumulator before requantization is the reference's bit
 * for bit; requantization is eq_mbqm per output channel, the plain kernel's (TFLM's). Without
 * __ARM_FEATURE_DSP (host build, M55 with a soft float ABI) the intrinsics are emulated in C.
 */
#include <string.h>

#include "eq_kernels.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline int32_t fc_smlad(int32_t x, int32_t y, int32_t acc) { return __smlad(x, y, acc); }
static inline int32_t fc_sxtb16(uint32_t x) { return __sxtb16((int32_t)x); }
#else
static inline int32_t fc_smlad(int32_t x, int32_t y, int32_t acc) {
  const int32_t lo = (int32_t)(int16_t)(uint16_t)((uint32_t)x) * (int16_t)(uint16_t)((uint32_t)y);
  const int32_t hi = (int32_t)(int16_t)(uint16_t)((uint32_t)x >> 16) * (int16_t)(uint16_t)((uint32_t)y >> 16);
  return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}
static inline int32_t fc_sxtb16(uint32_t x) {
  const uint32_t lo = (uint32_t)(int32_t)(int8_t)(uint8_t)x & 0xFFFFu;
  const uint32_t hi = (uint32_t)(int32_t)(int8_t)(uint8_t)(x >> 16) << 16;
  return (int32_t)(lo | hi);
}
#endif

/* SXTB16 of the word rotated by 8: the odd bytes as two int16 (one instruction on the DSP cores). */
static inline int32_t fc_sxtb16_ror8(uint32_t x) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
#else
  return fc_sxtb16((x >> 8) | (x << 24));
#endif
}

static inline uint32_t fc_read32(const int8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4); /* one (unaligned-capable) LDR on the DSP cores */
  return v;
}

static inline int8_t fc_requant(const eq_fc_t* p, int32_t acc, int32_t o) {
  const int32_t c = p->per_channel ? o : 0;
  acc = eq_mbqm(acc, p->mult[c], p->shift[c]) + p->out_offset;
  return (int8_t)(acc < p->act_min ? p->act_min : (acc > p->act_max ? p->act_max : acc));
}

/* Rows o..o+3 (two pair blocks, at w and w + 2k) against one input vector: each input word widened once
 * for 16 multiply-accumulates. */
__attribute__((noinline)) static void fc_quad(const int8_t* x, const int8_t* w, int32_t k, int32_t* s) {
  const int32_t off = 2 * k; /* the second pair block, one register offset from the first */
  const int8_t* const xend = x + (k & ~3);
  int32_t a = 0, b = 0, c = 0, d = 0;
  while (x != xend) {
    const uint32_t xv = fc_read32(x);
    const int32_t xe = fc_sxtb16(xv), xo = fc_sxtb16_ror8(xv);
    uint32_t wv = fc_read32(w);
    a = fc_smlad(xo, fc_sxtb16_ror8(wv), fc_smlad(xe, fc_sxtb16(wv), a));
    wv = fc_read32(w + 4);
    b = fc_smlad(xo, fc_sxtb16_ror8(wv), fc_smlad(xe, fc_sxtb16(wv), b));
    wv = fc_read32(w + off);
    c = fc_smlad(xo, fc_sxtb16_ror8(wv), fc_smlad(xe, fc_sxtb16(wv), c));
    wv = fc_read32(w + off + 4);
    d = fc_smlad(xo, fc_sxtb16_ror8(wv), fc_smlad(xe, fc_sxtb16(wv), d));
    x += 4;
    w += 8;
  }
  const int8_t* v = w + off;
  const int32_t t = k & 3;
  for (int32_t j = 0; j < t; ++j) {
    a += (int32_t)w[j] * x[j];
    b += (int32_t)w[t + j] * x[j];
    c += (int32_t)v[j] * x[j];
    d += (int32_t)v[t + j] * x[j];
  }
  s[0] = a;
  s[1] = b;
  s[2] = c;
  s[3] = d;
}

/* Rows o and o+1 (a pair block of 2k bytes) against one input vector: the raw sums of w x. */
static void fc_pair(const int8_t* x, const int8_t* w, int32_t k, int32_t* s0, int32_t* s1) {
  int32_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
  int32_t n = k >> 2;
  while (n--) {
    const uint32_t xv = fc_read32(x), w0 = fc_read32(w), w1 = fc_read32(w + 4);
    const int32_t xe = fc_sxtb16(xv), xo = fc_sxtb16_ror8(xv);
    a0 = fc_smlad(xe, fc_sxtb16(w0), a0);
    a1 = fc_smlad(xo, fc_sxtb16_ror8(w0), a1);
    b0 = fc_smlad(xe, fc_sxtb16(w1), b0);
    b1 = fc_smlad(xo, fc_sxtb16_ror8(w1), b1);
    x += 4;
    w += 8;
  }
  const int32_t t = k & 3;
  for (int32_t j = 0; j < t; ++j) {
    a0 += (int32_t)w[j] * x[j];
    b0 += (int32_t)w[t + j] * x[j];
  }
  *s0 = (int32_t)((uint32_t)a0 + (uint32_t)a1);
  *s1 = (int32_t)((uint32_t)b0 + (uint32_t)b1);
}

/* A lone row of k bytes: the raw sum of w x. */
static int32_t fc_row(const int8_t* x, const int8_t* w, int32_t k) {
  int32_t a0 = 0, a1 = 0;
  int32_t n = k >> 2;
  while (n--) {
    const uint32_t xv = fc_read32(x), w0 = fc_read32(w);
    a0 = fc_smlad(fc_sxtb16(xv), fc_sxtb16(w0), a0);
    a1 = fc_smlad(fc_sxtb16_ror8(xv), fc_sxtb16_ror8(w0), a1);
    x += 4;
    w += 4;
  }
  for (int32_t j = 0; j < (k & 3); ++j) a0 += (int32_t)w[j] * x[j];
  return (int32_t)((uint32_t)a0 + (uint32_t)a1);
}

void eq_fully_connected_dsp(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  const int32_t k = p->in_depth, n_out = p->out_depth;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* x = in + (int64_t)b * k;
    int8_t* y = out + (int64_t)b * n_out;
    uint32_t xsum = 0; /* wo * sum(x), only for an asymmetric per-tensor filter */
    if (p->w_offset) {
      for (int32_t d = 0; d < k; ++d) xsum += (uint32_t)(int32_t)x[d];
      xsum *= (uint32_t)p->w_offset;
    }
    int32_t o = 0;
    for (; o + 3 < n_out; o += 4) {
      int32_t s[4];
      fc_quad(x, w + (int64_t)o * k, k, s);
      for (int32_t r = 0; r < 4; ++r)
        y[o + r] = fc_requant(p, (int32_t)((uint32_t)s[r] + (uint32_t)bias[o + r] + xsum), o + r);
    }
    for (; o + 1 < n_out; o += 2) {
      int32_t s0, s1;
      fc_pair(x, w + (int64_t)o * k, k, &s0, &s1);
      y[o] = fc_requant(p, (int32_t)((uint32_t)s0 + (uint32_t)bias[o] + xsum), o);
      y[o + 1] = fc_requant(p, (int32_t)((uint32_t)s1 + (uint32_t)bias[o + 1] + xsum), o + 1);
    }
    if (o < n_out) {
      const int32_t s = fc_row(x, w + (int64_t)o * k, k);
      y[o] = fc_requant(p, (int32_t)((uint32_t)s + (uint32_t)bias[o] + xsum), o);
    }
  }
}
