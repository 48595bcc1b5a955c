"""Perplexity of a text under a checkpoint folder written by train.py, in
PyTorch (FP32), computed exactly as `glm-run eval` does: documents separated
by lines holding only "%", each scored as [gMASK] <sop> text (truncated to the
context), every text token predicted from the ones before it.

    python3 tools/train/eval_ppl.py CHECKPOINT_DIR TEXT_FILE
"""
import json
import math
import os
import sys

import sentencepiece as spm
import torch
import torch.nn.functional as F

from glm import GLM, Config, glm_mask, load_safetensors


def documents(text):
    parts = [p.strip() for p in text.split("\n%\n")]
    parts = [p[:-2] if p.endswith("\n%") else p for p in parts]
    return [p for p in parts if p and p != "%"]


def main():
    folder, path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    config = json.load(open(os.path.join(folder, "config.json")))
    c = Config(config["vocab_size"], config["hidden_size"], config["num_attention_heads"], config["num_layers"],
               config["inner_hidden_size"], config["max_sequence_length"])
    model = GLM(c)
    model.load_state_dict(load_safetensors(os.path.join(folder, "model.safetensors")))
    model.eval()
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    special = config["special_token_ids"]
    nll, count = 0.0, 0
    with open(path, encoding="utf-8") as f:
        docs = documents(f.read())
    with torch.no_grad():
        for doc in docs:
            text = sp.encode(doc)[: config["max_sequence_length"] - 2]
            if not text:
                continue
            ids = [special["[gMASK]"], special["sop"]] + text
            inputs = torch.tensor([ids[:-1]])
            positions = torch.arange(len(ids) - 1)[None]
            logits = model(inputs, positions, glm_mask(len(ids) - 1, 1)[None])[0].double()
            logp = F.log_softmax(logits, dim=-1)
            for i in range(1, len(ids) - 1):
                nll -= logp[i, ids[i + 1]].item()
                count += 1
    print(json.dumps({"documents": len(docs), "tokens": count, "nll_per_token": nll / count, "perplexity": math.exp(nll / count)}))


if __name__ == "__main__":
    main()
