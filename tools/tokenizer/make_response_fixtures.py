"""Writes Tests/Fixtures/tokenizer/glm/responses.json: answers as ChatGLM-6B's
chat code post-processes them (modeling_chatglm.py process_response: strip,
the training-date placeholder, ASCII punctuation beside CJK ideographs made
full-width), restated here with Python's re as the authors wrote it.

    python3 tools/tokenizer/make_response_fixtures.py
"""
import json
import os
import re

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "tokenizer", "glm", "responses.json")
PUNCTUATION = [[",", "，"], ["!", "！"], [":", "："], [";", "；"], ["\\?", "？"]]

CASES = [
    "你好,我是ChatGLM!", "  前后空白  \n", "中,文", "中,,文", ",中,中,", "a,b!c", "问:答;好?", "English, only! yes: no; why?",
    "混合 text,中文!English", "今年是[[训练时间]],对吗?", "数字1,2,3", "中?!中", "", "\u4e00,\u9fff,\u3400,", "日本語!テキスト,",
]


def process(response):
    response = response.strip()
    response = response.replace("[[训练时间]]", "2023年")
    for ascii_mark, full in PUNCTUATION:
        response = re.sub(r"([\u4e00-\u9fff])%s" % ascii_mark, r"\1%s" % full, response)
        response = re.sub(r"%s([\u4e00-\u9fff])" % ascii_mark, r"%s\1" % full, response)
    return response


if __name__ == "__main__":
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump([{"text": c, "processed": process(c)} for c in CASES], f, ensure_ascii=False, indent=0)
    print(f"{len(CASES)} responses -> {os.path.normpath(OUT)}")
