#!/usr/bin/python3
"""
gen_samples.py - generate glmq's committed test fixtures (tiny GLM checkpoints and golden values).

glmq itself never runs Python. This script is the only Python in the project: it builds two tiny
"trained" GLM-family checkpoints (glm2-tiny: ChatGLM2/3 architecture; glm1-tiny: ChatGLM-6B
architecture), their SentencePiece tokenizers, four on-disk variants of each checkpoint, and golden
values computed with PyTorch / the sentencepiece library (never with glmq) that the C code is tested
against. The forward passes below are written from GLM-SPEC.md (shared/ beside the checkout) ("glmq reference
semantics", A.4-A.9, B.3-B.7) in the style of the upstream modeling_chatglm.py.

Usage (Debian python3-torch 1.13, python3-sentencepiece, python3-numpy; packages bible-kjv and
fortunes-zh for the corpus):

    /usr/bin/python3 samples/gen_samples.py               # everything (trains ~3 min per model)
    /usr/bin/python3 samples/gen_samples.py --skip-train  # reuse the committed tokenizer.model and
                                                          # st/model.safetensors, redo the rest

See samples/README.md for the layout, the protocols and the manifest format.
"""
import argparse
import collections
import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import time

# OpenMP threads must not spin: the machine is shared, and spinning threads on busy cores made a
# training step 2-6x slower. Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240611
CTX = 256  # decision 5: default perplexity context for the tiny samples

# ---------------------------------------------------------------------------------------------
# Model and tokenizer hyper-parameters
# ---------------------------------------------------------------------------------------------

GLM2 = dict(
    name="glm2-tiny",
    sp_pieces=1200,          # SentencePiece pieces; [MASK] [gMASK] [sMASK] sop eop follow (B.7)
    padded_vocab_size=1216,  # >= pieces + 5, multiple of 64
    hidden_size=128,
    num_layers=2,
    num_attention_heads=4,
    kv_channels=32,          # head dim d; rotary dim d/2 = 16 (8 frequencies)
    multi_query_group_num=2,
    ffn_hidden_size=172,     # dense_4h_to_h has 172 columns (not a multiple of 64, nor of 8)
    rope_ratio=2.0,          # base = 10000 * 2
    seq_length=512,
    layernorm_epsilon=1e-5,
)

GLM1 = dict(
    name="glm1-tiny",
    sp_pieces=1100,          # pieces incl. the ice_text-style tail (8 specials, tab, 79 blanks, 256 bytes)
    vocab_size=1152,         # rows of word_embeddings / lm_head (>= pieces, multiple of 64)
    hidden_size=96,          # every 2-D weight row is 96 (or 360) long: never a multiple of 64
    num_layers=2,
    num_attention_heads=3,   # head dim 32: two 16-dim RoPE halves of 8 frequencies each
    inner_hidden_size=360,
    max_sequence_length=512,
    layernorm_epsilon=1e-5,
)

V1_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "<unused_0>", "<sop>", "<eop>", "<ENC>", "<dBLOCK>"]
V1_TAB_BLANKS = ["<|tab|>"] + ["<|blank_%d|>" % k for k in range(2, 81)]
V2_SPECIALS = ["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop"]

TRAIN = dict(steps=200, batch=8, lr=4e-3, warmup=20, min_lr_frac=0.1, weight_decay=0.01,
             clip=1.0)


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------
# 1. Corpus: KJV bible (bible-kjv + bible-kjv-text) and Chinese fortunes (fortunes-zh)
# ---------------------------------------------------------------------------------------------

EVAL_EN_CHAPTERS = [("Ruth", 1), ("Ruth", 2)]
# held-out fortune entries: (file, index)
EVAL_ZH_ENTRIES = [("tang300", 40), ("tang300", 41), ("tang300", 120), ("tang300", 200),
                   ("song100", 30), ("song100", 31), ("chinese", 101), ("chinese", 2003)]


