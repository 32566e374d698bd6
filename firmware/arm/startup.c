/* Minimal Cortex-M startup for the qemu test image: vector table, .data/.bss set-up, semihosting. */
#include <stdint.h>
#include <string.h>

extern uint32_t __data_load, __data_start, __data_end, __bss_start, __bss_end, __stack_top;
int main(void);
void reset_handler(void);
void semihost_exit(int code);

static void fault_handler(void) { semihost_exit(3); }

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &__stack_top, (const void *)reset_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler};

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void semihost_puts(const char *s) { semihost(0x04, s); /* SYS_WRITE0 */ }

void semihost_exit(int code) {
  /* ADP_Stopped_ApplicationExit with an exit code. */
  uint32_t block[2] = {0x20026, (uint32_t)code};
  semihost(0x20, block); /* SYS_EXIT_EXTENDED */
  for (;;) {
  }
}

void reset_handler(void) {
  /* The FPU is used by nothing here, but enable it in case the compiler emits VFP moves. */
  *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
  memcpy(&__data_start, &__data_load, (size_t)((char *)&__data_end - (char *)&__data_start));
  memset(&__bss_start, 0, (size_t)((char *)&__bss_end - (char *)&__bss_start));
  semihost_exit(main());
}
