"""A user's custom layer, importable as tests.integration.custom_layers:CUSTOM_OBJECTS."""

from __future__ import annotations

import tf_keras


# Deliberately not registered with register_keras_serializable: a registered class loads
# without --custom-objects, and the test of that flag could not fail.
class Scale(tf_keras.layers.Layer):
    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


CUSTOM_OBJECTS = {"Scale": Scale}
