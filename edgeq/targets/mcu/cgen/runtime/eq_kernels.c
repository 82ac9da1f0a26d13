/* edgeq generated-C runtime: int8 kernels. See eq_kernels.h.
 *
 * The arithmetic follows TFLite's reference kernels (the BUILTIN_REF resolver) step for step, because
 * any other rounding order gives different answers: MultiplyByQuantizedMultiplier rounds twice (the
 * doubling high multiply, then the rounding right shift), and softmax uses gemmlowp's fixed-point exp
 * and reciprocal. Signed overflow is avoided by doing wrapping adds in uint32_t where gemmlowp relies on
 * two's-complement wrap.
 */
#include "eq_kernels.h"

#define EQ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define EQ_MIN(a, b) ((a) < (b) ? (a) : (b))

static inline int32_t clamp_i32(int32_t x, int32_t lo, int32_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* ---- fixed-point primitives (gemmlowp semantics) ---------------------------------------------------- */

int32_t eq_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * (int64_t)b;
  int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
  /* C99 division truncates toward zero, as gemmlowp's does. */
  return (int32_t)((ab + nudge) / (1LL << 31));
}

int32_t eq_rdbpot(int32_t x, int32_t exponent) {
  const int32_t mask = (int32_t)((1LL << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t eq_mbqm(int32_t x, int32_t mult, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  return eq_rdbpot(eq_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

static inline int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* SaturatingRoundingMultiplyByPOT with a positive exponent: a saturating left shift. */
static int32_t sat_shl(int32_t x, int exponent) {
  const int32_t threshold = (int32_t)((1LL << (31 - exponent)) - 1);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), a and result with 0 integer bits. */
static int32_t exp_quarter(int32_t a) {
  const int32_t constant_term = 1895147668;   /* exp(-1/8) */
  const int32_t constant_1_over_3 = 715827883; /* 1/3 */
  const int32_t x = wrap_add(a, 1 << 28);      /* a + 1/8 */
  const int32_t x2 = eq_srdhm(x, x);
  const int32_t x3 = eq_srdhm(x2, x);
  const int32_t x4 = eq_srdhm(x2, x2);
  const int32_t x4_over_4 = eq_rdbpot(x4, 2);
  const int32_t sum = eq_rdbpot(wrap_add(eq_srdhm(wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
  return wrap_add(constant_term, eq_srdhm(constant_term, wrap_add(x, sum)));
}

/* exp(a) for a <= 0 given with 5 integer bits (26 fractional); result with 0 integer bits. */
static int32_t exp_on_negative_values_5(int32_t a) {
  const int frac_bits = 26;
  const int32_t one_quarter = 1 << (frac_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter = wrap_sub(a & mask, one_quarter);
  int32_t result = exp_quarter(sat_shl(a_mod_quarter_minus_one_quarter, 5));
  const int32_t remainder = wrap_sub(a_mod_quarter_minus_one_quarter, a);
  /* exp(-2^k) for k = -2 .. 4, applied for each set bit of the remainder */
  static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  for (int k = 0; k < 7; ++k) {
    if (remainder & (1 << (frac_bits - 2 + k))) result = eq_srdhm(result, multipliers[k]);
  }
  if (a == 0) result = INT32_MAX;
  return result;
}

/* 1 / (1 + x) for x in [0, 1), both with 0 integer bits (Newton-Raphson, 3 steps). */
static int32_t one_over_one_plus_x(int32_t a) {
  const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
  const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
  const int32_t c48_17 = 1515870810;   /* 48/17, 2 integer bits */
  const int32_t cm32_17 = -1010580540; /* -32/17, 2 integer bits */
  int32_t x = wrap_add(c48_17, eq_srdhm(half_denominator, cm32_17));
  for (int i = 0; i < 3; ++i) {
    const int32_t hdx = eq_srdhm(half_denominator, x);
    const int32_t one_minus = wrap_sub(1 << 29, hdx);
    x = wrap_add(x, sat_shl(eq_srdhm(x, one_minus), 2));
  }
  return sat_shl(x, 1);
}

static int count_leading_zeros(uint32_t x) {
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) {
    x <<= 1;
    ++n;
  }
  return n;
}

/* ---- CONV_2D / DEPTHWISE_CONV_2D -------------------------------------------------------------------- */

void eq_conv2d(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  /* parameters in locals: int8_t stores may alias anything, so fields read through p would be reloaded */
  const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_h = p->out_h, out_w = p->out_w;
  const int32_t out_c = p->out_c, k_h = p->k_h, k_w = p->k_w, stride_h = p->stride_h, stride_w = p->stride_w;
  const int32_t dil_h = p->dil_h, dil_w = p->dil_w, in_offset = p->in_offset, out_offset = p->out_offset;
  const int32_t act_min = p->act_min, act_max = p->act_max;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + (int64_t)b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * stride_h - p->pad_h;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * stride_w - p->pad_w;
        int8_t* o = out + (((int64_t)b * out_h + oy) * out_w + ox) * out_c;
        /* a window inside the image: sum(w * (x + off)) = sum(w * x) + off * sum(w), the same int32 */
        const int inside = y0 >= 0 && y0 + dil_h * (k_h - 1) < in_h && x0 >= 0 && x0 + dil_w * (k_w - 1) < in_w;
        for (int32_t oc = 0; oc < out_c; ++oc) {
          const int8_t* w_oc = w + (int64_t)oc * k_h * k_w * in_c;
          int32_t acc = 0;
          if (inside) {
            acc = p->wsum[oc] * in_offset;
            for (int32_t ky = 0; ky < k_h; ++ky) {
              for (int32_t kx = 0; kx < k_w; ++kx) {
                const int8_t* px = in_b + ((int64_t)(y0 + dil_h * ky) * in_w + x0 + dil_w * kx) * in_c;
                const int8_t* pw = w_oc + ((int64_t)ky * k_w + kx) * in_c;
                int32_t ic = 0;
                for (; ic + 4 <= in_c; ic += 4) {
                  acc += (int32_t)pw[ic] * px[ic] + (int32_t)pw[ic + 1] * px[ic + 1] + (int32_t)pw[ic + 2] * px[ic + 2] +
                         (int32_t)pw[ic + 3] * px[ic + 3];
                }
                for (; ic < in_c; ++ic) acc += (int32_t)pw[ic] * px[ic];
              }
            }
          } else {
            for (int32_t ky = 0; ky < k_h; ++ky) {
              const int32_t iy = y0 + dil_h * ky;
              if (iy < 0 || iy >= in_h) continue;
              for (int32_t kx = 0; kx < k_w; ++kx) {
                const int32_t ix = x0 + dil_w * kx;
                if (ix < 0 || ix >= in_w) continue;
                const int8_t* px = in_b + ((int64_t)iy * in_w + ix) * in_c;
                const int8_t* pw = w_oc + ((int64_t)ky * k_w + kx) * in_c;
                for (int32_t ic = 0; ic < in_c; ++ic) acc += (int32_t)pw[ic] * ((int32_t)px[ic] + in_offset);
              }
            }
          }
          if (bias) acc += bias[oc];
          acc = eq_mbqm(acc, p->mult[oc], p->shift[oc]) + out_offset;
          o[oc] = (int8_t)clamp_i32(acc, act_min, act_max);
        }
      }
    }
  }
}

void eq_dwconv2d(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_h = p->out_h, out_w = p->out_w;
  const int32_t out_c = p->out_c, k_h = p->k_h, k_w = p->k_w, stride_h = p->stride_h, stride_w = p->stride_w;
  const int32_t dil_h = p->dil_h, dil_w = p->dil_w, in_offset = p->in_offset, out_offset = p->out_offset;
  const int32_t act_min = p->act_min, act_max = p->act_max, depth_mult = p->depth_mult;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* in_b = in + (int64_t)b * in_h * in_w * in_c;
    for (int32_t oy = 0; oy < out_h; ++oy) {
      const int32_t y0 = oy * stride_h - p->pad_h;
      for (int32_t ox = 0; ox < out_w; ++ox) {
        const int32_t x0 = ox * stride_w - p->pad_w;
        int8_t* o = out + (((int64_t)b * out_h + oy) * out_w + ox) * out_c;
        for (int32_t ic = 0; ic < in_c; ++ic) {
          for (int32_t m = 0; m < depth_mult; ++m) {
            const int32_t oc = m + ic * depth_mult;
            int32_t acc = 0;
            for (int32_t ky = 0; ky < k_h; ++ky) {
              const int32_t iy = y0 + dil_h * ky;
              if (iy < 0 || iy >= in_h) continue;
              for (int32_t kx = 0; kx < k_w; ++kx) {
                const int32_t ix = x0 + dil_w * kx;
                if (ix < 0 || ix >= in_w) continue;
                const int32_t xv = in_b[((int64_t)iy * in_w + ix) * in_c + ic];
                const int32_t wv = w[((int64_t)ky * k_w + kx) * out_c + oc];
                acc += wv * (xv + in_offset);
              }
            }
            if (bias) acc += bias[oc];
            acc = eq_mbqm(acc, p->mult[oc], p->shift[oc]) + out_offset;
            o[oc] = (int8_t)clamp_i32(acc, act_min, act_max);
          }
        }
      }
    }
  }
}

/* ---- FULLY_CONNECTED -------------------------------------------------------------------------------- */

void eq_fully_connected(const eq_fc_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out) {
  const int32_t in_depth = p->in_depth, w_offset = p->w_offset, in_offset = p->in_offset;
  for (int32_t b = 0; b < p->batches; ++b) {
    const int8_t* x = in + (int64_t)b * in_depth;
    for (int32_t o = 0; o < p->out_depth; ++o) {
      const int8_t* row = w + (int64_t)o * in_depth;
      int32_t acc = 0;
      for (int32_t d = 0; d < in_depth; ++d) acc += ((int32_t)row[d] + w_offset) * ((int32_t)x[d] + in_offset);
      if (bias) acc += bias[o];
      const int32_t c = p->per_channel ? o : 0;
      acc = eq_mbqm(acc, p->mult[c], p->shift[c]) + p->out_offset;
      out[(int64_t)b * p->out_depth + o] = (int8_t)clamp_i32(acc, p->act_min, p->act_max);
    }
  }
}

/* ---- pooling ---------------------------------------------------------------------------------------- */

void eq_max_pool(const eq_pool_t* p, const int8_t* in, int8_t* out) {
  for (int32_t b = 0; b < p->batches; ++b) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t ky0 = EQ_MAX(0, -y0), ky1 = EQ_MIN(p->k_h, p->in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t kx0 = EQ_MAX(0, -x0), kx1 = EQ_MIN(p->k_w, p->in_w - x0);
        for (int32_t c = 0; c < p->c; ++c) {
          int32_t m = -128;
          for (int32_t ky = ky0; ky < ky1; ++ky)
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              const int32_t v = in[(((int64_t)b * p->in_h + y0 + ky) * p->in_w + x0 + kx) * p->c + c];
              if (v > m) m = v;
            }
          out[(((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->c + c] = (int8_t)clamp_i32(m, p->act_min, p->act_max);
        }
      }
    }
  }
}

void eq_avg_pool(const eq_pool_t* p, const int8_t* in, int8_t* out) {
  for (int32_t b = 0; b < p->batches; ++b) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t ky0 = EQ_MAX(0, -y0), ky1 = EQ_MIN(p->k_h, p->in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t kx0 = EQ_MAX(0, -x0), kx1 = EQ_MIN(p->k_w, p->in_w - x0);
        for (int32_t c = 0; c < p->c; ++c) {
          int32_t acc = 0, count = 0;
          for (int32_t ky = ky0; ky < ky1; ++ky)
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              acc += in[(((int64_t)b * p->in_h + y0 + ky) * p->in_w + x0 + kx) * p->c + c];
              ++count;
            }
          if (count == 0) count = 1; /* an empty window: TFLite refuses such models at prepare */
          /* round half away from zero, as TFLite's reference does */
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          out[(((int64_t)b * p->out_h + oy) * p->out_w + ox) * p->c + c] =
              (int8_t)clamp_i32(acc, p->act_min, p->act_max);
        }
      }
    }
  }
}

/* ---- SOFTMAX ---------------------------------------------------------------------------------------- */

static int32_t softmax_diff_rescaled(int32_t diff, const eq_softmax_t* p) {
  /* MultiplyByQuantizedMultiplierGreaterThanOne: a left shift then the doubling high multiply */
  return eq_srdhm((int32_t)((uint32_t)diff << p->in_left_shift), p->in_mult);
}

void eq_softmax(const eq_softmax_t* p, const int8_t* in, int8_t* out) {
  for (int32_t i = 0; i < p->outer; ++i) {
    const int8_t* x = in + (int64_t)i * p->depth;
    int8_t* y = out + (int64_t)i * p->depth;
    int32_t max_in_row = -128;
    for (int32_t c = 0; c < p->depth; ++c) max_in_row = EQ_MAX(max_in_row, x[c]);
    int32_t sum_of_exps = 0; /* 12 integer bits */
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)x[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t e = exp_on_negative_values_5(softmax_diff_rescaled(diff, p));
        sum_of_exps = wrap_add(sum_of_exps, eq_rdbpot(e, 12));
      }
    }
    /* GetReciprocal(sum_of_exps, 12 integer bits) */
    const int headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
    const int num_bits_over_unit = 12 - headroom_plus_one;
    const int32_t shifted_sum_minus_one =
        (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
    const int32_t shifted_scale = one_over_one_plus_x(shifted_sum_minus_one);
    for (int32_t c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)x[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t e = exp_on_negative_values_5(softmax_diff_rescaled(diff, p));
        const int32_t unsat = eq_rdbpot(eq_srdhm(shifted_scale, e), num_bits_over_unit + 31 - 8);
        y[c] = (int8_t)clamp_i32(unsat - 128, -128, 127);
      } else {
        y[c] = -128;
      }
    }
  }
}

