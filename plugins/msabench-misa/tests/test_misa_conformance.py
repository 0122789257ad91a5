import msabench_misa
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_misa)
def test_conformance(check):
    check()
