/* CONV_2D for Cortex-M55 with Helium (MVE). See eq_kernels.h (eq_conv2d_mve).
 *
 * The plain OHWI filter and the plain parameters, with the arithmetic of eq_conv2d (TFLM's): the input
 * offset is folded out of the dot product, sum((x + off) * w) = sum(x * w) + off * wsum, exact in int32.
 * Three output pixels at a time: their im2col columns are written to the scratch (k taps, then zeros up to
 * a whole block of 16), with the input zero point for padded taps, which then add nothing once off * wsum
 * is in; a 1x1 filter with no padding and whole blocks reads its columns from the input instead (fewer than
 * 16 taps: one predicated load per column). The dot products take VMLADAVA (16 int8 products summed into an
 * int32 per instruction), 2 output channels x 3 pixels per pass (VMLADAVA accumulates in even registers only:
 * 6 accumulators), in naked assembly functions (GCC's allocation spilled the column pointers): a column of
 * at most 8 blocks has each pair's blocks unrolled, reading the columns at fixed offsets (pairs_asm1 .. 8),
 * a longer one loops over its blocks (pairs_asm_long), a last pair with a tail predicates its filter loads
 * (pair_tail_asm). im2col gets the layer's geometry worked out once per call and the window's corner tracked from
 * pixel to pixel. The accumulators go to the scratch, then 4 channels of the 3 pixels are requantized per
 * pass (requant4), with each channel's constants (bias + in_offset * wsum, the shifts) worked out once per
 * call (requant_params), no VSHL when no channel shifts left and no mask on the rounding fix-up when every
 * channel shifts right.
 *
 * Without MVE (the host build) it is the plain kernel, so the host proofs run the same project.
 */
#include "eq_kernels.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include <arm_mve.h>

/* requantization modes, decided once per call (requant_params): some channel shifts left (VSHL, the right
 * shift's -1 masked to the channels that shift right); none shifts left; every channel shifts right (no mask) */
#define EQ_RQ_LEFT 0
#define EQ_RQ_MASKED 1
#define EQ_RQ_RIGHT 2
#define EQ_MVE_PIX 3 /* output pixels per pass: 3 x 2 channels = 6 accumulators, in the even registers VMLADAVA takes */

/* n bytes from src to dst: whole vectors, then one predicated tail (never reading past src + n) */
static inline __attribute__((always_inline)) void copy_run(int8_t* dst, const int8_t* src, int32_t n) {
  for (; n >= 16; n -= 16, dst += 16, src += 16) vstrbq_s8(dst, vldrbq_s8(src));
  if (n > 0) {
    const mve_pred16_t m = vctp8q((uint32_t)n);
    vstrbq_p_s8(dst, vldrbq_z_s8(src, m), m);
  }
}

/* n bytes of the pad value to dst */
static inline __attribute__((always_inline)) void fill_run(int8_t* dst, int32_t n, int8_t pad) {
  const int8x16_t padv = vdupq_n_s8(pad);
  for (; n >= 16; n -= 16, dst += 16) vstrbq_s8(dst, padv);
  if (n > 0) vstrbq_p_s8(dst, padv, vctp8q((uint32_t)n));
}

/* n bytes of tap data (src, or the pad value when src is 0) to dst */
static inline __attribute__((always_inline)) void put_run(int8_t* dst, const int8_t* src, int32_t n, int8_t pad) {
  if (src) {
    copy_run(dst, src, n);
  } else {
    fill_run(dst, n, pad);
  }
}

/* rows runs of n bytes, src_stride apart in the input, one after another to dst */
static void copy_rows(int8_t* dst, const int8_t* src, int32_t n, int32_t rows, int32_t src_stride) {
  if (n <= 16) { /* a row in one predicated copy */
    const mve_pred16_t m = vctp8q((uint32_t)n);
    for (int32_t r = 0; r < rows; ++r, src += src_stride, dst += n) vstrbq_p_s8(dst, vldrbq_z_s8(src, m), m);
    return;
  }
  for (int32_t r = 0; r < rows; ++r, src += src_stride, dst += n) copy_run(dst, src, n);
}