/* ---- ADD / MUL -------------------------------------------------------------------------------------- */

void eq_add(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  int64_t o = 0;
  for (int32_t i0 = 0; i0 < p->dims[0]; ++i0)
    for (int32_t i1 = 0; i1 < p->dims[1]; ++i1)
      for (int32_t i2 = 0; i2 < p->dims[2]; ++i2)
        for (int32_t i3 = 0; i3 < p->dims[3]; ++i3, ++o) {
          const int64_t a = (int64_t)i0 * p->strides1[0] + i1 * p->strides1[1] + i2 * p->strides1[2] + i3 * p->strides1[3];
          const int64_t b = (int64_t)i0 * p->strides2[0] + i1 * p->strides2[1] + i2 * p->strides2[2] + i3 * p->strides2[3];
          const int32_t v1 = (p->in1_offset + in1[a]) * (1 << p->left_shift);
          const int32_t v2 = (p->in2_offset + in2[b]) * (1 << p->left_shift);
          const int32_t s1 = eq_mbqm(v1, p->in1_mult, p->in1_shift);
          const int32_t s2 = eq_mbqm(v2, p->in2_mult, p->in2_shift);
          const int32_t r = eq_mbqm(s1 + s2, p->out_mult, p->out_shift) + p->out_offset;
          out[o] = (int8_t)clamp_i32(r, p->act_min, p->act_max);
        }
}

