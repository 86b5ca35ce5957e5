#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md, in parts that each have a time limit and each leave their own
# results, so one that fails or runs out of time costs only itself:
#   b1, b16       pix2pix 256 at batch 1 and 16: eager, fused Adam, gantk fp32 / bf16 / channels-last / compiled,
#                 against the plain eager loop
#   b1-graphs, b16-graphs   the same cases with --compile-mode reduce-overhead (CUDA graphs of each network call)
#   b1-step-graph, b16-step-graph   the same cases with --cuda-graph (the whole step as one CUDA graph)
#   seg-cyclegan  segmentation and CycleGAN 256 at batch 1
#   loader        the loader with both --augment-on settings, at batch 16 and the default worker count
#   tests         the CUDA cases of the test suite (fast paths, CUDA graphs, --augment-on device, ...)
#   graph-tests   the tests of the fast paths and of --cuda-graph alone
# Every result (gpu.log, JSON for benchmarks/report.py) goes to OUT_DIR.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR [PART...]]    # default: benchmarks/results/gpu, every part
#   GPU_CHECK_BUDGET_S=500 bash benchmarks/gpu_check.sh OUT b1 b16   # no part runs past 500 s from the start
#
# Needs a CUDA build of torch; gantk itself is taken from this checkout (PYTHONPATH). The wheels and
# photos that benchmarks/gpu_prepare.sh puts in .gpu/ are used when present.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu}
shift || true
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(graph-tests b1-step-graph b16-step-graph b1-graphs b1 b16 b16-graphs loader tests seg-cyclegan)
budget=${GPU_CHECK_BUDGET_S:-3600}
mkdir -p "$out"
log="$out/gpu.log"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .gpu/wheels ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gantk-site .gpu/wheels/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/gantk-site" || exit 1
fi
photos=()
[ -d .gpu/photos ] && photos=(--photos .gpu/photos)
status=0

# part NAME SECONDS COMMAND...: run COMMAND for at most SECONDS, and never past the budget.
part() {
    local name=$1 limit=$2 left=$((budget - SECONDS))
    shift 2
    ((limit > left)) && limit=$left
    if ((limit < 30)); then
        echo "== $name: not run, the budget is spent" | tee -a "$log"
        status=1
        return
    fi
    echo "== $name (at most ${limit} s, started at ${SECONDS} s)" | tee -a "$log"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$log"
    local code=${PIPESTATUS[0]}
    if ((code != 0)); then
        echo "== $name: exit status $code$( ((code == 124)) && echo ' (out of time)')" | tee -a "$log"
        status=1
    fi
}

throughput=(python3 benchmarks/throughput.py --device cuda --alone --no-loader)  # interleaved processes slow each other on a GPU

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch, kornia, segmentation_models_pytorch, gantk; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'gantk', gantk.__version__)" \
    2>&1 | tee -a "$out/gpu.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1

for name in "${parts[@]}"; do
    case $name in
        b1) part b1 110 "${throughput[@]}" --cases pix2pix-256-b1 --steps 20 --warmup 5 --out "$out/throughput-cuda-b1.json" \
            --paths eager,eager-fused,gantk,gantk-bf16,gantk-bf16-cl,gantk-bf16-cl-compile ;;
        b1-graphs) part b1-graphs 130 "${throughput[@]}" --cases pix2pix-256-b1 --steps 20 --warmup 5 \
            --out "$out/throughput-cuda-b1-graphs.json" --paths eager,gantk-cudagraphs,gantk-bf16-cl-cudagraphs ;;
        b16) part b16 100 "${throughput[@]}" --cases pix2pix-256-b16 --steps 10 --warmup 4 --out "$out/throughput-cuda-b16.json" \
            --paths eager,gantk,gantk-bf16,gantk-bf16-cl,gantk-bf16-cl-compile ;;
        b16-graphs) part b16-graphs 90 "${throughput[@]}" --cases pix2pix-256-b16 --steps 10 --warmup 4 \
            --out "$out/throughput-cuda-b16-graphs.json" --paths eager,gantk-bf16-cl-cudagraphs ;;
        b1-step-graph) part b1-step-graph 200 "${throughput[@]}" --cases pix2pix-256-b1 --steps 20 --warmup 6 \
            --out "$out/throughput-cuda-b1-step-graph.json" \
            --paths eager,gantk-graph,gantk-bf16-cl-graph,gantk-compile-graph,gantk-bf16-cl-compile-graph ;;
        b16-step-graph) part b16-step-graph 120 "${throughput[@]}" --cases pix2pix-256-b16 --steps 10 --warmup 6 \
            --out "$out/throughput-cuda-b16-step-graph.json" --paths eager,gantk-bf16-cl-graph,gantk-bf16-cl-compile-graph ;;
        seg-cyclegan) part seg-cyclegan 150 "${throughput[@]}" --cases seg-256-b1,cyclegan-256-b1 --steps 10 --warmup 4 \
            --out "$out/throughput-cuda-seg-cyclegan.json" --paths eager,gantk,gantk-bf16-cl,gantk-bf16-cl-cudagraphs ;;
        loader) part loader 60 python3 benchmarks/loader.py --device cuda --pairs 256 --batch-size 16 "${photos[@]}" \
            --out "$out/loader-cuda-b16.json" ;;
        graph-tests) part graph-tests 200 python3 -m pytest -v -rs -p no:cacheprovider -k cuda tests/test_cuda_graph.py tests/test_fast_paths.py ;;
        tests) part tests 150 python3 -m pytest -v -rs -p no:cacheprovider --continue-on-collection-errors -k cuda tests ;;
        *) echo "unknown part $name: choose from b1 b1-graphs b1-step-graph b16 b16-graphs b16-step-graph seg-cyclegan loader tests graph-tests" >&2; exit 2 ;;
    esac
done
exit $status
