# Two commands do everything on a fresh machine (each creates what it needs):
#   make demo   the main job on the embedded default model (an environment with ortviz[cpu] only)
#   make test   the test suite
.PHONY: demo test envs export-env default-model bench check-cuda clean

demo:
	scripts/envs.sh demo
	.venv/bin/ortviz dream -o out/dream.png

test:
	scripts/test.sh

envs:
	scripts/envs.sh all

export-env:
	scripts/envs.sh export

default-model: export-env
	scripts/build-default-model.sh

# tests/providers on CUDA (a machine with an NVIDIA GPU; not part of `make test`)
check-cuda:
	scripts/check-cuda.sh

# ortviz against PyTorch on this CPU (docs/benchmarks.md): the interleaved table, the size/batch
# scaling plot and the lowering A/B; results in bench/results/. BENCH_ARGS=--quick: a short run.
bench:
	scripts/envs.sh both
	.venv/bin/python bench/run.py --all $(BENCH_ARGS)

clean:
	rm -rf .venv .venv-export .venv-openvino .venv-gpu .venv-docs build out
