import msabench_bclstm
from msabench.testing import parametrize_with_checks


@parametrize_with_checks(msabench_bclstm)
def test_conformance(check):
    check()
