/* edgeq generated-C runtime: MAX_POOL_2D for cores with the DSP extension (Cortex-M4, M7, M33).
 *
 * The same result as eq_max_pool (eq_kernels.c), 4 channels per 32-bit word: SSUB8 sets each byte's GE
 * flag where a >= b (signed), SEL then takes those bytes from a and the others from b, so the pair is an
 * exact per-byte signed max; the window's words start at 0x80808080 (-128 in each byte, the reference's
 * start) and the activation range is applied the same way (max with act_min, min with act_max). Window
 * bounds are computed once per output pixel, as in the plain kernel; channels beyond the last whole word
 * take the plain scalar path. Without __ARM_FEATURE_DSP (host build) the byte max is emulated in C.
 */
#include <string.h>

#include "eq_kernels.h"

#define POOL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define POOL_MIN(a, b) ((a) < (b) ? (a) : (b))

/* Per signed byte: max(a, b) (a where a >= b, else b); pool_min8: min(a, b) (b where a >= b, else a). */
static inline uint32_t pool_max8(uint32_t a, uint32_t b) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
  uint32_t t, r;
  /* one asm block: SEL reads the GE flags SSUB8 just set, nothing can come between them */
  __asm__("ssub8 %0, %2, %3\n\tsel %1, %2, %3" : "=&r"(t), "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
#else
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) {
    const int8_t x = (int8_t)(uint8_t)(a >> i), y = (int8_t)(uint8_t)(b >> i);
    r |= (uint32_t)(uint8_t)(x >= y ? x : y) << i;
  }
  return r;
#endif
}

static inline uint32_t pool_min8(uint32_t a, uint32_t b) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
  uint32_t t, r;
  __asm__("ssub8 %0, %2, %3\n\tsel %1, %3, %2" : "=&r"(t), "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
#else
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) {
    const int8_t x = (int8_t)(uint8_t)(a >> i), y = (int8_t)(uint8_t)(b >> i);
    r |= (uint32_t)(uint8_t)(x >= y ? y : x) << i;
  }
  return r;
#endif
}

static inline uint32_t pool_read32(const int8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

void eq_max_pool_dsp(const eq_pool_t* p, const int8_t* in, int8_t* out) {
  const int32_t ch = p->c, c4 = ch & ~3;
  const uint32_t lo4 = 0x01010101u * (uint8_t)(int8_t)p->act_min, hi4 = 0x01010101u * (uint8_t)(int8_t)p->act_max;
  for (int32_t b = 0; b < p->batches; ++b) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
      const int32_t y0 = oy * p->stride_h - p->pad_h;
      const int32_t ky0 = POOL_MAX(0, -y0), ky1 = POOL_MIN(p->k_h, p->in_h - y0);
      for (int32_t ox = 0; ox < p->out_w; ++ox) {
        const int32_t x0 = ox * p->stride_w - p->pad_w;
        const int32_t kx0 = POOL_MAX(0, -x0), kx1 = POOL_MIN(p->k_w, p->in_w - x0);
        const int64_t win = (((int64_t)b * p->in_h + y0) * p->in_w + x0) * ch; /* may be < 0: index only */
        int8_t* o = out + (((int64_t)b * p->out_h + oy) * p->out_w + ox) * ch;
        for (int32_t c = 0; c < c4; c += 4) {
          uint32_t m = 0x80808080u;
          for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int8_t* r = in + win + ((int64_t)ky * p->in_w + kx0) * ch + c;
            for (int32_t kx = kx0; kx < kx1; ++kx, r += ch) m = pool_max8(pool_read32(r), m);
          }
          m = pool_max8(m, lo4);
          m = pool_min8(m, hi4);
          memcpy(o + c, &m, 4);
        }
        for (int32_t c = c4; c < ch; ++c) {
          int32_t m = -128;
          for (int32_t ky = ky0; ky < ky1; ++ky)
            for (int32_t kx = kx0; kx < kx1; ++kx) {
              const int32_t v = in[win + ((int64_t)ky * p->in_w + kx) * ch + c];
              if (v > m) m = v;
            }
          o[c] = (int8_t)(m < p->act_min ? p->act_min : (m > p->act_max ? p->act_max : m));
        }
      }
    }
  }
}
