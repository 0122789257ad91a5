"""A run's resume state (written after every epoch, atomically; a run started again continues after its last
finished epoch, bit-identically on the CPU) and its checkpoint of the selected weights."""

from __future__ import annotations

import io
import json
import logging
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from msabench.components import Callback, Data
from msabench.errors import TrainingError
from msabench.features import split_record
from msabench.protocol import Protocol
from msabench.results import DATA_KEYS, write_atomic
from msabench.runtime import load_torch

if TYPE_CHECKING:
    from msabench.train import Run

log = logging.getLogger("msabench")


def state_key(run: Run, variant: str) -> dict[str, Any]:
    """What a resume file must have been written for: method, variant, dataset, seed, protocol, hyper-parameters
    and the data's files and split."""
    return key_for(run.method.name, variant, run.data, run.seed, run.protocol, run.hparams)


def key_for(method: str, variant: str, data: Data, seed: int, protocol: Protocol, hparams: dict) -> dict[str, Any]:
    """`state_key` of the run these would make, before it is assembled."""
    return {
        "method": method,
        "variant": variant,
        "dataset": data.name,
        "seed": seed,
        "protocol": protocol.to_dict(),
        "hparams": hparams,
        "data": {key: data.provenance.get(key) for key in DATA_KEYS},
    }


def saved_key(path: str | Path) -> dict[str, Any] | None:
    """The key a resume file was written for (None: no file, or one that cannot be read)."""
    try:
        return json.loads(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["key"])
    except Exception:
        return None


def same_key(saved: dict[str, Any] | None, key: dict[str, Any]) -> bool:
    return saved is not None and saved == json.loads(json.dumps(key, sort_keys=True, default=str))


def save_state(run: Run, path: str | Path, key: dict[str, Any], started: float) -> None:
    """Write everything the run needs to continue after this epoch, atomically (rank 0 of a distributed run, with
    every rank's random state)."""
    rngs: list[dict[str, Any] | None] = [rng_state(run)]
    if run.distributed is not None:
        rngs = [None] * run.distributed.size
        torch.distributed.all_gather_object(rngs, rng_state(run))
    if not run.writes:
        torch.distributed.barrier()  # wait until rank 0 has written it
        return
    assert run.scaler is not None, "assemble gives every run its GradScaler"
    state = {
        "key": json.dumps(key, sort_keys=True, default=str),
        "epoch": run.epoch,
        "step": run.step,
        "stale": run.stale,
        "history": json.dumps(run.history),
        "seconds": json.dumps(run.seconds),
        "elapsed": run.elapsed + time.perf_counter() - started,
        "best": {"score": run.best.score, "epoch": run.best.epoch, "state": run.best.state},
        "model": run.model.state_dict(),
        "objective": run.objective.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedulers": {name: scheduler.state_dict() for name, scheduler in run.schedulers.items()},
        "callbacks": {_name(callback): callback.state_dict() for callback in _plain(run.callbacks)},
        "rng": rngs,
        "scaler": run.scaler.state_dict(),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())
    if run.distributed is not None:
        torch.distributed.barrier()


def restore(run: Run, path: str | Path, key: dict[str, Any]) -> None:
    """Continue a run from its resume file; refuse one written for another run."""
    try:
        state = load_torch(path, map_location=run.device)
    except ValueError as error:
        raise TrainingError(
            f"cannot read the resume state {path} ({error}); delete it to start this seed over."
        ) from None
    saved = json.loads(state["key"])
    expected = json.loads(json.dumps(key, sort_keys=True, default=str))
    if not same_key(saved, key):
        changed = sorted(name for name in expected if saved.get(name) != expected.get(name))
        raise TrainingError(
            f"the resume state {path} was written by a run with other {', '.join(changed)}; rerun that command to "
            "finish it, or pass --overwrite to discard it and start this seed over."
        )
    run.model.load_state_dict(state["model"])
    run.objective.load_state_dict(state["objective"])
    run.optimizer.load_state_dict(state["optimizer"])
    for name, scheduler in run.schedulers.items():
        scheduler.load_state_dict(state["schedulers"][name])
    for callback in _plain(run.callbacks):
        if _name(callback) in state["callbacks"]:
            callback.load_state_dict(state["callbacks"][_name(callback)])
    best = state["best"]
    weights = best["state"] and {k: v.cpu() for k, v in best["state"].items()}
    run.best = replace(run.best, score=best["score"], epoch=best["epoch"], state=weights)
    run.epoch, run.step, run.stale = state["epoch"], state["step"], state["stale"]
    run.history, run.elapsed = json.loads(state["history"]), state["elapsed"]
    run.seconds = json.loads(state.get("seconds", "[]"))
    rngs = state["rng"]
    if len(rngs) != (run.distributed.size if run.distributed else 1):
        raise TrainingError(
            f"the resume state {path} was written by a run on {len(rngs)} process(es); continue it on as many, or pass "
            "--overwrite to start this seed over."
        )
    set_rng_state(run, rngs[run.distributed.rank if run.distributed else 0])
    if state.get("scaler"):
        assert run.scaler is not None, "assemble gives every run its GradScaler"
        run.scaler.load_state_dict(state["scaler"])
    log.info("%s %s seed %d: resumed after epoch %d from %s", run.method.name, run.data.name, run.seed, run.epoch, path)


def _plain(callbacks: list[Callback]) -> list[Callback]:
    """The callbacks whose state is not already in the model's or objective's state_dict."""
    return [callback for callback in callbacks if not isinstance(callback, torch.nn.Module)]


def _name(callback: Callback) -> str:
    return f"{type(callback).__module__}.{type(callback).__qualname__}"


def rng_state(run: Run) -> dict[str, Any]:
    # numpy's stub gives get_state() its dict overload, but the default (legacy=True) returns MT19937's tuple.
    numpy = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state = {
        "torch": torch.get_rng_state(),
        "generator": run.generator.get_state(),
        "numpy": {
            "keys": torch.from_numpy(numpy[1].astype(np.int64)),
            "position": numpy[2],
            "gauss": [numpy[3], numpy[4]],
        },
        "python": json.dumps(random.getstate()),
    }
    if run.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(run.device)
    return state


def set_rng_state(run: Run, state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    run.generator.set_state(state["generator"].cpu())
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["position"], *numpy["gauss"]))
    version, internal, gauss = json.loads(state["python"])
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and run.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"].cpu(), run.device)


def save_checkpoint(run: Run, path: str | Path, variant: str) -> None:
    """The selected weights and what rebuilds the model (`msabench predict`, stage-2 methods' ``init_from``)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "model": run.best.state,
            "method": run.method.name,
            "variant": variant,
            "dataset": run.data.name,
            "seed": run.seed,
            "protocol": run.protocol.id,
            "hparams": run.hparams,
            "encoders": dict(run.method.encoders),
            "fusion": run.method.fusion,
            "objective": run.method.objective,
            "splits": split_record(run.data),
        },
        buffer,
    )
    write_atomic(path, buffer.getvalue())
