# swift-reverb: `make run` serves the development app; `make test` runs every test suite.
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: run test deps venv build release test-swift test-e2e test-tsan test-asan lint bench clean

run: deps release
	./.build/release/reverb start

test: deps venv
	./scripts/test.sh

deps:
	@./scripts/install-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: Tests/EndToEnd/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r Tests/EndToEnd/requirements.txt
	touch $@

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The Swift suite under ThreadSanitizer / AddressSanitizer, each in its own build directory.
test-tsan: deps
	./scripts/test-sanitizer.sh thread

test-asan: deps
	./scripts/test-sanitizer.sh address

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests

bench: deps release
	./scripts/bench.sh

clean:
	rm -rf .build $(VENV)
