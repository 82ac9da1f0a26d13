// STUB for tests only: not TensorFlow Lite Micro. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_MICRO_ALLOCATOR_H_
#define EDGEQ_STUB_MICRO_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>

namespace tflite {

class MicroAllocator {
 public:
  static MicroAllocator* Create(uint8_t* tensor_arena, size_t arena_size) {
    (void)tensor_arena;
    (void)arena_size;
    return nullptr;
  }
};

}  // namespace tflite

#endif
