"""Train the tiny YOLOv8-style digit detector on real photos and export it to ONNX by hand.

    TF_USE_LEGACY_KERAS=1 python scripts/make_yolo_detector.py [-o tests/data/detector/yolo_digits.onnx]

The task (tests/detector.py): 192x192 crops of scikit-image's sample photographs with 1 to 3 MNIST digits
pasted at random places and scales; 10 classes. The network: a SiLU conv backbone to two scales (stride 8,
24x24 anchors; stride 16, 12x12), per anchor 4 box values decoded to pixels (cx, cy, w, h, as a YOLOv8 export
has them after its DFL decode) and 10 class scores after a sigmoid, ending as a YOLOv8 ONNX export ends:
boxes [N, 4, 720] and scores [N, 10, 720] concatenated on axis 1 into one output ``output0`` [N, 14, 720].

The exporter below writes the ONNX graph from the Keras layers with onnx.helper (Conv with OIHW weights,
Sigmoid, Mul, Add, Reshape, Concat), NCHW input ``images`` [batch, 3, 192, 192] with a symbolic batch, and
checks that onnxruntime computes what Keras does (1e-4). Data, initial weights and shuffling are seeded; TF's
threaded CPU kernels may still round differently from run to run, so a rerun trains a network of the same
quality, not necessarily the same bytes (about 8 minutes on 2 shared cores: 2.7 min making the 5000 training
images, 5 min training).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.detector import ANCHORS, CLASSES, MODEL, SIDE, STRIDES, make_set, quality, run_onnx  # noqa: E402

TRAIN_IMAGES = int(os.environ.get("TRAIN_IMAGES", 5000))
EPOCHS = int(os.environ.get("EPOCHS", 14))
WIDTHS = (8, 16, 32, 48, 48, 48)  # backbone: three stride-2 convs, one at stride 8, two at stride 16 (one down)


def _decode_constants(stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel scale (4,) and per-cell offset (H, W, 4) that turn sigmoid box values into pixels:
    centre within 2 cells of the anchor's cell centre, width and height up to 8 cells."""
    cells = SIDE // stride
    gy, gx = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
    offset = np.zeros((cells, cells, 4), np.float32)
    offset[..., 0] = (gx + 0.5) * stride - 2 * stride
    offset[..., 1] = (gy + 0.5) * stride - 2 * stride
    return np.array([4 * stride, 4 * stride, 8 * stride, 8 * stride], np.float32), offset


def _affine_layer(tf_keras):  # noqa: ANN202 - a Keras layer class made on demand (tf_keras is imported late)
    class Affine(tf_keras.layers.Layer):
        """x * scale + offset with constant arrays: the box decode (exported as Mul and Add)."""

        def __init__(self, scale: np.ndarray, offset: np.ndarray, **kw: object) -> None:
            super().__init__(**kw)
            self.scale_np, self.offset_np = scale, offset

        def call(self, x):  # noqa: ANN001, ANN201
            return x * self.scale_np + self.offset_np

    return Affine


