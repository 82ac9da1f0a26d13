/* edgeq generated-C runtime: DEPTHWISE_CONV_2D for cores with the DSP extension (Cortex-M4, M7, M33).
 *
 * Shares eq_conv_dsp.c's intrinsics, their portable C emulation (host build) and requantization through
 * eq_dsp.h; a project without DSP depthwise gets a stub in this file's place (emit.leave_out_unused).
 *
 * The same integer arithmetic as eq_dwconv2d (eq_kernels.c), reorganised:
 *   - the output is split, per generation-time parameters, into the interior (every tap of the window
 *     inside the image) and the border; only border pixels test each tap, interior pixels take none;
 *   - border windows are clipped to the image once per pixel (not tested per tap), then take the same pass;
 *   - depth multiplier 1 (output channel c reads input channel c; NHWC input and 1HWO filter are both
 *     channel-interleaved) runs 4 channels per pass: one word of input and one of filter per tap, widened
 *     with SXTB16 into (c0, c2) and (c1, c3) int16 pairs, the input offset added with SADD16
 *     (x + offset fits int16), then 4 single 16x16 multiply-accumulates (SMLABB / SMLATT), one per channel;
 *   - the interior rectangle (windows up to 5x5) takes the channel groups outside and the pixels
 *     inside: each group's filter is widened once per call, the offset enters as offset * sum(w), so a tap
 *     costs one input word, two SXTB16 and four multiply-accumulates;
 * Every product is the reference's w * (x + offset) and int32 addition is exact (modulo 2^32 as the
 * reference's), so the accumulator before requantization is the same bit for bit; requantization is
 * eq_mbqm's result (eq_dsp.h eq_dsp_requant). */

#include "eq_dsp.h"

/* One output pixel, any window position and depth multiplier: the plain kernel's loop. */
static void dw_pixel(const eq_conv_t* p, const int8_t* in_b, const int8_t* w, const int32_t* bias, int32_t oy,
                     int32_t ox, int8_t* o) {
  const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c, k_h = p->k_h, k_w = p->k_w;
  const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w, dm = p->depth_mult;
  for (int32_t oc = 0; oc < out_c; ++oc) {
    const int32_t ic = oc / dm;
    int32_t acc = bias ? bias[oc] : 0;
    for (int32_t ky = 0; ky < k_h; ++ky) {
      const int32_t iy = y0 + p->dil_h * ky;
      if (iy < 0 || iy >= in_h) continue;
      for (int32_t kx = 0; kx < k_w; ++kx) {
        const int32_t ix = x0 + p->dil_w * kx;
        if (ix < 0 || ix >= in_w) continue;
        const int32_t xv = in_b[((int64_t)iy * in_w + ix) * in_c + ic];
        acc += (int32_t)w[((int64_t)ky * k_w + kx) * out_c + oc] * (xv + p->in_offset);
      }
    }
    o[oc] = eq_dsp_requant(p, acc, oc);
  }
}

/* One output pixel, depth multiplier 1, over the taps ky0 <= ky < ky1, kx0 <= kx < kx1 (all inside the
 * image; the whole window for an interior pixel, the clipped one on the border): 4 channels per pass, no
 * bounds tests. px: the input pixel under tap (ky0, kx0); channels c_first .. in_c - 1. */
