#!/bin/bash
# Three seeds with checkpoints per (method, dataset), then `msabench robustness` on each run (a late-fusion
# reference for the second method of each pair), timed; work goes to ${1:-robustness-demo}/.
set -euo pipefail
out=${1:-robustness-demo}
M="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/msabench"
mkdir -p "$out/logs" && cd "$out"
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
train() { $M run -m "$1" -d "$2" --seeds 1111,1112,1113 --no-progress -q --results results --leaderboards boards > "logs/$1-$2.train.log" 2>&1; }
rob() {
	for s in 1111 1112 1113; do
		/usr/bin/time -f "%e s" $M robustness --run "results/$2/$1/seed-$s.json" ${3:+--reference "results/$2/$3/seed-$s.json"} \
			--device cpu > "logs/$1-$2-$s.robustness.log" 2>&1
	done
}
train lf-dnn synthetic-mosi; train lmf synthetic-mosi; rob lmf synthetic-mosi lf-dnn; rob lf-dnn synthetic-mosi
train lf-dnn synthetic-sims; train dmmsa synthetic-sims; rob dmmsa synthetic-sims lf-dnn; rob lf-dnn synthetic-sims
train deca-idca-none synthetic-imagetext; train deca-idca synthetic-imagetext
rob deca-idca synthetic-imagetext deca-idca-none; rob deca-idca-none synthetic-imagetext
$M leaderboard --results results --out boards --robustness > /dev/null
tail -n 1 logs/*.robustness.log