def read_bible():
    """All 1189 chapters as (book, chapter, [(verse, text)]), from the `bible` program."""
    out = subprocess.run(["bible", "-l10000", "Gen1:1-Rev22:21"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE).stdout.decode("utf-8")
    chapters = []
    for line in out.split("\n"):
        m = re.match(r"^(\S.*) (\d+)$", line)
        if m:
            chapters.append((m.group(1), int(m.group(2)), []))
            continue
        m = re.match(r"^  (\d+) (.*)$", line)
        if m:
            chapters[-1][2].append((int(m.group(1)), m.group(2)))
            continue
        if line.strip():
            raise RuntimeError("unexpected bible output line %r" % line)
    nverses = sum(len(c[2]) for c in chapters)
    if len(chapters) != 1189 or nverses != 31102:
        raise RuntimeError("bible: %d chapters, %d verses (expected 1189, 31102)"
                           % (len(chapters), nverses))
    return chapters


def read_fortunes(name):
    raw = open("/usr/share/games/fortunes/" + name, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")
    text = re.sub(r"\x1b\[[0-9;]*m?", "", text)  # ANSI colour escapes
    assert "\x1b" not in text
    entries = re.split(r"(?m)^%\n", text)
    return [e for e in entries]


def fmt_chapter(book, ch, verses, style):
    """style 0: the `bible` program's layout with an indented heading; style 1: 'Book C:V<TAB>text'."""
    if style == 0:
        indent = " " * ((ch * 5) % 13)
        lines = [indent + "%s %d" % (book, ch), ""]
        lines += ["  %d %s" % (v, t) for v, t in verses]
    else:
        lines = ["%s %d:%d\t%s" % (book, ch, v, t) for v, t in verses]
    return "\n".join(lines) + "\n"


def build_corpus():
    """Returns (train_docs, eval_en, eval_zh). Deterministic."""
    chapters = read_bible()
    held = set(EVAL_EN_CHAPTERS)
    docs_en = []
    j = 0
    for i, (book, ch, verses) in enumerate(chapters):
        if (book, ch) in held or i % 4 != 0:
            continue
        docs_en.append(fmt_chapter(book, ch, verses, 0 if j % 3 != 2 else 1))
        j += 1
    byname = {(b, c): v for b, c, v in chapters}

    fort = {n: read_fortunes(n) for n in ("chinese", "tang300", "song100")}
    held_zh = set(EVAL_ZH_ENTRIES)
    docs_zh = []
    for name in ("tang300", "song100", "chinese"):
        for i, e in enumerate(fort[name]):
            if (name, i) in held_zh or not e.strip():
                continue
            if name == "chinese" and i % 6 != 0:
                continue
            docs_zh.append(e + "%\n")

    # held-out English: Ruth 1 in the bible layout under a centred title, Ruth 2:1-12 in the
    # tab layout, and a short tally with digits, tabs and runs of spaces.
    r1, r2 = byname[("Ruth", 1)], byname[("Ruth", 2)]
    eval_en = ("          THE BOOK OF RUTH\n\n" + fmt_chapter("Ruth", 1, r1, 0) + "\n"
               + fmt_chapter("Ruth", 2, r2[:12], 1) + "\n"
               + "Chapter 1:\t%d verses,   %d words.\n" % (len(r1), sum(len(t.split()) for _, t in r1))
               + "Chapter 2:\t%d verses (1-12 above),    %d words.\n"
               % (len(r2), sum(len(t.split()) for _, t in r2))
               + "    Total:\t%d + %d = %d;  printed 1611, 1769.\n" % (len(r1), len(r2), len(r1) + len(r2)))
    eval_zh = "".join(fort[n][i] + "%\n" for n, i in EVAL_ZH_ENTRIES)
    return docs_en, docs_zh, eval_en, eval_zh


TRICKY = (
    "Emoji: 👋 🚀 👨‍👩‍👧 🇨🇳 ❤️ (ZWJ, flags, VS16)\n"
    "Rare CJK: 𠀀 𪚥 龘 䶵 𰻞𰻞面 and 〇\n"
    "Full-width: ＡＢＣ１２３！？ half-width: ｶﾀｶﾅ  ligature: ﬁ ﬂ ½ ①\n"
    "Mixed   spaces:\ta\t\tb \t c\u00a0nbsp\u3000ideographic\u2002en-space\n"
    "Trailing spaces   \n"
    "\n"
    "  two leading, then 100 spaces:" + " " * 100 + "|\n"
    "CRLF line\r\n"
    "Accents: café naïve Ångström e\u0301 (combining)\n"
    "Other scripts: Ελληνικά русский العربية עברית 한국어 ไทย हिन्दी\n"
    "Digits: 0123456789 3.14159 1,000,000 -42 ١٢٣\n"
    "Symbols: ~!@#$%^&*()_+-={}[]|\\:;\"'<>,.?/ ™ © ®\n"
    "Specials as text: [gMASK] sop <sop> <n> <|tab|> <unk> </s>\n"
    "End without newline 🙂"
)

SHORT_STRINGS = [
    "",
    " ",
    "  ",
    "hello",
    " hello",
    "hello ",
    "  hello  world  ",
    "\n",
    "a\nb",
    "\t",
    "a\tb",
    "a    b",
    "1234567",
    "3.14 and 2024",
    "你好",
    "你好，世界！",
    "👋",
    "🙂 ok",
    "def main():\n    print('hello world')\t# greeting",
    "[Round 1]\n\n问：你好\n\n答：",
]


# ---------------------------------------------------------------------------------------------
# 2. Tokenizers
# ---------------------------------------------------------------------------------------------

def v1_preprocess(text):
    """GLM-SPEC A.8 steps 1-3 (HF ChatGLMTokenizer with linebreak=True, whitespaces=True)."""
    text = text.replace("\n", "<n>")
    text = text.replace("\t", "<|tab|>")
    for k in range(80, 1, -1):
        text = text.replace(" " * k, "<|blank_%d|>" % k)
    return text


def pb_varint(buf, p):
    v = 0
    shift = 0
    while True:
        b = buf[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, p


def pb_fields(buf):
    """Yield (field, wire, value, raw) for each top-level field of a protobuf message."""
    p = 0
    while p < len(buf):
        start = p
        key, p = pb_varint(buf, p)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, p = pb_varint(buf, p)
        elif wire == 1:
            val = buf[p:p + 8]
            p += 8
        elif wire == 2:
            n, p = pb_varint(buf, p)
            val = buf[p:p + n]
            p += n
        elif wire == 5:
            val = buf[p:p + 4]
            p += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield field, wire, val, buf[start:p]


def sp_piece_info(raw_piece_msg):
    piece, score, typ = None, 0.0, 1
    for f, w, v, _ in pb_fields(raw_piece_msg):
        if f == 1:
            piece = v.decode("utf-8")
        elif f == 2:
            score = struct.unpack("<f", v)[0]
        elif f == 3:
            typ = v
    return piece, score, typ


def reorder_v1_pieces(model_bytes):
    """Move the pieces into the ice_text layout of GLM-SPEC A.8: <unk> <s> </s> <pad> <n>, the
    ordinary pieces, then [MASK] [gMASK] [sMASK] <unused_0> <sop> <eop> <ENC> <dBLOCK>, <|tab|>,
    <|blank_2|>..<|blank_80|>, and the 256 byte pieces last. Only the order of the `pieces` field
    changes (each piece message is copied byte for byte); trainer_spec/normalizer_spec are kept."""
    pieces, rest = [], []
    for f, w, v, raw in pb_fields(model_bytes):
        if f == 1:
            pieces.append((sp_piece_info(v)[0], raw))
        else:
            rest.append(raw)
    byname = {p: raw for p, raw in pieces}
    head = ["<unk>", "<s>", "</s>", "<pad>", "<n>"]
    tail = V1_SPECIALS + V1_TAB_BLANKS + ["<0x%02X>" % b for b in range(256)]
    special = set(head) | set(tail)
    order = head + [p for p, _ in pieces if p not in special] + tail
    assert len(order) == len(pieces) and set(order) == set(byname)
    return b"".join(byname[p] for p in order) + b"".join(rest)


def train_tokenizers(docs_en, docs_zh):
    """Train both SentencePiece models; returns {name: model_bytes}."""
    spm.set_random_generator_seed(SEED)
    # all English lines and every second Chinese line: keeps the characters needed for 98%
    # coverage (~200) well below the vocabulary size, so most CJK text uses byte fallback
    lines = []
    for d in docs_en:
        lines.extend(l for l in d.split("\n") if l.strip())
    zh_lines = []
    for d in docs_zh:
        zh_lines.extend(l for l in d.split("\n") if l.strip())
    lines += zh_lines[::2]
    common = dict(input_sentence_size=0, shuffle_input_sentence=False, num_threads=1,
                  byte_fallback=True, max_sentence_length=8192, minloglevel=2)

    # glm2-tiny: BPE, identity normalizer, dummy prefix, whitespace kept (GLM-SPEC B.7).
    w = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=w, model_type="bpe",
        vocab_size=GLM2["sp_pieces"], character_coverage=0.98,
        normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        split_digits=True, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, **common)
    m2 = w.getvalue()

    # glm1-tiny: UNIGRAM, nmt_nfkc, ice_text-style user-defined pieces (GLM-SPEC A.8).
    v1_lines = [v1_preprocess(l) for l in lines]
    w = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(v1_lines), model_writer=w, model_type="unigram",
        vocab_size=GLM1["sp_pieces"], character_coverage=0.98,
        normalization_rule_name="nmt_nfkc", add_dummy_prefix=True, remove_extra_whitespaces=True,
        split_digits=False, user_defined_symbols=["<n>"] + V1_TAB_BLANKS,
        control_symbols=V1_SPECIALS, unk_id=0, bos_id=1, eos_id=2, pad_id=3, **common)
    m1_orig = w.getvalue()
    m1 = reorder_v1_pieces(m1_orig)
    check_reorder(m1_orig, m1, lines)
    return {"glm2-tiny": m2, "glm1-tiny": m1}


def load_sp(model_bytes):
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(model_bytes)
    return sp


def check_reorder(orig, new, lines):
    a, b = load_sp(orig), load_sp(new)
    assert a.GetPieceSize() == b.GetPieceSize()
    for l in lines[::50] + [TRICKY] + SHORT_STRINGS:
        t = v1_preprocess(l)
        if a.EncodeAsPieces(t) != b.EncodeAsPieces(t):
            raise RuntimeError("piece reordering changed the encoding of %r" % l)


# ---------------------------------------------------------------------------------------------
# 3. Models (fp32 modules; written from GLM-SPEC in the style of upstream modeling_chatglm.py)
# ---------------------------------------------------------------------------------------------
#
# All matrix products go through linear() and bmm_nt(). The reference (golden) path uses plain
# torch.matmul in fp32. Training sets FAST_MATMUL: Debian's torch links the netlib reference
# BLAS (about 4 GFLOP/s), so training routes the same products through oneDNN 1-D convolutions
# (same math, different summation order). Goldens never use the fast path.

FAST_MATMUL = False


def linear(x, weight, bias=None):
    """x [..., in] @ weight[out, in]^T + bias."""
    if FAST_MATMUL:
        shp = x.shape
        x2 = x.reshape(-1, shp[-1])
        y = F.conv1d(x2.t().unsqueeze(0), weight.unsqueeze(-1), bias)  # [1, out, N]
        return y.squeeze(0).t().reshape(*shp[:-1], weight.shape[0])
    y = torch.matmul(x, weight.t())
    if bias is not None:
        y = y + bias
    return y


def bmm_nt(a, b):
    """a [..., T, K] @ b[..., S, K]^T -> [..., T, S]."""
    if FAST_MATMUL:
        lead = a.shape[:-2]
        T, K = a.shape[-2:]
        S = b.shape[-2]
        G = int(np.prod(lead)) if lead else 1
        inp = b.reshape(G, S, K).transpose(1, 2).reshape(1, G * K, S)
        w = a.reshape(G * T, K, 1)
        return F.conv1d(inp, w, groups=G).reshape(*lead, T, S)
    return torch.matmul(a, b.transpose(-1, -2))


class Linear(nn.Linear):
    def forward(self, x):
        return linear(x, self.weight, self.bias)


# ---- v2 family (ChatGLM2/3, GLM-4): GLM-SPEC B.3-B.5 ----------------------------------------

class RMSNorm(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


class RotaryEmbeddingV2(nn.Module):
    """Built with dim = kv_channels // 2 (upstream `RotaryEmbedding(rotary_dim // 2)`)."""

    def __init__(self, dim, rope_ratio):
        super().__init__()
        # the stored buffer, as upstream: base 10000 without rope_ratio, fp16; never used.
        inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        self.register_buffer("inv_freq", inv_freq.half())
        self.dim = dim
        self.rope_ratio = rope_ratio

    def forward(self, seq_len):
        # decision 1: theta_i = 1/(10000*rope_ratio)^(2i/dim) in fp32, positions exact, fp32 cos/sin
        base = 10000.0 * self.rope_ratio
        theta = 1.0 / (base ** (torch.arange(0, self.dim, 2, dtype=torch.float) / self.dim))
        seq_idx = torch.arange(seq_len, dtype=torch.float)
        idx_theta = torch.outer(seq_idx, theta).float()
        return torch.stack([torch.cos(idx_theta), torch.sin(idx_theta)], dim=-1)  # [s, dim/2, 2]


def apply_rotary_pos_emb_v2(x, rope_cache):
    """x [b, np, s, hn]; rotates the first 2*len(theta) dims in adjacent pairs (GPT-J style)."""
    b, np_, sq, hn = x.shape
    rot_dim = rope_cache.shape[-2] * 2
    x, x_pass = x[..., :rot_dim], x[..., rot_dim:]
    rope_cache = rope_cache[:sq]
    xshaped = x.reshape(b, np_, sq, rot_dim // 2, 2)
    rope_cache = rope_cache.view(1, 1, sq, rot_dim // 2, 2)
    x_out2 = torch.stack(
        [xshaped[..., 0] * rope_cache[..., 0] - xshaped[..., 1] * rope_cache[..., 1],
         xshaped[..., 1] * rope_cache[..., 0] + xshaped[..., 0] * rope_cache[..., 1]], -1)
    return torch.cat((x_out2.flatten(3), x_pass), dim=-1)


class SelfAttentionV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n = c["num_attention_heads"]
        self.d = c["kv_channels"]
        self.g = c["multi_query_group_num"]
        qkv = self.n * self.d + 2 * self.g * self.d
        self.query_key_value = Linear(c["hidden_size"], qkv, bias=True)   # add_qkv_bias
        self.dense = Linear(self.n * self.d, c["hidden_size"], bias=False)  # add_bias_linear=false

    def forward(self, x, rope_cache):
        b, s, _ = x.shape
        n, d, g = self.n, self.d, self.g
        mixed = self.query_key_value(x)
        # B.3: [all Q | all K | all V], not interleaved
        q, k, v = mixed.split([n * d, g * d, g * d], dim=-1)
        q = q.view(b, s, n, d).transpose(1, 2)
        k = k.view(b, s, g, d).transpose(1, 2)
        v = v.view(b, s, g, d).transpose(1, 2)
        q = apply_rotary_pos_emb_v2(q, rope_cache)
        k = apply_rotary_pos_emb_v2(k, rope_cache)
        # each KV group serves n/g consecutive query heads
        k = k.unsqueeze(2).expand(b, g, n // g, s, d).reshape(b, n, s, d)
        v = v.unsqueeze(2).expand(b, g, n // g, s, d).reshape(b, n, s, d)
        scores = bmm_nt(q, k) / math.sqrt(d)
        causal = torch.ones(s, s, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = F.softmax(scores.float(), dim=-1)
        ctx = bmm_nt(probs, v.transpose(-1, -2))  # probs @ v
        ctx = ctx.transpose(1, 2).reshape(b, s, n * d)
        return self.dense(ctx)


class MLPV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_h_to_4h = Linear(c["hidden_size"], 2 * c["ffn_hidden_size"], bias=False)
        self.dense_4h_to_h = Linear(c["ffn_hidden_size"], c["hidden_size"], bias=False)

    def forward(self, x):
        u = self.dense_h_to_4h(x)
        gate, up = torch.chunk(u, 2, dim=-1)   # swiglu: first half gate, second half up
        return self.dense_4h_to_h(F.silu(gate) * up)


class GLMBlockV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["layernorm_epsilon"])
        self.self_attention = SelfAttentionV2(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["layernorm_epsilon"])
        self.mlp = MLPV2(c)

    def forward(self, x, rope_cache):
        ln = self.input_layernorm(x)
        x = x + self.self_attention(ln, rope_cache)   # residual = block input (pre-LN)
        ln = self.post_attention_layernorm(x)
        return x + self.mlp(ln)


class EmbeddingV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["padded_vocab_size"], c["hidden_size"])

    def forward(self, ids):
        return self.word_embeddings(ids)


class GLMTransformerV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([GLMBlockV2(c) for _ in range(c["num_layers"])])
        self.final_layernorm = RMSNorm(c["hidden_size"], c["layernorm_epsilon"])

    def forward(self, x, rope_cache):
        for layer in self.layers:
            x = layer(x, rope_cache)
        return self.final_layernorm(x)


class ChatGLMModelV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embedding = EmbeddingV2(c)
        self.rotary_pos_emb = RotaryEmbeddingV2(c["kv_channels"] // 2, c["rope_ratio"])
        self.encoder = GLMTransformerV2(c)
        self.output_layer = Linear(c["hidden_size"], c["padded_vocab_size"], bias=False)

    def forward(self, ids):
        """ids [b, s] -> logits [b, s, V]; positions 0..s-1 (HF get_position_ids)."""
        x = self.embedding(ids)
        rope_cache = self.rotary_pos_emb(ids.shape[1])
        x = self.encoder(x, rope_cache)
        return self.output_layer(x)


class ChatGLMForConditionalGenerationV2(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = ChatGLMModelV2(c)

    def forward(self, ids):
        return self.transformer(ids)


# ---- v1 (ChatGLM-6B): GLM-SPEC A.4-A.6, decisions 1-3 ---------------------------------------

class RotaryEmbeddingV1(nn.Module):
    """Upstream RotaryEmbedding(dim = hidden/(2*heads), base 10000): inv_freq cast to half once."""

    def __init__(self, dim, base=10000):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq.half())

    def _load_from_state_dict(self, *args, **kwargs):
        pass  # upstream ignores the stored inv_freq and keeps the constructor's values

    def forward(self, position_ids):
        """position_ids [b, s] -> cos, sin [b, s, dim]; fp32 products of the fp16-rounded
        frequencies (decision 1)."""
        inv_freq = self.inv_freq.float()
        freqs = position_ids.float().unsqueeze(-1) * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class SelfAttentionV1(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, n = c["hidden_size"], c["num_attention_heads"]
        self.n, self.d = n, h // n
        self.rotary_emb = RotaryEmbeddingV1(h // (n * 2))
        self.query_key_value = Linear(h, 3 * h, bias=True)
        self.dense = Linear(h, h, bias=True)

    def forward(self, x, position_ids, block_position_ids, mask):
        b, s, _ = x.shape
        n, d = self.n, self.d
        mixed = self.query_key_value(x).view(b, s, n, 3 * d)   # A.4: per head [Q K V]
        q, k, v = torch.split(mixed, d, dim=-1)
        # 2-D RoPE: first half of each head by position, second half by block position
        q1, q2 = q.chunk(2, dim=-1)
        k1, k2 = k.chunk(2, dim=-1)
        cos, sin = self.rotary_emb(position_ids)
        cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
        q1, k1 = q1 * cos + rotate_half(q1) * sin, k1 * cos + rotate_half(k1) * sin
        cos, sin = self.rotary_emb(block_position_ids)
        cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
        q2, k2 = q2 * cos + rotate_half(q2) * sin, k2 * cos + rotate_half(k2) * sin
        q = torch.cat([q1, q2], dim=-1).transpose(1, 2)   # [b, n, s, d]
        k = torch.cat([k1, k2], dim=-1).transpose(1, 2)
        v = v.transpose(1, 2)
        scores = bmm_nt(q, k) / math.sqrt(d)
        scores = scores.masked_fill(mask.unsqueeze(1), -10000.0)   # decision 3
        probs = F.softmax(scores.float(), dim=-1)
        ctx = bmm_nt(probs, v.transpose(-1, -2))
        ctx = ctx.transpose(1, 2).reshape(b, s, n * d)
        return self.dense(ctx)


def gelu_impl(x):
    """OpenAI's tanh GELU, as upstream (not gated despite the class name GLU)."""
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * x * (1.0 + 0.044715 * x * x)))


class GLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense_h_to_4h = Linear(c["hidden_size"], c["inner_hidden_size"], bias=True)
        self.dense_4h_to_h = Linear(c["inner_hidden_size"], c["hidden_size"], bias=True)

    def forward(self, x):
        return self.dense_4h_to_h(gelu_impl(self.dense_h_to_4h(x)))


class GLMBlockV1(nn.Module):
    def __init__(self, c, num_layers=28):
        super().__init__()
        # decision 2: upstream never passes num_layers, so alpha = sqrt(2*28) for every checkpoint
        self.num_layers = num_layers
        self.input_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layernorm_epsilon"])
        self.attention = SelfAttentionV1(c)
        self.post_attention_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layernorm_epsilon"])
        self.mlp = GLU(c)

    def forward(self, x, position_ids, block_position_ids, mask):
        alpha = (2 * self.num_layers) ** 0.5
        attention_input = self.input_layernorm(x)
        attention_output = self.attention(attention_input, position_ids, block_position_ids, mask)
        x = attention_input * alpha + attention_output
        mlp_input = self.post_attention_layernorm(x)
        return mlp_input * alpha + self.mlp(mlp_input)


class ChatGLMModelV1(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([GLMBlockV1(c) for _ in range(c["num_layers"])])
        self.final_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layernorm_epsilon"])

    def forward(self, ids, position_ids, block_position_ids, mask):
        x = self.word_embeddings(ids)
        for layer in self.layers:
            x = layer(x, position_ids, block_position_ids, mask)
        return self.final_layernorm(x)


class ChatGLMForConditionalGenerationV1(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = ChatGLMModelV1(c)
        self.lm_head = Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.lm_head.weight = self.transformer.word_embeddings.weight   # tied

    def forward(self, ids, position_ids, block_position_ids, mask):
        return self.lm_head(self.transformer(ids, position_ids, block_position_ids, mask))


def v1_layout(ids, mask_id, gmask_id, sop_id):
    """GLM-SPEC A.6 (upstream get_position_ids / get_masks) for one sequence.
    Returns pos [s], blk [s], masked [s, s] (True = not visible), context_length, mask_position."""
    s = len(ids)
    context_length = ids.index(sop_id)
    mask_token = gmask_id if gmask_id in ids else mask_id
    mask_position = ids.index(mask_token)
    pos = list(range(s))
    for i in range(context_length, s):
        pos[i] = mask_position
    blk = [0] * context_length + [i - context_length + 1 for i in range(context_length, s)]
    vis = torch.ones(s, s).tril()
    vis[:, :context_length] = 1
    masked = vis < 0.5
    return pos, blk, masked, context_length, mask_position


# ---------------------------------------------------------------------------------------------
# 4. Training
# ---------------------------------------------------------------------------------------------

def init_weights(model):
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def encode_docs(sp, docs, v1):
    ids = []
    for d in docs:
        ids.extend(sp.EncodeAsIds(v1_preprocess(d) if v1 else d))
    return torch.tensor(ids, dtype=torch.long)


def train_model(model, stream, prefix, forward_fn, c, vocab):
    """Random windows of CTX-len(prefix) tokens, input = prefix + window, loss on the window."""
    global FAST_MATMUL
    FAST_MATMUL = True
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED + 1)
    W = CTX - len(prefix)
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (decay if p.dim() == 2 else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=TRAIN["lr"], betas=(0.9, 0.95), eps=1e-8)
    steps = TRAIN["steps"]
    losses = []
    t0 = time.time()
    pre = torch.tensor(prefix, dtype=torch.long)
    for step in range(steps):
        if step < TRAIN["warmup"]:
            lr = TRAIN["lr"] * (step + 1) / TRAIN["warmup"]
        else:
            pr = (step - TRAIN["warmup"]) / max(1, steps - TRAIN["warmup"])
            lr = TRAIN["lr"] * (TRAIN["min_lr_frac"] + (1 - TRAIN["min_lr_frac"]) * 0.5
                                * (1 + math.cos(math.pi * pr)))
        for group in opt.param_groups:
            group["lr"] = lr
        starts = torch.randint(0, len(stream) - W, (TRAIN["batch"],), generator=g)
        win = torch.stack([stream[s:s + W] for s in starts.tolist()])
        ids = torch.cat([pre.expand(TRAIN["batch"], -1), win], dim=1)
        logits = forward_fn(model, ids)
        pred = logits[:, len(prefix) - 1:-1, :]
        loss = F.cross_entropy(pred.reshape(-1, vocab), win.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip"])
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == steps - 1:
            log("  step %4d  loss %.4f  lr %.2e  %.0fs" % (step, loss.item(), lr, time.time() - t0))
    FAST_MATMUL = False
    return losses, time.time() - t0


def fwd_v2(model, ids):
    return model(ids)


def v1_gen_inputs(b, s):
    """A.9 (1) layout for [gMASK] <sop> x1..: pos 0, blk 0,1,2,..., causal (column 0 visible)."""
    pos = torch.zeros(b, s, dtype=torch.long)
    blk = torch.arange(s).unsqueeze(0).expand(b, s)
    masked = torch.ones(s, s).tril() < 0.5
    return pos, blk, masked.unsqueeze(0).expand(b, s, s)


def fwd_v1_gen(model, ids):
    pos, blk, masked = v1_gen_inputs(*ids.shape)
    return model(ids, pos, blk, masked)


# ---------------------------------------------------------------------------------------------
# 5. Checkpoint writers / readers (safetensors per GLM-SPEC D.1/D.4, torch.save, shards)
# ---------------------------------------------------------------------------------------------

ST_DTYPES = {torch.float16: "F16", torch.float32: "F32", torch.bfloat16: "BF16"}


def st_bytes(tensors):
    """safetensors file bytes: u64 header length, JSON header padded with spaces to a multiple of
    8, tensors back to back sorted by name (all F16/F32 here: alignment order = name order)."""
    names = sorted(tensors)
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    blobs = []
    for n in names:
        t = tensors[n].contiguous()
        b = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[n] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    return struct.pack("<Q", len(hj)) + hj + b"".join(blobs)


def st_read(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F16"
        b, en = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[base + b:base + en], dtype="<f2")
                                     .copy().reshape(e["shape"]))
    return out


def shard_plan(names, sizes, n_shards):
    """HF-like greedy sharding in state-dict order: a new shard starts once the current one holds
    about total/n_shards bytes (so shard borders fall inside layers)."""
    total = sum(sizes[n] for n in names)
    cap = total / n_shards
    shards, cur, cur_size = [], [], 0
    for n in names:
        if cur and cur_size + sizes[n] > cap and len(shards) < n_shards - 1:
            shards.append(cur)
            cur, cur_size = [], 0
        cur.append(n)
        cur_size += sizes[n]
    shards.append(cur)
    return shards


def write_variants(mdir, sd, model_half, copy_files, n_shards):
    """st/, st-sharded/, bin/, bin-sharded/ with identical tensor values."""
    names = list(sd.keys())
    sizes = {n: sd[n].numel() * sd[n].element_size() for n in names}
    total = sum(sizes.values())
    plan = shard_plan(names, sizes, n_shards)
    # a layer must straddle a shard border
    layer_of = lambda n: re.search(r"layers\.(\d+)\.", n)
    straddle = False
    for a, b in zip(plan, plan[1:]):
        la, lb = layer_of(a[-1]), layer_of(b[0])
        if la and lb and la.group(1) == lb.group(1):
            straddle = True
    assert straddle, "no layer is split across shards"

    def fresh(d):
        p = os.path.join(mdir, d)
        if os.path.isdir(p):
            shutil.rmtree(p)
        os.makedirs(p)
        for fn, data in copy_files.items():
            with open(os.path.join(p, fn), "wb") as f:
                f.write(data)
        return p

    p = fresh("st")
    with open(os.path.join(p, "model.safetensors"), "wb") as f:
        f.write(st_bytes({n: sd[n].clone() for n in names}))

    p = fresh("st-sharded")
    wm = {}
    for k, shard in enumerate(plan):
        fn = "model-%05d-of-%05d.safetensors" % (k + 1, len(plan))
        with open(os.path.join(p, fn), "wb") as f:
            f.write(st_bytes({n: sd[n].clone() for n in shard}))
        for n in shard:
            wm[n] = fn
    write_json(os.path.join(p, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))})

    p = fresh("bin")
    # model.state_dict() of the fp16 module: an OrderedDict with _metadata; for v1 the tied
    # lm_head.weight and word_embeddings.weight share one storage record.
    torch.save(model_half.state_dict(), os.path.join(p, "pytorch_model.bin"))

    p = fresh("bin-sharded")
    wm = {}
    for k, shard in enumerate(plan):
        fn = "pytorch_model-%05d-of-%05d.bin" % (k + 1, len(plan))
        torch.save({n: sd[n].clone() for n in shard}, os.path.join(p, fn))
        for n in shard:
            wm[n] = fn
    write_json(os.path.join(p, "pytorch_model.bin.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))})
    return plan


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def verify_variants(mdir, sd):
    """Read every variant back (torch.load / own safetensors reader) and compare bit for bit."""
    def same(got, where):
        assert set(got) == set(sd), (where, set(got) ^ set(sd))
        for n in sd:
            assert got[n].dtype == torch.float16 and torch.equal(got[n].view(torch.int16),
                                                                sd[n].view(torch.int16)), (where, n)
    same(st_read(os.path.join(mdir, "st", "model.safetensors")), "st")
    idx = json.load(open(os.path.join(mdir, "st-sharded", "model.safetensors.index.json")))
    got = {}
    for fn in sorted(set(idx["weight_map"].values())):
        got.update(st_read(os.path.join(mdir, "st-sharded", fn)))
    same(got, "st-sharded")
    same(dict(torch.load(os.path.join(mdir, "bin", "pytorch_model.bin"))), "bin")
    idx = json.load(open(os.path.join(mdir, "bin-sharded", "pytorch_model.bin.index.json")))
    got = {}
    for fn in sorted(set(idx["weight_map"].values())):
        got.update(torch.load(os.path.join(mdir, "bin-sharded", fn)))
    same(got, "bin-sharded")


# ---------------------------------------------------------------------------------------------
# 6. Quantization (decision 6) and golden values
# ---------------------------------------------------------------------------------------------

def quantize_rows(w16, qmax):
    """decision 6 in fp32: codes int8 [rows, cols], scales fp16 [rows], dequantized fp32."""
    w = w16.float()
    if not torch.isfinite(w).all():
        raise ValueError("non-finite weight")
    amax = w.abs().amax(dim=1)                           # fp32
    scale16 = (amax / float(qmax)).to(torch.float32).half()  # fp32 division, RNE to fp16
    s = scale16.float().unsqueeze(1)
    q = torch.where(s == 0, torch.zeros_like(w),
                    torch.clamp(torch.round(w / torch.where(s == 0, torch.ones_like(s), s)),
                                -qmax, qmax))
    codes = q.to(torch.int8)
    deq = codes.float() * s
    return codes, scale16, deq


def is_layer_weight(name, t):
    return t.dim() == 2 and ".layers." in name


def policy_weights(sd16, policy):
    """fp32 weights for a policy: f16 (as stored, widened), int8 / int4 (every 2-D weight inside
    the transformer layers dequantized; embedding, output layer, norms, biases as stored)."""
    out = {}
    for n, t in sd16.items():
        if policy != "f16" and is_layer_weight(n, t):
            out[n] = quantize_rows(t, 127 if policy == "int8" else 7)[2]
        else:
            out[n] = t.float()
    return out


def npsave(gdir, fn, arr, files, **desc):
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">":
        arr = arr.byteswap().newbyteorder()
    np.save(os.path.join(gdir, fn), arr)
    files[fn] = dict(dtype=str(arr.dtype), shape=list(arr.shape), **desc)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def nll_windows(logits_fn, ids, prefix, vocab):
    """Decision 5: windows of CTX-len(prefix) tokens, prefix + window, fresh forward, score every
    window token from the previous position, NLL from fp64 log-softmax over the full vocab."""
    W = CTX - len(prefix)
    nll = []
    nwin = 0
    for st in range(0, len(ids), W):
        win = ids[st:st + W]
        inp = torch.tensor([prefix + win], dtype=torch.long)
        with torch.no_grad():
            logits = logits_fn(inp)[0]                       # fp32 [s, V]
        assert logits.dtype == torch.float32 and logits.shape[1] == vocab
        lp = torch.log_softmax(logits.double(), dim=-1)
        pred = lp[len(prefix) - 1:len(prefix) - 1 + len(win)]
        nll.extend((-pred[torch.arange(len(win)), torch.tensor(win)]).tolist())
        nwin += 1
    return np.array(nll, dtype=np.float64), nwin


def tokenizer_goldens(sp, v1, texts, gdir, files, manifest):
    cases = []
    for name, text in texts:
        src = v1_preprocess(text) if v1 else text
        ids = sp.EncodeAsIds(src)
        fn = "tok_%s.npy" % name
        npsave(gdir, fn, np.array(ids, dtype="<i4"), files,
               what="SentencePiece ids of %s" % name,
               protocol=("A.8 preprocessing, then " if v1 else "") +
               "sentencepiece EncodeAsIds, no special tokens")
        case = {"name": name, "file": fn, "n_ids": len(ids)}
        if name.startswith("short"):
            case["text"] = text
            if v1:
                case["preprocessed"] = src
            case["ids"] = ids
            case["pieces"] = sp.EncodeAsPieces(src)
        else:
            case["text_file"] = "samples/text/%s.txt" % name
        cases.append(case)
    manifest["tokenizer"] = {"cases": cases}


def make_goldens(m, mdir, sd16, sp, texts, seqs, quant_tensors, extra_quant=None):
    """Writes mdir/golden/*.npy and manifest.json. m: model dict (config). seqs: list of dicts
    with name, ids and (v1) the layout. Returns the manifest."""
    v1 = m["arch"] == "v1"
    gdir = os.path.join(mdir, "golden")
    if os.path.isdir(gdir):
        shutil.rmtree(gdir)
    os.makedirs(gdir)
    torch.set_num_threads(1)
    files = collections.OrderedDict()
    manifest = collections.OrderedDict()
    manifest["model"] = m["name"]
    manifest["generator"] = "samples/gen_samples.py"
    manifest["versions"] = {"torch": torch.__version__, "numpy": np.__version__,
                            "sentencepiece": spm.__version__, "python": sys.version.split()[0]}
    manifest["checkpoint_sha256"] = sha256(open(os.path.join(mdir, "st", "model.safetensors"),
                                                "rb").read())
    manifest["tokenizer_sha256"] = sha256(open(os.path.join(mdir, "st", "tokenizer.model"),
                                               "rb").read())
    manifest["special_ids"] = m["special_ids"]
    manifest["conventions"] = (
        "All .npy files: numpy.save format 1.0, little-endian, C order. Logits are fp32 from the "
        "fp32 reference forward (decision 1): stored F16 weights widened to fp32, all math fp32. "
        "Policies: f16 = weights as stored; int8 / int4 = every 2-D weight inside the transformer "
        "layers replaced by its decision-6 dequantization q*s (fp32), everything else as stored.")

    # a. quantization goldens
    qlist = []
    for short, name in quant_tensors:
        t = sd16[name]
        entry = {"tensor": name, "shape": list(t.shape)}
        for bits, qmax in (("int8", 127), ("int4", 7)):
            codes, scales, _ = quantize_rows(t, qmax)
            fc, fs = "quant_%s_%s_codes.npy" % (short, bits), "quant_%s_%s_scales.npy" % (short, bits)
            npsave(gdir, fc, codes.numpy(), files, what="%s codes of %s" % (bits, name),
                   protocol="decision 6, qmax %d, signed codes, unpadded [rows, cols]" % qmax)
            npsave(gdir, fs, scales.view(torch.int16).numpy().view("<u2"), files,
                   what="%s scales of %s (fp16 bit patterns)" % (bits, name),
                   protocol="decision 6: fp16(amax/qmax), fp32 division")
            entry[bits] = {"codes": fc, "scales": fs}
        qlist.append(entry)
    if extra_quant is not None:
        short, w16, rows_doc = extra_quant
        fi = "quant_%s_input.npy" % short
        npsave(gdir, fi, w16.view(torch.int16).numpy().view("<u2"), files,
               what="synthetic edge-case matrix (fp16 bit patterns), not part of the checkpoint",
               rows=rows_doc)
        entry = {"tensor": None, "input": fi, "shape": list(w16.shape), "rows": rows_doc}
        for bits, qmax in (("int8", 127), ("int4", 7)):
            codes, scales, _ = quantize_rows(w16, qmax)
            fc, fs = "quant_%s_%s_codes.npy" % (short, bits), "quant_%s_%s_scales.npy" % (short, bits)
            npsave(gdir, fc, codes.numpy(), files, what="%s codes of %s" % (bits, fi),
                   protocol="decision 6, qmax %d; a scale that is 0 gives codes 0" % qmax)
            npsave(gdir, fs, scales.view(torch.int16).numpy().view("<u2"), files,
                   what="%s scales of %s (fp16 bit patterns)" % (bits, fi),
                   protocol="decision 6: fp16(amax/qmax), fp32 division")
            entry[bits] = {"codes": fc, "scales": fs}
        qlist.append(entry)
    manifest["quantization"] = qlist

    # b. logits and c. perplexity, per policy
    models = {pol: build_reference(m, policy_weights(sd16, pol)) for pol in ("f16", "int8", "int4")}
    seq_out = []
    for sq in seqs:
        ids = sq["ids"]
        e = collections.OrderedDict(name=sq["name"], ids=ids, layout=sq["layout"])
        fids = "seq_%s_ids.npy" % sq["name"]
        npsave(gdir, fids, np.array(ids, dtype="<i4"), files, what="input ids of sequence %s" % sq["name"])
        e["ids_file"] = fids
        if v1:
            pos, blk, masked, cl, mp = v1_layout(ids, m["special_ids"]["mask"],
                                                 m["special_ids"]["gmask"], m["special_ids"]["sop"])
            e.update(position_ids=pos, block_position_ids=blk, context_length=cl, mask_position=mp)
            fpos = "seq_%s_pos.npy" % sq["name"]
            npsave(gdir, fpos, np.array([pos, blk], dtype="<i4"), files,
                   what="[2, s]: position ids and block position ids of %s (A.6)" % sq["name"])
            e["pos_file"] = fpos
        e["logits"] = {}
        for pol, mod in models.items():
            with torch.no_grad():
                if v1:
                    lg = mod(torch.tensor([ids]), torch.tensor([pos]), torch.tensor([blk]),
                             masked.unsqueeze(0))[0]
                else:
                    lg = mod(torch.tensor([ids]))[0]
            fl = "logits_%s_%s.npy" % (sq["name"], pol)
            npsave(gdir, fl, lg.numpy().astype("<f4"), files,
                   what="fp32 logits of sequence %s, policy %s" % (sq["name"], pol),
                   protocol="row t = logits after token t")
            e["logits"][pol] = fl
        seq_out.append(e)
    manifest["sequences"] = seq_out

    prefix = [m["special_ids"]["gmask"], m["special_ids"]["sop"]]
    ppl = collections.OrderedDict()
    ppl["ctx"] = CTX
    ppl["prefix"] = prefix
    ppl["protocol"] = (
        "decision 5: whole text tokenized once without special tokens (%s); consecutive "
        "windows of %d tokens (last shorter); each window fed as prefix + window in a fresh "
        "forward; every window token scored from the previous position; NLL from fp64 "
        "log-softmax of the fp32 logits over all %d rows; ppl = exp(sum NLL / n)."
        % ("A.8 preprocessing first" if v1 else "raw text", CTX - 2, m["vocab"]))
    if v1:
        ppl["layout"] = ("A.9 (1) per decision 4: [gMASK] <sop> x1..xm, position ids all 0, block "
                         "position ids 0,1,2,... ([gMASK] 0, <sop> 1), causal attention")
    else:
        ppl["layout"] = "[gMASK] sop x1..xm, positions 0..s-1, causal attention"
    res = collections.OrderedDict()
    for tname, text in texts:
        if tname not in ("eval_en", "eval_zh"):
            continue
        ids = sp.EncodeAsIds(v1_preprocess(text) if v1 else text)
        res[tname] = collections.OrderedDict()
        for pol, mod in models.items():
            if v1:
                fn = lambda inp, mod=mod: fwd_v1_gen(mod, inp)
            else:
                fn = lambda inp, mod=mod: mod(inp)
            nll, nwin = nll_windows(fn, ids, prefix, m["vocab"])
            fnll = "nll_%s_%s.npy" % (tname, pol)
            npsave(gdir, fnll, nll.astype("<f8"), files,
                   what="per-token NLL (nats, fp64) of %s, policy %s, in text order" % (tname, pol))
            res[tname][pol] = collections.OrderedDict(
                nll_sum=float(nll.sum()), n_tokens=int(len(nll)), n_windows=nwin,
                ppl=float(math.exp(nll.sum() / len(nll))), nll_file=fnll)
    ppl["results"] = res
    manifest["perplexity"] = ppl

    tokenizer_goldens(sp, v1, texts, gdir, files, manifest)
    manifest["files"] = files
    write_json(os.path.join(gdir, "manifest.json"), manifest)
    torch.set_num_threads(2)
    return manifest


def build_reference(m, weights32):
    """A fresh fp32 module with the given fp32 weights (inv_freq recomputed by the constructor)."""
    c = m["cfg"]
    if m["arch"] == "v1":
        mod = ChatGLMForConditionalGenerationV1(c)
    else:
        mod = ChatGLMForConditionalGenerationV2(c)
    mod.load_state_dict({k: v for k, v in weights32.items()}, strict=False)
    with torch.no_grad():
        for n, p in mod.state_dict().items():
            if n in weights32 and not n.endswith("inv_freq"):
                assert torch.equal(p, weights32[n].to(p.dtype)), n
    mod.eval()
    return mod


def edge_quant_matrix():
    """Synthetic fp16 rows for decision-6 corner cases (80 columns: not a multiple of 64)."""
    cols = 80
    rows = []
    doc = []
    z = [0.0] * cols
    rows.append(z); doc.append("all zero: scale 0, codes 0")
    u = 2.0 ** -7  # int8 scale of this row is exactly 2^-7 (amax 127*2^-7)
    r = [127 * u] + [(k + 0.5) * u * (1 if k % 2 == 0 else -1) for k in range(cols - 1)]
    rows.append([x if abs(x) <= 127 * u else 0.0 for x in r])
    doc.append("int8 exact .5 ties (scale 2^-7): ties to even")
    u = 2.0 ** -4  # int4 scale exactly 2^-4 (amax 7*2^-4)
    r = [-7 * u] + [((k % 7) + 0.5) * u * (1 if k % 3 else -1) for k in range(cols - 1)]
    rows.append(r); doc.append("int4 exact .5 ties (scale 2^-4); amax from a negative value")
    t = 2.0 ** -24
    rows.append([50 * t * ((-1) ** k) * ((k % 5) + 1) / 5 for k in range(cols)])
    doc.append("fp16 subnormals, amax 50*2^-24: int8 scale underflows to 0 (codes 0), int4 scale subnormal")
    rows.append([1000 * t * math.sin(k + 1) for k in range(cols)])
    doc.append("subnormal int8 scale")
    rows.append([180 * t * ((k % 11) - 5) / 5 for k in range(cols)])
    doc.append("int8 scale fp16(180*2^-24/127) = 2^-24 (subnormal, rounded down by 29%): "
               "w/s reaches 180, so the clamp to 127 is active")
    rows.append([65504.0 * ((-1) ** k) if k % 9 == 0 else 100.0 * k for k in range(cols)])
    doc.append("fp16 max magnitude")
    g = torch.Generator().manual_seed(SEED + 7)
    rows.append((torch.randn(cols, generator=g) * 0.05).tolist()); doc.append("random normal")
    r = [0.0] * cols
    r[37] = -0.3
    rows.append(r); doc.append("one non-zero value")
    # a row whose fp16 scale rounds down, so amax/s is slightly above qmax (still rounds to qmax)
    found = None
    for k in range(1, 4000):
        amax = torch.tensor(1.0 + k / 1024.0, dtype=torch.float16).float()
        s = (amax / 127.0).half().float()
        if (amax / s).item() > 127.0:
            found = amax.item()
            break
    rows.append([found] + [found * ((k % 17) / 17.0) for k in range(cols - 1)])
    doc.append("int8: fp16 scale rounded down, amax/scale slightly above 127")
    w = torch.tensor(rows, dtype=torch.float32).half()
    return w, doc


# ---------------------------------------------------------------------------------------------
# 6b. Independent cross-check: numpy, float64, written line by line from the numbered spec steps
#     (B.4/B.5 for v2, A.4-A.6 for v1, decision 6), sharing no code with the torch modules above.
# ---------------------------------------------------------------------------------------------

def np_quant(w16, qmax):
    w = w16.astype(np.float32)
    amax = np.abs(w).max(axis=1)
    scale = (amax / np.float32(qmax)).astype(np.float32).astype(np.float16)
    s = scale.astype(np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.clip(np.rint(w / s), -qmax, qmax)
    q = np.where(s == 0, 0, q).astype(np.int8)
    return q, scale


def np_weights(sd16, policy):
    out = {}
    for n, t in sd16.items():
        w = t.numpy()
        if policy != "f16" and w.ndim == 2 and ".layers." in n:
            q, sc = np_quant(w, 127 if policy == "int8" else 7)
            out[n] = q.astype(np.float64) * sc.astype(np.float64)[:, None]
        else:
            out[n] = w.astype(np.float64)
    return out


def np_forward_v2(W, c, ids):
    h, n, d, g, Fh = (c["hidden_size"], c["num_attention_heads"], c["kv_channels"],
                      c["multi_query_group_num"], c["ffn_hidden_size"])
    eps = c["layernorm_epsilon"]
    s = len(ids)
    rms = lambda x, w: w * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))
    x = W["transformer.embedding.word_embeddings.weight"][ids]
    rot = d // 2                     # rotated dims per head (64 of 128 upstream)
    nf = rot // 2                    # frequencies
    base = 10000.0 * c["rope_ratio"]
    theta = np.array([np.float32(1.0 / base ** (2.0 * i / rot)) for i in range(nf)], np.float64)
    ang = np.arange(s)[:, None] * theta[None, :]          # [s, nf]
    cs, sn = np.cos(ang), np.sin(ang)

    def rope(v):  # v [s, heads, d]; adjacent pairs (2i, 2i+1) for i < nf
        v = v.copy()
        a, b = v[:, :, 0:rot:2].copy(), v[:, :, 1:rot:2].copy()
        v[:, :, 0:rot:2] = a * cs[:, None, :] - b * sn[:, None, :]
        v[:, :, 1:rot:2] = b * cs[:, None, :] + a * sn[:, None, :]
        return v

    for l in range(c["num_layers"]):
        p = "transformer.encoder.layers.%d." % l
        a = rms(x, W[p + "input_layernorm.weight"])
        qkv = a @ W[p + "self_attention.query_key_value.weight"].T + W[p + "self_attention.query_key_value.bias"]
        q = rope(qkv[:, :n * d].reshape(s, n, d))
        k = rope(qkv[:, n * d:n * d + g * d].reshape(s, g, d))
        v = qkv[:, n * d + g * d:].reshape(s, g, d)
        ctx = np.zeros((s, n, d))
        for hq in range(n):
            kg = hq // (n // g)
            S = q[:, hq, :] @ k[:, kg, :].T / math.sqrt(d)
            S = np.where(np.tri(s, dtype=bool), S, -np.inf)
            P = np.exp(S - S.max(-1, keepdims=True))
            P /= P.sum(-1, keepdims=True)
            ctx[:, hq, :] = P @ v[:, kg, :]
        x = x + ctx.reshape(s, n * d) @ W[p + "self_attention.dense.weight"].T
        m = rms(x, W[p + "post_attention_layernorm.weight"])
        u = m @ W[p + "mlp.dense_h_to_4h.weight"].T
        gate, up = u[:, :Fh], u[:, Fh:]
        x = x + ((gate / (1 + np.exp(-gate))) * up) @ W[p + "mlp.dense_4h_to_h.weight"].T
    x = rms(x, W["transformer.encoder.final_layernorm.weight"])
    return x @ W["transformer.output_layer.weight"].T


def np_forward_v1(W, c, ids, pos, blk, ctx_len):
    h, n = c["hidden_size"], c["num_attention_heads"]
    d = h // n
    eps = c["layernorm_epsilon"]
    alpha = math.sqrt(2 * 28)
    s = len(ids)

    def ln(x, w, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w + b

    half = d // 2
    nf = half // 2
    theta = np.array([float(np.float16(1.0 / 10000 ** (2.0 * i / half))) for i in range(nf)])

    def rope_half(v, p):  # v [s, heads, half]; rotate-half pairs (i, i + nf)
        ang = np.asarray(p, np.float64)[:, None] * theta[None, :]
        cs, sn = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        a, b = v[:, :, :nf], v[:, :, nf:]
        return np.concatenate([a * cs - b * sn, b * cs + a * sn], axis=-1)

    vis = np.array([[u <= t or u < ctx_len for u in range(s)] for t in range(s)])
    x = W["transformer.word_embeddings.weight"][ids]
    for l in range(c["num_layers"]):
        p = "transformer.layers.%d." % l
        a = ln(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"])
        qkv = a @ W[p + "attention.query_key_value.weight"].T + W[p + "attention.query_key_value.bias"]
        qkv = qkv.reshape(s, n, 3 * d)                  # A.4: rows [Q_h K_h V_h] per head
        q, k, v = qkv[:, :, :d], qkv[:, :, d:2 * d], qkv[:, :, 2 * d:]
        q = np.concatenate([rope_half(q[:, :, :half], pos), rope_half(q[:, :, half:], blk)], -1)
        k = np.concatenate([rope_half(k[:, :, :half], pos), rope_half(k[:, :, half:], blk)], -1)
        ctx = np.zeros((s, n, d))
        for hh in range(n):
            S = q[:, hh, :] @ k[:, hh, :].T / math.sqrt(d)
            S = np.where(vis, S, -np.inf)
            P = np.exp(S - S.max(-1, keepdims=True))
            P /= P.sum(-1, keepdims=True)
            ctx[:, hh, :] = P @ v[:, hh, :]
        o = ctx.reshape(s, h) @ W[p + "attention.dense.weight"].T + W[p + "attention.dense.bias"]
        x1 = a * alpha + o
        m = ln(x1, W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"])
        z = m @ W[p + "mlp.dense_h_to_4h.weight"].T + W[p + "mlp.dense_h_to_4h.bias"]
        gz = 0.5 * z * (1 + np.tanh(0.7978845608028654 * (z + 0.044715 * z ** 3)))
        x = m * alpha + gz @ W[p + "mlp.dense_4h_to_h.weight"].T + W[p + "mlp.dense_4h_to_h.bias"]
    x = ln(x, W["transformer.final_layernorm.weight"], W["transformer.final_layernorm.bias"])
    return x @ W["lm_head.weight"].T


def crosscheck(m, mdir, sd16, manifest):
    """Recompute every golden logits file and every quantization golden with the numpy code."""
    gdir = os.path.join(mdir, "golden")
    c = m["cfg"]
    worst = 0.0
    for pol in ("f16", "int8", "int4"):
        W = np_weights(sd16, pol)
        for sq in manifest["sequences"]:
            if m["arch"] == "v1":
                ref = np_forward_v1(W, c, sq["ids"], sq["position_ids"], sq["block_position_ids"],
                                    sq["context_length"])
            else:
                ref = np_forward_v2(W, c, sq["ids"])
            got = np.load(os.path.join(gdir, sq["logits"][pol])).astype(np.float64)
            err = np.abs(got - ref).max() / max(1.0, np.abs(ref).max())
            worst = max(worst, err)
            if err > 1e-4:
                raise RuntimeError("%s %s %s: torch and numpy logits differ (rel %.3g)"
                                   % (m["name"], sq["name"], pol, err))
    for e in manifest["quantization"]:
        w16 = (sd16[e["tensor"]].numpy() if e["tensor"] else
               np.load(os.path.join(gdir, e["input"])).view(np.float16))
        for bits, qmax in (("int8", 127), ("int4", 7)):
            q, sc = np_quant(w16, qmax)
            assert np.array_equal(q, np.load(os.path.join(gdir, e[bits]["codes"]))), (e, bits)
            assert np.array_equal(sc.view("<u2"), np.load(os.path.join(gdir, e[bits]["scales"]))), (e, bits)
    # the first perplexity window of eval_en (F16), through the numpy forward
    W = np_weights(sd16, "f16")
    ids = [int(i) for i in np.load(os.path.join(gdir, "tok_eval_en.npy"))][:CTX - 2]
    pre = manifest["perplexity"]["prefix"]
    inp = pre + ids
    if m["arch"] == "v1":
        lg = np_forward_v1(W, c, inp, [0] * len(inp), list(range(len(inp))), 1)
    else:
        lg = np_forward_v2(W, c, inp)
    lg = lg - lg.max(-1, keepdims=True)
    lp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
    nll = -lp[np.arange(1, len(inp) - 1), inp[2:]]
    got = np.load(os.path.join(gdir, manifest["perplexity"]["results"]["eval_en"]["f16"]["nll_file"]))
    err = np.abs(got[:len(nll)] - nll).max()
    if err > 1e-3:
        raise RuntimeError("%s: perplexity window NLL differs from numpy (%.3g)" % (m["name"], err))
    return worst, err


# ---------------------------------------------------------------------------------------------
# 7. Configs
# ---------------------------------------------------------------------------------------------

def glm2_config(c, n_pieces):
    sp_ids = {t: n_pieces + i for i, t in enumerate(V2_SPECIALS)}
    cfg = collections.OrderedDict([
        ("_name_or_path", "glmq/glm2-tiny"),
        ("model_type", "chatglm"),
        ("architectures", ["ChatGLMModel"]),
        ("auto_map", {
            "AutoConfig": "configuration_chatglm.ChatGLMConfig",
            "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
            "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
            "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration"}),
        ("add_bias_linear", False),
        ("add_qkv_bias", True),
        ("apply_query_key_layer_scaling", True),
        ("apply_residual_connection_post_layernorm", False),
        ("attention_dropout", 0.0),
        ("attention_softmax_in_fp32", True),
        ("bias_dropout_fusion", True),
        ("ffn_hidden_size", c["ffn_hidden_size"]),
        ("fp32_residual_connection", False),
        ("hidden_dropout", 0.0),
        ("hidden_size", c["hidden_size"]),
        ("kv_channels", c["kv_channels"]),
        ("layernorm_epsilon", c["layernorm_epsilon"]),
        ("multi_query_attention", True),
        ("multi_query_group_num", c["multi_query_group_num"]),
        ("num_attention_heads", c["num_attention_heads"]),
        ("num_layers", c["num_layers"]),
        ("original_rope", True),
        ("padded_vocab_size", c["padded_vocab_size"]),
        ("post_layer_norm", True),
        ("rmsnorm", True),
        ("rope_ratio", c["rope_ratio"]),
        ("seq_length", c["seq_length"]),
        ("use_cache", True),
        ("torch_dtype", "float16"),
        ("transformers_version", "4.30.2"),
        ("tie_word_embeddings", False),
        ("eos_token_id", 2),
        ("pad_token_id", 0),
    ])
    tok_cfg = collections.OrderedDict([
        ("name_or_path", "glmq/glm2-tiny"), ("remove_space", False), ("do_lower_case", False),
        ("tokenizer_class", "ChatGLMTokenizer"),
        ("auto_map", {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]})])
    special = {"mask": sp_ids["[MASK]"], "gmask": sp_ids["[gMASK]"], "smask": sp_ids["[sMASK]"],
               "sop": sp_ids["sop"], "eop": sp_ids["eop"], "unk": 0, "bos": 1, "eos": 2, "pad": 0,
               "n_pieces": n_pieces}
    return cfg, tok_cfg, special


def glm1_config(c, sp):
    ids = {t: sp.PieceToId(t) for t in V1_SPECIALS + ["<pad>", "<n>", "<|tab|>", "<0x00>"]}
    cfg = collections.OrderedDict([
        ("_name_or_path", "glmq/glm1-tiny"),
        ("architectures", ["ChatGLMModel"]),
        ("auto_map", {
            "AutoConfig": "configuration_chatglm.ChatGLMConfig",
            "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
            "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration"}),
        ("bos_token_id", ids["<sop>"]),
        ("eos_token_id", ids["<eop>"]),
        ("mask_token_id", ids["[MASK]"]),
        ("gmask_token_id", ids["[gMASK]"]),
        ("pad_token_id", ids["<pad>"]),
        ("hidden_size", c["hidden_size"]),
        ("inner_hidden_size", c["inner_hidden_size"]),
        ("layernorm_epsilon", c["layernorm_epsilon"]),
        ("max_sequence_length", c["max_sequence_length"]),
        ("model_type", "chatglm"),
        ("num_attention_heads", c["num_attention_heads"]),
        ("num_layers", c["num_layers"]),
        ("position_encoding_2d", True),
        ("torch_dtype", "float16"),
        ("transformers_version", "4.23.1"),
        ("use_cache", True),
        ("vocab_size", c["vocab_size"]),
    ])
    tok_cfg = collections.OrderedDict([
        ("name_or_path", "glmq/glm1-tiny"), ("bos_token", "<sop>"), ("eos_token", "<eop>"),
        ("end_token", "</s>"), ("gmask_token", "[gMASK]"), ("mask_token", "[MASK]"),
        ("pad_token", "<pad>"), ("unk_token", "<unk>"), ("remove_space", False),
        ("do_lower_case", False), ("tokenizer_class", "ChatGLMTokenizer"),
        ("num_image_tokens", 0),
        ("auto_map", {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]})])
    special = {"mask": ids["[MASK]"], "gmask": ids["[gMASK]"], "smask": ids["[sMASK]"],
               "sop": ids["<sop>"], "eop": ids["<eop>"], "pad": ids["<pad>"], "unk": 0,
               "newline": ids["<n>"], "tab": ids["<|tab|>"], "byte_0x00": ids["<0x00>"],
               "n_pieces": sp.GetPieceSize()}
    return cfg, tok_cfg, special


def state_dict_half(model):
    """fp16 copy of the module and its state dict (inv_freq buffers included, as upstream)."""
    mh = type(model)(model.cfg_dict)
    mh.load_state_dict(model.state_dict())
    mh = mh.half()
    sd = collections.OrderedDict((k, v.detach().contiguous()) for k, v in mh.state_dict().items())
    return mh, sd


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--skip-train", action="store_true",
                    help="reuse samples/<m>/st/{tokenizer.model,model.safetensors}")
    ap.add_argument("--steps", type=int, default=TRAIN["steps"])
    ap.add_argument("--only", choices=["glm2-tiny", "glm1-tiny"])
    args = ap.parse_args()
    TRAIN["steps"] = args.steps
    torch.set_num_threads(2)
    torch.manual_seed(SEED)

    log("corpus ...")
    docs_en, docs_zh, eval_en, eval_zh = build_corpus()
    train_text = "".join(docs_en + docs_zh)
    tdir = os.path.join(HERE, "text")
    os.makedirs(tdir, exist_ok=True)
    for fn, t in (("eval_en.txt", eval_en), ("eval_zh.txt", eval_zh), ("tricky.txt", TRICKY)):
        with open(os.path.join(tdir, fn), "w", encoding="utf-8", newline="") as f:
            f.write(t)
    for e in (eval_en, eval_zh):
        for line in e.split("\n"):
            if len(line) > 30 and not line.lstrip().startswith("--") and line in train_text:
                raise RuntimeError("eval line found in training text: %r" % line)
    corpus_info = {"train_bytes": len(train_text.encode("utf-8")),
                   "train_en_bytes": len("".join(docs_en).encode("utf-8")),
                   "train_zh_bytes": len("".join(docs_zh).encode("utf-8")),
                   "train_docs": [len(docs_en), len(docs_zh)],
                   "train_sha256": sha256(train_text.encode("utf-8"))}
    log("  training text %(train_bytes)d bytes (en %(train_en_bytes)d, zh %(train_zh_bytes)d), "
        "sha256 %(train_sha256)s" % corpus_info)

    texts = [("eval_en", eval_en), ("eval_zh", eval_zh), ("tricky", TRICKY)]
    texts += [("short%02d" % i, s) for i, s in enumerate(SHORT_STRINGS)]

    if args.skip_train:
        tok = {n: open(os.path.join(HERE, n, "st", "tokenizer.model"), "rb").read()
               for n in ("glm2-tiny", "glm1-tiny")}
    else:
        log("tokenizers ...")
        tok = train_tokenizers(docs_en, docs_zh)


    for mc in (GLM2, GLM1):
        name = mc["name"]
        if args.only and args.only != name:
            continue
        v1 = name == "glm1-tiny"
        mdir = os.path.join(HERE, name)
        os.makedirs(mdir, exist_ok=True)
        sp = load_sp(tok[name])
        assert sp.GetPieceSize() == mc["sp_pieces"], (name, sp.GetPieceSize())
        if v1:
            cfg, tok_cfg, special = glm1_config(mc, sp)
            c = dict(mc)
            m = dict(name=name, arch="v1", cfg=c, vocab=c["vocab_size"], special_ids=special)
            model = ChatGLMForConditionalGenerationV1(c)
            fwd = fwd_v1_gen
        else:
            cfg, tok_cfg, special = glm2_config(mc, sp.GetPieceSize())
            c = dict(mc)
            m = dict(name=name, arch="v2", cfg=c, vocab=c["padded_vocab_size"], special_ids=special)
            model = ChatGLMForConditionalGenerationV2(c)
            fwd = fwd_v2
        model.cfg_dict = c
        prefix = [special["gmask"], special["sop"]]
        info = {"config": cfg, "special_ids": special}

        if args.skip_train:
            sd = st_read(os.path.join(mdir, "st", "model.safetensors"))
            ref_order = list(model.state_dict().keys())
            sd = collections.OrderedDict((k, sd[k]) for k in ref_order)
            model.load_state_dict({k: v.float() for k, v in sd.items()})
            if v1:
                with torch.no_grad():
                    model.lm_head.weight = model.transformer.word_embeddings.weight
        else:
            log("%s: training ..." % name)
            init_weights(model)
            stream = encode_docs(sp, docs_en + docs_zh, v1)
            log("  %d training tokens, uniform loss ln(%d) = %.4f"
                % (len(stream), m["vocab"], math.log(m["vocab"])))
            losses, secs = train_model(model, stream, prefix, fwd, c, m["vocab"])
            info["train"] = collections.OrderedDict(
                tokens=len(stream), corpus_sha256=corpus_info["train_sha256"],
                prefix=prefix, window=CTX - len(prefix), layout=(
                    "A.9 (1): pos 0, blk 0,1,2,..., causal" if v1 else "positions 0..255, causal"),
                hyper=dict(TRAIN), seed=SEED, uniform_loss=math.log(m["vocab"]),
                loss_first=losses[0], loss_last50_mean=float(np.mean(losses[-50:])),
                losses=[round(x, 5) for x in losses])
            log("  trained in %.0f s: loss %.4f -> %.4f (mean of the last 50 steps)"
                % (secs, losses[0], info["train"]["loss_last50_mean"]))
            # kept across --skip-train runs (which do not retrain)
            write_json(os.path.join(mdir, "training.json"), info["train"])
        model.eval()
        mh, sd = state_dict_half(model)
        if v1:
            assert torch.equal(sd["lm_head.weight"], sd["transformer.word_embeddings.weight"])

        files = {"config.json": (json.dumps(cfg, indent=2) + "\n").encode("utf-8"),
                 "tokenizer.model": tok[name],
                 "tokenizer_config.json": (json.dumps(tok_cfg, indent=2) + "\n").encode("utf-8")}
        plan = write_variants(mdir, sd, mh, files, 3)
        verify_variants(mdir, sd)
        info["shards"] = [[s[0], s[-1], len(s)] for s in plan]

        # golden sequences
        sid = special
        enc = lambda t: sp.EncodeAsIds(v1_preprocess(t) if v1 else t)
        if v1:
            seqs = [
                dict(name="ctx_en", layout="A.6: context (bidirectional) + [gMASK] <sop> + continuation",
                     ids=enc("In the beginning God created\tthe heaven  and the earth.")
                     + [sid["gmask"], sid["sop"]] + enc("And the earth was without form")[:6]),
                dict(name="ctx_mask_zh", layout="A.6 with [MASK] inside the context (no [gMASK]): "
                     "mask_position < context_length - 1",
                     ids=enc("白日依山尽，")[:8] + [sid["mask"]] + enc("欲穷千里目，更上一层楼。\n")[:8]
                     + [sid["sop"]] + enc("黄河入海流")[:5]),
                dict(name="gen", layout="A.9 (1): [gMASK] <sop> x1..xm (the perplexity layout)",
                     ids=[sid["gmask"], sid["sop"]] + enc("  3 And God said, Let there be light: "
                                                          "and there was light.\n")[:22]),
            ]
        else:
            seqs = [
                dict(name="en", layout="[gMASK] sop + text, positions 0..s-1, causal",
                     ids=prefix + enc("In the beginning God created the heaven and the earth.\n"
                                      "  2 And the earth")[:22]),
                dict(name="zh", layout="[gMASK] sop + text (byte fallback), causal",
                     ids=prefix + enc("床前明月光，疑是地上霜。\t举头望明月")[:22]),
                dict(name="ids", layout="[gMASK] sop + assorted ids: unk, bos, eos, bytes, the "
                     "special ids and padding rows after them",
                     ids=prefix + [0, 1, 2, 3, 13, 258, 259, sid["mask"], sid["smask"], sid["eop"],
                                   sid["eop"] + 1, mc["padded_vocab_size"] - 1, sid["n_pieces"] - 1,
                                   500, 100, 7]),
            ]
        sd16 = collections.OrderedDict((k, v) for k, v in sd.items())
        L = mc["num_layers"]
        if v1:
            base = "transformer.layers.%d."
            qt = [("l0_qkv", (base % 0) + "attention.query_key_value.weight"),
                  ("l1_dense", (base % 1) + "attention.dense.weight"),
                  ("l0_4h_to_h", (base % 0) + "mlp.dense_4h_to_h.weight"),
                  ("l1_h_to_4h", (base % (L - 1)) + "mlp.dense_h_to_4h.weight")]
            extra = None
        else:
            base = "transformer.encoder.layers.%d."
            qt = [("l0_qkv", (base % 0) + "self_attention.query_key_value.weight"),
                  ("l1_dense", (base % 1) + "self_attention.dense.weight"),
                  ("l0_4h_to_h", (base % 0) + "mlp.dense_4h_to_h.weight"),
                  ("l1_h_to_4h", (base % (L - 1)) + "mlp.dense_h_to_4h.weight")]
            w, doc = edge_quant_matrix()
            extra = ("edge", w, doc)
        log("%s: goldens ..." % name)
        man = make_goldens(m, mdir, sd16, sp, texts, seqs, qt, extra)
        worst, nerr = crosscheck(m, mdir, sd16, man)
        log("  numpy cross-check: logits max rel diff %.3g, window NLL max abs diff %.3g"
            % (worst, nerr))
        info["perplexity"] = man["perplexity"]["results"]

        for t, r in man["perplexity"]["results"].items():
            log("  ppl %s: " % t + "  ".join("%s %.6f (n=%d)" % (p, v["ppl"], v["n_tokens"])
                                            for p, v in r.items()))
    log("done")


if __name__ == "__main__":
    main()
