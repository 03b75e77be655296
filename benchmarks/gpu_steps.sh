#!/bin/sh
# The search step on one GPU, at the paper's CIFAR-10 search size (8 cells x 16 channels, 32x32
# images): NNI's DARTS at batch 64 against PC-DARTS (K=4) at 64 and at 256, on NNI's hub DARTS space,
# in float32 and bfloat16 autocast, each in the default and the channels-last layout. bfloat16 runs
# report the cosine of their architecture gradient to float32's. About 5 minutes on one H200.
#
#     sh benchmarks/gpu_steps.sh [RESULTS_DIRECTORY]      # default: benchmarks/results
set -e
results=${1:-benchmarks/results}
mkdir -p "$results"
for precision in float32 bfloat16; do
    for layout in "" --channels-last; do
        python benchmarks/pcdarts_vs_darts.py --device cuda --space nni:DARTS --width 16 --cells 8 --image-size 32 \
            --batch 64 --pc-batch-factor 4 --steps 20 --precision $precision $layout \
            --output "$results/pcdarts_vs_darts_gpu_${precision}${layout:+_channels_last}.json"
    done
done
