"""What plugins build on: the Dataset, Encoder, Fusion and Objective base classes, the Method recipe, and Batch."""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from msabench.errors import DataError
from msabench.paths import data_root
from msabench.results import RunResult, write_atomic

if TYPE_CHECKING:
    from msabench.train import Run

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Task:
    """What a dataset asks to predict, and which metric family scores it (see `msabench.metrics`).

    ``kind`` is ``"regression"`` (one value per sample, labels in ``label_range``), ``"classification"``
    (one of ``classes``) or ``"multilabel"`` (one binary decision per entry of ``classes``, e.g. IEMOCAP's four
    emotions: labels [B, K] of 0/1, predictions [B, 2K] logits, two per entry).
    """

    kind: str
    family: str  # "mosi", "sims", "classification" or "iemocap"
    label_range: tuple[float, float] | None = None  # regression labels lie in this closed range
    classes: tuple[str, ...] = ()  # class names (classification: index = label id; multilabel: one per decision)

    @property
    def out_dim(self) -> int:
        """Width of the model's prediction: 1 for regression, one logit per class, two per multilabel entry."""
        return {"regression": 1, "classification": len(self.classes), "multilabel": 2 * len(self.classes)}[self.kind]

    def decide(self, prediction: torch.Tensor) -> torch.Tensor:
        """The model's answer from its prediction: the value [B], the class id [B], or one 0/1 per entry [B, K]."""
        if self.kind == "regression":
            return prediction.reshape(-1)
        if self.kind == "multilabel":
            return prediction.reshape(len(prediction), len(self.classes), 2).argmax(-1)
        return prediction.argmax(-1)


@dataclass(frozen=True)
class InputSpec:
    """One input as the loaded data has it: name, per-sample shape, and for token ids their vocabulary."""

    name: str
    shape: tuple[int, ...]
    vocab_size: int | None = None  # token-id inputs: ids are below this
    tokenizer: str | None = None  # token-id inputs: the tokenizer that produced the ids (None = synthetic vocab)

    @property
    def dim(self) -> int:
        return self.shape[-1]


class Batch(dict):
    """A mini-batch: input name -> tensor, plus `label` (and `label_T`/`label_A`/`label_V` where present)
    and `index` (row numbers in the split). A batch of whole groups (`Split.batches` with ``groups``) also holds
    `group`: each sample's group within the batch (0, 1, ...), each group's samples contiguous and in split order."""

    def to(self, device: torch.device | str) -> Batch:
        return Batch({key: value.to(device, non_blocking=True) for key, value in self.items()})

    @property
    def size(self) -> int:
        return len(self["index"])


