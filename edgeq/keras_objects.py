"""Keras classes that edgeq itself defines and saved models name: what loading a model needs to find them.

A QAT model saved by edgeq holds TF-MOT's wrappers and edgeq's ``OutputQuantizeConfig``; loading it
(:mod:`edgeq.modelio`) needs them in scope, and building one (:mod:`edgeq.quantize.qat`) uses the same
class. Both import it from here, so models in (modelio) need nothing of the quantize package.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


def tfmot() -> Any:
    """TensorFlow Model Optimization, imported after TensorFlow is configured."""
    from edgeq.tfimport import tensorflow

    tensorflow()
    import tensorflow_model_optimization

    return tensorflow_model_optimization


def _output_config_class() -> type:
    quantization = tfmot().quantization.keras
    quantizers = quantization.quantizers
    base: Any = quantization.QuantizeConfig

    class OutputQuantizeConfig(base):
        """Fake-quantize the layer's output like TF-MOT quantizes activations (8-bit, asymmetric)."""

        def get_weights_and_quantizers(self, layer: Any) -> list[Any]:
            return []

        def get_activations_and_quantizers(self, layer: Any) -> list[Any]:
            return []

        def set_quantize_weights(self, layer: Any, quantize_weights: Any) -> None:
            pass

        def set_quantize_activations(self, layer: Any, quantize_activations: Any) -> None:
            pass

        def get_output_quantizers(self, layer: Any) -> list[Any]:
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

        def get_config(self) -> dict[str, Any]:
            return {}

    return OutputQuantizeConfig


_OUTPUT_CONFIG: type | None = None


def output_config_class() -> type:
    """edgeq's output-only QuantizeConfig: one class per process, so saved QAT models load with it."""
    global _OUTPUT_CONFIG
    if _OUTPUT_CONFIG is None:
        _OUTPUT_CONFIG = _output_config_class()
    return _OUTPUT_CONFIG


def qat_scope() -> AbstractContextManager:
    """The deserialization scope for QAT models (TF-MOT wrappers and edgeq's config)."""
    scope: AbstractContextManager = tfmot().quantization.keras.quantize_scope(
        {"OutputQuantizeConfig": output_config_class()}
    )
    return scope
