"""`mosi-bclstm` on a tiny release written in the published formats (see `msabench_cmu.tiny`)."""

import csv
import json
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from msabench import DataError  # noqa: E402
from msabench.cli import cli  # noqa: E402
from msabench_cmu import MOSIbcLSTM, fold_of  # noqa: E402
from msabench_cmu.tiny import SCORES, code, write_csv, write_labels  # noqa: E402

RELEASE_TEST = ["zhpQhgha_KU_1", "zhpQhgha_KU_2", "zhpQhgha_KU_3", "zhpQhgha_KU_4"]


def load(folder, **options):
    return MOSIbcLSTM(folder, verify=False, **options).load()


def test_its_videos_are_its_groups_whole_and_in_order(release):
    data = load(release.parent)
    assert MOSIbcLSTM.groups == data.groups == "video"
    test = data.splits["test"]
    (batch,) = list(test.batches(5, groups="video"))  # the one test video, whole
    assert batch["index"].tolist() == [0, 1, 2, 3] and batch["group"].tolist() == [0, 0, 0, 0]
    train = data.splits["train"]
    bounds = train.group_bounds("video").tolist()
    videos = [train.ids[start].rsplit("_", 1)[0] for start in bounds[:-1]]
    assert len(videos) == len(set(videos)) == 3 and bounds[-1] == len(train) == 10


def score(uid):
    video, k = uid.rsplit("_", 1)
    return float(np.float32(SCORES[video][int(k) - 1]))


def test_reads_the_release_row_by_row_and_joins_the_sdk_scores_in_stored_order(release):
    data = load(release.parent)  # the data root that holds cmu-mosi/
    train, valid, test = (data.splits[s] for s in ("train", "valid", "test"))
    assert test.ids == RELEASE_TEST  # bc-LSTM's test split, by video then k
    assert (len(train), len(valid), len(test)) == (10, 2, 4)  # 4 train videos: round(0.8) = 1 carved out for valid
    assert data.provenance["split"]["valid_videos"] == ["tmZoasNr4rU"]
    for split in (train, valid, test):
        assert split.tensors["label"].tolist() == [score(uid) for uid in split.ids]  # k-th stored row, not time order
        codes = torch.tensor([code(*_parts(uid)) for uid in split.ids])
        assert torch.equal(split.tensors["text"][:, 0, 0], codes) and split.tensors["text"].shape[1:] == (1, 100)
        assert torch.equal(split.tensors["audio"][:, 0, -1], codes + 0.25) and split.tensors["audio"].shape[2] == 73
        assert torch.equal(split.tensors["vision"][:, 0, 3], codes + 0.5) and split.tensors["vision"].shape[2] == 100
        for modality in ("text", "audio", "vision"):
            assert split.tensors[f"{modality}_lengths"].tolist() == [1] * len(split)
        assert split.raw["raw_text"] == [f"WORDS OF {uid.upper()}" for uid in split.ids]
        videos = data.provenance["videos"]
        assert [f"{videos[v]}_{k}" for v, k in zip(split.tensors["video"], split.tensors["position"], strict=True)] == (
            split.ids
        )
    assert valid.ids == ["tmZoasNr4rU_1", "tmZoasNr4rU_2"] and train.ids[4:7] == [
        "8d-gEyoeBzc_1",
        "8d-gEyoeBzc_2",
        "8d-gEyoeBzc_3",
    ]
    assert data.provenance["label_agreement"] == {"utterances": 16, "agree": 16, "zero_scores": 1}
    assert data.provenance["loader"] == {"plugin": "msabench-cmu", "version": "0.1.0", "reader": "mosi-bclstm/1"}
    assert len(data.provenance["files"]) == 10 and data.provenance["verified"] is False
    assert data.hparams_from == "mosi" and data.task.family == "mosi" and "text_bert" not in train.tensors
    assert set(data.specs) >= {"text", "audio", "vision", "raw_text"} and data.specs["audio"].dim == 73


def _parts(uid):
    video, k = uid.rsplit("_", 1)
    return video, int(k)


