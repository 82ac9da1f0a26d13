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
    ++n;
  }
  fclose(fo);
  fclose(fi);
  printf("EQ done %d\n", n);
  return 0;
}
