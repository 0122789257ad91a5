"""`python -m msabench`: the same command as `msabench` (and what `torchrun -m msabench` starts)."""

from msabench.cli import cli

if __name__ == "__main__":
    cli(prog_name="msabench")
