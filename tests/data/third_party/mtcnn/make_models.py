"""Regenerate the MTCNN .keras files here from the mtcnn 1.0.0 wheel (not run by the tests).

The wheel ships its networks as subclassed Keras models plus joblib/lz4 weight files; a subclassed
model cannot be saved and reloaded without its class, so this rebuilds each network as a Functional
model from the package's own layer objects (same layers, names and weights) and saves that.

    pip download --no-deps mtcnn==1.0.0 && unzip mtcnn-1.0.0-py3-none-any.whl -d mtcnn_wheel
    pip install --target pylibs lz4        # joblib's lz4 codec, needed to read the weight files
    PYTHONPATH=mtcnn_wheel:pylibs python make_models.py OUT_DIR [rnet onet pnet]
"""

import sys

import keras
from mtcnn.network.onet import ONet
from mtcnn.network.pnet import PNet
from mtcnn.network.rnet import RNet
from mtcnn.utils.tensorflow import load_weights

# (class, input size, weights, the layer attributes in call order, the output layers)
NETS = {
    "rnet": (
        RNet,
        24,
        "rnet.lz4",
        "conv1 prelu1 maxpool1 conv2 prelu2 maxpool2 conv3 prelu3 permute flatten fc4 prelu4",
        "fc5_1 fc5_2",
    ),
    "onet": (
        ONet,
        48,
        "onet.lz4",
        "conv1 prelu1 maxpool1 conv2 prelu2 maxpool2 conv3 prelu3 maxpool3 conv4 prelu4 permute flatten fc5 prelu5",
        "fc6_1 fc6_2 fc6_3",
    ),
    "pnet": (PNet, 12, "pnet.lz4", "conv1 prelu1 maxpool1 conv2 prelu2 conv3 prelu3", "conv4_1 conv4_2"),
}


def export(name: str, out_dir: str) -> None:
    cls, size, weights, trunk, heads = NETS[name]
    net = cls()
    net.build((None, size, size, 3))
    net.set_weights(load_weights(weights))
    inp = keras.Input((size, size, 3), name="image")
    x = inp
    for attr in trunk.split():
        x = getattr(net, attr)(x)
    outs = [getattr(net, attr)(x) for attr in heads.split()]
    model = keras.Model(inp, outs, name=f"mtcnn_{name}")
    model.save(f"{out_dir}/mtcnn_{name}.keras")
    print(name, [o.name for o in model.outputs], model.count_params())


if __name__ == "__main__":
    for n in sys.argv[2:] or ["rnet", "onet", "pnet"]:
        export(n, sys.argv[1])
