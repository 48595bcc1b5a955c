"""Builds Tests/Fixtures/kin-tokenizers: one small tokenizer in each format the
current GLM kin ship, trained here on the bilingual corpus, and the reference
library's own encodings of held-out lines and edge cases. The Swift tokenizers
must reproduce them exactly.

  - chatglm3.model: SentencePiece BPE (ChatGLM2/3's tokenizer.model; the nine
    special tokens are numbered after its pieces by the runtime), `sentencepiece`.
  - glm4.tiktoken: tiktoken ranks (GLM-4-9B's tokenizer.model), base64 token and
    rank per line, encoded with `tiktoken` and GLM-4's pre-tokenizer pattern.
  - glm4-0414.json: a Hugging Face byte-level BPE tokenizer.json (GLM-4-0414's:
    Split regex + ByteLevel, no normalizer), encoded with `tokenizers`.

Vocabularies stay under 1000 text tokens so that the golden tiny models
(vocabulary 1024) hold them with their special tokens, for chat tests.

    pip install sentencepiece tiktoken tokenizers
    python3 tools/tokenizer/make_kin_fixtures.py
"""
import base64
import json
import os
import sys
import tempfile

import sentencepiece as spm
import tiktoken
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(__file__))
from corpus import split  # noqa: E402
from make_fixtures import EDGE_CASES  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "kin-tokenizers")
GLM4_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
GLM4_SPECIALS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
                 "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>",
                 "<|end_of_video|>"]
# what a chat template feeds the tokenizer beside plain text: role metadata, line breaks, contractions
KIN_CASES = ["\n", "\nHello", "\n\n", " \n ", "I'm sure you'll see it's done", "don't WON'T", "line one\r\nline two",
             "12345678901", "  indented\n\tcode();", "special <|user|> spelled as text", "你好！\n我是 GLM-4。"]
TEXT_TOKENS = 990


def main():
    train, held = split()
    if not train:
        sys.exit("no corpus: install Debian's fortunes and fortunes-zh packages")
    os.makedirs(OUT, exist_ok=True)
    lines = [e for e in held[::max(1, len(held) // 200)]][:200] + EDGE_CASES + KIN_CASES
    # a few Chinese entries only: a 1000-piece vocabulary cannot cover thousands of characters
    # (the rest of them go through byte fallback / byte-level tokens, which the tests want too)
    chinese = [e for e in train if any("\u4e00" <= c <= "\u9fff" for c in e)]
    train = [e for e in train if e not in set(chinese)] + chinese[:40]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for e in train:
            f.write(e.replace("\n", " ") + "\n")
        corpus = f.name

    # ChatGLM3: SentencePiece BPE with byte fallback, as THUDM's tokenizer.model
    prefix = os.path.join(OUT, "chatglm3")
    spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, model_type="bpe", vocab_size=TEXT_TOKENS,
                                   byte_fallback=True, character_coverage=0.98, num_threads=2,
                                   unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    sp_cases = [{"text": t, "ids": sp.encode(t)} for t in lines]

    # byte-level BPE trained by `tokenizers` with GLM-4's pre-tokenizer
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GLM4_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TEXT_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train([corpus], trainer)
    bpe.add_special_tokens(GLM4_SPECIALS)
    bpe.save(os.path.join(OUT, "glm4-0414.json"))
    hf = Tokenizer.from_file(os.path.join(OUT, "glm4-0414.json"))
    hf.encode_special_tokens = True  # special spellings in text stay text, as the runtime's templates need
    hf_cases = [{"text": t, "ids": hf.encode(t, add_special_tokens=False).ids} for t in lines]

    # tiktoken: the same vocabulary as ranks, ordered by id (the ranks tiktoken merges by)
    byte_of = {c: b for b, c in enumerate(bytes_to_unicode())}
    vocab = sorted(json.load(open(os.path.join(OUT, "glm4-0414.json")))["model"]["vocab"].items(), key=lambda kv: kv[1])
    ranks = {bytes(byte_of[c] for c in token): i for i, (token, _) in enumerate(vocab)}
    with open(os.path.join(OUT, "glm4.tiktoken"), "w") as f:
        for token, rank in ranks.items():
            f.write(base64.b64encode(token).decode() + " " + str(rank) + "\n")
    enc = tiktoken.Encoding("glm4-fixture", pat_str=GLM4_PATTERN, mergeable_ranks=ranks,
                            special_tokens={s: len(ranks) + i for i, s in enumerate(GLM4_SPECIALS)})
    tk_cases = [{"text": t, "ids": enc.encode(t, disallowed_special=())} for t in lines]

    for name, cases in [("chatglm3", sp_cases), ("glm4", tk_cases), ("glm4-0414", hf_cases)]:
        with open(os.path.join(OUT, name + "-encodings.json"), "w", encoding="utf-8") as f:
            json.dump({"cases": cases}, f, ensure_ascii=False, indent=0)
    os.remove(corpus)
    print("wrote", OUT, len(lines), "cases each")


def bytes_to_unicode():
    """GPT-2's byte alphabet: the printable bytes as themselves, the rest from U+0100 on."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, n = [], 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:
            out.append(chr(256 + n))
            n += 1
    return out


if __name__ == "__main__":
    main()
