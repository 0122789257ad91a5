import msabench_deca_idca
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_deca_idca)
def test_conformance(check):
    check()
