"""A small results folder for the site's tests, from the committed results: synthetic-mosi-aligned (three methods,
five seeds), deca-idca on synthetic-imagetext under two protocols, three seeds of tfn relabelled as real MOSI data
(verified files), and one result that does not validate."""

import json
import shutil
from pathlib import Path

COMMITTED = Path(__file__).parent.parent / "leaderboards" / "results"
MOSI = "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524"  # MMSA's unaligned_50.pkl


def results_for_site(folder: Path) -> Path:
    shutil.copytree(COMMITTED / "synthetic-mosi-aligned", folder / "synthetic-mosi-aligned")
    shutil.copytree(COMMITTED / "synthetic-imagetext" / "deca-idca", folder / "synthetic-imagetext" / "deca-idca")
    for seed in (1111, 1112, 1113):
        data = json.loads((COMMITTED / f"synthetic-mosi/tfn/mmsa-1/seed-{seed}.json").read_text())
        data["dataset"] = "mosi"
        data["data"] = {"source": "file", "files": {"MOSI/Processed/unaligned_50.pkl": MOSI}, "verified": True}
        data["data"] |= {"synthetic": False}
        path = folder / f"mosi/tfn/mmsa-1/seed-{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
    bad = json.loads((COMMITTED / "synthetic-mosi/lf-dnn/mmsa-1/seed-1111.json").read_text())
    bad["metrics"]["Acc-2_has0"] = 7.3
    path = folder / "synthetic-mosi/lf-dnn/mmsa-1/seed-1111.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(bad, indent=1))
    return folder
