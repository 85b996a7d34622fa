#!/usr/bin/env python3
"""Goldens for tests/check_tok_upstream.c from the sentencepiece library and the real tokenizer
files in shared/upstream (GLMQ_UPSTREAM, default ../shared/upstream beside the checkout).

Writes tests/data/tokenizer/upstream_goldens.json:
  long:    for ice_text.model (final) and the ChatGLM2/3 tokenizer.model, the id count and the
           FNV-1a 64 hash (over the ids as little-endian int32) of SentencePiece's EncodeAsIds of
           a long text built from samples/text (see long_text), as is and on one line; the C test
           builds the same text, so chunked encoding is checked against one library pass.
  special: ids of texts with special-token text, derived from the upstream rules:
           ChatGLM3 SPTokenizer.tokenize(encode_special_tokens=True): split at each special,
           sentencepiece on the parts, special ids = 64789 + index; ChatGLM-6B (March 2023,
           special_tokens=True): the preprocessed text in one pass of a model whose 8 specials
           are USER_DEFINED (the released file with their type patched from 3 to 4).
Run once by hand; tests never run Python.
"""
import json, os, re, struct, sys
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UP = os.environ.get("GLMQ_UPSTREAM", os.path.join(ROOT, "..", "shared", "upstream"))
TEXT = os.path.join(ROOT, "samples", "text")


def long_text(one_line):
    parts = [open(os.path.join(TEXT, n), encoding="utf-8", newline="").read()
             for n in ("eval_en.txt", "eval_zh.txt", "tricky.txt")]
    t = "".join(parts[i % 3] + " %d " % i for i in range(72))
    return t.replace("\n", " ") if one_line else t


def fnv(ids):
    h = 0xcbf29ce484222325
    for b in b"".join(struct.pack("<i", i) for i in ids):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def v1_pre(t):
    t = t.replace("\n", "<n>").replace("\t", "<|tab|>")
    for i in range(80, 1, -1):
        t = t.replace(" " * i, "<|blank_%d|>" % i)
    return t


V1_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>", "<dBLOCK>"]
V3_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop",
               "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]


def patch_types(model, names):
    """The ModelProto with the piece records of `names` retyped CONTROL -> USER_DEFINED."""
    out = bytearray(model)
    for n in names:
        b = n.encode()
        rec = b"\x0a" + bytes([len(b)]) + b + b"\x15\x00\x00\x00\x00\x18\x03"
        i = out.find(rec)
        assert i > 0 and out.find(rec, i + 1) < 0, n
        out[i + len(rec) - 1] = 4
    return bytes(out)


SPECIAL_TEXTS = [
    "hello [gMASK]sop<|user|>\n你好<|assistant|>",
    "[gMASK]<sop><|user|>\n你好<|assistant|>",
    " <|system|> You are helpful.<|user|>  hi [MASK] there [sMASK]eop ",
    "Aesop said <eop><ENC> and [gMASK][gMASK]<dBLOCK>\tx\n\n",
    "no specials here, just text (sop-free?)",
]


def main():
    g = {"long": {}, "special": {}}
    v1 = open(os.path.join(UP, "chatglm-6b", "ice_text.model"), "rb").read()
    v3 = os.path.join(UP, "chatglm3-6b", "tokenizer.model")
    sp1 = spm.SentencePieceProcessor(model_proto=v1)
    sp3 = spm.SentencePieceProcessor(model_file=v3)
    for one in (0, 1):
        t = long_text(one)
        key = "line" if one else "text"
        ids1 = sp1.encode(v1_pre(t))
        ids3 = sp3.encode(t)
        nb = len(t.encode())
        g["long"]["chatglm-6b/" + key] = {"bytes": nb, "n": len(ids1), "fnv": fnv(ids1)}
        g["long"]["chatglm3-6b/" + key] = {"bytes": nb, "n": len(ids3), "fnv": fnv(ids3)}
    # committed test models: the same check where shared/upstream is absent
    tdir = os.path.join(ROOT, "tests", "data", "tokenizer")
    for name in ("sp_bpe.model", "sp_unigram.model", "sp_tiny.model", "sp_bpe_unused.model"):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(tdir, name))
        for one in (0, 1):
            t = long_text(one)
            ids = sp.encode(t)
            g["long"][name + "/" + ("line" if one else "text")] = {
                "bytes": len(t.encode()), "n": len(ids), "fnv": fnv(ids)}
    sp1s = spm.SentencePieceProcessor(model_proto=patch_types(v1, V1_SPECIALS))
    pat = re.compile("|".join(re.escape(s) for s in V3_SPECIALS))
    n3 = sp3.get_piece_size()
    for t in SPECIAL_TEXTS:
        ids = []
        last = 0
        for m in pat.finditer(t):
            if last < m.start():
                ids += sp3.encode(t[last:m.start()])
            ids.append(n3 + V3_SPECIALS.index(m.group()))
            last = m.end()
        if last < len(t):
            ids += sp3.encode(t[last:])
        g["special"].setdefault("chatglm3-6b", []).append({"text": t, "ids": ids})
        g["special"].setdefault("chatglm-6b", []).append({"text": t, "ids": sp1s.encode(v1_pre(t))})
    path = os.path.join(ROOT, "tests", "data", "tokenizer", "upstream_goldens.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(g, f, ensure_ascii=False, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
