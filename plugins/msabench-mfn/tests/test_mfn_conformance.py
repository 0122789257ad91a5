import msabench_mfn
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_mfn)
def test_conformance(check):
    check()
