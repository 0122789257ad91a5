"""CPU time per training batch of MMSA's own MulT (MOSI recipe, batch 16) on random MOSI-shaped inputs, 1 thread.

Runs in MMSA's venv, not msabench's (see ../shared/mmsa-reference/README.md for the venv):

    $SCRATCH/mmsa-venv/bin/python bench/mmsa_mult_cpu.py 3      # 3 timed batches after one warm-up

CPU time (time.process_time) is what the batch costs whatever else runs on the machine; msabench's
bench/mult.py reports the same figure for its MulT, so the two compare on a shared machine.
"""

import resource
import sys
import time

import torch
from easydict import EasyDict
from MMSA.models.singleTask.MULT import MULT

torch.set_num_threads(1)
args = EasyDict(  # MMSA's config_regression.json, "mult", MOSI
    use_bert=False,
    use_bert_finetune=False,
    dst_feature_dim_nheads=[50, 10],
    feature_dims=[768, 5, 20],
    nlevels=4,
    attn_dropout=0.3,
    attn_dropout_a=0.2,
    attn_dropout_v=0.0,
    relu_dropout=0.0,
    embed_dropout=0.2,
    res_dropout=0.0,
    output_dropout=0.5,
    text_dropout=0.5,
    attn_mask=True,
    train_mode="regression",
    num_classes=3,
    conv1d_kernel_size_l=5,
    conv1d_kernel_size_a=5,
    conv1d_kernel_size_v=5,
)
torch.manual_seed(0)
model = MULT(args)
print("params", sum(p.numel() for p in model.parameters() if p.requires_grad))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
model.train()
times = []
for step in range(int(sys.argv[1]) + 1):
    text, audio, vision = torch.randn(16, 50, 768), torch.randn(16, 375, 5), torch.randn(16, 500, 20)
    y = torch.randn(16, 1)
    wall, cpu = time.perf_counter(), time.process_time()
    out = model(text, audio, vision)["M"]
    loss = torch.nn.functional.l1_loss(out, y)
    loss.backward()
    torch.nn.utils.clip_grad_value_([p for p in model.parameters()], 0.6)
    if step % 8 == 7:
        opt.step()
        opt.zero_grad()
    times.append((time.perf_counter() - wall, time.process_time() - cpu))
    print(step, [round(x, 2) for x in times[-1]], flush=True)
timed = times[1:]
cpu = sum(c for _, c in timed) / len(timed)
print(
    f"batch wall s {sum(w for w, _ in timed) / len(timed):.2f}, batch cpu s {cpu:.2f}, cpu s/sample {cpu / 16:.3f}, "
    f"peak rss MB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
)
