/* edgeq generated-C runtime: the data moves of streaming models (STRIDED_SLICE, SPLIT_V, variable
 * initialisation). No arithmetic on values: exact by construction. Bounds are checked in Python before
 * the parameters are written. */
#include "eq_kernels.h"

void eq_strided_slice(const eq_slice_t* p, const int8_t* in, int8_t* out) {
  for (int32_t a = 0; a < p->count[0]; ++a) {
    const int8_t* pa = in + (p->start[0] + a * p->step[0]) * p->in_stride[0];
    for (int32_t b = 0; b < p->count[1]; ++b) {
      const int8_t* pb = pa + (p->start[1] + b * p->step[1]) * p->in_stride[1];
      for (int32_t c = 0; c < p->count[2]; ++c) {
        const int8_t* pc = pb + (p->start[2] + c * p->step[2]) * p->in_stride[2];
        const int8_t* pd = pc + p->start[3] * p->in_stride[3];
        const int32_t step = p->step[3] * p->in_stride[3];
        for (int32_t d = 0; d < p->count[3]; ++d) *out++ = pd[d * step];
      }
    }
  }
}

void eq_split(int32_t outer, int32_t n, const int8_t* in, const int32_t* inner, int8_t* const* outs) {
  for (int32_t o = 0; o < outer; ++o)
    for (int32_t k = 0; k < n; ++k) {
      int8_t* dst = outs[k] + (int64_t)o * inner[k];
      for (int32_t i = 0; i < inner[k]; ++i) dst[i] = *in++;
    }
}

void eq_fill(int8_t* out, int8_t value, int32_t size) {
  for (int32_t i = 0; i < size; ++i) out[i] = value;
}