/* The layer's geometry, worked out once per call for im2col. */
typedef struct {
  int32_t in_h, in_w, in_c, k_h, k_w, dil_h, dil_w;
  int32_t run;    /* k_w * in_c: one filter row's taps */
  int32_t k;      /* k_h * run */
  int32_t row;    /* in_w * in_c: one input row's bytes */
  int32_t y_span; /* dil_h * (k_h - 1) */
  int32_t x_span; /* dil_w * (k_w - 1) */
  int8_t pad;     /* the input zero point: a padded tap */
} eq_geo_t;

/* The im2col column of the output pixel whose window starts at input row y0, column x0 of the image in_b,
 * to col: its k taps followed by zeros up to a whole block of 16. */
static void __attribute__((noinline)) im2col(const eq_geo_t* g, const int8_t* in_b, int32_t y0, int32_t x0,
                                             int8_t* col) {
  const int32_t in_w = g->in_w, in_c = g->in_c, k = g->k, run = g->run, k_h = g->k_h;
  const int row_inside = x0 >= 0 && x0 + g->x_span < in_w && g->dil_w == 1;
  if (k & 15) vstrbq_s8(col + (k & ~15), vdupq_n_s8(0)); /* the last block's zero tail; its taps go over it */
  if (row_inside && y0 >= 0 && y0 + g->y_span < g->in_h) { /* no padding: k_h runs */
    copy_rows(col, in_b + y0 * g->row + x0 * in_c, run, k_h, g->dil_h * g->row);
    return;
  }
  const int32_t in_h = g->in_h, k_w = g->k_w, dil_h = g->dil_h, dil_w = g->dil_w;
  const int8_t pad = g->pad;
  for (int32_t ky = 0; ky < k_h; ++ky, col += run) {
    const int32_t iy = y0 + dil_h * ky;
    if (iy < 0 || iy >= in_h) {
      put_run(col, 0, run, pad);
    } else if (row_inside) { /* the row's taps are one contiguous run of the input */
      put_run(col, in_b + (iy * in_w + x0) * in_c, run, pad);
    } else if (dil_w == 1) { /* the pad value over the row, then its taps inside the image as one run */
      const int32_t xs = x0 < 0 ? 0 : x0, xe = x0 + k_w > in_w ? in_w : x0 + k_w;
      fill_run(col, run, pad);
      if (xe > xs) copy_run(col + (xs - x0) * in_c, in_b + (iy * in_w + xs) * in_c, (xe - xs) * in_c);
    } else {
      for (int32_t kx = 0; kx < k_w; ++kx) {
        const int32_t ix = x0 + dil_w * kx;
        const int8_t* src = ix < 0 || ix >= in_w ? 0 : in_b + (iy * in_w + ix) * in_c;
        put_run(col + kx * in_c, src, in_c, pad);
      }
    }
  }
}

/* Requantizes the n (<= 3) pixels' accumulators of channels [c, c + 4) (acc at the channel pair c / 2: pixel j's
 * at acc[2 * j + {0, 1, 6, 7}], one gather), the lanes m keeps
 * when not full: MultiplyByQuantizedMultiplier per channel (VQRDMULH is gemmlowp's rounding doubling high
 * multiply; the right shift rounds half away from zero: -1 for a negative value before VRSHL's
 * round-half-up), the output offset added, clamped. The channel's bias and in_offset * wsum are added
 * first. Everything arrives in registers: an int8 store may alias any memory, so fields read through a
 * pointer would be read again after every store. */
