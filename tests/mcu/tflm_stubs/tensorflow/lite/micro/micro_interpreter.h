// STUB for tests only: not TensorFlow Lite Micro. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_MICRO_INTERPRETER_H_
#define EDGEQ_STUB_MICRO_INTERPRETER_H_

#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace tflite {

class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size)
      : arena_size_(tensor_arena_size) {
    (void)model;
    (void)op_resolver;
    (void)tensor_arena;
  }
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, MicroAllocator* allocator,
                   MicroResourceVariables* resource_variables = nullptr)
      : arena_size_(0) {
    (void)model;
    (void)op_resolver;
    (void)allocator;
    (void)resource_variables;
  }
  TfLiteStatus AllocateTensors() { return kTfLiteOk; }
  TfLiteStatus Invoke() { return kTfLiteOk; }
  TfLiteTensor* input(size_t index) { (void)index; return &tensor_; }
  TfLiteTensor* output(size_t index) { (void)index; return &tensor_; }
  size_t arena_used_bytes() const { return arena_size_; }

 private:
  size_t arena_size_;
  TfLiteTensor tensor_{};
};

}  // namespace tflite

#endif