def test_the_validation_videos_follow_the_seed_and_fraction(release):
    other = load(release, split_seed=7).provenance["split"]
    assert (other["kind"], other["seed"], other["valid_videos"]) == ("bclstm", 7, ["2iD-tVS8NPw"])
    half = load(release, valid_fraction=0.5)
    assert half.provenance["split"]["valid_videos"] == ["WKA5OygbEKI", "tmZoasNr4rU"] and len(half.splits["valid"]) == 5
    with pytest.raises(DataError, match="valid_fraction=1.5: expected a number between 0 and 1"):
        MOSIbcLSTM(release, valid_fraction=1.5)
    with pytest.raises(DataError, match="split=random: expected bclstm or standard"):
        MOSIbcLSTM(release, split="random")


def test_the_standard_folds_and_their_warning(release, caplog, monkeypatch):
    with caplog.at_level(logging.WARNING, logger="msabench"):
        data = load(release, split="standard")
    assert [data.splits[s].ids for s in ("valid", "test")] == [
        ["WKA5OygbEKI_1", "WKA5OygbEKI_2", "WKA5OygbEKI_3"],
        ["tmZoasNr4rU_1", "tmZoasNr4rU_2", *RELEASE_TEST],
    ]
    assert len(data.splits["train"]) == 7
    split = data.provenance["split"]
    assert (split["kind"], split["test_videos_seen_by_extractors"], split["test_videos"]) == ("standard", 1, 2)
    assert "which include 1 of the standard test fold's 2 videos" in caplog.text
    with pytest.raises(DataError, match="split=standard uses the SDK's own validation fold"):
        MOSIbcLSTM(release, split="standard", split_seed=3)
    folds = {**fold_of("mosi"), "WKA5OygbEKI": "train"}  # a release with none of the validation fold's videos
    monkeypatch.setattr("msabench_cmu.bclstm.fold_of", lambda dataset: folds)
    with pytest.raises(DataError, match="mosi-bclstm: split=standard leaves no utterance in valid"):
        load(release, split="standard")


def test_files_are_checked_against_the_release_sha256(release):
    with pytest.raises(DataError, match="has SHA-256 .* but the published file has .*--no-verify") as error:
        MOSIbcLSTM(release).load()
    assert "\n" not in str(error.value)


def one_line(error):
    message = str(error.value)
    assert "\n" not in message, message
    return message


def rewrite(path, change):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    write_csv(path, change(rows))


def test_missing_and_truncated_files(release):
    audio = (release / "bc-lstm/audio/audio_test0.csv").read_text()
    (release / "bc-lstm/audio/audio_test0.csv").unlink()
    with pytest.raises(DataError, match="audio_test0.csv .*which does not exist") as error:
        load(release)
    one_line(error)
    (release / "bc-lstm/audio/audio_test0.csv").write_text(audio)
    text = (release / "bc-lstm/video/video_train0.csv").read_text()
    (release / "bc-lstm/video/video_train0.csv").write_text(text[: len(text) - 200])
    with pytest.raises(
        DataError, match=r"video_train0.csv:12: expected 101 columns .* found \d+ \(the file may be"
    ) as e:
        load(release)
    one_line(e)
    data = (release / "CMU_MOSI_Opinion_Labels.csd").read_bytes()
    (release / "CMU_MOSI_Opinion_Labels.csd").write_bytes(data[:1000])
    (release / "bc-lstm/video/video_train0.csv").write_text(text)
    with pytest.raises(DataError, match="CMU_MOSI_Opinion_Labels.csd is truncated or corrupt") as error:
        load(release)
    one_line(error)


def test_a_wrong_column_count_names_file_and_row(release):
    rewrite(release / "bc-lstm/transcripts.csv", lambda rows: rows[:2] + [rows[2][:3]] + rows[3:])
    with pytest.raises(DataError, match=r"transcripts.csv:3: expected 4 columns \(utterance id, transcript") as error:
        load(release)
    one_line(error)


def test_an_utterance_without_a_label(release):
    scores = {video: values for video, values in SCORES.items() if video != "WKA5OygbEKI"}
    write_labels(release / "CMU_MOSI_Opinion_Labels.csd", scores)
    with pytest.raises(DataError, match=r"transcripts.csv:\d+: utterance WKA5OygbEKI_1 has no label: .* no video") as e:
        load(release)
    one_line(e)
    write_labels(release / "CMU_MOSI_Opinion_Labels.csd", {**SCORES, "zhpQhgha_KU": [0.4, -1.6, 3.0]})
    with pytest.raises(DataError, match="utterance zhpQhgha_KU_4 has no label: .* has 3 segments for video zhp") as e:
        load(release)
    one_line(e)