void eq_mul(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  int64_t o = 0;
  for (int32_t i0 = 0; i0 < p->dims[0]; ++i0)
    for (int32_t i1 = 0; i1 < p->dims[1]; ++i1)
      for (int32_t i2 = 0; i2 < p->dims[2]; ++i2)
        for (int32_t i3 = 0; i3 < p->dims[3]; ++i3, ++o) {
          const int64_t a = (int64_t)i0 * p->strides1[0] + i1 * p->strides1[1] + i2 * p->strides1[2] + i3 * p->strides1[3];
          const int64_t b = (int64_t)i0 * p->strides2[0] + i1 * p->strides2[1] + i2 * p->strides2[2] + i3 * p->strides2[3];
          const int32_t v1 = p->in1_offset + in1[a];
          const int32_t v2 = p->in2_offset + in2[b];
          const int32_t r = p->out_offset + eq_mbqm(v1 * v2, p->out_mult, p->out_shift);
          out[o] = (int8_t)clamp_i32(r, p->act_min, p->act_max);
        }
}

/* ---- MEAN, CONCATENATION, PAD, tables ------------------------------------------------------------ */

void eq_mean(const eq_mean_t* p, const int8_t* in, int8_t* out) {
  const int32_t* d = p->dims;
  int32_t n[4], r[4];
  for (int a = 0; a < 4; ++a) {
    n[a] = p->reduce[a] ? 1 : d[a];
    r[a] = p->reduce[a] ? d[a] : 1;
  }
  int64_t o = 0;
  for (int32_t i0 = 0; i0 < n[0]; ++i0)
    for (int32_t i1 = 0; i1 < n[1]; ++i1)
      for (int32_t i2 = 0; i2 < n[2]; ++i2)
        for (int32_t i3 = 0; i3 < n[3]; ++i3, ++o) {
          int32_t sum = 0;
          for (int32_t j0 = 0; j0 < r[0]; ++j0)
            for (int32_t j1 = 0; j1 < r[1]; ++j1)
              for (int32_t j2 = 0; j2 < r[2]; ++j2)
                for (int32_t j3 = 0; j3 < r[3]; ++j3)
                  sum += in[(((int64_t)(i0 + j0) * d[1] + (i1 + j1)) * d[2] + (i2 + j2)) * d[3] + (i3 + j3)];
          int32_t v;
          if (p->mode == 1) {
            v = sum / p->count;
          } else {
            v = clamp_i32(eq_mbqm(sum - p->in_zp * p->count, p->mult, p->shift) + p->out_zp, -128, 127);
          }
          out[o] = (int8_t)v;
        }
}

