import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import msabench_mag_bert  # noqa: E402
from msabench.testing import parametrize_with_checks  # noqa: E402


@parametrize_with_checks(msabench_mag_bert)
def test_conformance(check):
    check()
