#!/usr/bin/env bash
# Run here, before the GPU checks: fills .gpu/ (git-ignored) with what the GPU machine lacks and
# cannot fetch: wheels of gantk's dependencies missing from its Python 3.12 image (kornia,
# kornia_rs, segmentation-models-pytorch) and a copy of ../shared/data/photos for the loader
# benchmark. Then, on the machine, with .gpu carried along:
#
#   bash benchmarks/gpu_check.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu/wheels
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels kornia==0.9.0 kornia_rs==0.2.0 segmentation-models-pytorch==0.6.0
if [ -d ../shared/data/photos ]; then
    cp -r ../shared/data/photos .gpu/photos
fi
du -sh .gpu
