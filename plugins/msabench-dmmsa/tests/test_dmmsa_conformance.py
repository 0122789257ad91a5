import msabench_dmmsa
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_dmmsa)
def test_conformance(check):
    check()
