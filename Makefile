# Everything installs into .venv; nothing goes outside this folder.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages the tests use as real tools: an OpenSSH server on 127.0.0.1, adb with no device, and the
# Arm toolchain with QEMU (the generated C engine is built and run bit-exact on Cortex-M under emulation),
# and headless Chromium (report.html is laid out by a real browser: its tables fit a 1280 px window).
SYS_PACKAGES := openssh-server openssh-client adb gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm chromium

.PHONY: setup sysdeps demo test lint bench data model clean fuzz adversarial

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,data,onnx,ray]"
	touch $(STAMP)

setup: $(STAMP)

sysdeps:
	@missing=""; for p in $(SYS_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  else echo "missing Debian packages:$$missing (sudo apt-get install$$missing); the tests that use them will skip"; fi; \
	fi

## The main job on the bundled default: int8 build for the host CPU, with accuracy and latency.
demo: setup
	$(BIN)/edgeq build --target cpu

## The tests (no hardware, no network), after the static checks: CI runs this target.
test: setup sysdeps
	$(BIN)/ruff check edgeq tests benchmarks models representative_data device_tests
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check edgeq tests benchmarks models representative_data device_tests
	$(BIN)/ruff format --check edgeq tests
	$(BIN)/mypy

## Coverage-guided fuzzing (atheris) of the .tflite and data readers and the C emitter's escaping, FUZZ_SECONDS each (not in CI).
FUZZ_SECONDS ?= 600
fuzz: setup
	$(BIN)/pip install -q -c constraints.txt -e ".[fuzz]"
	$(BIN)/python fuzz/run.py $(FUZZ_SECONDS)

## The adversarial suite at a larger size than CI runs (ADV_ROUNDS random variants of each mutation), and the
## whole generated-code and resource families (the tests marked long; CI runs their bounded entries).
ADV_ROUNDS ?= 3
adversarial: setup
	$(BIN)/python -m tests.adversarial.harness --rounds $(ADV_ROUNDS)
	$(BIN)/python -m tests.adversarial.codegen
	$(BIN)/python -m tests.adversarial.resources

## Performance table (not tests); README quotes its latest output.
bench: setup
	$(BIN)/python benchmarks/run.py

## Regenerate the bundled data and retrain the bundled model.
data: setup
	$(BIN)/python representative_data/make_data.py
model: setup
	$(BIN)/python models/train_mnist_cnn.py

clean:
	rm -rf $(VENV) edgeq-out .pytest_cache
