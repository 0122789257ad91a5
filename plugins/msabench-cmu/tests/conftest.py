import pytest

from msabench_cmu.tiny import write_release


@pytest.fixture
def release(tmp_path):
    """A tiny release under <tmp>/data/cmu-mosi (the documented layout below a data root)."""
    return write_release(tmp_path / "data" / "cmu-mosi")