class Split:
    """One split held in memory as tensors (index batching is ~50x faster than per-item loading).

    ``raw`` holds per-sample inputs that are not tensors yet (``raw_text`` strings, ``image`` file
    bytes). They never reach a batch: before training, the host runs the encoder that reads them
    through its `Encoder.preprocess` once per split (see `msabench.features`).
    """

    def __init__(
        self,
        name: str,
        ids: list[str],
        tensors: Mapping[str, torch.Tensor],
        raw: Mapping[str, Sequence[Any]] | None = None,
    ):
        sizes = {key: len(value) for key, value in {**tensors, **(raw or {})}.items()}
        if len(set(sizes.values()) | {len(ids)}) != 1:
            raise ValueError(f"split {name!r}: arrays disagree on the number of samples: {sizes}, ids {len(ids)}")
        self.name, self.ids, self.tensors = name, list(ids), dict(tensors)
        self.raw = {key: list(values) for key, values in (raw or {}).items()}

    def __len__(self) -> int:
        return len(self.ids)

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        groups: str | None = None,
    ) -> Iterator[Batch]:
        """Mini-batches in split order, or shuffled with `generator` (seeded by the trainer).

        With `groups` (the tensor holding each sample's group id, `Dataset.groups`), a batch is `batch_size` whole
        groups: shuffling permutes the groups, never the samples inside one, and each batch carries ``group``, the
        samples' group within the batch (see `Batch`)."""
        if groups is None:
            order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
            for start in range(0, len(self), batch_size):
                index = order[start : start + batch_size]
                yield Batch({key: value[index] for key, value in self.tensors.items()}, index=index)
            return
        bounds = self.group_bounds(groups)
        count = len(bounds) - 1
        order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
        for start in range(0, count, batch_size):
            chosen = order[start : start + batch_size]
            sizes = bounds[chosen + 1] - bounds[chosen]
            index = torch.cat([torch.arange(int(bounds[g]), int(bounds[g + 1])) for g in chosen])
            group = torch.repeat_interleave(torch.arange(len(chosen)), sizes)
            yield Batch({key: value[index] for key, value in self.tensors.items()}, index=index, group=group)

    def batch_count(self, batch_size: int, groups: str | None = None) -> int:
        """How many batches `batches` yields (of samples, or with `groups` of whole groups)."""
        units = len(self) if groups is None else len(self.group_bounds(groups)) - 1
        return -(-units // batch_size)

    def group_bounds(self, key: str) -> torch.Tensor:
        """Where each group starts: ``[G + 1]`` row offsets (the last is the split's length), groups in split order,
        read from the tensor `key` (one group id per sample). A group whose samples are not contiguous is refused."""
        if key not in self.tensors:
            raise DataError(
                f"split {self.name!r} has no tensor {key!r} to group its samples by (it has {', '.join(self.tensors)})."
            )
        ids = self.tensors[key]
        if ids.dim() != 1 or ids.is_floating_point():
            raise DataError(
                f"split {self.name!r}: the group ids {key!r} must be one whole number per sample, not a "
                f"{ids.dtype} tensor of shape {tuple(ids.shape)}."
            )
        values, counts = torch.unique_consecutive(ids, return_counts=True)
        if len(torch.unique(values)) != len(values):
            seen: set[int] = set()
            row = 0
            for value, size in zip(values.tolist(), counts.tolist(), strict=True):
                if value in seen:
                    raise DataError(
                        f"split {self.name!r}: the samples of group {value} ({key}) are not contiguous (again at row "
                        f"{row}, id {self.ids[row]}); a dataset with groups lists each group's samples together."
                    )
                seen.add(value)
                row += size
        return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])


@dataclass
class Data:
    """A loaded dataset: its splits, what they hold, and where they came from."""

    name: str
    task: Task
    splits: dict[str, Split]
    provenance: dict[str, Any]  # files (path -> sha256), verified, source, non-finite counts, ...
    synthetic: bool = False
    vocab_size: int | None = None
    tokenizer: str | None = None
    hparams_from: str | None = None  # see Dataset.hparams_from
    groups: str | None = None  # see Dataset.groups

    def checked(self) -> Data:
        """This data after the checks every loaded dataset passes, whatever read it, so that a bad file fails at load
        with its dataset, split and sample named, not at the first batch: no split is empty; ids are unique within
        a split; lengths are whole numbers within their sequence; features are real and finite. Ids that two splits
        share (a possible leak of test samples into training) are logged as a warning and recorded in the
        provenance (``shared_ids``)."""
        for name, split in self.splits.items():
            _check_split(f"{self.name}, split {name!r}", split)
        shared = {}
        names = list(self.splits)
        for i, first in enumerate(names):
            for second in names[i + 1 :]:
                if both := set(self.splits[first].ids) & set(self.splits[second].ids):
                    shared[f"{first}/{second}"] = {"count": len(both), "examples": sorted(both)[:5]}
        if shared:
            logging.getLogger("msabench").warning(
                "%s: WARNING, splits share sample ids (%s): test or validation samples may have leaked into "
                "training; recorded in the result's data.shared_ids",
                self.name,
                "; ".join(f"{pair}: {found['count']}" for pair, found in shared.items()),
            )
            self.provenance = {**self.provenance, "shared_ids": shared}
        return self

    @property
    def specs(self) -> dict[str, InputSpec]:
        """Per-input shapes, read from the train split's arrays (or the only split's), never from config."""
        first = self.splits["train"] if "train" in self.splits else next(iter(self.splits.values()))
        specs = {}
        for key, value in first.tensors.items():
            if key.startswith("label") or key.endswith("_lengths"):
                continue
            token_ids = not value.is_floating_point() and value.dim() >= 2
            specs[key] = InputSpec(
                key,
                tuple(value.shape[1:]),
                vocab_size=self.vocab_size if token_ids else None,
                tokenizer=self.tokenizer if token_ids else None,
            )
        for key in first.raw:
            specs[key] = InputSpec(key, ())  # raw inputs: their encoder's `preprocess` makes the tensors
        return specs


