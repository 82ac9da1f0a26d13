# edgeq with Coral's edgetpu_compiler. Default: `edgeq build --target coral` into the mounted /work.
#
#   docker build --platform linux/amd64 -t edgeq-coral .
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" edgeq-coral                 # bundled demo
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/work" edgeq-coral \
#       compile model_int8.tflite --target coral -o edgetpu                                 # your model
#
# x86-64 only: Coral ships edgetpu-compiler for amd64 Debian/Ubuntu (no ARM64 since compiler 2.1).
# Not built in edgeq's CI: its machines reach no apt repository but Debian's (see docs/coral.md).
FROM --platform=linux/amd64 python:3.11.11-slim-bookworm

# 16.0 (16.0.384591198) is the last edgetpu-compiler release; it targets Edge TPU runtime 14 by default.
ARG EDGETPU_COMPILER_VERSION=16.0

ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
      | gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg \
 && echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
      > /etc/apt/sources.list.d/coral-edgetpu.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "edgetpu-compiler=${EDGETPU_COMPILER_VERSION}" \
 && apt-get purge -y --auto-remove curl gnupg \
 && rm -rf /var/lib/apt/lists/* \
 && edgetpu_compiler --version

# The Python stack pinned by constraints.txt. Editable, so the bundled model and data (models/,
# representative_data/) resolve next to the package as in a source checkout.
WORKDIR /opt/edgeq
COPY pyproject.toml constraints.txt README.md ./
COPY edgeq ./edgeq
COPY models ./models
COPY representative_data ./representative_data
RUN pip install -c constraints.txt -e . && edgeq --version && edgeq targets

WORKDIR /work
ENTRYPOINT ["edgeq"]
CMD ["build", "--target", "coral", "-o", "/work/edgeq-out"]
