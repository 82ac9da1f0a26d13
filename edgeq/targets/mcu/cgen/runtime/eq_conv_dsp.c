/* edgeq generated-C runtime: CONV_2D for cores with the DSP extension (Cortex-M4, M7, M33).
 *
 * The same integer arithmetic as eq_conv2d (eq_kernels.c), reorganised for dual 16-bit multiply-accumulate:
 *   - im2col: two output pixels' windows are widened to int16 with the input offset already added, into
 *     a scratch buffer the memory plan places in the arena (padding becomes 0, which is what the
 *     reference's skipped taps contribute), the two columns interleaved by groups of 4 taps so one
 *     pointer walks both; a 1x1 window is one widening copy of the pixel (4 bytes per SXTB16 pair);
 *   - the columns hold each group of 4 taps in the order SXTB16 yields, (x0, x2, x1, x3), so a filter
 *     word in its natural byte order gives (w0, w2) with SXTB16 and (w1, w3) with SXTB16 of the word
 *     rotated by 8: two SMLADs per 4 taps, and widening needs no repacking; output channels are paired
 *     by the generator, their groups of 4 interleaved, so one pointer walks both filter rows too;
 *   - 2 output channels x 2 pixels per pass: each filter word is used twice, each column word twice.
 * Every product and sum is the reference's own, only added in another order, and int32 addition is exact
 * (modulo 2^32 as the reference's), so the accumulator before requantization is the same bit for bit;
 * requantization is eq_mbqm's result (eq_dsp.h eq_dsp_mbqm). Without __ARM_FEATURE_DSP (host build, M55 with
 * a soft float ABI) the intrinsics are emulated in C (eq_dsp.h), so the project stays bit-exact everywhere.
 */
#include "eq_dsp.h"

/* The scratch holds two pixels' im2col columns interleaved, so one pointer walks both: for each whole
 * group g of 4 taps, pixel 0's 4 int16 then pixel 1's (8 int16), each group in the order SXTB16 gives
 * (x0, x2, x1, x3); then the k % 4 tail taps as pairs (pixel 0, pixel 1). Tap j of pixel q is at
 * col_index(j, q). */
static inline int32_t col_index(int32_t j, int32_t q, int32_t k4) {
  static const int8_t slot[4] = {0, 2, 1, 3};
  return j < k4 ? (j >> 2) * 8 + q * 4 + slot[j & 3] : 2 * k4 + (j - k4) * 2 + q;
}

/* Taps j0 .. j0+n-1 of pixel q: n int8 values widened to int16 with `offset` added (x + offset always
 * fits int16), or zeros for a padded tap (src NULL). */
static void widen(int16_t* col, int32_t q, int32_t k4, int32_t j0, const int8_t* src, int32_t n, int32_t offset) {
  int32_t i = 0;
  if ((j0 & 3) == 0) {
    const int32_t off2 = (int32_t)(((uint32_t)offset & 0xFFFFu) | ((uint32_t)offset << 16));
    for (; i + 4 <= n && j0 + i + 4 <= k4; i += 4) {
      int16_t* dst = col + ((j0 + i) >> 2) * 8 + q * 4;
      if (!src) {
        eq_write32(dst, 0);
        eq_write32(dst + 2, 0);
        continue;
      }
      const uint32_t v = eq_read32(src + i);
      eq_write32(dst, (uint32_t)eq_sadd16(eq_sxtb16(v), off2));          /* (x0, x2) */
      eq_write32(dst + 2, (uint32_t)eq_sadd16(eq_sxtb16_ror8(v), off2)); /* (x1, x3) */
    }
  }
  for (; i < n; ++i) col[col_index(j0 + i, q, k4)] = src ? (int16_t)(src[i] + offset) : 0;
}

/* The window of output pixel (oy, ox) of image in_b as pixel q of the interleaved columns. */
static void im2col(const eq_conv_t* p, const int8_t* in_b, int32_t oy, int32_t ox, int16_t* col, int32_t q) {
  const int32_t in_c = p->in_c, in_w = p->in_w, in_h = p->in_h;
  const int32_t k4 = (p->k_h * p->k_w * in_c) & ~3;
  const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
  const int row_inside = p->dil_w == 1 && x0 >= 0 && x0 + p->k_w <= in_w;
  int32_t j = 0;
  for (int32_t ky = 0; ky < p->k_h; ++ky) {
    const int32_t iy = y0 + p->dil_h * ky;
    if (row_inside && iy >= 0 && iy < in_h) { /* the window's row is contiguous: one widening copy */
      widen(col, q, k4, j, in_b + ((int64_t)iy * in_w + x0) * in_c, p->k_w * in_c, p->in_offset);
      j += p->k_w * in_c;
      continue;
    }
    for (int32_t kx = 0; kx < p->k_w; ++kx, j += in_c) {
      const int32_t ix = x0 + p->dil_w * kx;
      const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
      widen(col, q, k4, j, inside ? in_b + ((int64_t)iy * in_w + ix) * in_c : 0, in_c, p->in_offset);
    }
  }
}

/* Two output channels (a pair block of the filter: per group of 4 taps, channel 0's word then channel 1's;
 * then channel 0's tail, channel 1's tail) x the two interleaved pixels of col. acc: {c0p0, c0p1, c1p0, c1p1}. */
