"""The Multimodal Transformer (MulT): temporal convolutions, six crossmodal transformers, three memory
transformers, each target's last real frame, and a residual head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msabench import CatalogError, Fusion
from msabench.layers import CrossmodalTransformer, Frames

MODALITIES = ("text", "audio", "vision")


class MultimodalTransformer(Fusion):
    """MulT (Tsai et al., ACL 2019) over the three feature sequences.

    Each modality goes through a temporal Conv1d (no padding, no bias) to `dim` channels. For each target
    modality, two crossmodal transformers (`layers` layers) let it attend to each source modality; their outputs
    are concatenated and run through a self-attention memory transformer (max(`layers`, 3) layers); the target's
    last frame is taken. The three last frames, concatenated (6·`dim`), go through a residual block
    (Linear-ReLU-dropout-Linear, plus the input) and a linear output. Attention dropout follows the source
    modality (`attn_dropout` for text sources and the memory transformers, `attn_dropout_audio`,
    `attn_dropout_vision`), as in MulT's code and MMSA; `text_dropout` drops text features before the convolution.

    ``mask="padding"`` (the method ``mult``) follows the paper's intent: every attention sees only the real frames
    of its source (a sequence's length shrinks by kernel-1 through the valid convolution), positions are the
    sinusoidal 1, 2, ... of each frame, and each target's representation is its **last real** frame.
    ``mask="causal"`` (``mult-causal``) is MulT's and MMSA's code: attention runs over the padded sequences under
    MulT's future mask (query i sees keys up to i + |Lk - Lq|), a frame whose first projected feature is exactly
    0 gets no position (fairseq's padding test), and the representation is the last **padded** frame.

    ``attention_dropout="weights"`` drops each attention weight on its own, as MulT and MMSA do (on the CPU
    through `msabench.dropped_attention`, PyTorch's fused CPU kernels having no dropout); ``"keys"`` drops
    whole keys per head, shared by the queries, which the fused kernel runs about twice as fast (see
    `msabench.attend`).
    """

    name = "mult"
    accepts = "sequence"
    modalities = MODALITIES
    tiny = {"dim": 8, "heads": 2, "layers": 1, "kernel_text": 1, "kernel_audio": 1, "kernel_vision": 1}

    def __init__(
        self,
        in_dims,
        task,
        dim: int = 50,
        heads: int = 10,
        layers: int = 4,
        kernel_text: int = 5,
        kernel_audio: int = 5,
        kernel_vision: int = 5,
        attn_dropout: float = 0.3,
        attn_dropout_audio: float = 0.2,
        attn_dropout_vision: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.2,
        output_dropout: float = 0.5,
        text_dropout: float = 0.5,
        mask: str = "padding",
        attention_dropout: str = "weights",
    ):
        super().__init__(in_dims, task)
        if mask not in ("padding", "causal"):
            raise CatalogError(f"fusion 'mult': mask {mask!r} is not one of padding, causal.")
        if dim % heads:
            raise CatalogError(f"fusion 'mult': dim {dim} is not divisible by heads {heads}.")
        self.causal = mask == "causal"
        self.text_dropout, self.output_dropout = text_dropout, output_dropout
        kernels = {"text": kernel_text, "audio": kernel_audio, "vision": kernel_vision}
        self.kernels = kernels
        # MulT projects a modality only when its width differs from dim.
        self.project = nn.ModuleDict(
            {
                m: nn.Conv1d(in_dims[m], dim, kernel_size=kernels[m], padding=0, bias=False)
                for m in MODALITIES
                if in_dims[m] != dim
            }
        )
        source_dropout = {"text": attn_dropout, "audio": attn_dropout_audio, "vision": attn_dropout_vision}
        positions = "mult" if self.causal else "sinusoidal"
        if attention_dropout not in ("weights", "keys"):
            raise CatalogError(f"fusion 'mult': attention_dropout {attention_dropout!r} is not one of weights, keys.")
        common = {"relu_dropout": relu_dropout, "res_dropout": res_dropout, "embed_dropout": embed_dropout}
        common |= {"drop": attention_dropout}
        self.cross = nn.ModuleDict(
            {
                f"{target}_{source}": CrossmodalTransformer(
                    dim,
                    heads,
                    layers,
                    attn_dropout=source_dropout[source],
                    positions=positions,
                    causal=self.causal,
                    **common,
                )
                for target in MODALITIES
                for source in MODALITIES
                if source != target
            }
        )
        self.memory = nn.ModuleDict(
            {
                m: CrossmodalTransformer(
                    2 * dim,
                    heads,
                    max(layers, 3),
                    attn_dropout=attn_dropout,
                    positions=positions,
                    causal=self.causal,
                    **common,
                )
                for m in MODALITIES
            }
        )
        combined = 6 * dim
        self.proj1, self.proj2 = nn.Linear(combined, combined), nn.Linear(combined, combined)
        self.out = nn.Linear(combined, task.out_dim)

    def forward(self, features, lengths):
        frames, packed = {}, {}
        for m in MODALITIES:
            x = features[m]
            if m == "text":
                x = F.dropout(x, self.text_dropout, self.training)
            steps = x.shape[1]
            if m in self.project:
                if steps < self.kernels[m]:
                    raise CatalogError(
                        f"MulT's temporal convolution over {m} has kernel {self.kernels[m]}, longer than its "
                        f"{steps} frames; set --set fusion.kernel_{m}=1 (or a kernel <= {steps})."
                    )
                x = self.project[m](x.transpose(1, 2)).transpose(1, 2)
            real = None
            if not self.causal and lengths[m] is not None:
                real = (lengths[m] - (steps - x.shape[1])).clamp(min=1)  # a valid convolution loses kernel-1 frames
            frames[m] = Frames(real, x.shape[1], len(x), x.device)
            packed[m] = frames[m].pack(x)
        last = []
        for target in MODALITIES:
            crossed = [
                self.cross[f"{target}_{source}"].run(packed[target], frames[target], packed[source], frames[source])
                for source in MODALITIES
                if source != target
            ]
            memory = self.memory[target].run(torch.cat(crossed, dim=-1), frames[target])
            last.append(frames[target].last(memory))
        h = torch.cat(last, dim=-1)
        h = h + self.proj2(F.dropout(F.relu(self.proj1(h)), self.output_dropout, self.training))
        return {"prediction": self.out(h)}
