# Microlinux: the usual entry points. Everything real happens in meson
# (build), scripts/ (deps, checks, demo) and bench/; this file only strings
# them together. On a fresh Debian 12 machine, as root: `make demo`, `make check`.

BUILD_DIR ?= build
ASAN_DIR ?= build-asan
FUZZ_DIR ?= build-fuzz
MESON ?= meson
NINJA ?= ninja

# `make fuzz` runs each harness FUZZ_SECONDS (60 by default); `make check`
# uses check.sh's own default (10) unless FUZZ_SECONDS is given.
FUZZ_SECONDS_GIVEN := $(filter command line environment,$(origin FUZZ_SECONDS))
FUZZ_SECONDS ?= 60

TREES := BUILD_DIR=$(BUILD_DIR) ASAN_DIR=$(ASAN_DIR) FUZZ_DIR=$(FUZZ_DIR)

.DEFAULT_GOAL := build
.PHONY: build demo check bench bench-mcast bench-import bench-api bench-deploy bench-tftp fuzz format deps clean image image-minimal
# Packages must be installed before anything builds, even under make -j.
.NOTPARALLEL:

# Configures the build tree on first use; ninja reconfigures it when meson files change.
build:
	@test -f $(BUILD_DIR)/build.ninja || $(MESON) setup $(BUILD_DIR)
	$(NINJA) -C $(BUILD_DIR)

demo: deps build
	bash scripts/demo.sh

check: deps
	$(TREES) $(if $(FUZZ_SECONDS_GIVEN),FUZZ_SECONDS=$(FUZZ_SECONDS)) bash scripts/check.sh

# Every benchmark, one after the other (docs/benchmarks.md); BENCH_ARGS go
# to mcast-vs-peers. Run them on an otherwise idle machine.
bench: bench-mcast bench-import bench-api bench-deploy bench-tftp

bench-mcast: deps build
	MLBUILD=$(BUILD_DIR) bash bench/mcast-vs-peers $(BENCH_ARGS)

bench-import: deps build
	MLBUILD=$(BUILD_DIR) bash bench/import-vs-zstd

bench-api: deps build
	MLBUILD=$(BUILD_DIR) bash bench/api-latency

bench-deploy: deps build
	MLBUILD=$(BUILD_DIR) bash bench/deploy-vs-udpcast

bench-tftp: deps build
	MLBUILD=$(BUILD_DIR) bash bench/tftp-vs-tftpd-hpa

# The same fuzz tree and runs as `make check`, only longer.
fuzz: deps
	$(TREES) CHECK_PARTS=fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/check.sh

# The client OS (docs/image.md): `make image` builds the full profile (as
# root: debootstrap), `make image-minimal` the small test one (no root).
# IMAGE_OUT changes where they go; downloads stay in IMAGE_CACHE.
IMAGE_CACHE ?= build-image/cache
image: deps build
	bash image/build.sh --profile full --out $(or $(IMAGE_OUT),build-image/full) \
		--mlagent $(BUILD_DIR)/src/agent/mlagent --cache $(IMAGE_CACHE)

image-minimal: deps build
	bash image/build.sh --profile minimal --out $(or $(IMAGE_OUT),build-image/minimal) \
		--mlagent $(BUILD_DIR)/src/agent/mlagent --cache $(IMAGE_CACHE)

format:
	find src tests \( -name '*.c' -o -name '*.h' \) -print0 | xargs -0 -r clang-format -i

deps:
	bash scripts/install-deps.sh

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)
