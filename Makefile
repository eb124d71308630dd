# The two commands of the README, and the steps they are made of.
#   make run   install what is missing, build (release), build the web client, serve on :8080
#   make test  install what is missing, build, run every test suite
# Everything else here is a step of those two, or an on-demand extra (bench, asan, format).

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
ATELIER := $(BUILD_DIR)/server/app/atelier

.PHONY: run test deps build web test-all test-cpp test-web test-e2e lint-api test-asan test-tsan check-thread-safety fuzz bench format check-format lint-web clean

run: deps build web
	$(ATELIER) serve --data-dir ./data

test: deps build web
	bash tests/run_all.sh $(BUILD_DIR)

deps:
	bash docker/deps-debian.sh

build:
	cmake --preset $(PRESET)
	cmake --build $(BUILD_DIR) -j $(JOBS)

web:
	npm --prefix web-client run build

test-cpp:
	ctest --test-dir $(BUILD_DIR) -j $(JOBS) --output-on-failure

test-web:
	npm --prefix web-client test

lint-api:
	npm --prefix web-client run lint:api

test-e2e:
	cd tests/e2e && ATELIER_BIN=$(CURDIR)/$(ATELIER) npm test

# AddressSanitizer + UBSan build of the C++ suites (slower; not part of `make test`).
test-asan: deps
	cmake --preset asan
	cmake --build build/asan -j $(JOBS)
	ctest --test-dir build/asan -j $(JOBS) --output-on-failure

# ThreadSanitizer build of the C++ suites (GCC; slower; not part of `make test`). A race makes
# the process exit non-zero at once (halt_on_error). Reports go to files, so that those of the
# `atelier` processes the crash and CLI tests start are seen too: any report fails the target.
# tests/tsan.supp says what is suppressed, and why.
TSAN_REPORTS := $(CURDIR)/build/tsan/tsan-reports
TSAN_OPTIONS_ALL := halt_on_error=1 second_deadlock_stack=1 \
	suppressions=$(CURDIR)/tests/tsan.supp log_path=$(TSAN_REPORTS)/race
test-tsan: deps
	cmake --preset tsan
	cmake --build build/tsan -j $(JOBS)
	rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	TSAN_OPTIONS="$(TSAN_OPTIONS_ALL)" ctest --test-dir build/tsan -j $(JOBS) \
	  --output-on-failure; rc=$$?; \
	if ls $(TSAN_REPORTS)/race.* >/dev/null 2>&1; then \
	  cat $(TSAN_REPORTS)/race.*; echo "ThreadSanitizer reports: $(TSAN_REPORTS)"; exit 1; fi; \
	exit $$rc

# Clang -Wthread-safety over the annotated libraries (common/mutex.h), warnings as errors.
check-thread-safety: deps
	cmake --preset thread-safety
	cmake --build build/thread-safety -j $(JOBS) --target thread_safety_check

# libFuzzer targets (tests/fuzz; Clang, ASan + UBSan): builds only them and what they link,
# then runs each for FUZZ_SECONDS, one at a time. Not part of `make test`, which replays the
# committed corpora (FuzzSmoke.*).
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake --preset fuzz
	cmake --build build/fuzz -j $(JOBS) --target fuzz_targets
	bash tests/fuzz/run_fuzz.sh build/fuzz $(FUZZ_SECONDS)

# Builds the benchmarks and the server only (the `benchmarks` target, tests/bench/), not the
# test suites, then runs the HTTP bench.
bench: deps
	cmake --preset $(PRESET)
	cmake --build $(BUILD_DIR) -j $(JOBS) --target benchmarks
	bash tests/bench/http_bench.sh $(BUILD_DIR)

format:
	find common server tests -name '*.h' -o -name '*.cpp' | grep -v node_modules | xargs clang-format -i

# The two checks `make test` runs (tests/run_all.sh), on their own.
check-format:
	bash tests/check_format.sh

lint-web:
	npm --prefix web-client run lint

clean:
	rm -rf build web-client/dist
