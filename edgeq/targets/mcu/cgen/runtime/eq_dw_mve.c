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
 *     input zero point (-in_offset) instead of memory: w * (zp + offset) = 0, as the reference skips it; a
 *     border pixel clips its window once (rows outside, then the columns inside as one range; a 3x3 window
 *     as a 9-bit mask of the taps inside, its taps unrolled); interior 3x3 windows run their nine taps
 *     unrolled (one tap's sums at a time: scheduled together by the compiler, they spill Helium's eight
 *     registers);
 *   - when the channel count C divides 16 (C < 16), a 3x3 stride-1 window lets 16 / C neighbouring interior
 *     pixels share a pass: their taps are 16 contiguous input bytes, the weights each tap's C repeated
 *     (built once per op on the stack), and the table repeats the channels across the lanes;
 *   - p->wsum points at the generator's table, per block of 16 channels and in the accumulators' channel
 *     order: the start sums, the multipliers, the left shifts max(shift, 0) and the right shifts
 *     min(shift, 0) (zero-padded past the last channel), then one flags word; requantization is eq_mbqm's
 *     in lanes: the left shift wraps as the reference's uint32 shift, VQRDMULH is gemmlowp's
 *     SaturatingRoundingDoublingHighMul exactly, and the rounding right shift rounds half away from zero
 *     (negative values step down by one first: VRSHL alone rounds half up); when the flags say every shift
 *     is negative, interior pixels skip the left shift and the fixup's mask. The four results are narrowed
 *     back into channel order by saturating VQMOVNB / VQMOVNT, clamped once in int8 (act_min and act_max
 *     lie inside int8, so this is the reference's clamp) and stored with one (tail-predicated) byte store.
 * Other depth multipliers, and the host build (no MVE), call eq_dwconv2d with the same arguments (the plain
 * mult and shift; it does not read wsum). */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* eq_mbqm(acc, mult, shift) + out_offset per lane (not clamped); left = max(shift, 0), right = min(shift, 0);
 * quick: every shift is negative (no left shift; every lane shifts right, so every negative steps down). */
static inline __attribute__((always_inline)) int32x4_t eq_dw_requant(int32x4_t acc, const int32_t* mult,
                                                                     const int32_t* left, const int32_t* right,
                                                                     int32_t out_offset, int quick) {
  if (quick) {
    acc = vqrdmulhq_s32(acc, vldrwq_s32(mult));
    acc = vqaddq_s32(acc, vshrq_n_s32(acc, 31)); /* negatives step down by one before the rounding shift */
  } else {
    acc = vqrdmulhq_s32(vshlq_s32(acc, vldrwq_s32(left)), vldrwq_s32(mult));
    acc = vqaddq_s32(acc, vshrq_n_s32(vandq_s32(acc, vldrwq_s32(right)), 31)); /* only where right < 0 */
  }
  return vaddq_n_s32(vrshlq_s32(acc, vldrwq_s32(right)), out_offset);
}

/* Makes v be computed here, in a register: keeps gcc from hoisting every load ahead (Helium has eight). */
#define EQ_DW_KEEP(v) __asm__ volatile("" : "+w"(v)::"memory")

/* One tap: 16 products of x and w widened into the four accumulators (channel order base_k + 4j). */
#define EQ_DW_TAP(xv, wv)                                                                   \
  do {                                                                                      \
    const int8x16_t x_ = (xv), w_ = (wv);                                                   \
    const int16x8_t e_ = vmullbq_int_s8(x_, w_), o_ = vmulltq_int_s8(x_, w_);               \
    a0 = vaddq_s32(a0, vmovlbq_s16(e_));                                                    \
    a1 = vaddq_s32(a1, vmovltq_s16(e_));                                                    \
    a2 = vaddq_s32(a2, vmovlbq_s16(o_));                                                    \
    a3 = vaddq_s32(a3, vmovltq_s16(o_));                                                    \
    __asm__ volatile("" : "+w"(a0), "+w"(a1), "+w"(a2), "+w"(a3)::"memory"); /* one tap at a time */ \
  } while (0)

/* 16 channels from c (full: 16 or more left, no predication) of the output pixel whose window starts at
 * (y0, x0); border: the window leaves the image, columns [kx_lo, kx_hi) of it are inside (the pixel's
 * clipping, computed once for all its channel blocks); taps outside read the zero point, without a test
 * per tap; k33: the window is 3x3 (constant bounds: the taps unroll). */
static inline __attribute__((always_inline)) void eq_dw_mve_block16(const eq_conv_t* p, const int8_t* in_b,
                                                                    int32_t y0, int32_t x0, int32_t kx_lo,
                                                                    int32_t kx_hi, const int8_t* w, int8_t* o,
                                                                    int32_t c, int full, int border, int k33,
                                                                    int32_t ws, uint32_t valid, int quick) {
  const int32_t c_n = p->in_c, k_h = k33 ? 3 : p->k_h, k_w = k33 ? 3 : p->k_w, in_h = p->in_h, in_w = p->in_w;
  const int32_t dil_h = p->dil_h, dil_w = p->dil_w, col_step = dil_w * c_n;
  const mve_pred16_t p8 = vctp8q((uint32_t)(c_n - c));
  const int8x16_t zp = vdupq_n_s8((int8_t)-p->in_offset);
  const int32_t* t = p->wsum + (c >> 4) * 64; /* start sums, mult, left, right: 16 each */
  int32x4_t a0 = vldrwq_s32(t), a1 = vldrwq_s32(t + 4), a2 = vldrwq_s32(t + 8), a3 = vldrwq_s32(t + 12);
  const int8_t* wp = w + c;
#define EQ_DW_LD(ptr) (full ? vldrbq_s8(ptr) : vldrbq_z_s8((ptr), p8))
  if (k33 && !border) { /* 3x3 inside the image: nine taps, unrolled */
    const int8_t* xp = in_b + (y0 * in_w + x0) * c_n + c;
    const int32_t row_step = dil_h * in_w * c_n;
#pragma GCC unroll 3
    for (int32_t ky = 0; ky < 3; ++ky, xp += row_step, wp += 3 * ws) {
      EQ_DW_TAP(EQ_DW_LD(xp), EQ_DW_LD(wp));
      EQ_DW_TAP(EQ_DW_LD(xp + col_step), EQ_DW_LD(wp + ws));
      EQ_DW_TAP(EQ_DW_LD(xp + 2 * col_step), EQ_DW_LD(wp + 2 * ws));
    }
  } else if (k33) { /* 3x3 clipped: bit 3 ky + kx of valid is set when that tap is inside the image */
    const int8_t* xp = in_b + (y0 * in_w + x0) * c_n + c;
    const int32_t row_step = dil_h * in_w * c_n;
#pragma GCC unroll 3
    for (int32_t ky = 0; ky < 3; ++ky, xp += row_step, wp += 3 * ws, valid >>= 3) {
      EQ_DW_TAP(valid & 1 ? EQ_DW_LD(xp) : zp, EQ_DW_LD(wp));
      EQ_DW_TAP(valid & 2 ? EQ_DW_LD(xp + col_step) : zp, EQ_DW_LD(wp + ws));
      EQ_DW_TAP(valid & 4 ? EQ_DW_LD(xp + 2 * col_step) : zp, EQ_DW_LD(wp + 2 * ws));
    }
  } else
    for (int32_t ky = 0; ky < k_h; ++ky) {
    const int32_t iy = y0 + dil_h * ky;
    const int8_t* xp = in_b + (iy * in_w + x0) * c_n + c;
    if (!border) {
      for (int32_t kx = 0; kx < k_w; ++kx, wp += c_n) EQ_DW_TAP(EQ_DW_LD(xp + kx * col_step), EQ_DW_LD(wp));
    } else if (iy < 0 || iy >= in_h) {
      for (int32_t kx = 0; kx < k_w; ++kx, wp += c_n) EQ_DW_TAP(zp, EQ_DW_LD(wp));
    } else {
      int32_t kx = 0;
      for (; kx < kx_lo; ++kx, wp += c_n) EQ_DW_TAP(zp, EQ_DW_LD(wp));
      for (; kx < kx_hi; ++kx, wp += c_n) EQ_DW_TAP(EQ_DW_LD(xp + kx * col_step), EQ_DW_LD(wp));
      for (; kx < k_w; ++kx, wp += c_n) EQ_DW_TAP(zp, EQ_DW_LD(wp));
    }
  }
#undef EQ_DW_LD
  const int32_t zo = p->out_offset;
  /* back to channel order, saturating: int16 lane m of even is channel 2m, of odd 2m + 1; then bytes 2m and
   * 2m + 1 (each narrowing's first operand is fully overwritten: bottom lanes by VQMOVNB, top ones by
   * VQMOVNT). Saturating to int8 then clamping to [act_min, act_max], a range inside int8's, is the
   * reference's clamp. */
  a0 = eq_dw_requant(a0, t + 16, t + 32, t + 48, zo, quick);
  EQ_DW_KEEP(a0);
  a1 = eq_dw_requant(a1, t + 20, t + 36, t + 52, zo, quick);
  EQ_DW_KEEP(a1);
  int16x8_t even = vqmovntq_s32(vqmovnbq_s32(vreinterpretq_s16_s32(a0), a0), a1);
  EQ_DW_KEEP(even);
  a2 = eq_dw_requant(a2, t + 24, t + 40, t + 56, zo, quick);
  EQ_DW_KEEP(a2);
  a3 = eq_dw_requant(a3, t + 28, t + 44, t + 60, zo, quick);
  EQ_DW_KEEP(a3);
  const int16x8_t odd = vqmovntq_s32(vqmovnbq_s32(vreinterpretq_s16_s32(a2), a2), a3);
  int8x16_t res = vqmovntq_s16(vqmovnbq_s16(vreinterpretq_s8_s16(even), even), odd);
  res = vminq_s8(vmaxq_s8(res, vdupq_n_s8((int8_t)p->act_min)), vdupq_n_s8((int8_t)p->act_max));
  if (full)
    vstrbq_s8(o + c, res);
  else
    vstrbq_p_s8(o + c, res, p8);
}

/* The last, predicated pass of a pixel: one general copy for every kind of window (it is not the hot path;
 * a copy per kind would cost flash). */
static __attribute__((noinline)) void eq_dw_mve_tail(const eq_conv_t* p, const int8_t* in_b, int32_t y0,
                                                     int32_t x0, int32_t kx_lo, int32_t kx_hi, const int8_t* w,
                                                     int8_t* o, int32_t c, int border, uint32_t valid) {
  const int k33 = p->k_h == 3 && p->k_w == 3;
  eq_dw_mve_block16(p, in_b, y0, x0, kx_lo, kx_hi, w, o, c, 0, border, k33, p->in_c, valid, 0);
}

static inline __attribute__((always_inline)) void eq_dw_mve_pixel(const eq_conv_t* p, const int8_t* in_b,
                                                                  int32_t y0, int32_t x0, int32_t kx_lo,
                                                                  int32_t kx_hi, const int8_t* w, int8_t* o,
                                                                  int border, int k33, uint32_t valid,
                                                                  int quick) {
  int32_t c = 0;
  for (; c + 16 <= p->in_c; c += 16)
    eq_dw_mve_block16(p, in_b, y0, x0, kx_lo, kx_hi, w, o, c, 1, border, k33, p->in_c, valid, quick);
  if (c < p->in_c) eq_dw_mve_tail(p, in_b, y0, x0, kx_lo, kx_hi, w, o, c, border, valid);
}

/* A border pixel: the columns of its window inside the image, [kx_lo, kx_hi) (kx_hi may be below kx_lo:
 * then none is). */
static void eq_dw_mve_border(const eq_conv_t* p, const int8_t* in_b, int32_t y0, int32_t x0, const int8_t* w,
                             int8_t* o) {
  const int32_t dil_w = p->dil_w, k_w = p->k_w;
  int32_t kx_lo = x0 >= 0 ? 0 : (-x0 + dil_w - 1) / dil_w;
  int32_t kx_hi = x0 >= p->in_w ? 0 : (p->in_w - 1 - x0) / dil_w + 1;
  if (kx_lo > k_w) kx_lo = k_w;
  if (kx_hi > k_w) kx_hi = k_w;
  if (p->k_h == 3 && k_w == 3) { /* the taps inside, as bits 3 ky + kx */
    uint32_t valid = 0;
    for (int32_t ky = 0; ky < 3; ++ky) {
      const int32_t iy = y0 + p->dil_h * ky;
      if (iy >= 0 && iy < p->in_h)
        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) valid |= 1u << (3 * ky + kx);
    }
    eq_dw_mve_pixel(p, in_b, y0, x0, kx_lo, kx_hi, w, o, 1, 1, valid, 0);
  } else
    eq_dw_mve_pixel(p, in_b, y0, x0, kx_lo, kx_hi, w, o, 1, 0, 0, 0);
}