static void dw_dm1(const eq_conv_t* p, const int8_t* px, const int8_t* w, const int32_t* bias, int32_t ky0,
                   int32_t ky1, int32_t kx0, int32_t kx1, int32_t c_first, int8_t* o) {
  const int32_t c_n = p->in_c, k_w = p->k_w, n_y = ky1 - ky0, n_x = kx1 - kx0;
  const int32_t row_step = p->dil_h * p->in_w * c_n, col_step = p->dil_w * c_n, w_row = k_w * c_n;
  const int32_t off2 = (int32_t)(((uint32_t)p->in_offset & 0xFFFFu) | ((uint32_t)p->in_offset << 16));
  const int8_t* const w0 = w + ((int64_t)ky0 * k_w + kx0) * c_n;
  int32_t c = c_first;
  for (; c + 4 <= c_n; c += 4) {
    int32_t a0 = bias ? bias[c] : 0, a1 = bias ? bias[c + 1] : 0;
    int32_t a2 = bias ? bias[c + 2] : 0, a3 = bias ? bias[c + 3] : 0;
    for (int32_t ky = 0; ky < n_y; ++ky) {
      const int8_t* xp = px + (int64_t)ky * row_step + c;
      const int8_t* wp = w0 + (int64_t)ky * w_row + c;
      for (int32_t kx = 0; kx < n_x; ++kx, xp += col_step, wp += c_n) {
        const uint32_t xv = eq_read32(xp), wv = eq_read32(wp);
        const int32_t x02 = eq_sadd16(eq_sxtb16(xv), off2), x13 = eq_sadd16(eq_sxtb16_ror8(xv), off2);
        const int32_t w02 = eq_sxtb16(wv), w13 = eq_sxtb16_ror8(wv);
        a0 = eq_smlabb(x02, w02, a0);
        a2 = eq_smlatt(x02, w02, a2);
        a1 = eq_smlabb(x13, w13, a1);
        a3 = eq_smlatt(x13, w13, a3);
      }
    }
    const eq_dsp_out_t q = eq_dsp_out(p);
    const int32_t r0 = eq_dsp_rq(a0, p->mult[c], p->shift[c], q), r1 = eq_dsp_rq(a1, p->mult[c + 1], p->shift[c + 1], q);
    const int32_t r2 = eq_dsp_rq(a2, p->mult[c + 2], p->shift[c + 2], q), r3 = eq_dsp_rq(a3, p->mult[c + 3], p->shift[c + 3], q);
    o[c] = (int8_t)r0, o[c + 1] = (int8_t)r1, o[c + 2] = (int8_t)r2, o[c + 3] = (int8_t)r3;
  }
  for (; c < c_n; ++c) {
    int32_t acc = bias ? bias[c] : 0;
    for (int32_t ky = 0; ky < n_y; ++ky) {
      for (int32_t kx = 0; kx < n_x; ++kx) {
        const int32_t xv = px[(int64_t)ky * row_step + (int64_t)kx * col_step + c];
        acc += (int32_t)w0[(int64_t)ky * w_row + (int64_t)kx * c_n + c] * (xv + p->in_offset);
      }
    }
    o[c] = eq_dsp_requant(p, acc, c);
  }
}

#define EQ_DW_ROW_TAPS 25 /* windows up to 5x5 take the row pass (its widened filter lives on the stack) */