def test_a_label_file_of_another_dataset(release):
    labels = release / "CMU_MOSI_Opinion_Labels.csd"
    write_labels(labels, dataset="CMU-MOSEI")
    with pytest.raises(DataError, match="its metadata names dataset 'CMU-MOSEI'; mosi-bclstm needs CMU-MOSI") as e:
        load(release)
    one_line(e)
    write_labels(labels, {"-3g5yACwYnA": [1.0], "10219": [0.5]}, dataset="")  # MOSEI-like ids, no name
    with pytest.raises(DataError, match="holds none of the release's 5 videos .*label file of another dataset") as e:
        load(release)
    one_line(e)


def test_labels_that_disagree_with_the_release(release):
    write_labels(release / "CMU_MOSI_Opinion_Labels.csd", {**SCORES, "tmZoasNr4rU": [2.6, -3.0]})  # rows swapped
    with pytest.raises(DataError, match=r"differs from the release's binary label for 2 of 16 utterances \(first: t"):
        load(release)
    rewrite(release / "bc-lstm/audio/audio_test0.csv", lambda rows: [rows[0], [*rows[1][:-1], "1"], *rows[2:]])
    write_labels(release / "CMU_MOSI_Opinion_Labels.csd")
    with pytest.raises(DataError, match=r"audio_test0.csv:2: the label column is 1, but utterance zhpQhgha_KU_2") as e:
        load(release)
    one_line(e)


def test_the_two_copies_of_the_text_features_and_the_row_index(release):
    rewrite(release / "bc-lstm/text_test.csv", lambda rows: [rows[0], [rows[1][0], "9", *rows[1][2:]], *rows[2:]])
    with pytest.raises(DataError, match="text_test.csv:2: its text features differ from row 2 of .*text_test0.csv"):
        load(release)
    rewrite(release / "bc-lstm/text_test.csv", lambda rows: [["99", *rows[0][1:]], *rows[1:]])
    with pytest.raises(DataError, match=r"text_test.csv:1: column 0 is '99'; expected a row number of transcripts"):
        load(release)
    rewrite(release / "bc-lstm/text_test.csv", lambda rows: [["x", *rows[0][1:]], *rows[1:]])
    with pytest.raises(DataError, match="text_test.csv:1: 'x' is not a number"):
        load(release)


def test_the_data_root_or_the_folder_itself(release):
    assert MOSIbcLSTM(release.parent).root == release == MOSIbcLSTM(release).root
    assert MOSIbcLSTM(release.parent / "elsewhere").root == release.parent / "elsewhere" / "cmu-mosi"


def write_tokenizer(folder):
    from transformers import BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "words", "of", "_", "-", "2", "3", "4"]
    (folder / "vocab.txt").parent.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def test_a_tokenizer_makes_text_bert_from_the_transcripts(release, tmp_path):
    folder = write_tokenizer(tmp_path / "tokenizer")
    data = MOSIbcLSTM(release, verify=False, tokenizer=str(folder)).load(inputs=["text_bert", "audio"])
    test = data.splits["test"]
    tokens = test.tensors["text_bert"]
    assert tokens.dtype == torch.int64 and tokens.shape[:2] == (4, 3)
    # "WORDS OF ZHPQHGHA_KU_1" -> [CLS] words of [UNK] _ [UNK] _ [UNK] [SEP]: 9 tokens, the longest transcripts' length
    assert tokens[0, 0, :9].tolist() == [2, 5, 6, 1, 7, 1, 7, 1, 3] and tokens.shape[2] == max(
        int(split.tensors["text_bert"][:, 1].sum(1).max()) for split in data.splits.values()
    )
    assert test.tensors["text_lengths"].tolist() == tokens[:, 1].sum(1).tolist() == [9, 9, 9, 9]
    assert tokens[:, 2].sum() == 0 and data.vocab_size == 12 and data.tokenizer == str(folder)
    info = data.provenance["tokenizer"]
    assert info["vocab_size"] == 12 and info["truncated"] == 0 and len(info["vocab_sha256"]) == 64
    spec = data.specs["text_bert"]
    assert spec.shape == (3, tokens.shape[2]) and spec.vocab_size == 12 and spec.tokenizer == str(folder)