def _check_split(where: str, split: Split) -> None:
    """A split is not empty, names each sample once, and holds real, finite features and whole lengths."""
    if not len(split):
        raise DataError(f"{where} is empty: the dataset's files or its split options leave no samples there.")
    if len(set(split.ids)) != len(split.ids):
        seen: dict[str, int] = {}
        for row, sample in enumerate(split.ids):
            if sample in seen:
                raise DataError(
                    f"{where}: id {sample!r} names rows {seen[sample]} and {row}; each id names one sample."
                )
            seen[sample] = row
    for key, value in split.tensors.items():
        if torch.is_complex(value):
            raise DataError(f"{where}: {key} holds complex numbers; features and labels are real.")
        if key.endswith("_lengths"):
            _check_lengths(where, key, value, _steps(split.tensors, key.removesuffix("_lengths")))
        elif value.is_floating_point() and not key.startswith("label") and not torch.isfinite(value).all():
            raise DataError(
                f"{where}: {key} holds NaN or infinite values; the reader must set them (e.g. to 0, counted)."
            )


def _steps(tensors: Mapping[str, torch.Tensor], modality: str) -> int | None:
    """The longest sequence a modality's lengths may count: its features' steps, or for text also the token ids'
    (``text_bert`` [N, 3, L]: MMSA's text lengths count tokens)."""
    found = [tensors[modality].shape[1]] if modality in tensors and tensors[modality].dim() >= 2 else []
    if modality == "text" and "text_bert" in tensors and tensors["text_bert"].dim() == 3:
        found.append(tensors["text_bert"].shape[2])
    return max(found) if found else None


def _check_lengths(where: str, key: str, lengths: torch.Tensor, limit: int | None) -> None:
    """Sequence lengths are whole numbers from 1 to the sequence's steps."""
    if lengths.is_floating_point():
        raise DataError(f"{where}: {key} holds {lengths.dtype} values; lengths are whole numbers of frames.")
    low, high = int(lengths.min()), int(lengths.max())
    if low < 1 or (limit is not None and high > limit):
        raise DataError(f"{where}: {key} must lie in 1..{limit or 'the sequence length'}; it holds {low}..{high}.")


class Dataset(ABC):
    """A dataset: declares what it holds (class attributes) and loads it (`load`).

    Subclasses set the class attributes and implement `load()`. Construction is cheap:
    nothing is read until `load()`.
    """

    name: ClassVar[str]
    task: ClassVar[Task]
    inputs: ClassVar[tuple[str, ...]]  # e.g. ("text_bert", "text", "audio", "vision")
    labels: ClassVar[tuple[str, ...]] = ("label",)  # plus "label_T"/"label_A"/"label_V" where annotated
    dims: ClassVar[Mapping[str, int]] = {}  # expected feature dims, checked against the arrays
    language: ClassVar[str] = "en"
    files: ClassVar[
        Mapping[str, str | None]
    ] = {}  # path below the data root -> published SHA-256 (None: none published)
    source: ClassVar[str] = ""  # where the files come from
    synthetic: ClassVar[bool] = False
    hparams_from: ClassVar[str | None] = None  # use methods' per-dataset hyper-parameters of this dataset
    # Options that say which data this is (a file and its name) rather than how it is read: they are recorded with the
    # data and kept out of a row's variant.
    identity_options: ClassVar[tuple[str, ...]] = ()
    # The tensor that groups samples (e.g. "video": the utterances of one video), one whole-number id per sample, each
    # group's samples contiguous and in order in every split; `Data.groups` names it too. Methods that batch whole
    # groups (`Method.batches = "groups"`) need it; None: the samples are independent.
    groups: ClassVar[str | None] = None

    def __init__(self, root: str | Path | None = None, *, verify: bool = True):
        self.root = data_root(root)
        self.verify = verify

    @abstractmethod
    def load(self) -> Data:
        """Read the files (or generate the data) and return the splits as tensors."""

    def unlabelled(self) -> Split:
        """Inputs without labels that `msabench predict` labels (e.g. Lab5's test_without_label.txt)."""
        raise DataError(f"dataset {self.name!r} has no unlabelled inputs to predict.")

    def write_predictions(self, path: str | Path, ids: Sequence[str], labels: Sequence[str | None]) -> None:
        """Write predicted class names (None: not predicted) in the dataset's own format; `id,label` CSV by default."""
        write_atomic(
            path,
            "id,label\n"
            + "".join(f"{i},{'null' if label is None else label}\n" for i, label in zip(ids, labels, strict=True)),
        )


