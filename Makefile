# The two commands a new user needs: `make run` and `make test`. Both install what is missing.
JOBS ?= $(shell nproc)
RELEASE_DIR := build/release
TEST_DIR := build/asan

.PHONY: run build test test-build format clean

run: build
	./$(RELEASE_DIR)/verifyd

# Release binary: build/release/verifyd (CMake target `verifyd`).
build:
	scripts/deps.sh build
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DVERIFYD_BUILD_TESTS=OFF
	cmake --build $(RELEASE_DIR) -j $(JOBS)

# Every test runs against the AddressSanitizer + UndefinedBehaviorSanitizer build; the release
# build is compiled too, since -O3 brings warnings (errors here) of its own.
test: build test-build
	ctest --test-dir $(TEST_DIR) --output-on-failure --timeout 300

test-build:
	scripts/deps.sh all
	cmake -S . -B $(TEST_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS=-O1 \
	  -DVERIFYD_SANITIZE=ON -DVERIFYD_BUILD_TESTS=ON
	cmake --build $(TEST_DIR) -j $(JOBS)
	# The bench loader is built on demand only; compiling it here keeps it from rotting.
	cmake --build $(TEST_DIR) -j $(JOBS) --target verifyd_bench_loader

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build

# Benchmark (bench/README.md): Release build and the bench loader, then bench/run.sh drives the
# floor server, verifyd, the Express peer and verifyd at scale with wrk; results in bench/results/.
# BENCH_DURATION (s per scenario, default 10) and BENCH_SCALE (default "1000000 10000000") tune it.
.PHONY: bench
bench: build
	scripts/deps.sh bench
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target verifyd_bench_loader
	bench/run.sh