def test_text_bert_without_a_tokenizer_or_with_a_bad_one(release, tmp_path):
    with pytest.raises(DataError, match="text_bert .*needs|pass --data-option tokenizer=NAME_OR_FOLDER") as error:
        MOSIbcLSTM(release, verify=False).load(inputs=["text_bert"])
    one_line(error)
    with pytest.raises(DataError, match=r"mosi-bclstm: --data-option tokenizer=.*nowhere is not a folder") as error:
        MOSIbcLSTM(release, verify=False, tokenizer=str(tmp_path / "nowhere")).load()
    one_line(error)
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DataError, match=r"cannot load the tokenizer .* --data-option tokenizer=DIR, or put it"
    ) as error:
        MOSIbcLSTM(release, verify=False, tokenizer=str(tmp_path / "empty")).load()
    assert "encoder" not in one_line(error) and "--set" not in str(error.value)


def run(tmp_path, *extra):
    args = ["run", "--method", "lf-dnn", "--dataset", "mosi-bclstm", "--data-root", str(tmp_path / "data")]
    args += ["--no-verify", "--seeds", "1111", "--max-epochs", "2", "--results", str(tmp_path / "results")]
    args += ["--leaderboards", str(tmp_path / "boards"), "--no-progress", "--no-checkpoints", "-q", *extra]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    newest = max((tmp_path / "results" / "mosi-bclstm").rglob("seed-1111.json"), key=lambda p: p.stat().st_mtime_ns)
    return json.loads(newest.read_text()), outcome


def test_lf_dnn_runs_with_its_mosi_hyper_parameters_and_records_the_data(release, tmp_path):
    result, _ = run(tmp_path)
    assert result["dataset"] == "mosi-bclstm" and set(result["metrics"]) >= {"Acc-2_has0", "Acc-7", "MAE", "Corr"}
    assert result["predictions"]["ids"] == RELEASE_TEST and result["hparams"]["train"]["batch_size"] == 128
    assert result["data"]["split"]["valid_videos"] == ["tmZoasNr4rU"]
    assert result["data"]["loader"]["reader"] == "mosi-bclstm/1" and result["data"]["verified"] is False
    assert "the validation videos are train videos" in result["data"]["caveat"]  # the features have seen them
    assert "Caveat: bc-LSTM's text-CNN" in (tmp_path / "boards" / "mosi-bclstm.md").read_text()
    for default in ("split=bclstm", "split_seed=42", "valid_fraction=0.2"):  # defaults, given: the same row
        same, outcome = run(tmp_path, "--data-option", default)
        assert same == result and "done already" in outcome.output
    other, _ = run(tmp_path, "--data-option", "split_seed=7")
    assert other["variant"] == "data.split_seed=7" and other["data"]["split"]["seed"] == 7
    standard, _ = run(tmp_path, "--data-option", "split=standard")
    assert standard["variant"] == 'data.split="standard"' and len(standard["predictions"]["ids"]) == 6
    assert "on split=standard these features have seen most test videos" in standard["data"]["caveat"]


def test_a_bert_method_without_a_tokenizer_is_refused_in_one_line(release, tmp_path):
    args = ["run", "--method", "self-mm", "--dataset", "mosi-bclstm", "--data-root", str(tmp_path / "data")]
    outcome = CliRunner().invoke(cli, [*args, "--no-verify", "--results", str(tmp_path / "r"), "-q"])
    assert outcome.exit_code != 0
    assert "text_bert (BERT token ids) is made from the transcripts by a tokenizer" in outcome.output


def test_bc_lstms_own_200_epochs_are_capped_at_the_protocols_100_and_it_says_so(release, tmp_path, caplog):
    from msabench.api import Request, plan

    with caplog.at_level(logging.INFO, logger="msabench"):
        planned = plan(Request("bc-lstm", "mosi-bclstm", data_root=str(tmp_path / "data"), verify=False))
    assert planned.hparams["train"]["max_epochs"] == 200 and planned.protocol.max_epochs == 100
    assert "bc-lstm: its train.max_epochs=200 is capped at the protocol's 100 epochs (--max-epochs 200" in caplog.text
