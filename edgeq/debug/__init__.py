"""Finding where int8 loses accuracy: TFLite's Quantization Debugger, per-layer metrics, plots."""
