"""Training data for the shipped model: the bilingual corpus (tools/tokenizer/
corpus.py: Debian fortunes in English, Tang and Song poems in Chinese, every
20th entry held out), its SentencePiece tokenizer, and GLM's autoregressive
blank-infilling samples:

- [MASK] samples: spans with Poisson(3) lengths cover ~15% of the tokens; each
  span is replaced by one [MASK] in part A (text + eos, as GLM-130B's
  fill_blanks lays out a blank that is not at the end); part B holds, for each
  span in random order, <sop> + span, predicting span + <eop>. Part-B tokens
  take the position of their [MASK] (GLM-130B's 1D positions).
- [gMASK] samples: a prefix of the text + [gMASK] as part A, then <sop> + the
  rest, predicting the rest + <eop>; positions keep counting.
Part A is attended bidirectionally, part B causally."""
import os
import random
import sys

import numpy as np
import sentencepiece as spm
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tokenizer"))
from corpus import split  # noqa: E402

SPECIAL = ["[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<pad>", "\n"]


def train_tokenizer(prefix, vocab_size=6000):
    train, _ = split()
    path = prefix + ".corpus.txt"
    with open(path, "w", encoding="utf-8") as f:
        for e in train:
            f.write(e.replace("\n", " ") + "\n")
    spm.SentencePieceTrainer.train(
        input=path, model_prefix=prefix, model_type="unigram", vocab_size=vocab_size, byte_fallback=True,
        character_coverage=0.9995, normalization_rule_name="identity", user_defined_symbols=SPECIAL,
        num_threads=2, input_sentence_size=0, minloglevel=2)
    os.remove(path)
    os.remove(prefix + ".vocab")
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


class Samples:
    def __init__(self, sp, max_len=128, chinese_repeat=6, seed=0):
        self.sp, self.max_len = sp, max_len
        self.ids = {s: sp.piece_to_id(s) for s in SPECIAL}
        self.eos = sp.eos_id()
        train, held = split()
        self.train = []
        for e in train:
            ids = sp.encode(e)[: max_len // 2 * 2 - 8]
            if len(ids) < 4:
                continue
            # the poems are 1.5% of the text: repeat them so Chinese is learnt too
            repeat = chinese_repeat if any("\u4e00" <= ch <= "\u9fff" for ch in e) else 1
            self.train += [ids] * repeat
        self.held_out = held
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)

    def gmask(self, tokens):
        cut = self.rng.randint(0, len(tokens) - 1)
        a = tokens[:cut] + [self.ids["[gMASK]"]]
        b_in = [self.ids["<sop>"]] + tokens[cut:]
        targets = [-100] * len(a) + tokens[cut:] + [self.ids["<eop>"]]
        ids = a + b_in
        return ids, list(range(len(ids))), len(a), targets

    def mask(self, tokens):
        n = len(tokens)
        goal = max(1, round(0.15 * n))
        lengths = []
        while sum(lengths) < goal:
            lengths.append(max(1, int(self.np_rng.poisson(3))))
        lengths[-1] -= max(0, sum(lengths) - goal)
        lengths = [l for l in lengths if l > 0]
        # place spans without overlap: distribute the unmasked tokens into gaps
        free = n - sum(lengths)
        cuts = sorted(self.rng.randint(0, free) for _ in lengths)
        spans, start, prev = [], 0, 0
        for length, cut in zip(lengths, cuts):
            start += cut - prev
            prev = cut
            spans.append((start, start + length))
            start += length
        a, mask_pos, last = [], [], 0
        for s, e in spans:
            a += tokens[last:s]
            mask_pos.append(len(a))
            a.append(self.ids["[MASK]"])
            last = e
        a += tokens[last:]
        if a[-1] != self.ids["[MASK]"]:
            a.append(self.eos)
        ids, positions, targets = list(a), list(range(len(a))), [-100] * len(a)
        order = list(range(len(spans)))
        self.rng.shuffle(order)
        for i in order:
            s, e = spans[i]
            span = tokens[s:e]
            ids += [self.ids["<sop>"]] + span
            positions += [mask_pos[i]] * (len(span) + 1)
            targets += span + [self.ids["<eop>"]]
        return ids, positions, len(a), targets

    def batch(self, size):
        rows = []
        for _ in range(size):
            tokens = self.rng.choice(self.train)
            rows.append(self.gmask(tokens) if self.rng.random() < 0.5 else self.mask(tokens))
        length = max(len(r[0]) for r in rows)
        pad = self.ids["<pad>"]
        ids = torch.full((size, length), pad, dtype=torch.long)
        positions = torch.zeros((size, length), dtype=torch.long)
        targets = torch.full((size, length), -100, dtype=torch.long)
        mask = torch.ones((size, length, length), dtype=torch.bool).triu(1).clone()
        for i, (r_ids, r_pos, context, r_targets) in enumerate(rows):
            n = len(r_ids)
            ids[i, :n] = torch.tensor(r_ids)
            positions[i, :n] = torch.tensor(r_pos)
            targets[i, :n] = torch.tensor(r_targets)
            mask[i, :, :context] = False
        return ids, positions, mask, targets
