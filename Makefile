# swift-reverb: `make run` serves the development app; `make test` runs every test suite.
SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: run test deps venv build release test-swift test-e2e lint bench clean

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

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests

bench: deps release
	./scripts/bench.sh

clean:
	rm -rf .build $(VENV)
