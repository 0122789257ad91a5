import msabench_cmu
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_cmu)
def test_conformance(check):
    check()
