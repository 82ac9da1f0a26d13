/* edgeq bare-metal startup for the QEMU Cortex-M boards: vector table, .data/.bss init, SysTick wraps. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void exit(int);

volatile uint32_t eq_systick_wraps;

void Reset_Handler(void);
static void Default_Handler(void) {
  for (;;) {
  }
}
void SysTick_Handler(void) { ++eq_systick_wraps; }

__attribute__((section(".vectors"), used)) void (*const eq_vectors[16])(void) = {
    (void (*)(void))(&_estack), Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, SysTick_Handler,
};

void Reset_Handler(void) {
  /* Cores with a floating-point or vector unit (built with the hard float ABI, Helium on Cortex-M55): grant
   * full access to coprocessors 10 and 11 (CPACR) before any code may use them. */
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  *(volatile uint32_t*)0xE000ED88u |= 0xFu << 20;
  __asm volatile("dsb\n\tisb" ::: "memory");
#endif
  uint32_t* src = &_sidata;
  for (uint32_t* dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  exit(main());
}