/* One window of 4 channels against the widened filter wq (per tap: (c0, c2) then (c1, c3)), into acc. */
static inline void dw_window(const int8_t* px, const int32_t* wq, int32_t k_h, int32_t k_w, int32_t row_step,
                            int32_t col_step, int32_t acc[4]) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t ky = 0; ky < k_h; ++ky) {
    const int8_t* xp = px + (int64_t)ky * row_step;
    for (int32_t kx = 0; kx < k_w; ++kx, xp += col_step, wq += 2) {
      const uint32_t xv = eq_read32(xp);
      const int32_t x02 = eq_sxtb16(xv), x13 = eq_sxtb16_ror8(xv);
      a0 = eq_smlabb(x02, wq[0], a0);
      a2 = eq_smlatt(x02, wq[0], a2);
      a1 = eq_smlabb(x13, wq[1], a1);
      a3 = eq_smlatt(x13, wq[1], a3);
    }
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* dw_window for a 3x3 window, written out: one row of 3 taps per step. */
static inline void dw_window3x3(const int8_t* px, const int32_t* wq, int32_t row_step, int32_t col_step,
                                int32_t acc[4]) {
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  for (int32_t ky = 0; ky < 3; ++ky, px += row_step, wq += 6) {
    const uint32_t u = eq_read32(px), v = eq_read32(px + col_step), x = eq_read32(px + 2 * col_step);
    int32_t e = eq_sxtb16(u), f = eq_sxtb16_ror8(u);
    a0 = eq_smlabb(e, wq[0], a0);
    a2 = eq_smlatt(e, wq[0], a2);
    a1 = eq_smlabb(f, wq[1], a1);
    a3 = eq_smlatt(f, wq[1], a3);
    e = eq_sxtb16(v), f = eq_sxtb16_ror8(v);
    a0 = eq_smlabb(e, wq[2], a0);
    a2 = eq_smlatt(e, wq[2], a2);
    a1 = eq_smlabb(f, wq[3], a1);
    a3 = eq_smlatt(f, wq[3], a3);
    e = eq_sxtb16(x), f = eq_sxtb16_ror8(x);
    a0 = eq_smlabb(e, wq[4], a0);
    a2 = eq_smlatt(e, wq[4], a2);
    a1 = eq_smlabb(f, wq[5], a1);
    a3 = eq_smlatt(f, wq[5], a3);
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* The interior rectangle y_lo <= oy < y_hi, x_lo <= ox < x_hi of one image, depth multiplier 1: channel
 * groups of 4 outside, pixels inside, so each group's filter is widened once per call (SXTB16 pairs on the
 * stack) and the input offset enters once per group as offset * sum(w), the same int32 modulo 2^32 as
 * sum(w * (x + offset)). Per tap and 4 channels: one input word, two SXTB16, four SMLABB / SMLATT. Tail
 * channels: dw_dm1. */
static void dw_rect_dm1(const eq_conv_t* p, const int8_t* in_b, const int8_t* w, const int32_t* bias, int32_t y_lo,
                        int32_t y_hi, int32_t x_lo, int32_t x_hi, int8_t* out_b) {
  const int32_t c_n = p->in_c, k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w, off = p->in_offset;
  const int32_t row_step = p->dil_h * p->in_w * c_n, col_step = p->dil_w * c_n;
  const int32_t x_step = p->stride_w * c_n, y_step = p->stride_h * p->in_w * c_n, o_step = p->out_w * c_n;
  const int8_t* const in_0 = in_b + ((int64_t)(y_lo * p->stride_h - p->pad_h) * p->in_w + x_lo * p->stride_w - p->pad_w) * c_n;
  int8_t* const out_0 = out_b + ((int64_t)y_lo * p->out_w + x_lo) * c_n;
  const eq_dsp_out_t q = eq_dsp_out(p);
  int32_t wq[2 * EQ_DW_ROW_TAPS];
  int32_t c = 0;
  for (; c + 4 <= c_n; c += 4) {
    uint32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int32_t t = 0; t < taps; ++t) {
      const uint32_t wv = eq_read32(w + (int64_t)t * c_n + c);
      const int32_t w02 = eq_sxtb16(wv), w13 = eq_sxtb16_ror8(wv);
      wq[2 * t] = w02;
      wq[2 * t + 1] = w13;
      s0 += (uint32_t)(int32_t)(int16_t)(uint16_t)(uint32_t)w02;
      s2 += (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)w02 >> 16);
      s1 += (uint32_t)(int32_t)(int16_t)(uint16_t)(uint32_t)w13;
      s3 += (uint32_t)(int32_t)(int16_t)(uint16_t)((uint32_t)w13 >> 16);
    }
    const int32_t i0 = (int32_t)((uint32_t)(bias ? bias[c] : 0) + (uint32_t)off * s0);
    const int32_t i1 = (int32_t)((uint32_t)(bias ? bias[c + 1] : 0) + (uint32_t)off * s1);
    const int32_t i2 = (int32_t)((uint32_t)(bias ? bias[c + 2] : 0) + (uint32_t)off * s2);
    const int32_t i3 = (int32_t)((uint32_t)(bias ? bias[c + 3] : 0) + (uint32_t)off * s3);
    const int32_t m0 = p->mult[c], m1 = p->mult[c + 1], m2 = p->mult[c + 2], m3 = p->mult[c + 3];
    const int32_t h0 = p->shift[c], h1 = p->shift[c + 1], h2 = p->shift[c + 2], h3 = p->shift[c + 3];
    for (int32_t oy = y_lo; oy < y_hi; ++oy) {
      const int8_t* px = in_0 + (int64_t)(oy - y_lo) * y_step + c;
      int8_t* o = out_0 + (int64_t)(oy - y_lo) * o_step + c;
      for (int32_t ox = x_lo; ox < x_hi; ++ox, px += x_step, o += c_n) {
        int32_t acc[4] = {i0, i1, i2, i3};
        if (k_h == 3 && k_w == 3) /* the common window, written out */
          dw_window3x3(px, wq, row_step, col_step, acc);
        else
          dw_window(px, wq, k_h, k_w, row_step, col_step, acc);
        o[0] = (int8_t)eq_dsp_rq(acc[0], m0, h0, q);
        o[1] = (int8_t)eq_dsp_rq(acc[1], m1, h1, q);
        o[2] = (int8_t)eq_dsp_rq(acc[2], m2, h2, q);
        o[3] = (int8_t)eq_dsp_rq(acc[3], m3, h3, q);
      }
    }
  }
  if (c == c_n) return;
  for (int32_t oy = y_lo; oy < y_hi; ++oy) {
    const int8_t* px = in_0 + (int64_t)(oy - y_lo) * y_step;
    int8_t* o = out_0 + (int64_t)(oy - y_lo) * o_step;
    for (int32_t ox = x_lo; ox < x_hi; ++ox, px += x_step, o += c_n) dw_dm1(p, px, w, bias, 0, k_h, 0, k_w, c, o);
  }
}

