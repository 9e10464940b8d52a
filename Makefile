# slime-hpc: thin driver over CMake. `make help` lists the targets.
BUILD     ?= build
JOBS      ?= 2
BUILD_TYPE ?= Release
CMAKE_ARGS ?=
DEMO_DIR  ?= runs/demo
SUDO      := $(if $(filter 0,$(shell id -u)),,sudo)

# Debian 12 packages the build and the tests need (CUDA comes from the CUDA toolkit, when present).
DEB_PACKAGES := build-essential cmake pkg-config git rsync \
  libopenmpi-dev openmpi-bin libhdf5-openmpi-dev catch2 \
  libtrilinos-kokkos-dev libtrilinos-kokkos-kernels-dev libopenblas-dev \
  nlohmann-json3-dev libpcre2-dev libutf8proc-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev hdf5-tools \
  slurm-wlm munge gnuplot-nox

.PHONY: all build configure deps fixtures test run bench bench-cpu gpu-test golden docs bundle clean help

all: build

help:
	@echo "make deps       install the Debian packages the build needs (apt-get)"
	@echo "make            configure and build into $(BUILD)/ (Release, -j$(JOBS))"
	@echo "make test       build, fetch test fixtures (npm), run the CPU test suite (ctest, MPI tests included)"
	@echo "make run        the CPU demo: SFT then GRPO on 2-digit addition under mpirun (about 5 minutes)"
	@echo "make bench-cpu  CPU benchmarks: training step (tokens/s, GEMM share vs sgemm), engine prefill/decode"
	@echo "make bench      all benchmarks this machine can run"
	@echo "make gpu-test   the GPU tests (label gpu; needs a CUDA GPU)"
	@echo "make golden     regenerate the transformers golden files (needs python3 with torch + transformers)"
	@echo "make docs       regenerate docs/options.md from slime-train --help-markdown"
	@echo "make bundle     relocatable tarball of the binaries and their non-system libraries (dist/)"

deps:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES)
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm

configure: $(BUILD)/CMakeCache.txt
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

fixtures:
	bash regression/tokenizer/fetch_fixtures.sh $(CURDIR)

test: build fixtures
	cd $(BUILD) && ctest --output-on-failure --label-exclude gpu -j$(JOBS)

# The CPU demo: a 0.8M-parameter model learns 2-digit addition, SFT then GRPO under mpirun (docs/usage.md).
run: build
	bash slurm/run_demo.sh $(BUILD) $(DEMO_DIR)

bench-cpu: build
	$(BUILD)/regression/bench_cpu
	$(BUILD)/regression/bench_rollout_cpu

# On a GPU machine also the CUDA GEMM benchmark (torch's numbers: python3 regression/bench/bench_torch_gemm.py), the
# whole training step next to PyTorch + transformers (bench_train.sh prints the ratio), the trainer's rollouts on the
# GPU (bench_gpu_trainer), weight sync GPU to GPU next to a raw broadcast (bench_weight_sync, 2 ranks) and the rollout
# engine's decode next to transformers' generate (bench_decode.sh).
bench: bench-cpu
	@if [ -x $(BUILD)/regression/bench_cuda_gemm ] && nvidia-smi -L >/dev/null 2>&1; then \
	  $(BUILD)/regression/bench_cuda_gemm; bash regression/bench/bench_train.sh $(BUILD); \
	  $(BUILD)/regression/bench_gpu_trainer; \
	  mpirun --allow-run-as-root --oversubscribe -np 2 $(BUILD)/regression/bench_weight_sync 1.5b; \
	  bash regression/bench/bench_decode.sh $(BUILD); fi

gpu-test: build
	cd $(BUILD) && ctest --output-on-failure --label-regex gpu

golden:
	python3 regression/hf_parity/make_golden.py --out regression/hf_parity/golden

docs: build
	$(BUILD)/slime-train --help-markdown > docs/options.md

bundle: build
	bash slurm/make_bundle.sh $(BUILD) dist

clean:
	rm -rf $(BUILD) dist
