# The two entry points for a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export PYOPENGL_PLATFORM ?= egl
export PYTHONUNBUFFERED := 1
OUT ?= out/demo

.PHONY: demo test setup-dev clean-demo

$(VENV)/.installed-dev: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh dev

$(VENV)/.installed-dev,anny,photo: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh dev,anny,photo

setup-dev: $(VENV)/.installed-dev

## demo: install, then run the pipeline on the embedded defaults (see scripts/demo.sh)
demo: $(VENV)/.installed-dev
	OUT=$(OUT) VENV=$(VENV) bash scripts/demo.sh

## test: install (with the anny extra for the body-model builder tests and the photo extra for
## lasor-predict --image on a real photo), then run the test suite
test: $(VENV)/.installed-dev,anny,photo
	$(PY) -m pytest -q

clean-demo:
	rm -rf $(OUT)
