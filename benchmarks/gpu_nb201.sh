#!/bin/sh
# Search quality at the papers' search size on one GPU, scored by NAS-Bench-201's published accuracies:
# NB201's cell at C=16, N=5 on Fashion-MNIST resized to 32x32, the search on 50,000 training images
# (25,000 train the weights, 25,000 the architecture) at batch 64, darts and pcdarts (K=4, the
# paper's 15-of-50 warm-up as 3 of 10) side by side, every search of a round at once on the one GPU,
# rounds of seeds until the time is spent. Each search's final result goes to RESULTS/gpu_nb201/,
# and the table of nni_darts_ext.nb201_summary is printed at the end.
#
#     sh benchmarks/gpu_nb201.sh [RESULTS_DIRECTORY] [NB201_CSV]    # defaults: benchmarks/results, ../shared/nb201/nb201.csv
#
# EPOCHS (10), SUBSET (50000), SEEDS_PER_ROUND (3), ROUNDS (2) and ACCELERATOR (gpu) size it;
# about 8 minutes on one H100 at the defaults.
set -e
results=${1:-benchmarks/results}/gpu_nb201
table=${2:-../shared/nb201/nb201.csv}
epochs=${EPOCHS:-10}
mkdir -p "$results"
for round in $(seq 0 $((${ROUNDS:-2} - 1))); do
    for seed in $(seq $((round * ${SEEDS_PER_ROUND:-3})) $(((round + 1) * ${SEEDS_PER_ROUND:-3} - 1))); do
        for variant in darts pcdarts; do
            python -m nni_darts_ext.trial --variant $variant --seed "$seed" --dataset fashion_mnist --image-size 32 \
                --space nni:NasBench201 --search-width 16 --search-cells 5 --retrain-width 16 --retrain-cells 5 \
                --search-subset "${SUBSET:-50000}" --batch-size 64 --search-epochs "$epochs" --arc-travel 120 \
                --retrain-epochs 0 --nb201-table "$table" --accelerator "${ACCELERATOR:-gpu}" \
                --variant-settings "{pcdarts: {k: 4, warmup_epochs: $((epochs * 3 / 10))}}" \
                --output-dir "$results/$variant-seed$seed" > "$results/$variant-seed$seed.log" 2>&1 &
        done
    done
    wait
done
python - "$results" "$table" <<'EOF'
import json, sys
from pathlib import Path
from nni_darts_ext import nb201_summary
from nni_darts_ext.nb201 import load_table
results = [json.loads(path.read_text())['final'] for path in sorted(Path(sys.argv[1]).glob('*/metrics.json'))]
table = load_table(sys.argv[2])
print(nb201_summary.format_table(nb201_summary.summarize(results, table), table))
EOF
