import msabench_mult
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_mult)
def test_conformance(check):
    check()