class Callback:
    """Hooks the trainer calls around one run. Per epoch: on_epoch_start, then per training batch
    on_before_backward (the losses, before backward: a place to take extra gradients, e.g. with
    ``create_graph=True``) and on_after_backward (gradients computed, before clipping and the optimizer
    step), then on_epoch_end after validation.

    The objective, and every module of the model that also subclasses Callback (a fusion that balances
    its inputs, say), receive these calls before the callbacks passed to `fit`. Their state is part of
    the model's or the objective's ``state_dict`` (buffers, parameters, ``get_extra_state``) and so of the
    resume state; other callbacks keep theirs in `state_dict` / `load_state_dict`.
    """

    def on_fit_start(self, run: Run) -> None:
        """Before the first epoch (and again when a run resumes); the model and optimizer are built."""

    def on_epoch_start(self, run: Run, epoch: int) -> None:
        """Before the epoch's first training batch."""

    def on_before_backward(self, run: Run, batch: Batch, losses: dict[str, torch.Tensor]) -> None:
        """After the forward pass of a training batch, before ``losses["total"].backward()``."""

    def on_after_backward(self, run: Run, batch: Batch) -> None:
        """After backward, before gradient clipping and the optimizer step (which may be several batches away
        when ``train.accumulate`` > 1)."""

    def on_epoch_end(self, run: Run, epoch: int, logs: dict[str, Any]) -> None:
        """After validation. Add entries to `logs` (e.g. loss weights) to record them in the history."""

    def on_fit_end(self, run: Run, result: RunResult) -> None:
        """After the test evaluation."""

    def on_exception(self, run: Run, error: BaseException) -> None:
        """When training fails or is interrupted."""

    def state_dict(self) -> dict[str, Any]:
        """What this callback must keep across a resumed run (nn.Module callbacks use their own state_dict)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class Encoder(nn.Module, ABC):
    """Turns one input of a modality into features.

    ``consumes`` names the input: ``"features"`` means the modality's own feature sequence
    (``text``, ``audio`` or ``vision``); anything else is an input key (``text_bert``, ``image``).
    ``__init__(spec, **hparams)`` must set ``self.out_dim``; ``forward(x, lengths)`` returns
    ``[B, out_dim]`` (``returns = "vector"``) or ``[B, L, out_dim]`` (``returns = "sequence"``).
    ``tiny`` holds keyword arguments that build a small, offline version (tests, the conformance kit).
    A ``contextual`` encoder sees the other samples of each sample's group (e.g. the utterances of its video):
    ``forward(x, lengths, groups)`` gets the batch's ``group`` ids (`Batch`; None: each sample alone), and only
    methods that batch whole groups may use it.
    """

    name: ClassVar[str]
    consumes: ClassVar[str] = "features"
    returns: ClassVar[str] = "vector"
    contextual: ClassVar[bool] = False
    tiny: ClassVar[Mapping[str, Any]] = {}
    out_dim: int
    # Where the weights came from, for the host to check and record: the pretrained name or folder (None:
    # random init), and for an encoder started from an earlier msabench run's checkpoint (``init_from``), that
    # checkpoint's path, SHA-256, method, seed, dataset and split record (`msabench.features.split_record`).
    pretrained: str | None = None
    weights_sha256: str | None = None  # of the pretrained weight files, where they are local
    started_from: dict[str, Any] | None = None

    def __init__(self, spec: InputSpec, **hparams: Any):
        super().__init__()

    @property
    def frozen(self) -> bool:
        """No parameter needs a gradient (e.g. ``freeze=True``): with a fingerprint, its outputs are computed once."""
        return not any(parameter.requires_grad for parameter in self.parameters())

    @abstractmethod
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Features of a batch: [B, out_dim], or [B, L, out_dim] for sequences."""

    def manual_parameters(self) -> list[nn.Parameter]:
        """Parameters this component updates itself (from its Callback methods), kept out of the trainer's
        optimizer; they are still saved in checkpoints. See `Fusion.manual_parameters`."""
        return []

    def preprocess(self, values: Sequence[Any]) -> torch.Tensor:
        """Raw inputs (strings, image file bytes) -> the tensor `forward` takes, first dim = len(values).

        Needed only by encoders that consume a raw input (``raw_text``, ``image``). The host calls it
        once per dataset split, never per epoch, and keeps the result in memory.
        """
        raise TypeError(f"encoder {self.name!r} reads a raw input but does not implement preprocess()")

    def fingerprint(self) -> dict[str, Any] | None:
        """What, besides its weights, decides this encoder's outputs (JSON-able: class, pooling, tokenizer,
        image preprocessing...), or None. With a fingerprint, a frozen encoder (no parameter needs a
        gradient) is run once per split before training and its outputs are cached on disk."""
        return None


