"""Builds the fixtures of Tests/Fixtures/tokenizer/glm: SentencePiece models
trained with the `sentencepiece` library under each normalization rule the
library ships (nmt_nfkc, nfkc, nmt_nfkc_cf, nfkc_cf), a user rule file with a
denormalizer, and flag variants; then ChatGLM-layout and icetk-layout models
made the way THUDM's ice_text.model is laid out (special CONTROL pieces,
<|tab|> and <|blank_N|> USER_DEFINED pieces, 256 byte pieces, <n> in the text
model). The expected ids come from the library plus THUDM's text rules
(tokenization_chatglm.py, icetk), restated below in our own code.

    pip install sentencepiece==0.2.1 protobuf  (any 0.2.x)
    apt-get install fortunes fortunes-zh        (the training corpus)
    python3 tools/tokenizer/make_glm_fixtures.py
"""
import json
import os
import sys
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as model_pb2

sys.path.insert(0, os.path.dirname(__file__))
from corpus import split  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tokenizer", "glm")
GLM_SPECIAL = ["[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>", "<dBLOCK>"]
MAX_BLANK = 80

# Characters that normalization rules treat specially, so training sees them
# and the encodings exercise every path of the character map.
EDGE_CASES = [
    "", " ", "   leading and trailing   ", "multiple     spaces inside", "a  b   c    d",
    "tab\tseparated\tvalues", "\t\tleading tabs", "new\nline", "two\n\nbreaks", "windows\r\nline\r\nends", "\r\n",
    "Hello, world!", "The meaning of life", "床前明月光，", "疑是地上霜。举头望明月，低头思故乡。",
    "mixed 中文 and English 混合", "emoji 🙂🚀 are bytes", "family 👨‍👩‍👧 zwj", "flags 🇫🇷🇯🇵",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ １２３", "full-width punctuation ，．！？：；（）",
    "ligatures ﬁ ﬂ ﬀ ﬃ ﬄ ﬆ", "circled ① ② ⑩ ⑳ Ⓐ ⓐ", "superscripts x² y³ ½ ¼",
    "CJK compatibility 豈 更 車 ㍻ ㎏ ㌔", "half-width ｶﾀｶﾅ ﾊﾟ", "roman numerals Ⅻ ⅻ",
    "combining e\u0301 vs é, a\u0308 vs ä, n\u0303 vs ñ", "stacked a\u0301\u0308\u0323",
    "Hangul 한국어 텍스트", "Hangul jamo \u1100\u1161\u11a8", "compatibility jamo ㄱㅏ",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom", "soft\u00adhyphen", "control\u0007bell\u001bescape\u007fdel",
    "nbsp\u00a0here\u00a0\u00a0twice", "ideographic\u3000space", "en\u2002em\u2003thin\u2009spaces",
    "line\u2028separator\u2029para", "CASE Folding ẞ Straße ΣΑΣ Ǆ", "Kelvin \u212a Ångström \u212b",
    "Ünïcödé àccents", "numbers 1234567890 3.14159", "[gMASK]<sop>", "The capital of France is [MASK].",
    "a", "ab", "x" * 120, "——……“”‘’", "C++ && Swift -> GLM", "rare 龘 and 靐 characters", "日本語のテキスト",
    "Ⅰ ㈱ ㊣ ™ ℡ № ℃ ℉", "math 𝐀𝐁𝐂 𝔸𝔹 ∞ ≠ ≤", "arabic سلام hebrew שלום", "devanagari नमस्ते thai สวัสดี",
]

# Text-rule cases: tabs and runs of every interesting length around the blank pieces.
LAYOUT_CASES = EDGE_CASES + [
    "  two", "x" + " " * 79 + "y", "x" + " " * 80 + "y", "x" + " " * 81 + "y", "x" + " " * 85 + "y",
    " " * 161 + "end", "indent\n    code\n\tmore", "poem\n床前明月光，\n疑是地上霜。", "trailing newline\n",
    "\nleading newline", "<n> literal", "<|tab|> and <|blank_4|> literal", "问：你好\n答：", "[Round 0]\n问：hi\n答：hello\n",
]

RULE_TSV = [  # a user rule file: source code points -> target code points (tab-separated hex)
    ("41", "61"), ("42", "62"), ("2460", "31"), ("FF01", "21"), ("3000", "20"), ("E9", "65 301"), ("200B", ""),
]
DENORM_TSV = [("61", "41"), ("65 301", "E9")]


def hex_rules(rules):
    return "".join(f"{src}\t{dst}\n" for src, dst in rules)


def train(corpus, prefix, **kwargs):
    args = dict(input=corpus, model_prefix=prefix, vocab_size=1500, character_coverage=0.995,
                num_threads=2, input_sentence_size=0, minloglevel=2, seed_sentencepiece_size=200000)
    args.update(kwargs)
    spm.SentencePieceTrainer.train(**args)
    os.remove(prefix + ".vocab")
    return prefix + ".model"


def library_cases(model_file, lines):
    sp = spm.SentencePieceProcessor(model_file=model_file)
    cases = []
    for text in lines:
        ids = sp.encode(text)
        cases.append({"text": text, "ids": ids, "decoded": sp.decode(ids)})
    return cases


# MARK: - ice_text-shaped models and THUDM's text rules