/* An interior pixel; quick: every shift of the op is negative (the table's flags word is 0): then a 3x3
 * window runs unrolled (the common case; other ops take the general loops, one copy less of flash). */
static void eq_dw_mve_inner(const eq_conv_t* p, const int8_t* in_b, int32_t y0, int32_t x0, const int8_t* w,
                            int8_t* o, int quick) {
  if (quick && p->k_h == 3 && p->k_w == 3)
    eq_dw_mve_pixel(p, in_b, y0, x0, 0, 3, w, o, 0, 1, 0, 1);
  else
    eq_dw_mve_pixel(p, in_b, y0, x0, 0, p->k_w, w, o, 0, 0, 0, 0);
}

/* 16 / c_n neighbouring interior output pixels of a 3x3, stride-1 window in one pass, when c_n divides 16:
 * their windows' taps are contiguous in the input row (16 bytes from the first pixel's tap), wrep holds each
 * tap's c_n weights repeated across the 16 lanes, and the table's lanes past c_n repeat its channels
 * (mve.dw_table). */
static void eq_dw_mve_group(const eq_conv_t* p, const int8_t* in_b, int32_t y0, int32_t x0, const int8_t* wrep,
                            int8_t* o, int quick) {
  if (quick)
    eq_dw_mve_block16(p, in_b, y0, x0, 0, 3, wrep, o, 0, 1, 0, 1, 16, 0, 1);
  else
    eq_dw_mve_block16(p, in_b, y0, x0, 0, 3, wrep, o, 0, 1, 0, 1, 16, 0, 0);
}