def build(tf_keras):  # noqa: ANN001, ANN201
    """The Keras network (NHWC), output [N, 4+C, anchors]."""
    layers = tf_keras.layers
    affine = _affine_layer(tf_keras)
    inputs = tf_keras.Input((SIDE, SIDE, 3), name="images")
    x = inputs
    for filters in WIDTHS[:3]:
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="swish")(x)
    p3 = layers.Conv2D(WIDTHS[3], 3, padding="same", activation="swish")(x)
    p4 = layers.Conv2D(WIDTHS[4], 3, strides=2, padding="same", activation="swish")(p3)
    p4 = layers.Conv2D(WIDTHS[5], 3, padding="same", activation="swish")(p4)
    boxes, scores = [], []
    for feature, stride in zip((p3, p4), STRIDES, strict=True):
        cells = (SIDE // stride) ** 2
        b = layers.Conv2D(4, 1, activation="sigmoid")(feature)
        b = affine(*_decode_constants(stride))(b)
        boxes.append(layers.Reshape((cells, 4))(b))
        s = layers.Conv2D(CLASSES, 1, activation="sigmoid", bias_initializer=tf_keras.initializers.Constant(-4.0))(
            feature
        )
        scores.append(layers.Reshape((cells, CLASSES))(s))
    box = layers.Permute((2, 1))(layers.Concatenate(axis=1)(boxes))
    score = layers.Permute((2, 1))(layers.Concatenate(axis=1)(scores))
    return tf_keras.Model(inputs, layers.Concatenate(axis=1, name="output0")([box, score]))


def targets(data) -> np.ndarray:  # noqa: ANN001
    """Training targets [N, 4+C+1, anchors]: the box and one-hot class of the digit each anchor is assigned
    to, and a last row that is 1 on assigned anchors. An anchor is assigned a digit when its cell centre lies
    in the central half of the digit's box (or within half a cell of its centre); the stride-8 scale takes
    digits under 44 px, the stride-16 one those of 32 px and more; where two digits claim an anchor, the nearer centre wins."""
    centres, strides = [], []
    for stride in STRIDES:
        cells = SIDE // stride
        gy, gx = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres.append(np.stack([(gx.ravel() + 0.5) * stride, (gy.ravel() + 0.5) * stride], 1))
        strides.append(np.full(cells * cells, stride))
    centre, stride = np.concatenate(centres), np.concatenate(strides)
    out = np.zeros((len(data.x), 4 + CLASSES + 1, ANCHORS), np.float32)
    for i, (boxes, classes) in enumerate(zip(data.boxes, data.classes, strict=True)):
        best = np.full(ANCHORS, np.inf)
        for box, cls in zip(boxes, classes, strict=True):
            d = np.abs(centre - box[:2])
            reach = np.maximum(box[2:] / 4, stride[:, None] / 2)
            ok = (
                np.all(d <= reach, axis=1)
                & np.where(stride == STRIDES[0], box[2:].max() < 44, box[2:].max() >= 32)
                & (d.sum(1) < best)
            )
            best[ok] = d.sum(1)[ok]
            out[i, :4, ok] = box
            out[i, 4 : 4 + CLASSES, ok] = 0
            out[i, 4 + cls, ok] = 1
            out[i, -1, ok] = 1
    return out


def loss(tf):  # noqa: ANN001, ANN201
    """Binary cross-entropy on every anchor's class scores, plus L1 on assigned anchors' boxes (in units of
    the image side), each averaged as YOLO does over the assigned anchors."""

    def fn(y_true, y_pred):  # noqa: ANN001, ANN202
        mask = y_true[:, -1, :]
        positives = tf.maximum(tf.reduce_sum(mask), 1.0)
        p = tf.clip_by_value(y_pred[:, 4:, :], 1e-6, 1 - 1e-6)
        t = y_true[:, 4:-1, :]
        bce = -tf.reduce_sum(t * tf.math.log(p) + (1 - t) * tf.math.log(1 - p)) / positives
        l1 = tf.reduce_sum(tf.abs(y_pred[:, :4, :] - y_true[:, :4, :]) / SIDE * mask[:, None, :]) / positives
        return bce + 5.0 * l1

    return fn


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (more at the end when odd) as ONNX begin/end pads."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Exporter:
    """Keras functional model (the layers used here) -> ONNX graph in NCHW.

    Each Keras tensor maps to an ONNX tensor name and a layout: ``nchw`` (a 4-D Keras NHWC tensor held
    NCHW), ``seq_t`` (a Keras [N, L, k] tensor held as [N, k, L]) or ``same``."""

    def __init__(self, model) -> None:  # noqa: ANN001
        from onnx import helper

        self.h = helper
        self.model = model
        self.nodes: list = []
        self.inits: list = []
        self.names: dict[int, tuple[str, str]] = {}

    def _const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def _node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(self.h.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def _activation(self, name: str, x: str, fn: str) -> str:
        if fn == "linear":
            return x
        if fn == "sigmoid":
            return self._node("Sigmoid", [x], f"{name}/sigmoid")
        if fn == "relu":
            return self._node("Relu", [x], f"{name}/relu")
        if fn == "swish":  # SiLU: x * sigmoid(x), as a YOLOv8 export writes it
            return self._node("Mul", [x, self._node("Sigmoid", [x], f"{name}/sigmoid")], f"{name}/silu")
        raise ValueError(f"activation {fn} not exported")

    def _conv(self, layer, x: str, shape: tuple) -> str:  # noqa: ANN001
        kernel, bias = layer.get_weights()
        k, s = layer.kernel_size[0], layer.strides[0]
        (t, b), (left, right) = _same_pads(shape[0], k, s), _same_pads(shape[1], k, s)  # NHWC
        w = self._const(f"{layer.name}/W", kernel.transpose(3, 2, 0, 1).astype(np.float32))  # HWIO -> OIHW
        bb = self._const(f"{layer.name}/B", bias.astype(np.float32))
        y = self._node("Conv", [x, w, bb], f"{layer.name}/conv", kernel_shape=[k, k], strides=[s, s],
                       pads=[t, left, b, right])  # fmt: skip
        return self._activation(layer.name, y, layer.get_config()["activation"])

    def _layer(self, layer, ins: list[tuple[str, str]], shapes: list[tuple]) -> tuple[str, str]:  # noqa: ANN001
        kind, (x, layout) = type(layer).__name__, ins[0]
        if kind == "Conv2D":
            return self._conv(layer, x, shapes[0]), "nchw"
        if kind == "Affine":
            scale = self._const(f"{layer.name}/scale", layer.scale_np.reshape(1, -1, 1, 1))
            offset = self._const(f"{layer.name}/offset", layer.offset_np.transpose(2, 0, 1)[None])
            return self._node("Add", [self._node("Mul", [x, scale], f"{layer.name}/mul"), offset], layer.name), "nchw"
        if kind == "Reshape" and layout == "nchw":  # [N, H, W, k] -> [N, HW, k], held as [N, k, HW]
            cells, k = layer.target_shape
            shape = self._const(f"{layer.name}/shape", np.array([-1, k, cells], np.int64))
            return self._node("Reshape", [x, shape], layer.name), "seq_t"
        if kind == "Permute" and layout == "seq_t" and tuple(layer.dims) == (2, 1):
            return x, "same"  # already held as [N, k, L]
        if kind == "Concatenate" and len({lay for _, lay in ins}) == 1:
            axis = layer.axis % 3
            onnx_axis = {1: 2, 2: 1}[axis] if layout == "seq_t" else axis
            return self._node("Concat", [n for n, _ in ins], layer.name, axis=onnx_axis), layout
        raise ValueError(f"layer {layer.name} ({kind}, {layout}) not exported")

    def export(self, path: Path) -> None:
        """Write the ONNX model: input ``images`` [batch, 3, H, W], output ``output0`` [batch, 4+C, anchors]."""
        import onnx
        from onnx import TensorProto

        inp = self.model.inputs[0]
        self.names[id(inp)] = ("images", "nchw")
        for layer in self.model.layers[1:]:
            node = layer.inbound_nodes[0]
            tensors = node.input_tensors if isinstance(node.input_tensors, list) else [node.input_tensors]
            ins = [self.names[id(t)] for t in tensors]
            self.names[id(layer.output)] = self._layer(layer, ins, [tuple(t.shape[1:]) for t in tensors])
        name, _ = self.names[id(self.model.outputs[0])]
        if name != "output0":
            self.nodes.append(self.h.make_node("Identity", [name], ["output0"], name="output0"))
        rows, anchors = self.model.outputs[0].shape[1:]
        graph = self.h.make_graph(
            self.nodes, "yolo_digits",
            [self.h.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
            [self.h.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", rows, anchors])],
            self.inits,
        )  # fmt: skip
        model = self.h.make_model(graph, opset_imports=[self.h.make_opsetid("", 13)], producer_name="edgeq-tests")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))


def train(tf_keras, tf):  # noqa: ANN001, ANN201
    """The network trained on TRAIN_IMAGES images of the training split (seeded)."""
    tf_keras.utils.set_random_seed(0)
    t0 = time.time()
    data = make_set("train", TRAIN_IMAGES)
    y = targets(data)
    x = data.x.transpose(0, 2, 3, 1)
    print(f"data: {len(x)} images, {int(y[:, -1].sum())} assigned anchors ({time.time() - t0:.0f} s)")
    model = build(tf_keras)
    steps = EPOCHS * (len(x) // 32)
    lr = tf_keras.optimizers.schedules.CosineDecay(3e-3, steps, alpha=0.02)
    model.compile(optimizer=tf_keras.optimizers.Adam(lr), loss=loss(tf))
    model.fit(x, y, batch_size=32, epochs=EPOCHS, verbose=2, shuffle=True)
    print(f"trained in {time.time() - t0:.0f} s, {model.count_params()} parameters")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=MODEL)
    args = parser.parse_args()
    import tensorflow as tf
    import tf_keras

    model = train(tf_keras, tf)
    Exporter(model).export(args.output)
    held = make_set("eval", 256)
    want = model.predict(held.x.transpose(0, 2, 3, 1), verbose=0)
    got = run_onnx(args.output, held.x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    print(f"onnxruntime == keras: max |diff| {np.abs(got - want).max():.2e}; {args.output.stat().st_size} bytes")
    for split, data in (("train (first 256)", make_set("train", 256)), ("held-out eval (256)", held),
                        ("held-out calib (128)", make_set("calib", 128))):  # fmt: skip
        q = quality(run_onnx(args.output, data.x), data)
        print(f"{split}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in q.items()))


if __name__ == "__main__":
    main()
