"""Result paths stay valid file names however many hyper-parameters a run overrides."""

from msabench.results import result_path


def test_long_variants_are_cut_with_a_hash_and_stay_distinct(tmp_path):
    long = ", ".join(f"text.option_{i}={i}" for i in range(40))
    path = result_path(tmp_path, "ch-sims", "dmmsa", 1111, long)
    assert len(path.parent.name) <= 128 and path.parent.name.startswith("dmmsa+text.option_0=0")
    path.parent.mkdir(parents=True)  # a valid folder name (255 bytes at most on common file systems)
    assert result_path(tmp_path, "ch-sims", "dmmsa", 1111, long + ", x=1").parent != path.parent
    assert result_path(tmp_path, "ch-sims", "dmmsa", 1111, "train.lr=0.001").parent.name == "dmmsa+train.lr=0.001"


def test_variants_that_slug_alike_get_different_folders(tmp_path):
    spaced = result_path(tmp_path, "mosi", "tfn", 1, 'fusion.x="a b"')
    underscored = result_path(tmp_path, "mosi", "tfn", 1, 'fusion.x="a_b"')
    assert spaced.parent != underscored.parent
    assert spaced.parent.name.startswith("tfn+fusion.x=_a_b-")