static inline __attribute__((always_inline)) void requant4(const int32_t* prm, const int32_t* mult_p,
                                                           int32_t out_offset, int32_t out_c, int32x4_t lo,
                                                           int32x4_t hi, const int32_t* acc, int32_t n, int8_t* out,
                                                           int full, mve_pred16_t m, const int mode) {
  const int32x4_t base = vldrwq_s32(prm), neg_right = vldrwq_s32(prm + 8);
  const int32x4_t mult = full ? vldrwq_s32(mult_p) : vldrwq_z_s32(mult_p, m);
  static const uint32_t pair_offs[4] = {0, 1, 6, 7}; /* channels c, c + 1 and the next pair's two */
  const uint32x4_t offs = vldrwq_u32(pair_offs);
#pragma GCC unroll 3
  for (int32_t j = 0; j < n; ++j, acc += 2, out += out_c) {
    int32x4_t v = full ? vldrwq_gather_shifted_offset_s32(acc, offs) : vldrwq_gather_shifted_offset_z_s32(acc, offs, m);
    v = vaddq_s32(v, base);
    if (mode == EQ_RQ_LEFT) v = vshlq_s32(v, vldrwq_s32(prm + 4));
    v = vqrdmulhq_s32(v, mult);
    if (mode == EQ_RQ_RIGHT) { /* every channel shifts right: -1 for every negative value */
      v = vqaddq_s32(v, vshrq_n_s32(v, 31));
    } else { /* only where the channel shifts right */
      v = vqaddq_s32(v, vshrq_n_s32(vandq_s32(v, neg_right), 31));
    }
    v = vrshlq_s32(v, neg_right);
    v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, out_offset), lo), hi);
    if (full) {
      vstrbq_s32(out, v);
    } else {
      vstrbq_p_s32(out, v, m);
    }
  }
}

/* Every channel pair but the last, when a column is NB (<= 8) whole blocks, in assembly: GCC's allocation of
 * the unrolled C kept the column pointers on the stack. Registers: the 6 sums in r0, r2, r4, r6, r8, r10 (the
 * even registers VMLADAVA takes; in acc's order, so one STMIA stores a pair's), the columns c0, c1, c2 in r3,
 * r1, r5 read at fixed offsets (16 * block, within VLDRB's 7-bit offset), the pair's two filter rows in r7, r9,
 * 2 * k in r11, acc in r12, acc's end in lr. The first block's products are not added to zeros. Past a filter
 * row's end come the next row's taps, times the columns' zero tail. Arguments: c0, c1, c2, w in r0-r3; k,
 * npairs, acc on the stack (at sp + 36 once r4-r11 and lr are pushed). */
#define EQ_MVE_STR2(x) #x
#define EQ_MVE_STR(x) EQ_MVE_STR2(x)
#define EQ_MVE_BLOCK(op, off)                 \
  "vldrb.u8 q0, [r3, #" off "]\n\t"          \
  "vldrb.u8 q1, [r1, #" off "]\n\t"          \
  "vldrb.u8 q2, [r5, #" off "]\n\t"          \
  "vldrb.u8 q3, [r7, #" off "]\n\t"          \
  op " r0, q0, q3\n\t"                        \
  op " r4, q1, q3\n\t"                        \
  op " r8, q2, q3\n\t"                        \
  "vldrb.u8 q3, [r9, #" off "]\n\t"          \
  op " r2, q0, q3\n\t"                        \
  op " r6, q1, q3\n\t"                        \
  op " r10, q2, q3\n\t"
#define EQ_MVE_PAIRS_ASM(NB)                                                                                   \
  static void __attribute__((naked, noinline)) pairs_asm##NB(const int8_t* c0, const int8_t* c1,             \
                                                             const int8_t* c2, const int8_t* w, int32_t k,     \
                                                             int32_t npairs, int32_t* acc) {                   \
    __asm volatile(                                                                                            \
        "push {r4-r11, lr}\n\t"                                                                                \
        "ldr lr, [sp, #40]\n\t"                                                                                \
        "cmp lr, #0\n\t"                                                                                       \
        "beq 9f\n\t"                                                                                           \
        "ldr r11, [sp, #36]\n\t"                                                                               \
        "ldr r12, [sp, #44]\n\t"                                                                               \
        "add lr, lr, lr, lsl #1\n\t"                                                                           \
        "add lr, r12, lr, lsl #3\n\t"                                                                          \
        "mov r7, r3\n\t"                                                                                       \
        "mov r3, r0\n\t"                                                                                       \
        "mov r5, r2\n\t"                                                                                       \
        "add r9, r7, r11\n\t"                                                                                  \
        "lsl r11, r11, #1\n"                                                                                   \
        "1:\n\t" EQ_MVE_BLOCK("vmladav.s8", "0") ".set .Leq_mve_off, 16\n\t"                                  \
        ".rept " EQ_MVE_STR(NB) " - 1\n\t" EQ_MVE_BLOCK("vmladava.s8", ".Leq_mve_off")                         \
        ".set .Leq_mve_off, .Leq_mve_off + 16\n\t"                                                             \
        ".endr\n\t"                                                                                            \
        "stmia r12!, {r0, r2, r4, r6, r8, r10}\n\t"                                                            \
        "add r7, r7, r11\n\t"                                                                                  \
        "add r9, r9, r11\n\t"                                                                                  \
        "cmp r12, lr\n\t"                                                                                      \
        "bne 1b\n"                                                                                             \
        "9:\n\t"                                                                                               \
        "pop {r4-r11, pc}\n");                                                                                 \
  }
