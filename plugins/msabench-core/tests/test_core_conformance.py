import msabench_core
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_core)
def test_conformance(check):
    check()
