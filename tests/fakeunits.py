"""Fakes for the `msabench reproduce` tests, beside `fakes.Plugin`: methods on tiny-data that start from a stage run of
`tiny`, one whose process kills itself, one that takes its time. Worker processes and Ray tasks import them by name
(tests/ is on their path), as they do `fakes`."""

import os
import signal
import time
from dataclasses import replace

from torch import nn

from fakes import ENCODERS, TINY, MeanEncoder
from msabench import Objective, Stage, hookimpl
from msabench.pretrained import start_from_checkpoint


class StagedMean(MeanEncoder):
    """mean-linear that can start from an earlier run's checkpoint (``init_from``), so a stage can train it."""

    name = "staged-mean"

    def __init__(self, spec, width: int = 4, init_from: str | None = None):
        super().__init__(spec, width)
        if init_from:
            self.started_from = start_from_checkpoint(self, init_from, "text")


class Troubled(Objective):
    """L1; with ``kill``, the process kills itself (SIGKILL, as the kernel's out-of-memory killer does) on its first
    batch; with ``sleep``, each batch takes that many seconds longer."""

    name = "troubled-l1"

    def __init__(self, task, kill: bool = False, sleep: float = 0.0):
        super().__init__(task)
        self.kill, self.sleep = kill, sleep

    def forward(self, outputs, batch):
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.sleep)
        return {"total": nn.functional.l1_loss(outputs["prediction"].reshape(-1), batch["label"])}


STAGE = replace(TINY, name="tiny-text", encoders={**ENCODERS, "text": "staged-mean"})
STAGED = replace(STAGE, name="tiny-staged-text", stages=(Stage("tiny-text", "text"),))  # text: tiny-text's weights


def troubled(name: str, **options) -> object:
    return replace(STAGE, name=name, objective="troubled-l1", hparams={**TINY.hparams, "objective": options})


STAGED_TOO = replace(STAGED, name="tiny-staged-text-too", hparams={**TINY.hparams, "fusion": {"dropout": 0.1}})
KILLED = troubled("tiny-killed", kill=True)
AFTER_KILLED = replace(STAGE, name="tiny-after-killed", stages=(Stage("tiny-killed", "text"),))  # its stage crashes
SLOW = troubled("tiny-slow", sleep=0.1)


class Plugin:
    @hookimpl
    def register_encoders(self, register):
        register(StagedMean)

    @hookimpl
    def register_objectives(self, register):
        register(Troubled)

    @hookimpl
    def register_methods(self, register):
        for method in (STAGE, STAGED, STAGED_TOO, KILLED, AFTER_KILLED, SLOW):
            register(method)