EQ_MVE_PAIRS_ASM(1)
EQ_MVE_PAIRS_ASM(2)
EQ_MVE_PAIRS_ASM(3)
EQ_MVE_PAIRS_ASM(4)
EQ_MVE_PAIRS_ASM(5)
EQ_MVE_PAIRS_ASM(6)
EQ_MVE_PAIRS_ASM(7)
EQ_MVE_PAIRS_ASM(8)
#undef EQ_MVE_PAIRS_ASM

/* The same for a column of more than 8 blocks: its blocks in a low-overhead loop (DLS/LE in lr), every
 * pointer post-incremented, the columns stepped back by 16 * nb after each pair, the filter rows on by
 * 2 * k - 16 * nb (in r11). On the stack: nb - 1, 16 * nb, acc's end (r4-r11 and lr pushed, then 12 bytes:
 * the arguments k, npairs, acc at sp + 48). */
#define EQ_MVE_BLOCK_PI(op)             \
  "vldrb.u8 q0, [r3], #16\n\t"          \
  "vldrb.u8 q1, [r1], #16\n\t"          \
  "vldrb.u8 q2, [r5], #16\n\t"          \
  "vldrb.u8 q3, [r7], #16\n\t"          \
  op " r0, q0, q3\n\t"                  \
  op " r4, q1, q3\n\t"                  \
  op " r8, q2, q3\n\t"                  \
  "vldrb.u8 q3, [r9], #16\n\t"          \
  op " r2, q0, q3\n\t"                  \
  op " r6, q1, q3\n\t"                  \
  op " r10, q2, q3\n\t"
static void __attribute__((naked, noinline)) pairs_asm_long(const int8_t* c0, const int8_t* c1, const int8_t* c2,
                                                            const int8_t* w, int32_t k, int32_t npairs,
                                                            int32_t* acc) {
  __asm volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, #12\n\t"
      "ldr r11, [sp, #48]\n\t"
      "ldr r12, [sp, #56]\n\t"
      "ldr lr, [sp, #52]\n\t"
      "cmp lr, #0\n\t"
      "beq 9f\n\t"
      "add lr, lr, lr, lsl #1\n\t"
      "add lr, r12, lr, lsl #3\n\t"
      "str lr, [sp, #8]\n\t"
      "add r4, r11, #15\n\t"
      "lsr r4, r4, #4\n\t"
      "sub r6, r4, #1\n\t"
      "str r6, [sp, #0]\n\t"
      "lsl r4, r4, #4\n\t"
      "str r4, [sp, #4]\n\t"
      "mov r7, r3\n\t"
      "add r9, r7, r11\n\t"
      "rsb r11, r4, r11, lsl #1\n\t"
      "mov r3, r0\n\t"
      "mov r5, r2\n"
      "1:\n\t" EQ_MVE_BLOCK_PI("vmladav.s8")
      "ldr lr, [sp, #0]\n\t"
      "dls lr, lr\n"
      "2:\n\t" EQ_MVE_BLOCK_PI("vmladava.s8")
      "le lr, 2b\n\t"
      "stmia r12!, {r0, r2, r4, r6, r8, r10}\n\t"
      "ldr lr, [sp, #4]\n\t"
      "sub r3, r3, lr\n\t"
      "sub r1, r1, lr\n\t"
      "sub r5, r5, lr\n\t"
      "add r7, r7, r11\n\t"
      "add r9, r9, r11\n\t"
      "ldr lr, [sp, #8]\n\t"
      "cmp r12, lr\n\t"
      "bne 1b\n"
      "9:\n\t"
      "add sp, #12\n\t"
      "pop {r4-r11, pc}\n");
}

