"""What is held equal for every leaderboard row. Fixed by the host; plugins cannot change it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal

from msabench.metrics import METRICS


@dataclass(frozen=True)
class Protocol:
    """MMSA's published protocol.

    Five seeds; the model is selected on the validation split (lowest validation loss, or the
    method's declared key metric); training stops after `patience` epochs without improvement
    or at `max_epochs` (or the method's own, smaller epoch count); the test split is evaluated
    once, on the selected checkpoint. Leaderboards report mean ± std over seeds with `ddof`.

    ``precision`` is the arithmetic of forward passes: ``fp32``, or ``bf16`` / ``fp16`` through
    ``torch.autocast`` (fp16 with a gradient scaler); a run in another precision is another protocol.

    Where this departs from MMSA's trainers: the validation loss is the sample-weighted mean
    over the split (MMSA averages per-batch means of a shuffled loader and rounds to 4
    decimals before comparing); an epoch counts as better when it improves by more than 1e-6,
    as in MMSA.
    """

    name: str = "mmsa"
    version: int = 1
    seeds: tuple[int, ...] = (1111, 1112, 1113, 1114, 1115)
    patience: int = 8
    max_epochs: int = 100
    ddof: int = 1
    precision: str = "fp32"

    @property
    def id(self) -> str:
        """`mmsa-1`, with any departure from the defaults spelled out (`mmsa-1+max_epochs=3`).

        The seeds are not part of the id: rows report how many seeds they average.
        """
        default = Protocol()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if f.name not in ("name", "version", "seeds") and getattr(self, f.name) != getattr(default, f.name)
        ]
        return "+".join([f"{self.name}-{self.version}", *changed])

    def selection(self, key_metric: str | None) -> tuple[str, Literal["min", "max"]]:
        """(validation key, "min" or "max") used to pick the best epoch."""
        if key_metric is None:
            return "loss", "min"
        return key_metric, "max" if METRICS[key_metric].higher_is_better else "min"

    def to_dict(self) -> dict:
        return {"id": self.id, **asdict(self)}


PROTOCOL = Protocol()
