import msabench_baselines
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_baselines)
def test_conformance(check):
    check()
