import msabench_lab5
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_lab5)
def test_conformance(check):
    check()