void eq_concat(int32_t outer, int32_t n, const int8_t* const* ins, const int32_t* inner, int8_t* out) {
  for (int32_t o = 0; o < outer; ++o)
    for (int32_t k = 0; k < n; ++k) {
      const int8_t* src = ins[k] + (int64_t)o * inner[k];
      for (int32_t i = 0; i < inner[k]; ++i) *out++ = src[i];
    }
}

void eq_pad(const eq_pad_t* p, const int8_t* in, int8_t* out) {
  const int32_t* od = p->out_dims;
  const int32_t* id = p->in_dims;
  const int32_t* b = p->before;
  int64_t o = 0;
  for (int32_t i0 = 0; i0 < od[0]; ++i0)
    for (int32_t i1 = 0; i1 < od[1]; ++i1)
      for (int32_t i2 = 0; i2 < od[2]; ++i2)
        for (int32_t i3 = 0; i3 < od[3]; ++i3, ++o) {
          const int32_t j0 = i0 - b[0], j1 = i1 - b[1], j2 = i2 - b[2], j3 = i3 - b[3];
          const int inside = j0 >= 0 && j0 < id[0] && j1 >= 0 && j1 < id[1] && j2 >= 0 && j2 < id[2] && j3 >= 0 &&
                             j3 < id[3];
          out[o] = inside ? in[(((int64_t)j0 * id[1] + j1) * id[2] + j2) * id[3] + j3] : (int8_t)p->value;
        }
}

