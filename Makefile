# The two commands of the README, and the steps they are made of.
#   make run   install what is missing, build (release), build the web client, serve on :8080
#   make test  install what is missing, build, run every test suite
# Everything else here is a step of those two, or an on-demand extra (bench, asan, format).

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)
ATELIER := $(BUILD_DIR)/server/app/atelier

.PHONY: run test deps build web test-all test-cpp test-web test-e2e lint-api test-asan bench format clean

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

bench: deps build
	bash tests/bench/http_bench.sh $(BUILD_DIR)

format:
	find common server tests -name '*.h' -o -name '*.cpp' | grep -v node_modules | xargs clang-format -i

clean:
	rm -rf build web-client/dist
