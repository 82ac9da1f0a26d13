// STUB for tests only: not TensorFlow Lite Micro. See tests/mcu/tflm_stubs/README.md.
#ifndef EDGEQ_STUB_MICRO_MUTABLE_OP_RESOLVER_H_
#define EDGEQ_STUB_MICRO_MUTABLE_OP_RESOLVER_H_

#include <cstddef>
#include <cstdint>

typedef enum TfLiteStatus { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;

typedef union TfLitePtrUnion {
  int32_t* i32;
  int16_t* i16;
  int8_t* int8;
  uint8_t* uint8;
  float* f;
  bool* b;
  char* raw;
} TfLitePtrUnion;

typedef struct TfLiteTensor {
  TfLitePtrUnion data;
  size_t bytes;
} TfLiteTensor;

namespace tflite {

class MicroOpResolver {
 public:
  virtual ~MicroOpResolver() {}
};

template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  TfLiteStatus AddAdd() { return Add(); }
  TfLiteStatus AddAssignVariable() { return Add(); }
  TfLiteStatus AddAveragePool2D() { return Add(); }
  TfLiteStatus AddCallOnce() { return Add(); }
  TfLiteStatus AddConcatenation() { return Add(); }
  TfLiteStatus AddConv2D() { return Add(); }
  TfLiteStatus AddDepthwiseConv2D() { return Add(); }
  TfLiteStatus AddDequantize() { return Add(); }
  TfLiteStatus AddFullyConnected() { return Add(); }
  TfLiteStatus AddLogistic() { return Add(); }
  TfLiteStatus AddMaxPool2D() { return Add(); }
  TfLiteStatus AddQuantize() { return Add(); }
  TfLiteStatus AddReadVariable() { return Add(); }
  TfLiteStatus AddReshape() { return Add(); }
  TfLiteStatus AddSoftmax() { return Add(); }
  TfLiteStatus AddSplitV() { return Add(); }
  TfLiteStatus AddStridedSlice() { return Add(); }
  TfLiteStatus AddVarHandle() { return Add(); }

 private:
  TfLiteStatus Add() { return registered_++ < tOpCount ? kTfLiteOk : kTfLiteError; }
  unsigned int registered_ = 0;
};

}  // namespace tflite

#endif