class Fusion(nn.Module, ABC):
    """Combines the encoders' features into the model's outputs, a dict holding at least ``prediction``
    (``[B, task.out_dim]``: the regression value, or class logits).

    ``__init__(in_dims, task, **hparams)``: ``in_dims`` maps modality -> encoder width. ``produces``
    lists the output keys, so objectives needing more than ``prediction`` are checked before training.
    A ``contextual`` fusion gets the batch's ``group`` ids as a third argument, as a contextual `Encoder` does.
    """

    name: ClassVar[str]
    accepts: ClassVar[str] = "vector"  # "vector" or "sequence" encoder outputs
    contextual: ClassVar[bool] = False
    produces: ClassVar[tuple[str, ...]] = ("prediction",)
    modalities: ClassVar[tuple[str, ...] | None] = None  # the modalities it needs (e.g. ("text", "image")); None: any
    # True for late fusion as MultiBench means it (LF): each modality's own encoder, the vectors concatenated and a
    # head on top; `msabench robustness` checks its effective-robustness reference for it.
    late: ClassVar[bool] = False
    tiny: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, in_dims: Mapping[str, int], task: Task, **hparams: Any):
        super().__init__()

    @abstractmethod
    def forward(
        self, features: dict[str, torch.Tensor], lengths: dict[str, torch.Tensor | None]
    ) -> dict[str, torch.Tensor]:
        """The outputs: at least ``prediction``, plus what ``produces`` declares."""

    def manual_parameters(self) -> list[nn.Parameter]:
        """Parameters this fusion updates itself, kept out of the trainer's optimizer (still in checkpoints).

        E.g. modality weights that follow a rule of their own: subclass `Callback` too, compute their update in
        `Callback.on_before_backward` (the task loss is there, before backward) and apply it in
        `Callback.on_after_backward`."""
        return []


