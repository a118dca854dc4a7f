# Two entry points, both safe to run again:
#   make run   creates .venv, installs the app and starts it
#   make test  creates/updates .venv with the test tools (and Debian's chromium), runs every test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test install install-test chromium lint bench screenshots

run: install
	$(BIN)/streamlit run app.py

install: $(VENV)/.installed-runtime
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.installed-runtime

chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-dejavu-core; }

lint: install-test
	$(BIN)/ruff check .

test: install-test chromium lint
	$(BIN)/python -m pytest

# The README's pictures, taken by the Chromium tests (a relative data folder, so no machine path shows).
SHOTS := home:home classify-upload:classify colorize-large-upload:colorize colorize-hints-photo:colorize-hints \
	train-replay:train
screenshots: install-test chromium
	CIFAR_LAB_DATA=$${CIFAR_LAB_DATA:-../shared/data} $(BIN)/python -m pytest -q tests/e2e \
		-k "home_renders or upload_switch or large_photo_upload or hints_colours_a_photo or start_watch"
	for shot in $(SHOTS); do cp tests/artifacts/$${shot%%:*}.png tests/screenshots/$${shot##*:}.png || exit 1; done

bench: install
	$(BIN)/python bench/data_load.py

# make data: download CIFAR-10, MNIST and Fashion-MNIST (about 213 MB) into $CIFAR_LAB_DATA (default ./data),
# checksums verified; datasets already there are skipped. Same as Home's "Get the datasets" button.
.PHONY: data
data: install
	$(BIN)/python -m core.download

# make space DIR=folder: the folder a Hugging Face Space needs (tracked app files, checkpoints, Dockerfile,
# README with its front matter; no tests, benchmarks or git history). README, "Deploying as a Hugging Face Space".
.PHONY: space
space:
	@test -n "$(DIR)" || { echo "usage: make space DIR=folder   (e.g. make space DIR=../cifar-lab-space)" >&2; exit 2; }
	@$(PYTHON) .ci/build_space.py "$(DIR)"
