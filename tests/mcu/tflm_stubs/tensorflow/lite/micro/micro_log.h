// STUB for tests only: not TensorFlow Lite Micro. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_MICRO_LOG_H_
#define EDGEQ_STUB_MICRO_LOG_H_

void MicroPrintf(const char* format, ...);

#endif