class Objective(nn.Module, Callback, ABC):
    """Turns outputs and a batch into named losses: ``{"total": ..., "<term>": ...}``.

    Every term is logged per epoch. Stateful objectives (dynamic weights, generated labels)
    update themselves in the `Callback` methods, which the trainer calls on them.
    """

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ("prediction",)  # output keys the fusion must produce
    tasks: ClassVar[tuple[str, ...]] = ("regression",)  # task kinds it supports
    tiny: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, task: Task, **hparams: Any):
        super().__init__()
        self.task = task

    @abstractmethod
    def forward(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Named losses; ``total`` is what the trainer minimises."""

    def manual_parameters(self) -> list[nn.Parameter]:
        """Parameters this objective updates itself, kept out of the trainer's optimizer (see `Fusion`)."""
        return []


class Model(nn.Module):
    """Encoders (one per modality) feeding a fusion. Built by the catalog from a Method.

    ``groups`` names the split tensor whose groups its batches hold whole (a method with ``batches="groups"`` on data
    with `Dataset.groups`; None: batches of samples): every split is batched that way for it (`Split.batches`), and
    its contextual encoders and fusion get each batch's ``group`` ids."""

    def __init__(
        self, encoders: Mapping[str, Encoder], inputs: Mapping[str, str], fusion: Fusion, groups: str | None = None
    ):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.inputs = dict(inputs)  # modality -> input key in the batch
        self.fusion = fusion
        self.groups = groups

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        if self.groups is not None and "group" not in batch:
            raise ValueError(
                f"this model batches whole groups of samples (by {self.groups!r}): make its batches with "
                f"split.batches(..., groups={self.groups!r})."
            )
        context = {"groups": batch["group"]} if self.groups is not None else {"groups": None}
        features, lengths = {}, {}
        for modality, encoder in self.encoders.items():
            length = batch.get(f"{modality}_lengths")
            extra = context if encoder.contextual else {}
            features[modality] = encoder(batch[self.inputs[modality]], length, **extra)
            lengths[modality] = length if encoder.returns == "sequence" else None
        return self.fusion(features, lengths, **(context if self.fusion.contextual else {}))


@dataclass(frozen=True)
class Reported:
    """Numbers a paper reports for a method on one dataset: accuracies and F1 in percent, MAE and Corr raw."""

    dataset: str
    source: str  # e.g. "MMSA results/result-stat.md" or "Table 2"
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Stage:
    """An earlier run a multi-stage method starts from.

    ``method`` (a registered method without stages of its own) is run first, per seed, with the same dataset, data
    options and protocol, as an ordinary run with its own result and checkpoint; then this method's ``modality``
    encoder starts from that checkpoint (its ``init_from`` is set to it). The encoder must be the same component in
    both methods. An explicit ``--set <modality>.init_from=...`` replaces the stage for that modality.
    """

    method: str
    modality: str


@dataclass(frozen=True)
class Method:
    """A paper's recipe: encoders per modality, fusion, objective and hyper-parameters, all by name.

    ``hparams`` has sections: ``train`` (batch_size, lr, weight_decay, lr_groups, optimizer,
    max_epochs, grad_clip, eval_batch_size, lr_decay: multiply every learning rate by it every
    lr_decay_every epochs (default 1)), one per modality (encoder keyword arguments),
    ``fusion`` and ``objective``. ``overrides`` maps a dataset name to section updates taken
    from the paper (``{"mosei": {"train": {"lr": 5e-3}}}``). Strings may contain ``{seed}``,
    ``{dataset}``, ``{protocol}`` and ``{results}``, which `fit` replaces with the run's values.
    ``stages`` lists earlier runs that start some encoders (`Stage`); ``key_metrics`` gives a dataset its own
    selection metric where the paper selects differently per dataset.

    ``batches="groups"`` trains and evaluates on batches of whole groups (the utterances of a video, in order) of a
    dataset that declares them (`Dataset.groups`); ``train.batch_size`` and ``eval_batch_size`` then count groups.
    ``metrics`` lists the only metrics of its dataset's family the method reports (e.g. a binary classifier's
    ``("Acc-2_has0", "F1_has0")`` on a regression dataset); empty: all of them.
    """

    name: str
    paper: str
    encoders: Mapping[str, str]
    fusion: str
    objective: str
    hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    reported: tuple[Reported, ...] = ()
    key_metric: str | None = None  # select on this validation metric instead of the validation loss
    tasks: tuple[str, ...] = ("regression",)
    url: str = ""
    stages: tuple[Stage, ...] = ()  # earlier runs whose checkpoints start some encoders (see `Stage`)
    key_metrics: Mapping[str, str] = field(default_factory=dict)  # dataset -> key metric, where the paper differs
    # Per dataset (its name or its `hparams_from`): encoders that replace the defaults there, for data that lacks an
    # input the defaults read (IEMOCAP has word vectors, no BERT token ids). See `for_dataset`.
    dataset_encoders: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    batches: str = "samples"  # "samples", or "groups": batches of whole groups (see above)
    metrics: tuple[str, ...] = ()  # the metrics it reports (empty: all of its dataset family's)

    def key_metric_for(self, dataset: type[Dataset] | Dataset | Data) -> str | None:
        """The validation metric this method selects on for a dataset (None: the validation loss)."""
        for key in (dataset.name, dataset.hparams_from):
            if key is not None and key in self.key_metrics:
                return self.key_metrics[key]
        return self.key_metric

    def hparams_for(self, dataset: type[Dataset] | Dataset | Data) -> dict[str, dict[str, Any]]:
        """The hyper-parameters for a dataset: defaults, then the paper's values for it (or its `hparams_from`)."""
        resolved = copy.deepcopy({section: dict(values) for section, values in self.hparams.items()})
        for key in (dataset.hparams_from, dataset.name):
            if key is not None:
                merge(resolved, self.overrides.get(key, {}))
        return resolved

    def for_dataset(self, dataset: type[Dataset] | Dataset | Data | str) -> Method:
        """This recipe as it runs on `dataset` (a dataset or its name): the encoders `dataset_encoders` names for it
        (by its `hparams_from`, then its own name) replace the defaults. A replaced encoder starts from its own
        defaults and the dataset's `overrides` section for its modality; the result has no `dataset_encoders`."""
        names = [dataset] if isinstance(dataset, str) else [dataset.hparams_from, dataset.name]
        swaps: dict[str, str] = {}
        for name in names:
            swaps.update(self.dataset_encoders.get(name, {}) if name else {})
        swaps = {modality: encoder for modality, encoder in swaps.items() if self.encoders.get(modality) != encoder}
        if not swaps:
            return self
        swapped = self.with_components(swaps)
        return replace(swapped, overrides=copy.deepcopy(dict(self.overrides)), dataset_encoders={})

    def with_components(self, encoders: Mapping[str, str] | None = None, objective: str | None = None) -> Method:
        """This recipe with some components swapped; swapped components start from their own defaults
        (their hyper-parameter section, any ``train.lr_groups`` entry for their parameters and a stage that started
        them are dropped)."""
        hparams = copy.deepcopy({key: dict(value) for key, value in self.hparams.items()})
        overrides = copy.deepcopy(
            {name: {key: dict(value) for key, value in sections.items()} for name, sections in self.overrides.items()}
        )
        changed = [modality for modality, name in (encoders or {}).items() if self.encoders.get(modality) != name]
        if objective and objective != self.objective:
            changed.append("objective")
        prefixes = [f"encoders.{section}" if section != "objective" else section for section in changed]
        for sections in (hparams, *overrides.values()):
            for section in changed:
                sections.pop(section, None)
            groups = sections.get("train", {}).get("lr_groups")
            if groups:
                sections["train"]["lr_groups"] = {
                    p: v for p, v in groups.items() if not any(p == x or p.startswith(x + ".") for x in prefixes)
                }
        return replace(
            self,
            encoders={**self.encoders, **(encoders or {})},
            objective=objective or self.objective,
            hparams=hparams,
            overrides=overrides,
            stages=tuple(stage for stage in self.stages if stage.modality not in changed),
        )


def merge(base: dict, updates: Mapping) -> dict:
    """Deep-merge `updates` into `base` (in place) and return it."""
    for key, value in updates.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = merge({}, value) if isinstance(value, Mapping) else value
    return base
