/* edgeq QEMU driver: reads inputs.bin and writes outputs.bin through semihosting, and prints per sample
 * the SysTick ticks of model_invoke. Under `qemu-system-arm -icount shift=0` one instruction is one ns of
 * virtual time, so ticks are instruction counts up to a constant; a fixed loop of 2,000,000 instructions
 * measures that constant ("EQ cal"). These are QEMU instruction counts, not board cycles.
 */
#include <stdio.h>
#include <stdint.h>

#include "model.h"

extern void initialise_monitor_handles(void);
extern volatile uint32_t eq_systick_wraps;
extern uint32_t _sstack;

#define SYST_CSR (*(volatile uint32_t*)0xE000E010)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018)
#define STACK_PAINT 0xA5A5A5A5u

static uint64_t ticks(void) {
  uint32_t w, v;
  do {
    w = eq_systick_wraps;
    v = SYST_CVR;
  } while (w != eq_systick_wraps);
  return (uint64_t)w * 0x1000000u + (0xFFFFFFu - v);
}

static void __attribute__((noinline)) spin(uint32_t n) { __asm volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc"); }

static void __attribute__((noinline)) paint_stack(void) {
  uint32_t here;
  for (uint32_t* p = &_sstack; p < &here - 64; ++p) *p = STACK_PAINT;
}

#ifdef EQ_PROFILE
/* Opt-in per-op profile (edgeq's cgen/profile.py builds with EQ_PROFILE): model.c marks the start of each op's
 * statement (and the end of the last, as op -1); the ticks between two marks go to the op the first one named.
 * The cost of one mark, measured back to back, is printed so the reader can take it off each op. */
#define EQ_PROFILE_MAX_OPS 4096
#define EQ_PROFILE_REPEAT 16
static uint64_t eq_prof_ticks[EQ_PROFILE_MAX_OPS];
static uint64_t eq_prof_last;
static int eq_prof_cur = -1, eq_prof_top = -1;

void eq_profile_mark(int op) {
  uint64_t now = ticks();
  if (eq_prof_cur >= 0 && eq_prof_cur < EQ_PROFILE_MAX_OPS) eq_prof_ticks[eq_prof_cur] += now - eq_prof_last;
  if (op > eq_prof_top && op < EQ_PROFILE_MAX_OPS) eq_prof_top = op;
  eq_prof_cur = op;
  eq_prof_last = ticks();
}

static void eq_profile_overhead(void) {
  for (int i = 0; i < EQ_PROFILE_REPEAT; ++i) {
    eq_profile_mark(0);
    eq_profile_mark(-1);
  }
  printf("EQ op_overhead %d %llu\n", EQ_PROFILE_REPEAT, (unsigned long long)eq_prof_ticks[0]);
  eq_prof_ticks[0] = 0;
  eq_prof_top = -1;
}

static void eq_profile_report(int n) {
  for (int k = 0; k <= eq_prof_top; ++k) {
    printf("EQ op %d %d %llu\n", n, k, (unsigned long long)eq_prof_ticks[k]);
    eq_prof_ticks[k] = 0;
  }
  eq_prof_top = -1;
}
#endif

int main(void) {
  static model_input_t in[MODEL_INPUT_SIZE];
  static model_output_t out[MODEL_OUTPUT_SIZE];
  initialise_monitor_handles();
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* enable, interrupt on wrap, processor clock */
  spin(1000u);    /* let the counter load its reload value before the first reading */
  uint64_t t0 = ticks();
  spin(1000000u);
  printf("EQ cal %llu\n", (unsigned long long)(ticks() - t0));
#ifdef EQ_PROFILE
  eq_profile_overhead();
#endif
  FILE* fi = fopen("inputs.bin", "rb");
  FILE* fo = fopen("outputs.bin", "wb");
  if (!fi || !fo) {
    printf("EQ error cannot open inputs.bin/outputs.bin\n");
    return 4;
  }
  int n = 0;
  while (fread(in, 1, sizeof in, fi) == sizeof in) {
    if (n == 0) paint_stack();
    t0 = ticks();
    int rc = model_invoke(in, out);
    uint64_t dt = ticks() - t0;
    if (n == 0) {
      uint32_t* p = &_sstack;
      while (*p == STACK_PAINT) ++p;
      uint32_t here;
      printf("EQ stack_used_max %lu\n", (unsigned long)((uint32_t)((uintptr_t)&here - (uintptr_t)p)));
    }
    if (rc != 0) return 2;
    fwrite(out, 1, sizeof out, fo);
    printf("EQ ticks %d %llu\n", n, (unsigned long long)dt);
#ifdef EQ_PROFILE
    eq_profile_report(n);
#endif
    ++n;
  }
  fclose(fo);
  fclose(fi);
  printf("EQ done %d\n", n);
  return 0;
}
