"""After train.py: converts the checkpoint with `glm-run convert` into the
shipped q4_row model file, measures the held-out perplexity at every weight
type with `glm-run eval` next to PyTorch's for the same text and weights, and
records everything in models/glm-small-bilingual.json; copies the loss curve.

    python3 tools/train/finish.py /tmp/glm-small
"""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, ".build", "release", "glm-run")
HELD = os.path.join(ROOT, "models", "held-out.txt")


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def main():
    folder = sys.argv[1]
    work = folder + "-gguf"
    os.makedirs(work, exist_ok=True)
    table = {}
    for kind in ["f32", "f16", "q8_0", "q4_0", "q4_row"]:
        path = os.path.join(work, f"{kind}.gguf")
        run(BIN, "convert", folder, "-o", path, "--type", kind)
        result = json.loads(run(BIN, "eval", path, "--text", HELD, "--json"))
        result["bytes"] = os.path.getsize(path)
        table[kind] = result
        print(kind, result, flush=True)
    torch_result = json.loads(run(sys.executable, os.path.join(ROOT, "tools", "train", "eval_ppl.py"), folder, HELD))
    print("pytorch", torch_result)
    shutil.copy(os.path.join(work, "q4_row.gguf"), os.path.join(ROOT, "models", "glm-small-bilingual-q4.gguf"))
    shutil.copy(os.path.join(folder, "loss.svg"), os.path.join(ROOT, "models", "loss.svg"))
    training = json.load(open(os.path.join(folder, "training.json")))
    record = {"held_out_text": "models/held-out.txt (every 20th corpus entry, never trained on)",
              "perplexity": table, "pytorch_f32": torch_result, "training": training}
    json.dump(record, open(os.path.join(ROOT, "models", "glm-small-bilingual.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
