import msabench_awf
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_awf)
def test_conformance(check):
    check()
