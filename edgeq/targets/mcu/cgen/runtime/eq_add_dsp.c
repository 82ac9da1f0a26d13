/* edgeq generated-C runtime: ADD for cores with the DSP extension (Cortex-M4, M7, M33).
 *
 * The same integer arithmetic as eq_add (eq_kernels.c, TFLM's reference ADD): each input plus its offset,
 * shifted left, rescaled by its multiplier; the sum rescaled to the output, plus the output offset,
 * clamped. When neither input broadcasts (both walk the output's elements in order), one flat loop runs
 * with every parameter in a local and the three requantizations in eq_dsp.h's eq_dsp_mbqm (one SMLAL and a
 * shift for the doubling high multiply, equal to eq_mbqm for every multiplier the generator emits);
 * otherwise the plain kernel runs. Bit-exact with eq_add either way. */
#include "eq_dsp.h"

/* Whether strides walk dims in row-major order (an axis of size 1 may have any stride). */
static int contiguous(const int32_t dims[4], const int32_t strides[4]) {
  int32_t expect = 1;
  for (int a = 3; a >= 0; --a) {
    if (dims[a] > 1 && strides[a] != expect) return 0;
    expect *= dims[a];
  }
  return 1;
}

void eq_add_dsp(const eq_binary_t* p, const int8_t* in1, const int8_t* in2, int8_t* out) {
  if (!contiguous(p->dims, p->strides1) || !contiguous(p->dims, p->strides2)) {
    eq_add(p, in1, in2, out);
    return;
  }
  const int64_t n = (int64_t)p->dims[0] * p->dims[1] * p->dims[2] * p->dims[3];
  const int32_t off1 = p->in1_offset, off2 = p->in2_offset, out_offset = p->out_offset;
  const int32_t act_min = p->act_min, act_max = p->act_max, ls = p->left_shift;
  const int32_t m1 = p->in1_mult, s1 = p->in1_shift, m2 = p->in2_mult, s2 = p->in2_shift;
  const int32_t mo = p->out_mult, so = p->out_shift;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v1 = (int32_t)((uint32_t)(off1 + in1[i]) << ls);
    const int32_t v2 = (int32_t)((uint32_t)(off2 + in2[i]) << ls);
    const int32_t sum = eq_dsp_mbqm(v1, m1, s1) + eq_dsp_mbqm(v2, m2, s2);
    const int32_t r = eq_dsp_mbqm(sum, mo, so) + out_offset;
    out[i] = (int8_t)(r < act_min ? act_min : (r > act_max ? act_max : r));
  }
}
