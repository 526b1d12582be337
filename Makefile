# The template's two commands: `make demo` (render + run the generated pipeline) and `make test`.
# Both bootstrap uv into .tools/ when it is not on PATH; everything else comes from uv.lock.
.DEFAULT_GOAL := help
SHELL := bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)
export DVC_NO_ANALYTICS ?= 1
export MLFLOW_DISABLE_TELEMETRY ?= true
export GX_ANALYTICS_ENABLED ?= false
PROFILE ?= mlops
DEMO ?= .demo/my-ml-project
# The llmops demo runs offline on the tiny base model (random weights, a tokenizer trained from the bundled text).
DEMO_ANSWERS := $(if $(filter llmops,$(PROFILE)),--data profile=llmops --data base_model=tiny)
# torch from the machine's own wheels when pip has some (offline machines), else PyTorch's index.
TORCH_INDEX := $(if $(filter llmops,$(PROFILE)),$(shell python3 tests/torch_index.py .demo/torch-index))
DEMO_ENV := $(if $(TORCH_INDEX),UV_INDEX="$(TORCH_INDEX)")
TESTS ?=
# Test workers (pytest-xdist): one per core; tests that share a built project stay on one (tests/conftest.py).
WORKERS ?= auto

.PHONY: help tools env demo test test-fast test-slow workflows lint docs bench bench-serve

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

tools: ## Install uv into .tools/ unless it is already on PATH
	@command -v uv >/dev/null || { python3 -m venv .tools && .tools/bin/pip install --quiet uv; }

env: tools ## The template's dev environment (.venv, from uv.lock)
	uv sync --frozen

demo: env ## Render the template with defaults into $(DEMO) and run it end to end (PROFILE=llmops: the LLM profile, offline)
	rm -rf $(DEMO)
	uv run copier copy --quiet --defaults --vcs-ref HEAD $(DEMO_ANSWERS) "$(CURDIR)" $(DEMO)
	@echo "make setup (package installation log: $(DEMO).setup.log)"
	@$(DEMO_ENV) $(MAKE) --no-print-directory -C $(DEMO) setup >$(DEMO).setup.log 2>&1 || { tail -40 $(DEMO).setup.log; exit 1; }
ifeq ($(PROFILE),llmops)
	$(DEMO_ENV) $(MAKE) --no-print-directory -C $(DEMO) repro promote
	bash scripts/demo-chat.sh $(DEMO)
else
	$(MAKE) --no-print-directory -C $(DEMO) repro promote
	bash scripts/demo-delivery.sh $(DEMO)
endif

test: env ## Run all tests of the template (TESTS="tests/test_x.py ..." for a part)
	uv run pytest -v --durations=20 -n $(WORKERS) $(TESTS)

test-fast: env ## The quick tier: renders, answers, file sets, workflows (no project built or run)
	uv run pytest -m "not slow" -n $(WORKERS) $(TESTS)

test-slow: env ## The lifecycle tier: the tests that build generated projects and run them
	uv run pytest -m slow -v --durations=20 -n $(WORKERS) $(TESTS)

workflows: env ## Render every answer combination and audit the generated workflows (fast)
	uv run pytest -m "not slow" tests/test_workflows.py

lint: env ## Lint the template's own Python
	uv run ruff check . && uv run ruff format --check .

docs: env ## The handbook: docs/ as a site in .site/ (offline: Mermaid from npm, pinned; warnings are errors)
	scripts/docs.sh

bench: env ## Benchmarks of generation, set-up and the pipeline (numbers go in README.md)
	uv run python bench/run.py

bench-serve: env ## Serving benchmark: the generated service against `mlflow models serve` (bench/README.md)
	uv run python bench/serve.py
