import msabench_lrcmt
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_lrcmt)
def test_conformance(check):
    check()
