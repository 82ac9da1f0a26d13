"""edgeq: Keras models to quantized TFLite models for edge hardware.

Importing this package must stay cheap: it does not import TensorFlow. The public
stage functions live in :mod:`edgeq.api`.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = 1
