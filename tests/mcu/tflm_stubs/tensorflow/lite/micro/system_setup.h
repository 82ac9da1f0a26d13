// STUB for tests only: not TensorFlow Lite Micro. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_SYSTEM_SETUP_H_
#define EDGEQ_STUB_SYSTEM_SETUP_H_

namespace tflite {
void InitializeTarget();
}  // namespace tflite

#endif
