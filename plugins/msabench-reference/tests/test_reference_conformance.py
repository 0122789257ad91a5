import msabench_reference
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_reference)
def test_conformance(check):
    check()