def glm_layout_model(text_model, out_file, byte_fallback):
    """The text model with GLM's pieces appended as ice_text.model has them."""
    proto = model_pb2.ModelProto()
    with open(text_model, "rb") as f:
        proto.ParseFromString(f.read())
    P = model_pb2.ModelProto.SentencePiece
    for name in GLM_SPECIAL:
        proto.pieces.add(piece=name, score=0.0, type=P.CONTROL)
    for name in ["<|tab|>"] + [f"<|blank_{n}|>" for n in range(2, MAX_BLANK + 1)]:
        proto.pieces.add(piece=name, score=0.0, type=P.USER_DEFINED)
    for b in range(256):
        proto.pieces.add(piece=f"<0x{b:02X}>", score=0.0, type=P.BYTE)
    proto.trainer_spec.byte_fallback = byte_fallback
    with open(out_file, "wb") as f:
        f.write(proto.SerializeToString())
    return out_file


def chatglm_preprocess(text):
    text = text.replace("\n", "<n>").replace("\t", "<|tab|>")
    for n in range(MAX_BLANK, 1, -1):
        text = text.replace(" " * n, f"<|blank_{n}|>")
    return text


def chatglm_encode(sp, text, offset, add_dummy_prefix=True):
    text = chatglm_preprocess(text)
    if not add_dummy_prefix:
        text = "<n>" + text
    ids = [i + offset for i in sp.encode(text)]
    return ids if add_dummy_prefix else ids[2:]


def chatglm_decode(sp, ids, offset):
    text = sp.decode([i - offset for i in ids if i - offset >= 0])
    text = text.replace("<n>", "\n").replace("<|tab|>", "\t")
    for n in range(2, MAX_BLANK + 1):
        text = text.replace(f"<|blank_{n}|>", " " * n)
    return text


def icetk_encode(sp, text, offset):
    return [i + offset for i in sp.encode(text)]


def icetk_decode(sp, ids, offset):
    return sp.decode([i - offset for i in ids if i - offset >= 0]).replace("<n>", "\n")


def layout_cases(model_file, layout, offset, lines):
    sp = spm.SentencePieceProcessor(model_file=model_file)
    cases = []
    for text in lines:
        if layout == "chatglm":
            ids = chatglm_encode(sp, text, offset)
            case = {"text": text, "ids": ids, "decoded": chatglm_decode(sp, ids, offset),
                    "ids_no_dummy_prefix": chatglm_encode(sp, text, offset, add_dummy_prefix=False)}
        else:
            ids = icetk_encode(sp, text, offset)
            case = {"text": text, "ids": ids, "decoded": icetk_decode(sp, ids, offset)}
        cases.append(case)
    return cases


def main():
    train_entries, held = split()
    if not train_entries:
        sys.exit("no corpus: install Debian's fortunes and fortunes-zh packages")
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    corpus = os.path.join(tmp, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        for e in train_entries:
            f.write(e.replace("\n", " ") + "\n")
        for line in EDGE_CASES * 3:
            f.write(line.replace("\n", " ").replace("\r", " ") + "\n")
    lines = [e for e in held[::max(1, len(held) // 120)]][:120] + EDGE_CASES
    rules = os.path.join(tmp, "rule.tsv")
    with open(rules, "w") as f:
        f.write(hex_rules(RULE_TSV))
    denorm = os.path.join(tmp, "denorm.tsv")
    with open(denorm, "w") as f:
        f.write(hex_rules(DENORM_TSV))

    fixtures = {"library": f"sentencepiece {spm.__version__}", "normalizers": {}, "layouts": {}}
    specs = {
        "nmt_nfkc": dict(normalization_rule_name="nmt_nfkc", byte_fallback=True),
        "nfkc": dict(normalization_rule_name="nfkc", byte_fallback=True),
        "nmt_nfkc_cf": dict(normalization_rule_name="nmt_nfkc_cf", byte_fallback=True),
        "nfkc_cf": dict(normalization_rule_name="nfkc_cf", byte_fallback=True),
        "user_rules": dict(normalization_rule_tsv=rules, denormalization_rule_tsv=denorm, byte_fallback=True),
        "nmt_nfkc_bpe": dict(normalization_rule_name="nmt_nfkc", model_type="bpe", byte_fallback=True),
        "nmt_nfkc_no_prefix": dict(normalization_rule_name="nmt_nfkc", add_dummy_prefix=False),
        "nmt_nfkc_keep_spaces": dict(normalization_rule_name="nmt_nfkc", remove_extra_whitespaces=False, byte_fallback=True),
    }
    for name, spec in specs.items():
        model = train(corpus, os.path.join(OUT, name), **spec)
        fixtures["normalizers"][name] = library_cases(model, lines)

    # ice_text-shaped: <n> is a user-defined piece of the text model
    text_model = train(corpus, os.path.join(tmp, "ice_text"), normalization_rule_name="nmt_nfkc",
                       user_defined_symbols=["<n>"], byte_fallback=False)
    layout_lines = [e for e in held[::max(1, len(held) // 60)]][:60] + LAYOUT_CASES
    # the library refuses byte pieces without byte_fallback, so ice_text.model has it on
    for name in ["ice_text"]:
        model = glm_layout_model(text_model, os.path.join(OUT, name + ".model"), byte_fallback=True)
        fixtures["layouts"][name] = {
            "chatglm_original": {"offset": 20000, "cases": layout_cases(model, "chatglm", 20000, layout_lines)},
            "chatglm_rerelease": {"offset": 0, "cases": layout_cases(model, "chatglm", 0, layout_lines)},
            "icetk": {"offset": 20000, "cases": layout_cases(model, "icetk", 20000, layout_lines)},
        }
    with open(os.path.join(OUT, "encodings.json"), "w", encoding="utf-8") as f:
        json.dump(fixtures, f, ensure_ascii=False, indent=0)
    print(f"{len(specs)} normalizer models x {len(lines)} lines, 1 GLM-layout model x {len(layout_lines)} lines -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
