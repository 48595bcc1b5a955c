"""The GLM-130B architecture in PyTorch, written from the facts in
../../docs/model-format.md and Tests/Fixtures/glm-130b-tiny/README.md (not
from the authors' code): DeepNorm Post-LN, fused QKV grouped per head
[q|k|v], 1D RoPE (rotate-half, fp16-rounded inverse frequencies), FP32
softmax with -10000 masking, GeGLU x1 * gelu_erf(x2), tied output embedding.
Parameter names are the reference's (SAT), so a state_dict saves straight
into a checkpoint folder that `glm-run convert` reads.

`python3 tools/train/glm.py --check` reproduces the golden logits."""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, vocab, hidden, heads, layers, inner, max_len=2048):
        self.vocab, self.hidden, self.heads, self.layers, self.inner, self.max_len = vocab, hidden, heads, layers, inner, max_len
        self.head_dim = hidden // heads
        self.alpha = math.sqrt(2 * layers)


def rope_inverse_frequencies(dim, base=10000.0):
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    return inv.half().float()  # the reference rounds them to fp16


def apply_rope(x, positions, inv_freq):
    """x (batch, seq, heads, d); positions (batch, seq)."""
    angles = positions[..., None].float() * inv_freq  # (b, s, d/2)
    cos, sin = torch.cat([angles.cos()] * 2, -1)[:, :, None], torch.cat([angles.sin()] * 2, -1)[:, :, None]
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


class Layer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.input_layernorm = nn.LayerNorm(c.hidden, eps=1e-5)
        self.attention = nn.Module()
        self.attention.query_key_value = nn.Linear(c.hidden, 3 * c.hidden)
        self.attention.dense = nn.Linear(c.hidden, c.hidden)
        self.post_attention_layernorm = nn.LayerNorm(c.hidden, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.dense_h_to_4h = nn.Linear(c.hidden, 2 * c.inner)
        self.mlp.dense_4h_to_h = nn.Linear(c.inner, c.hidden)

    def forward(self, x, positions, mask, inv_freq):
        c = self.c
        b, s, _ = x.shape
        x = self.input_layernorm(x)
        qkv = self.attention.query_key_value(x).view(b, s, c.heads, 3 * c.head_dim)
        q, k, v = qkv.split(c.head_dim, dim=-1)
        q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
        scores = torch.einsum("bihd,bjhd->bhij", q, k).float() / math.sqrt(c.head_dim)
        scores = scores.masked_fill(mask[:, None], -10000.0)
        probs = F.softmax(scores, dim=-1).to(v.dtype)
        attended = torch.einsum("bhij,bjhd->bihd", probs, v).reshape(b, s, c.hidden)
        h = x * c.alpha + self.attention.dense(attended)
        y = self.post_attention_layernorm(h)
        x1, x2 = self.mlp.dense_h_to_4h(y).chunk(2, dim=-1)
        return y * c.alpha + self.mlp.dense_4h_to_h(x1 * F.gelu(x2))


class GLM(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.transformer = nn.Module()
        self.transformer.word_embeddings = nn.Embedding(c.vocab, c.hidden)
        self.transformer.layers = nn.ModuleList([Layer(c) for _ in range(c.layers)])
        self.transformer.final_layernorm = nn.LayerNorm(c.hidden, eps=1e-5)
        self.register_buffer("inv_freq", rope_inverse_frequencies(c.head_dim), persistent=False)

    def forward(self, ids, positions, mask):
        """ids, positions (batch, seq); mask (batch, seq, seq), True = masked. Returns logits."""
        x = self.transformer.word_embeddings(ids)
        for layer in self.transformer.layers:
            x = layer(x, positions, mask, self.inv_freq)
        x = self.transformer.final_layernorm(x)
        return x @ self.transformer.word_embeddings.weight.T


def glm_mask(length, bidirectional):
    """GLM's mask for one sequence: causal, plus every row sees [0, bidirectional)."""
    mask = torch.ones(length, length, dtype=torch.bool).triu(1)
    mask[:, :bidirectional] = False
    return mask


# MARK: - safetensors without the safetensors package

def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dtype = {"F32": torch.float32, "F16": torch.float16, "I8": torch.int8}[info["dtype"]]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=dtype).reshape(info["shape"]).clone()
    return out


def save_safetensors(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    head = json.dumps(header).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def check_against_golden(folder):
    """Loads the golden weights and compares prompt logits with the reference's."""
    config = json.load(open(os.path.join(folder, "config.json")))
    cases = json.load(open(os.path.join(folder, "cases.json")))
    c = Config(config["vocab_size"], config["hidden_size"], config["num_attention_heads"], config["num_layers"],
               config["inner_hidden_size"])
    model = GLM(c)
    weights = load_safetensors(os.path.join(folder, "model.safetensors"))
    weights = {k: v for k, v in weights.items() if "inv_freq" not in k}
    model.load_state_dict(weights, strict=True)
    expected = load_safetensors(os.path.join(folder, "expected.safetensors"))
    worst = 0.0
    for name, case in cases["cases"].items():
        if "input_ids" not in case:
            continue
        ids = torch.tensor([case["input_ids"]])
        positions = torch.tensor([case["position_ids"]])
        mask = torch.tensor(case["attention_mask_true_means_masked"], dtype=torch.bool)[None]
        with torch.no_grad():
            logits = model(ids, positions, mask)[0]
        diff = (logits - expected[f"{name}.logits"]).abs().max().item()
        worst = max(worst, diff / cases["max_abs_logit"])
        print(f"{name}: max |logit - reference| = {diff:.2e}")
    return worst


if __name__ == "__main__":
    if "--check" in sys.argv:
        folder = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "glm-130b-tiny")
        torch.set_num_threads(2)
        worst = check_against_golden(folder)
        ok = worst <= 1e-4
        print(f"relative to max |logit|: {worst:.2e} ({'matches' if ok else 'DIFFERS FROM'} the reference within 1e-4)")
        sys.exit(0 if ok else 1)