void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  if (p->depth_mult != 1 || p->wsum == 0) {
    eq_dwconv2d(p, in, w, bias, out);
    return;
  }
  const int32_t in_h = p->in_h, in_w = p->in_w, c_n = p->in_c, out_h = p->out_h, out_w = p->out_w;
  const int32_t span_h = p->dil_h * (p->k_h - 1), span_w = p->dil_w * (p->k_w - 1);
  /* pixels per pass of the grouped path (1: none) and its weights, each tap's repeated over 16 lanes */
  const int32_t g = (p->k_h == 3 && p->k_w == 3 && p->stride_w == 1 && c_n < 16 && 16 % c_n == 0) ? 16 / c_n : 1;
  int8_t wrep[9 * 16] __attribute__((aligned(16)));
  const int quick = p->wsum[(c_n + 15) / 16 * 64] == 0; /* the table's flags word, after its blocks */
  if (g > 1)
    for (int32_t i = 0; i < 9 * 16; ++i) wrep[i] = w[(i >> 4) * c_n + (i & 15) % c_n];
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + b * in_h * in_w * c_n;
    int8_t* out_b = out + b * out_h * out_w * c_n;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int row_border = y0 < 0 || y0 + span_h >= in_h;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int border = row_border || x0 < 0 || x0 + span_w >= in_w;
        int8_t* o = out_b + (oy * out_w + ox) * c_n;
        if (!border && g > 1 && ox + g <= out_w && x0 + g - 1 + span_w < in_w) {
          eq_dw_mve_group(p, in_b, y0, x0, wrep, o, quick);
          ox += g - 1;
        } else if (border)
          eq_dw_mve_border(p, in_b, y0, x0, w, o);
        else
          eq_dw_mve_inner(p, in_b, y0, x0, w, o, quick);
      }
    }
  }
}

#else /* no MVE (the host build): the plain kernel, same arguments */

void eq_dwconv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  eq_dwconv2d(p, in, w, bias, out);
}

#endif
