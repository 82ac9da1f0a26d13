// STUB for tests only: not TensorFlow Lite Micro. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_MICRO_RESOURCE_VARIABLE_H_
#define EDGEQ_STUB_MICRO_RESOURCE_VARIABLE_H_

#include "tensorflow/lite/micro/micro_allocator.h"

namespace tflite {

class MicroResourceVariables {
 public:
  static MicroResourceVariables* Create(MicroAllocator* allocator, int num_variables) {
    (void)allocator;
    (void)num_variables;
    return nullptr;
  }
};

}  // namespace tflite

#endif
