/* edgeq host driver: reads N inputs from stdin (raw model_input_t), writes N outputs to stdout (raw model_output_t). */
#include <stdio.h>

#include "model.h"

int main(void) {
  static model_input_t in[MODEL_INPUT_SIZE];
  static model_output_t out[MODEL_OUTPUT_SIZE];
  while (fread(in, 1, sizeof in, stdin) == sizeof in) {
    if (model_invoke(in, out) != 0) return 2;
    if (fwrite(out, 1, sizeof out, stdout) != sizeof out) return 3;
  }
  return 0;
}
