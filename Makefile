# The two quick-start commands are `make lab` and `make test`; both install what they need.
SHELL := /bin/bash

.PHONY: lab test browser-test notebooks bench check-cuda gpu-bundle help

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

lab: ## The main job: JupyterLab on notebooks/ with the Rust kernel installed and registered; JupyterLab's options in ARGS="..."
	.ci/lab $(ARGS)

test: ## Every test: cargo tests, docs, every notebook executed headless (quick mode), two in JupyterLab in a browser
	.ci/test

browser-test: ## Only the browser test of `make test`: notebooks 01 and 08 side by side in JupyterLab in headless Chromium
	.ci/browser-test

notebooks: ## Re-run every notebook in full mode and save the outputs (what is committed)
	.ci/setup && source .ci/env.sh && RWT_QUICK=0 "$$VENV/bin/python" .ci/run_notebooks.py --inplace

bench: ## Criterion benchmarks; each prints its ratio to the baseline at the end
	cargo bench

check-cuda: ## Build and link the CUDA code (lib, tests/cuda.rs, benches/cuda.rs) against CUDA 13 (PyPI wheels, into .cuda/); no GPU needed
	.ci/check-cuda

gpu-bundle: ## Release CUDA build (sm_90) of the CUDA tests, benchmarks and CLI with run.sh in target/gpu-bundle/, dry-run here
	.ci/gpu-bundle/make