/* The last channel pair when the assembly above does not take it (k not a multiple of 16, or out_c odd: then
 * w1 is w0): k >> 4 whole blocks, then a block of k & 15 taps whose filter loads are predicated (VCTP, never
 * reading past the filter; the columns' zero tail makes the rest add nothing). Arguments: c0, c1, c2, w0 in
 * r0-r3; w1, k, acc on the stack (at sp + 36 once r4-r11 and lr are pushed). */
static void __attribute__((naked, noinline)) pair_tail_asm(const int8_t* c0, const int8_t* c1, const int8_t* c2,
                                                           const int8_t* w0, const int8_t* w1, int32_t k,
                                                           int32_t* acc) {
  __asm volatile(
      "push {r4-r11, lr}\n\t"
      "ldr r9, [sp, #36]\n\t"
      "ldr r11, [sp, #40]\n\t"
      "ldr r12, [sp, #44]\n\t"
      "mov r7, r3\n\t"
      "mov r3, r0\n\t"
      "mov r5, r2\n\t"
      "movs r0, #0\n\t"
      "movs r2, #0\n\t"
      "movs r4, #0\n\t"
      "movs r6, #0\n\t"
      "mov r8, #0\n\t"
      "mov r10, #0\n\t"
      "lsr lr, r11, #4\n\t"
      "wls lr, lr, 3f\n"
      "2:\n\t" EQ_MVE_BLOCK_PI("vmladava.s8")
      "le lr, 2b\n"
      "3:\n\t"
      "ands r11, r11, #15\n\t"
      "beq 4f\n\t"
      "vldrb.u8 q0, [r3]\n\t"
      "vldrb.u8 q1, [r1]\n\t"
      "vldrb.u8 q2, [r5]\n\t"
      "vctp.8 r11\n\t"
      "vpst\n\t"
      "vldrbt.u8 q3, [r7]\n\t"
      "vmladava.s8 r0, q0, q3\n\t"
      "vmladava.s8 r4, q1, q3\n\t"
      "vmladava.s8 r8, q2, q3\n\t"
      "vpst\n\t"
      "vldrbt.u8 q3, [r9]\n\t"
      "vmladava.s8 r2, q0, q3\n\t"
      "vmladava.s8 r6, q1, q3\n\t"
      "vmladava.s8 r10, q2, q3\n"
      "4:\n\t"
      "stmia r12, {r0, r2, r4, r6, r8, r10}\n\t"
      "pop {r4-r11, pc}\n");
}
#undef EQ_MVE_BLOCK_PI
#undef EQ_MVE_BLOCK

/* The channel pairs the assembly takes: all when they are whole blocks of whole filter rows (k a multiple of
 * 16, out_c even), else all but the last, whose tail is predicated (never reading past the filter). */
static inline __attribute__((always_inline)) int32_t asm_pairs(int32_t k, int32_t out_c) {
  return (k & 15) == 0 && (out_c & 1) == 0 ? out_c >> 1 : (out_c - 1) >> 1;
}

typedef void (*eq_pairs_fn)(const int8_t*, const int8_t*, const int8_t*, const int8_t*, int32_t, int32_t,
                            int32_t*);

/* The assembly that takes a column of k taps' channel pairs: unrolled for at most 8 blocks, else a loop. */
static eq_pairs_fn pairs_for(int32_t k) {
  static const eq_pairs_fn unrolled[8] = {pairs_asm1, pairs_asm2, pairs_asm3, pairs_asm4,
                                          pairs_asm5, pairs_asm6, pairs_asm7, pairs_asm8};
  const int32_t nb = (k + 15) >> 4;
  return nb <= 8 ? unrolled[nb - 1] : pairs_asm_long;
}