/* The taps k0 <= k < k1 of a window starting at input index i0 (dilation d) that fall inside [0, n). */
static void dw_clip(int32_t i0, int32_t d, int32_t k, int32_t n, int32_t* k0, int32_t* k1) {
  int32_t a = 0, b = k;
  while (a < k && i0 + d * a < 0) ++a;
  while (b > a && i0 + d * (b - 1) >= n) --b;
  *k0 = a;
  *k1 = b;
}

/* An interior pixel, any depth multiplier: the plain loop without bounds tests. */
static void dw_interior(const eq_conv_t* p, const int8_t* px, const int8_t* w, const int32_t* bias, int8_t* o) {
  const int32_t in_c = p->in_c, out_c = p->out_c, k_h = p->k_h, k_w = p->k_w, dm = p->depth_mult;
  const int32_t row_step = p->dil_h * p->in_w * in_c, col_step = p->dil_w * in_c;
  for (int32_t oc = 0; oc < out_c; ++oc) {
    const int32_t ic = oc / dm;
    int32_t acc = bias ? bias[oc] : 0;
    for (int32_t ky = 0; ky < k_h; ++ky) {
      for (int32_t kx = 0; kx < k_w; ++kx) {
        const int32_t xv = px[(int64_t)ky * row_step + (int64_t)kx * col_step + ic];
        acc += (int32_t)w[((int64_t)ky * k_w + kx) * out_c + oc] * (xv + p->in_offset);
      }
    }
    o[oc] = eq_dsp_requant(p, acc, oc);
  }
}

/* First output index whose window starts at or after 0 along one axis, and one past the last whose
 * window ends inside the axis (interior: lo <= o < hi; hi may be <= lo: no interior). */
static void dw_interior_range(int32_t stride, int32_t pad, int32_t dil, int32_t k, int32_t in, int32_t out,
                              int32_t* lo, int32_t* hi) {
  int32_t a = 0;
  while (a < out && a * stride - pad < 0) ++a;
  int32_t b = a;
  while (b < out && b * stride - pad + dil * (k - 1) < in) ++b;
  *lo = a;
  *hi = b;
}

void eq_dwconv2d_dsp(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  const int32_t out_h = p->out_h, out_w = p->out_w, out_c = p->out_c, in_c = p->in_c;
  int32_t y_lo, y_hi, x_lo, x_hi;
  dw_interior_range(p->stride_h, p->pad_h, p->dil_h, p->k_h, p->in_h, out_h, &y_lo, &y_hi);
  dw_interior_range(p->stride_w, p->pad_w, p->dil_w, p->k_w, p->in_w, out_w, &x_lo, &x_hi);
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + (int64_t)b * p->in_h * p->in_w * in_c;
    const int rect = y_lo < y_hi && x_lo < x_hi && p->depth_mult == 1 && p->k_h * p->k_w <= EQ_DW_ROW_TAPS;
    if (rect) dw_rect_dm1(p, in_b, w, bias, y_lo, y_hi, x_lo, x_hi, out + (int64_t)b * out_h * out_w * out_c);
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int row_inside = oy >= y_lo && oy < y_hi;
      int8_t* o_row = out + ((int64_t)b * out_h + oy) * out_w * out_c;
      const int row_pass = rect && row_inside; /* its interior pixels done by dw_rect_dm1 */
      for (int32_t ox = 0; ox < out_w; ++ox) {
        if (row_pass && ox == x_lo) ox = x_hi; /* done by the row pass */
        if (ox >= out_w) break;
        int8_t* o = o_row + (int64_t)ox * out_c;
        const int32_t y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
        if (row_inside && ox >= x_lo && ox < x_hi) {
          const int8_t* px = in_b + ((int64_t)y0 * p->in_w + x0) * in_c;
          if (p->depth_mult == 1)
            dw_dm1(p, px, w, bias, 0, p->k_h, 0, p->k_w, 0, o);
          else
            dw_interior(p, px, w, bias, o);
        } else if (p->depth_mult == 1) { /* border: the window clipped to the image, then the same pass */
          int32_t ky0, ky1, kx0, kx1;
          dw_clip(y0, p->dil_h, p->k_h, p->in_h, &ky0, &ky1);
          dw_clip(x0, p->dil_w, p->k_w, p->in_w, &kx0, &kx1);
          const int8_t* px = in_b + ((int64_t)(y0 + p->dil_h * ky0) * p->in_w + x0 + p->dil_w * kx0) * in_c;
          dw_dm1(p, px, w, bias, ky0, ky1, kx0, kx1, 0, o);
        } else {
          dw_pixel(p, in_b, w, bias, oy, ox, o);
        }
      }
    }
  }
}