/* One group of 4 taps of dot_2x2: per channel, one filter word widened into (w0, w2), (w1, w3). */
static inline void dot_2x2_group(const int8_t* w, const int16_t* c, int32_t* a00, int32_t* a01, int32_t* a10,
                                 int32_t* a11) {
  int32_t x0a, x0b, x1a, x1b;
  eq_read2x32(c, &x0a, &x0b);
  eq_read2x32(c + 4, &x1a, &x1b);
  uint32_t v = eq_read32(w);
  int32_t wa = eq_sxtb16(v), wb = eq_sxtb16_ror8(v);
  *a00 = eq_smlad(wb, x0b, eq_smlad(wa, x0a, *a00));
  *a01 = eq_smlad(wb, x1b, eq_smlad(wa, x1a, *a01));
  v = eq_read32(w + 4);
  wa = eq_sxtb16(v);
  wb = eq_sxtb16_ror8(v);
  *a10 = eq_smlad(wb, x0b, eq_smlad(wa, x0a, *a10));
  *a11 = eq_smlad(wb, x1b, eq_smlad(wa, x1a, *a11));
}

static void dot_2x2(const int8_t* w, const int16_t* col, int32_t k, int32_t acc[4]) {
  int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
  const int32_t k4 = k & ~3;
  const int16_t* c = col;
  const int16_t* const c_end = col + 2 * k4;
  for (; c + 16 <= c_end; c += 16, w += 16) { /* two groups per step: half the loop overhead */
    dot_2x2_group(w, c, &a00, &a01, &a10, &a11);
    dot_2x2_group(w + 8, c + 8, &a00, &a01, &a10, &a11);
  }
  if (c < c_end) {
    dot_2x2_group(w, c, &a00, &a01, &a10, &a11);
    c += 8, w += 8;
  }
  const int32_t tail = k - k4;
  for (int32_t i = 0; i < tail; ++i) {
    a00 += (int32_t)w[i] * c[2 * i];
    a01 += (int32_t)w[i] * c[2 * i + 1];
    a10 += (int32_t)w[tail + i] * c[2 * i];
    a11 += (int32_t)w[tail + i] * c[2 * i + 1];
  }
  acc[0] = a00, acc[1] = a01, acc[2] = a10, acc[3] = a11;
}

/* One output channel (a lone filter row) x the two pixels of col. */
static void dot_1x2(const int8_t* w, const int16_t* col, int32_t k, int32_t acc[2]) {
  int32_t a0 = acc[0], a1 = acc[1];
  const int32_t k4 = k & ~3;
  const int16_t* c = col;
  const int16_t* const c_end = col + 2 * k4;
  for (; c < c_end; c += 8, w += 4) {
    const uint32_t v = eq_read32(w);
    const int32_t wa = eq_sxtb16(v), wb = eq_sxtb16_ror8(v);
    a0 = eq_smlad(wa, (int32_t)eq_read32(c), a0);
    a0 = eq_smlad(wb, (int32_t)eq_read32(c + 2), a0);
    a1 = eq_smlad(wa, (int32_t)eq_read32(c + 4), a1);
    a1 = eq_smlad(wb, (int32_t)eq_read32(c + 6), a1);
  }
  for (int32_t i = 0; i < k - k4; ++i) {
    a0 += (int32_t)w[i] * c[2 * i];
    a1 += (int32_t)w[i] * c[2 * i + 1];
  }
  acc[0] = a0, acc[1] = a1;
}

/* Every output channel of the two pixels in col, written to rows o0 and o1 (o1 NULL: pixel 1 is a copy). */
static void channels(const eq_conv_t* p, const int8_t* w, const int32_t* bias, const int16_t* col, int8_t* o0,
                     int8_t* o1) {
  const int32_t k = p->k_h * p->k_w * p->in_c, out_c = p->out_c;
  const int32_t *const mult = p->mult, *const shift = p->shift;
  const eq_dsp_out_t q = eq_dsp_out(p);
  int32_t oc = 0;
  for (; oc + 2 <= out_c; oc += 2) {
    const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc + 1] : 0;
    int32_t acc[4] = {b0, b0, b1, b1};
    dot_2x2(w + (int64_t)oc * k, col, k, acc);
    const int32_t m0 = mult[oc], s0 = shift[oc], m1 = mult[oc + 1], s1 = shift[oc + 1];
    o0[oc] = (int8_t)eq_dsp_rq(acc[0], m0, s0, q);
    o0[oc + 1] = (int8_t)eq_dsp_rq(acc[2], m1, s1, q);
    if (o1) {
      o1[oc] = (int8_t)eq_dsp_rq(acc[1], m0, s0, q);
      o1[oc + 1] = (int8_t)eq_dsp_rq(acc[3], m1, s1, q);
    }
  }
  if (oc < out_c) {
    const int32_t b = bias ? bias[oc] : 0;
    int32_t acc[2] = {b, b};
    dot_1x2(w + (int64_t)oc * k, col, k, acc);
    o0[oc] = (int8_t)eq_dsp_rq(acc[0], mult[oc], shift[oc], q);
    if (o1) o1[oc] = (int8_t)eq_dsp_rq(acc[1], mult[oc], shift[oc], q);
  }
}

void eq_conv2d_dsp(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int16_t* scratch) {
  const int32_t pixels = p->out_h * p->out_w, out_w = p->out_w, out_c = p->out_c;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + (int64_t)b * p->in_h * p->in_w * p->in_c;
    int8_t* out_b = out + (int64_t)b * pixels * out_c;
    for (int32_t px = 0; px < pixels; px += 2) {
      const int32_t px1 = px + 1 < pixels ? px + 1 : px; /* a lone last pixel is computed twice, stored once */
      im2col(p, in_b, px / out_w, px % out_w, scratch, 0);
      im2col(p, in_b, px1 / out_w, px1 % out_w, scratch, 1);
      channels(p, w, bias, scratch, out_b + (int64_t)px * out_c, px1 != px ? out_b + (int64_t)px1 * out_c : 0);
    }
  }
}
