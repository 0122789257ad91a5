"""`python tests/fakecli.py ARGS`: the msabench command with the host's fake plugin installed beside the real ones.

MSABENCH_TEST_KILL_AT_STEP=N kills the process with SIGKILL after its N-th optimizer step (a real kill -9 in the
middle of an epoch), for the resume tests.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import msabench.plugins  # noqa: E402
import msabench.train  # noqa: E402
from fakes import Plugin  # noqa: E402
from msabench.cli import cli  # noqa: E402

real_manager = msabench.plugins.get_plugin_manager


def with_fakes(load_entrypoints: bool = True):
    pm = real_manager(load_entrypoints)
    pm.register(Plugin(), name="fakes")
    return pm


def install() -> None:
    msabench.plugins.get_plugin_manager = with_fakes
    if kill_at := int(os.environ.get("MSABENCH_TEST_KILL_AT_STEP", "0")):
        real_step = msabench.train.optimizer_step

        def step(run):
            real_step(run)
            if run.step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        msabench.train.optimizer_step = step


if __name__ == "__main__":
    install()
    cli(prog_name="msabench")
