/* edgeq host driver: reads N inputs from stdin (raw int8), writes N outputs to stdout (raw int8). */
#include <stdio.h>

#include "model.h"

int main(void) {
  static int8_t in[MODEL_INPUT_SIZE];
  static int8_t out[MODEL_OUTPUT_SIZE];
  while (fread(in, 1, sizeof in, stdin) == sizeof in) {
    if (model_invoke(in, out) != 0) return 2;
    if (fwrite(out, 1, sizeof out, stdout) != sizeof out) return 3;
  }
  return 0;
}
