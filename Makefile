# swift-reverb: `make run` serves the development app; `make test` runs every test suite.
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: run test deps venv build release test-swift test-e2e test-tsan test-asan lint bench fuzz clean \
	dashboard-screenshot

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
	$(SWIFT) format lint --strict --recursive Sources Tests Fuzz

# Refreshes docs/dashboard.png (docs.md "Dashboard") from the browser test's screenshot.
dashboard-screenshot: build venv
	REVERB_BIN="$(CURDIR)/.build/debug/reverb" REVERB_DASHBOARD_SCREENSHOT="$(CURDIR)/docs/dashboard.png" \
		$(PYTHON) -m pytest -q Tests/EndToEnd/test_dashboard_browser.py

bench: deps release
	./scripts/bench.sh

# libFuzzer + AddressSanitizer on every parser of outside bytes (Fuzz/README.md);
# FUZZ_SECONDS per target (default 60), FUZZ_TARGETS to pick some.
fuzz: deps
	./scripts/fuzz.sh

clean:
	rm -rf .build $(VENV)
