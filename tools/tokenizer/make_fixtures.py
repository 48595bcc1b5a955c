"""Builds the tokenizer fixtures of Tests/Fixtures/tokenizer: two small
SentencePiece models (unigram and BPE, byte fallback, GLM special tokens as
user-defined symbols) trained with the `sentencepiece` library on the
bilingual corpus, and the library's own encodings of a few hundred held-out
lines plus edge cases. The Swift tokenizer must reproduce them exactly.

    pip install sentencepiece==0.2.1  (any 0.2.x)
    python3 tools/tokenizer/make_fixtures.py
"""
import json
import os
import sys
import tempfile

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(__file__))
from corpus import split  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tokenizer")
SPECIAL = ["[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>"]

EDGE_CASES = [
    "", " ", "   leading and trailing   ", "multiple     spaces inside", "tab\tseparated\tvalues",
    "new\nline", "Hello, world!", "The meaning of life", "床前明月光，", "疑是地上霜。举头望明月，低头思故乡。",
    "mixed 中文 and English 混合", "emoji 🙂🚀 are bytes", "Ünïcödé àccents", "numbers 1234567890 3.14159",
    "[gMASK]<sop>", "The capital of France is [MASK].", "[MASK] in the middle [gMASK] and [sMASK] <eop>",
    "ＦＵＬＬＷＩＤＴＨ letters", "a", "ab", "\u200b zero width", "日本語のテキスト", "한국어 텍스트",
    "x" * 200, "——……“”‘’", "C++ && Swift -> GLM", "rare 龘 and 靐 characters",
]


def main():
    train, held = split()
    if not train:
        sys.exit("no corpus: install Debian's fortunes and fortunes-zh packages")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for e in train:
            f.write(e.replace("\n", " ") + "\n")
        corpus = f.name
    lines = [e.replace("\n", " ") for e in held[::max(1, len(held) // 300)]][:300]
    lines += EDGE_CASES
    fixtures = {"library": f"sentencepiece {spm.__version__}", "corpus_lines": len(train), "models": {}}
    for kind in ["unigram", "bpe"]:
        prefix = os.path.join(OUT, kind)
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=prefix, model_type=kind, vocab_size=4000, byte_fallback=True,
            character_coverage=0.995, normalization_rule_name="identity", user_defined_symbols=SPECIAL,
            num_threads=2, seed_sentencepiece_size=200000, input_sentence_size=0, minloglevel=2)
        os.remove(prefix + ".vocab")
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        cases = []
        for text in lines:
            ids = sp.encode(text)
            cases.append({"text": text, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids)})
        fixtures["models"][kind] = cases
    # A 1000-piece model small enough to sit inside the golden models' vocabularies
    # (1152 and 1200), so a golden checkpoint plus this tokenizer runs end to end.
    small = os.path.join(OUT, "small-unigram")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=small, model_type="unigram", vocab_size=1000, byte_fallback=True,
        character_coverage=0.98, normalization_rule_name="identity", num_threads=2, minloglevel=2)
    os.remove(small + ".vocab")
    os.remove(corpus)
    with open(os.path.join(OUT, "encodings.json"), "w", encoding="utf-8") as f:
        json.dump(fixtures, f, ensure_ascii=False, indent=0)
    print(f"{len(lines)} lines x 2 models written to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
