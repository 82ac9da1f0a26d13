// STUB for tests only: not TensorFlow Lite. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_SCHEMA_GENERATED_H_
#define EDGEQ_STUB_SCHEMA_GENERATED_H_

#include <cstdint>

#define TFLITE_SCHEMA_VERSION (3)

namespace tflite {

struct Model {
  uint32_t version() const { return 3; }
};

const Model* GetModel(const void* buf);

}  // namespace tflite

#endif