static inline __attribute__((always_inline)) void requant_rows(const eq_conv_t* p, const int32_t* prm,
                                                               const int32_t* acc, int32_t n, int8_t* o,
                                                               const int mode) {
  const int32_t* mult = p->mult;
  const int32_t out_c = p->out_c, out_offset = p->out_offset;
  const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
  int32_t c = 0;
  if (n == EQ_MVE_PIX) { /* a whole group: the pixel loop unrolled */
    for (; c + 4 <= out_c; c += 4, prm += 12) {
      requant4(prm, mult + c, out_offset, out_c, lo, hi, acc + 3 * c, EQ_MVE_PIX, o + c, 1, 0, mode);
    }
  } else {
    for (; c + 4 <= out_c; c += 4, prm += 12) {
      requant4(prm, mult + c, out_offset, out_c, lo, hi, acc + 3 * c, n, o + c, 1, 0, mode);
    }
  }
  if (c < out_c) {
    requant4(prm, mult + c, out_offset, out_c, lo, hi, acc + 3 * c, n, o + c, 0, vctp32q((uint32_t)(out_c - c)),
             mode);
  }
}

/* The n pixels' requantization in the call's mode (EQ_RQ_*): a layer with no left shift (the usual) skips its VSHL,
 * one whose channels all shift right its mask. */
static void __attribute__((noinline)) requant_group(const eq_conv_t* p, const int32_t* prm, const int32_t* acc,
                                                    int32_t n, int8_t* o, int mode) {
  if (mode == EQ_RQ_RIGHT) {
    requant_rows(p, prm, acc, n, o, EQ_RQ_RIGHT);
  } else if (mode == EQ_RQ_LEFT) {
    requant_rows(p, prm, acc, n, o, EQ_RQ_LEFT);
  } else {
    requant_rows(p, prm, acc, n, o, EQ_RQ_MASKED);
  }
}

/* Each 4 channels' requantization constants, once per call: bias + in_offset * wsum, the left shift and the
 * right shift (negative), 12 words (lanes past out_c zero). Returns the requantization mode (EQ_RQ_*). */
static int __attribute__((noinline)) requant_params(const eq_conv_t* p, const int32_t* bias, int32_t* prm) {
  int has_left = 0, all_right = 1;
  for (int32_t c = 0; c < p->out_c; ++c) {
    has_left |= p->shift[c] > 0;
    all_right &= p->shift[c] < 0;
  }
  const int32x4_t zero = vdupq_n_s32(0);
  const int32_t out_c = p->out_c, in_offset = p->in_offset;
  for (int32_t c = 0; c < out_c; c += 4, prm += 12) {
    const mve_pred16_t m = vctp32q((uint32_t)(out_c - c));
    const int32x4_t shift = vldrwq_z_s32(p->shift + c, m);
    int32x4_t base = vmulq_n_s32(vldrwq_z_s32(p->wsum + c, m), in_offset);
    if (bias) base = vaddq_s32(base, vldrwq_z_s32(bias + c, m));
    vstrwq_s32(prm, base);
    vstrwq_s32(prm + 4, vmaxq_s32(shift, zero));
    vstrwq_s32(prm + 8, vminq_s32(shift, zero));
  }
  return has_left ? EQ_RQ_LEFT : all_right ? EQ_RQ_RIGHT : EQ_RQ_MASKED;
}

