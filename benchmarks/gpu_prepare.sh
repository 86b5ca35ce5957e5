#!/usr/bin/env bash
# For a GPU machine that cannot download: run this where pip works. It fills .gpu/ (git-ignored)
# with wheels of the gantk dependencies a PyTorch image often lacks (kornia, kornia_rs,
# segmentation-models-pytorch; for CPython 3.12 on x86-64 Linux, edit --python-version otherwise)
# and a copy of ../shared/data/photos for the loader benchmark. Copy the checkout with .gpu/ to
# the GPU machine and run there:
#
#   bash benchmarks/gpu_check.sh OUT_DIR
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
