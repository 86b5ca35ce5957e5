#!/usr/bin/env bash
# The GPU checks of docs/benchmarks.md in one run of under ten minutes: the
# CUDA cases of the fast-path and --augment-on device tests, the training throughput of pix2pix 256
# at batch 1 and 16 against the plain eager loop on CUDA, and the loader with both --augment-on
# settings on the GPU.
# Every result (logs, JSON for benchmarks/report.py) goes to OUT_DIR.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          # default: benchmarks/results/gpu
#
# Needs a CUDA build of torch; gantk itself is taken from this checkout (PYTHONPATH). The wheels and
# photos that benchmarks/gpu_prepare.sh puts in .gpu/ are used when present.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ -d .gpu/wheels ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gantk-site .gpu/wheels/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/gantk-site" || exit 1
fi
photos=()
[ -d .gpu/photos ] && photos=(--photos .gpu/photos)
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/gpu.txt" 2>&1
python3 -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))" \
    | tee -a "$out/gpu.txt" || exit 1

python3 -m pytest -q -rs -p no:cacheprovider tests/test_fast_paths.py tests/test_device_augment.py -k cuda 2>&1 \
    | tee "$out/cuda-tests.log" || status=1
python3 benchmarks/throughput.py --device cuda --cases pix2pix-256-b1,pix2pix-256-b16 \
    --paths eager,eager-fused,gantk,gantk-bf16-cl,gantk-bf16-cl-compile --steps 20 --warmup 5 --no-loader \
    --out "$out/throughput-cuda.json" 2>&1 | tee "$out/throughput-cuda.log" || status=1
python3 benchmarks/loader.py --device cuda --pairs 256 --batch-size 16 "${photos[@]}" --out "$out/loader-cuda-b16.json" 2>&1 \
    | tee "$out/loader-cuda-b16.log" || status=1
exit $status