void eq_lut(const int8_t* table, const int8_t* in, int8_t* out, int32_t size) {
  for (int32_t i = 0; i < size; ++i) out[i] = table[(uint8_t)in[i]];
}

void eq_copy(const int8_t* in, int8_t* out, int32_t size) {
  if (in == out) return;
  for (int32_t i = 0; i < size; ++i) out[i] = in[i];
}

/* ---- float I/O ----------------------------------------------------------------------------------- */

/* TfLiteRound on a float: round half away from zero, without libm. The difference from the truncation
 * is exact for |x| < 2^24, and from 2^23 on every float is an integer already. */
static int64_t round_half_away_f(float x) {
  if (x >= 9.2e18f) return INT64_MAX;
  if (x <= -9.2e18f) return INT64_MIN;
  int64_t t = (int64_t)x;
  float d = x - (float)t;
  if (d >= 0.5f) return t + 1;
  if (d <= -0.5f) return t - 1;
  return t;
}

/* reference_ops::AffineQuantize: the value divided by the scale in float (static_cast<float>(scale)),
 * rounded, offset by the zero point, then clamped. */
void eq_quantize_f32(const float* in, int8_t* out, int32_t size, float scale, int32_t zero_point) {
  for (int32_t i = 0; i < size; ++i) {
    int64_t q = round_half_away_f(in[i] / scale);
    q = q > INT32_MAX ? INT32_MAX : (q < INT32_MIN ? INT32_MIN : q);
    int64_t v = q + zero_point;
    out[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
  }
}

/* reference_ops::Dequantize: the scale is a double there, and so is the product before the cast. */
void eq_dequantize_f32(const int8_t* in, float* out, int32_t size, double scale, int32_t zero_point) {
  for (int32_t i = 0; i < size; ++i) out[i] = (float)(scale * (double)((int32_t)in[i] - zero_point));
}
