# The two set-up commands of the README:
#   make run    install into .venv and run the gateway on its embedded default configuration
#   make test   install what the tests need (Debian packages too, as root) and run the tests

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= etc/legacy-gateway.yaml
# Debian packages the tests talk to: real peers and independent readers.
TEST_DEBS = dcmtk orthanc orthanc-dicomweb dicom3tools lrzsz gkermit socat systemd openssl chromium chromium-driver

.PHONY: run test install install-test debs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet ".[test]"

run: install
	$(BIN)/legacy-gateway run -c $(CONFIG)

debs:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

test: debs install-test
	$(BIN)/ruff check gateway drivers tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info var .pytest_cache