void eq_conv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int8_t* scratch) {
  const int32_t out_c = p->out_c, out_h = p->out_h, out_w = p->out_w;
  const int32_t stride_h = p->stride_h, stride_w = p->stride_w, pad_h = p->pad_h, pad_w = p->pad_w;
  const int32_t k = p->k_h * p->k_w * p->in_c, k16 = (k + 15) & ~15;
  const int32_t pixels = p->batches * out_h * out_w;
  const eq_geo_t g = {p->in_h,
                      p->in_w,
                      p->in_c,
                      p->k_h,
                      p->k_w,
                      p->dil_h,
                      p->dil_w,
                      p->k_w * p->in_c,
                      k,
                      p->in_w * p->in_c,
                      p->dil_h * (p->k_h - 1),
                      p->dil_w * (p->k_w - 1),
                      (int8_t)(-p->in_offset)};
  const int32_t image = p->in_h * g.row, in_c = p->in_c, row = g.row;
  /* 1x1, no padding, whole blocks of 16 taps: the columns are the input's pixels */
  const int is_1x1 = p->k_h == 1 && p->k_w == 1 && pad_h == 0 && pad_w == 0;
  const int is_direct = is_1x1 && (k & 15) == 0;
  /* 1x1, no padding, fewer than 16 taps: the column is one predicated load of the input pixel (zeros past k) */
  const int is_short_1x1 = is_1x1 && k < 16;
  const mve_pred16_t k_mask = vctp8q((uint32_t)k);
  /* the requantization constants, [out_c / 2 pairs][EQ_MVE_PIX][2] accumulators, then the columns */
  int32_t* prm = (int32_t*)(void*)scratch;
  int32_t* acc = prm + 3 * ((out_c + 3) & ~3);
  int8_t* colbuf = (int8_t*)(acc + EQ_MVE_PIX * ((out_c + 1) & ~1));
  /* the next pixel: its row and column in the output, its window's top left corner in the input */
  int32_t oy = 0, ox = 0, y0 = -pad_h, x0 = -pad_w;
  const int8_t* in_b = in;
  const int rq_mode = requant_params(p, bias, prm);
  /* the channel pairs in assembly, and the last pair apart when it has a tail or out_c is odd (asm_pairs) */
  const eq_pairs_fn pairs = pairs_for(k);
  const int32_t full_pairs = asm_pairs(k, out_c);
  const int8_t* const tail_w0 = 2 * full_pairs < out_c ? w + 2 * k * full_pairs : 0;
  const int8_t* const tail_w1 = 2 * full_pairs + 1 < out_c ? tail_w0 + k : tail_w0;
  int32_t* const tail_acc = acc + 6 * full_pairs;
  for (int32_t q = 0; q < pixels; q += EQ_MVE_PIX) {
    const int32_t n = pixels - q < EQ_MVE_PIX ? pixels - q : EQ_MVE_PIX;
    const int8_t* cols[EQ_MVE_PIX];
    for (int32_t j = 0; j < n; ++j) {
      if (is_direct) {
        cols[j] = in_b + y0 * row + x0 * in_c;
      } else if (is_short_1x1) {
        cols[j] = colbuf + j * 16;
        vstrbq_s8(colbuf + j * 16, vldrbq_z_s8(in_b + y0 * row + x0 * in_c, k_mask));
      } else {
        cols[j] = colbuf + j * k16;
        im2col(&g, in_b, y0, x0, colbuf + j * k16);
      }
      if (++ox < out_w) {
        x0 += stride_w;
      } else {
        ox = 0;
        x0 = -pad_w;
        y0 += stride_h;
        if (++oy == out_h) {
          oy = 0;
          y0 = -pad_h;
          in_b += image;
        }
      }
    }
    for (int32_t j = n; j < EQ_MVE_PIX; ++j) cols[j] = cols[0]; /* a last group of fewer pixels repeats its first */
    /* acc: [channel pair][pixel][2], so that each pair's 6 sums are stored together */
    pairs(cols[0], cols[1], cols[2], w, k, full_pairs, acc);
    if (tail_w0) pair_tail_asm(cols[0], cols[1], cols[2], tail_w0, tail_w1, k, tail_acc);
    requant_group(p, prm, acc, n, out + (int64_t)q * out_c, rq_mode);
  }
}

#else

void eq_conv2d_mve(const eq_conv_t* p, const int8_t* in, const int8_t* w, const int32_t* bias, int8_t* out,
                   int8_t* scratch) {
  (void)scratch;
  eq_conv2d(p, in, w, bias, out);
}

#endif
