import msabench_self_mm
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_self_mm)
def test_conformance(check):
    check()
