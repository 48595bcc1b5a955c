"""The bilingual corpus shared by the tokenizer fixtures and the training
scripts: English fortunes and Chinese Tang/Song poems from Debian's
`fortunes` and `fortunes-zh` packages, one entry per item, every 20th entry
held out (never seen by training)."""
import os
import re

FORTUNES = "/usr/share/games/fortunes"
CHINESE = ["tang300", "song100"]
# every English fortune file of Debian's `fortunes` package (the offensive ones
# live in a subfolder and are not read; `chinese` is fortunes-zh's own file,
# ascii-art is drawings, not text)
ENGLISH = sorted(n for n in (os.listdir(FORTUNES) if os.path.isdir(FORTUNES) else [])
                 if "." not in n and n not in CHINESE + ["chinese", "ascii-art"] and os.path.isfile(os.path.join(FORTUNES, n)))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def entries(name):
    path = os.path.join(FORTUNES, name)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as f:
        text = ANSI.sub("", f.read())
    items = [e.strip() for e in text.split("\n%\n")]
    return [e for e in items if e and e != "%"]


def split():
    """(train, held_out) lists of entries; every 20th entry of each file is held out."""
    train, held = [], []
    for name in ENGLISH + CHINESE:
        for i, e in enumerate(entries(name)):
            (held if i % 20 == 19 else train).append(e)
    return train, held
