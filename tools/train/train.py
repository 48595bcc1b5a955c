"""Trains the shipped default model: a small bilingual GLM-130B-architecture
model (glm.py) with GLM's blank-infilling objective (data.py) on 2 CPU cores
within a wall-time budget, then writes a checkpoint folder that
`glm-run convert` reads (config.json in GLM-130B's SAT form, model.safetensors
with the reference's names, tokenizer.model), the training record (seed,
loss curve, wall time) and the loss curve as SVG.

    python3 tools/train/train.py --out /tmp/glm-small --minutes 55
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
from glm import GLM, Config, check_against_golden, save_safetensors


def deepnorm_init(model, layers):
    """GLM-130B's DeepNorm initialisation: Xavier normal, with gain
    beta = (8 N)^(-1/4) on the value, attention output and FFN matrices."""
    beta = (8 * layers) ** -0.25
    for name, p in model.named_parameters():
        if p.dim() == 2 and "word_embeddings" not in name:
            gain = beta if ("dense" in name or "mlp" in name) else 1.0
            torch.nn.init.xavier_normal_(p, gain=gain)
            if "query_key_value" in name:  # the v rows of each head get beta too
                c = model.c
                with torch.no_grad():
                    view = p.view(c.heads, 3 * c.head_dim, c.hidden)
                    view[:, 2 * c.head_dim:] *= beta
        elif "bias" in name:
            torch.nn.init.zeros_(p)
    torch.nn.init.normal_(model.transformer.word_embeddings.weight, std=0.02)


def held_out_loss(model, samples, batches):
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for ids, positions, mask, targets in batches:
            logits = model(ids, positions, mask)
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), reduction="sum", ignore_index=-100)
            total += loss.item()
            count += (targets != -100).sum().item()
    model.train()
    return total / count


def svg_curve(points, held, path, title):
    """A plain SVG line chart of (step, loss), training and held-out."""
    w, h, pad = 640, 360, 50
    steps = [p[0] for p in points] + [p[0] for p in held]
    losses = [p[1] for p in points] + [p[1] for p in held]
    x0, x1, y0, y1 = 0, max(steps), min(losses) * 0.95, min(max(losses), 10) * 1.02

    def xy(s, l):
        return pad + (s - x0) / (x1 - x0) * (w - 2 * pad), h - pad - (min(l, y1) - y0) / (y1 - y0) * (h - 2 * pad)

    def line(pts, color):
        return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="' + " ".join(f"{a:.1f},{b:.1f}" for a, b in (xy(s, l) for s, l in pts)) + '"/>'

    ticks = "".join(f'<text x="{pad - 8}" y="{xy(0, v)[1] + 4:.1f}" text-anchor="end" font-size="11">{v:.1f}</text>'
                    for v in np.linspace(y0, y1, 6))
    xticks = "".join(f'<text x="{xy(s, y0)[0]:.1f}" y="{h - pad + 16}" text-anchor="middle" font-size="11">{int(s)}</text>'
                     for s in np.linspace(0, x1, 6))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">'
           f'<rect width="100%" height="100%" fill="white"/><text x="{w / 2}" y="24" text-anchor="middle" font-size="14">{title}</text>'
           f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>'
           f'{ticks}{xticks}<text x="{w / 2}" y="{h - 12}" text-anchor="middle" font-size="12">step</text>'
           f'<text x="14" y="{h / 2}" transform="rotate(-90 14 {h / 2})" text-anchor="middle" font-size="12">loss (nats/token)</text>'
           + line(points, "#1f77b4") + line(held, "#d62728")
           + f'<text x="{w - pad}" y="{pad}" text-anchor="end" font-size="12" fill="#1f77b4">training</text>'
           + f'<text x="{w - pad}" y="{pad + 16}" text-anchor="end" font-size="12" fill="#d62728">held-out</text></svg>')
    with open(path, "w") as f:
        f.write(svg)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=55)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--inner", type=int, default=704)
    ap.add_argument("--vocab", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(2)
    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)

    golden = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "glm-130b-tiny")
    worst = check_against_golden(golden)
    assert worst <= 1e-4, f"the PyTorch model does not reproduce the golden logits ({worst:.2e})"
    print(f"golden check: the model reproduces glm-130b-tiny within {worst:.1e} of max |logit|")

    sp = data.train_tokenizer(os.path.join(a.out, "tokenizer"), a.vocab)
    samples = data.Samples(sp, seed=a.seed)
    held_samples = data.Samples(sp, seed=a.seed + 1)
    held_samples.train = [sp.encode(e)[:120] for e in held_samples.held_out if len(sp.encode(e)) >= 4]
    held_batches = [held_samples.batch(32) for _ in range(8)]

    c = Config(a.vocab, a.hidden, a.heads, a.layers, a.inner, max_len=256)
    model = GLM(c)
    deepnorm_init(model, a.layers)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params / 1e6:.2f} M parameters, {len(samples.train)} training entries")
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0}],
                            lr=a.lr, betas=(0.9, 0.95))
    budget = a.minutes * 60
    start = time.time()
    curve, held_curve, step, smoothed = [], [], 0, None
    warmup = 300
    # the schedule is set by time: the cosine decays over the estimated total steps
    estimated_total = None
    while time.time() - start < budget:
        if step == 50:
            per_step = (time.time() - start) / 50
            estimated_total = int(budget / per_step)
            print(f"{per_step:.3f} s/step -> about {estimated_total} steps in {a.minutes} minutes")
        total = estimated_total or 10 ** 9
        lr = a.lr * min(1, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1, step / total))))
        for g in opt.param_groups:
            g["lr"] = lr
        ids, positions, mask, targets = samples.batch(a.batch)
        logits = model(ids, positions, mask)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        if step % 25 == 0:
            curve.append((step, smoothed))
        if step % 250 == 0:
            h = held_out_loss(model, held_samples, held_batches)
            held_curve.append((step, h))
            print(f"step {step}: train {smoothed:.3f}, held-out {h:.3f}, lr {lr:.2e}, {time.time() - start:.0f} s", flush=True)
        step += 1
    wall = time.time() - start
    final_held = held_out_loss(model, held_samples, held_batches)
    held_curve.append((step, final_held))
    print(f"done: {step} steps in {wall / 60:.1f} min, held-out loss {final_held:.3f}")

    state = {k: v for k, v in model.state_dict().items()}
    save_safetensors(state, os.path.join(a.out, "model.safetensors"))
    ids = {s: sp.piece_to_id(s) for s in data.SPECIAL}
    config = {"model_type": "glm-130b (small bilingual, trained by tools/train)", "num_layers": a.layers,
              "hidden_size": a.hidden, "num_attention_heads": a.heads, "inner_hidden_size": a.inner,
              "vocab_size": a.vocab, "max_sequence_length": 256, "layernorm_epsilon": 1e-5,
              "special_token_ids": {"[MASK]": ids["[MASK]"], "[gMASK]": ids["[gMASK]"], "[sMASK]": ids["[sMASK]"],
                                    "sop": ids["<sop>"], "eop": ids["<eop>"], "eos": sp.eos_id(), "pad": ids["<pad>"]}}
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)
    record = {"seed": a.seed, "parameters": params, "steps": step, "wall_seconds": round(wall, 1), "batch": a.batch,
              "lr": a.lr, "model": {k: getattr(c, k) for k in ["vocab", "hidden", "heads", "layers", "inner"]},
              "final_held_out_loss": final_held, "training_loss": curve, "held_out_loss": held_curve,
              "torch": torch.__version__, "threads": torch.get_num_threads()}
    json.dump(record, open(os.path.join(a.out, "training.json"), "w"), indent=1)
    svg_curve(curve, held_curve, os.path.join(a.out, "loss.svg"),
              f"GLM small bilingual: {params / 1e6:.1f} M parameters, {step} steps, {wall / 60:.0f} min on 2 cores")


if __name__ == "__main__":
    main()
