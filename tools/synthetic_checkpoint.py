"""Writes a random-weight GLM-130B-layout checkpoint folder (config.json in the
format of Tests/Fixtures/glm-130b-tiny, model.safetensors with the reference's
parameter names) of any size, for memory and speed measurements of the full
convert -> load -> generate path. Offline tool; numpy only.

    python3 tools/synthetic_checkpoint.py OUT --hidden 2048 --heads 16 --inner 5440 --layers 8 --vocab 32000
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--inner", type=int, default=5440)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    h, inner = a.hidden, a.inner
    shapes = {"transformer.word_embeddings.weight": (a.vocab, h), "transformer.final_layernorm.weight": (h,),
              "transformer.final_layernorm.bias": (h,)}
    for i in range(a.layers):
        p = f"transformer.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (h,), p + "input_layernorm.bias": (h,),
                       p + "attention.query_key_value.weight": (3 * h, h), p + "attention.query_key_value.bias": (3 * h,),
                       p + "attention.dense.weight": (h, h), p + "attention.dense.bias": (h,),
                       p + "post_attention_layernorm.weight": (h,), p + "post_attention_layernorm.bias": (h,),
                       p + "mlp.dense_h_to_4h.weight": (2 * inner, h), p + "mlp.dense_h_to_4h.bias": (2 * inner,),
                       p + "mlp.dense_4h_to_h.weight": (h, inner), p + "mlp.dense_4h_to_h.bias": (h,)})
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    blob += b" " * ((8 - len(blob) % 8) % 8)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape in shapes.items():
            if name.endswith("layernorm.weight"):
                t = 1 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
            elif len(shape) == 1:
                t = 0.05 * rng.standard_normal(shape, dtype=np.float32)
            else:
                t = rng.standard_normal(shape, dtype=np.float32) * (0.25 if "embeddings" in name else 1 / np.sqrt(shape[1]))
            f.write(t.astype(np.float32).tobytes())
    config = {"model_type": "glm-130b (synthetic)", "num_layers": a.layers, "hidden_size": h, "num_attention_heads": a.heads,
              "inner_hidden_size": inner, "vocab_size": a.vocab, "max_sequence_length": 2048, "layernorm_epsilon": 1e-5,
              "special_token_ids": {"[MASK]": a.vocab - 6, "[gMASK]": a.vocab - 5, "[sMASK]": a.vocab - 4, "eod": a.vocab - 3,
                                    "sop": a.vocab - 2, "eop": a.vocab - 1, "eos": 2}}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    print(f"wrote {a.out}: {offset / 1e9:.2f} GB of FP32 weights")


if __name__ == "__main__":
    main()
