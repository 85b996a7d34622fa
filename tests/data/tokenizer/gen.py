#!/usr/bin/python3
"""gen.py - regenerate the tokenizer fixtures and goldens used by tests/check_tokenizer.c.

Run with Debian's /usr/bin/python3 (python3-sentencepiece 0.1.97 must be importable; the pyenv
python on the build box lacks it):

    /usr/bin/python3 tests/data/tokenizer/gen.py

Nothing here comes from glmq's C code. The goldens are produced by
  * the `sentencepiece` library itself (training, encode, decode) for the three small
    SentencePiece models trained below and five models derived from them by editing the
    protobuf (UNUSED pieces, suffix mode, no escaping, denormalizer, user-defined decoys);
  * an independent pure-Python GLM-4 tokenizer (GLM-SPEC C.3: hand-written pre-tokenizer
    matcher + tiktoken byte-pair merge) run on the REAL GLM-4 rank file, checked first against
    chatglm.cpp's reference id lists (glm4_ref.json).

Inputs (Debian packages): bible-kjv (the `bible` program + bible-kjv-text) for English text and
fortunes-zh (UTF-8, '%'-separated, ANSI colour escapes stripped) for Chinese text. The GLM-4
rank file is read from $GLM4_TOKENIZER or shared/upstream/glm-4-9b-chat/tokenizer.model beside the checkout;
it is not copied here. Training is single-threaded with a fixed seed, so the .model files are
byte-for-byte reproducible (checked: two runs give identical sha256).

Outputs (all in this directory):
  sp_bpe.model         BPE like ChatGLM2: byte_fallback, identity normalizer, add_dummy_prefix,
                       remove_extra_whitespaces=false (+2 user-defined pieces)
  sp_unigram.model     UNIGRAM like ice_text: nmt_nfkc (precompiled charsmap), byte_fallback,
                       user-defined <n> <|tab|> <|blank_2..80|>, control [MASK] [gMASK] ... <sop>
  sp_tiny.model        UNIGRAM, default settings (nmt_nfkc, remove_extra_whitespaces=true,
                       no byte fallback: unknown runs merge into one <unk>), English-only corpus
  sp_bpe_unused.model  sp_bpe with a few merged pieces re-typed UNUSED (BPE resegmentation)
  sp_tiny_unused.model sp_tiny with UNUSED pieces, an identity normalizer (no charsmap) while
                       remove_extra_whitespaces stays true, and a denormalizer_spec carrying the
                       nmt_nfkc charsmap (decode output is NFKC-folded)
  sp_tiny_ud.model     sp_tiny with an identity normalizer, USER_DEFINED <|blank_4|> <|blank_80|>
                       <n> and NORMAL decoys ('<|blank' + '_4|>', ...) scored like the best NORMAL
                       piece: the unigram user-defined bonus decides (max_score starts at FLT_MIN)
  sp_bpe_suffix.model  sp_bpe with treat_whitespace_as_suffix = true
  sp_bpe_noescape.model sp_bpe with escape_whitespaces = false, remove_extra_whitespaces = true
  eval.txt             held-out English + Chinese text (performance and long-text goldens)
  goldens.json         per model: the flags read back from the file and one case per test string
                       (text as hex bytes, expected ids, sentencepiece's decode as hex bytes);
                       GLM flavour cases (v1 preprocessing/offset, v2/v3 prefix); GLM-4 cases
  eval_<model>.npy     int32 ids of eval.txt for sp_bpe, sp_unigram, sp_tiny and glm4
  ../../fuzz/corpus/tokenizer/*
                       seeds for tests/fuzz/fuzz_tokenizer.c (small hand-built models, a rank
                       file, test strings)
"""
import base64
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import unicodedata

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
GLM4_PATH = os.environ.get('GLM4_TOKENIZER',
                           os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'shared', 'upstream', 'glm-4-9b-chat', 'tokenizer.model'))
FORTUNES = '/usr/share/games/fortunes'
MODELS = ['sp_bpe', 'sp_unigram', 'sp_tiny', 'sp_bpe_unused', 'sp_tiny_unused', 'sp_bpe_suffix',
          'sp_bpe_noescape', 'sp_tiny_ud']
EVAL_MODELS = ['sp_bpe', 'sp_unigram', 'sp_tiny']


# ---------------------------------------------------------------------------------------------
# Corpora

def bible(*specs):
    """Verses of the KJV as plain lines (verse numbers and chapter headings dropped)."""
    out = subprocess.run(['bible', '-l10000', *specs], capture_output=True, check=True)
    lines = []
    for ln in out.stdout.decode('utf-8').split('\n'):
        m = re.match(r'^\s*\d+ (.*\S)\s*$', ln)
        if m:
            lines.append(m.group(1))
    return lines


ANSI = re.compile(r'\x1b\[[0-9;]*m')


def fortunes(name):
    """Non-empty stripped lines of a fortunes-zh file (UTF-8; colour escapes removed)."""
    s = open(os.path.join(FORTUNES, name), 'rb').read().decode('utf-8')
    s = ANSI.sub('', s)
    res = []
    for f in s.split('\n%\n'):
        for ln in f.split('\n'):
            ln = ln.strip()
            if ln and ln != '%':
                res.append(ln)
    return res


# ---------------------------------------------------------------------------------------------
# Minimal protobuf codec (read back the flags, re-type pieces). Independent of glmq.

def rd_varint(b, i):
    v = 0
    shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def wr_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def fields(b):
    """Yield (field, wire, value, raw_bytes_of_whole_field)."""
    i = 0
    while i < len(b):
        start = i
        key, i = rd_varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = rd_varint(b, i)
        elif w == 1:
            v = b[i:i + 8]
            i += 8
        elif w == 2:
            n, i = rd_varint(b, i)
            v = b[i:i + n]
            i += n
        elif w == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError('wire type %d' % w)
        yield f, w, v, b[start:i]


def model_info(path):
    b = open(path, 'rb').read()
    pieces = []
    info = {'trainer': {}, 'normalizer': {}}
    for f, w, v, _ in fields(b):
        if f == 1:
            p = {'piece': b'', 'score': 0.0, 'type': 1}
            for f2, w2, v2, _ in fields(v):
                if f2 == 1:
                    p['piece'] = v2
                elif f2 == 2:
                    p['score'] = struct.unpack('<f', v2)[0]
                elif f2 == 3:
                    p['type'] = v2
            pieces.append(p)
        elif f == 2:
            for f2, w2, v2, _ in fields(v):
                if f2 in (3, 4, 24, 35, 40, 41, 42, 43):
                    info['trainer'][f2] = v2
        elif f == 3:
            for f2, w2, v2, _ in fields(v):
                if f2 == 1:
                    info['normalizer']['name'] = v2.decode()
                elif f2 == 2:
                    info['normalizer']['charsmap_bytes'] = len(v2)
                elif f2 in (3, 4, 5):
                    info['normalizer'][f2] = v2
    t, n = info['trainer'], info['normalizer']
    return pieces, {
        'n_pieces': len(pieces),
        'model_type': {1: 'unigram', 2: 'bpe'}[t.get(3, 1)],
        'byte_fallback': bool(t.get(35, 0)),
        'treat_whitespace_as_suffix': bool(t.get(24, 0)),
        'normalizer': n.get('name', ''),
        'charsmap_bytes': n.get('charsmap_bytes', 0),
        'add_dummy_prefix': bool(n.get(3, 1)),
        'remove_extra_whitespaces': bool(n.get(4, 1)),
        'escape_whitespaces': bool(n.get(5, 1)),
    }


def derive_model(src, dst, retype=(), new_type=5, trainer=None, normalizer=None, drop_norm=(),
                 denormalizer=None, append=()):
    """Copy a ModelProto, giving the pieces in `retype` (bytes) the type `new_type`, appending
    the varint fields `trainer` {field: value} to trainer_spec (proto2: the last one wins),
    rebuilding normalizer_spec without the fields in `drop_norm` plus the fields in
    `normalizer` {field: value (int or bytes)}, and appending a denormalizer_spec (field 5)
    made of the fields `denormalizer` {field: value}, and appending the pieces `append`
    [(text, score, type)] (a repeated field may continue after other fields)."""
    b = open(src, 'rb').read()
    out = bytearray()
    done = set()

    def emit(f, v):
        if isinstance(v, bytes):
            return wr_varint(f << 3 | 2) + wr_varint(len(v)) + v
        return wr_varint(f << 3) + wr_varint(v)
    for f, w, v, raw in fields(b):
        if f == 1:
            piece, typ, body = None, None, bytearray()
            for f2, w2, v2, raw2 in fields(v):
                if f2 == 1:
                    piece = v2
                if f2 == 3:
                    typ = v2
                else:
                    body += raw2
            if piece in retype:
                typ = new_type
                done.add(piece)
            if typ is not None:
                body += emit(3, typ)
            out += emit(1, bytes(body))
        elif f == 2 and trainer:
            body = bytearray(v)
            for f2, v2 in sorted(trainer.items()):
                body += emit(f2, v2)
            out += emit(2, bytes(body))
        elif f == 3 and (normalizer or drop_norm):
            body = bytearray()
            for f2, w2, v2, raw2 in fields(v):
                if f2 not in drop_norm and f2 not in (normalizer or {}):
                    body += raw2
            for f2, v2 in sorted((normalizer or {}).items()):
                body += emit(f2, v2)
            out += emit(3, bytes(body))
        else:
            out += raw
    for text, score, typ in append:
        body = emit(1, text.encode()) + wr_varint(2 << 3 | 5) + struct.pack('<f', score)
        out += emit(1, body + emit(3, typ))
    if denormalizer:
        body = bytearray()
        for f2, v2 in sorted(denormalizer.items()):
            body += emit(f2, v2)
        out += emit(5, bytes(body))
    missing = set(retype) - done
    assert not missing, missing
    open(dst, 'wb').write(bytes(out))


# ---------------------------------------------------------------------------------------------
# Independent GLM-4 tokenizer (GLM-SPEC C.3), pure Python

WHITE_SPACE = set([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680] +
                  list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


def is_l(c):
    return unicodedata.category(c)[0] == 'L'


def is_n(c):
    return unicodedata.category(c)[0] == 'N'


def is_ws(c):
    return ord(c) in WHITE_SPACE


# (?i) contractions: simple case folding maps only S/s/U+017F to 's', and the ASCII pairs.
FOLD = {'s': 'sS\u017f', 't': 'tT', 'r': 'rR', 'e': 'eE', 'v': 'vV', 'm': 'mM', 'l': 'lL',
        'd': 'dD'}


def glm4_pretokenize(s):
    """Split s like cl100k's pattern; lone surrogates (surrogateescape) act as 'other'."""
    out = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "'":
            hit = 0
            for suf in ('s', 't', 're', 've', 'm', 'll', 'd'):
                seg = s[i + 1:i + 1 + len(suf)]
                if len(seg) == len(suf) and all(a in FOLD[x] for a, x in zip(seg, suf)):
                    hit = len(suf)
                    break
            if hit:
                out.append(s[i:i + 1 + hit])
                i += 1 + hit
                continue
        if c not in '\r\n' and not is_l(c) and not is_n(c) and i + 1 < n and is_l(s[i + 1]):
            j = i + 1
            while j < n and is_l(s[j]):
                j += 1
            out.append(s[i:j])
            i = j
            continue
        if is_l(c):
            j = i
            while j < n and is_l(s[j]):
                j += 1
            out.append(s[i:j])
            i = j
            continue
        if is_n(c):
            j = i
            while j < n and j < i + 3 and is_n(s[j]):
                j += 1
            out.append(s[i:j])
            i = j
            continue
        j = i + 1 if c == ' ' else i

        def other(ch):
            return not is_ws(ch) and not is_l(ch) and not is_n(ch)
        if j < n and other(s[j]):
            k = j
            while k < n and other(s[k]):
                k += 1
            while k < n and s[k] in '\r\n':
                k += 1
            out.append(s[i:k])
            i = k
            continue
        assert is_ws(c), repr(c)
        w = i
        while w < n and is_ws(s[w]):
            w += 1
        last = -1
        for k in range(i, w):
            if s[k] in '\r\n':
                last = k
        if last >= 0:
            end = last + 1
        elif w == n:
            end = w
        elif w - i >= 2:
            end = w - 1
        else:
            end = i + 1
        out.append(s[i:end])
        i = end
    return out


def glm4_bpe(ranks, b):
    if b in ranks:
        return [ranks[b]]
    bounds = list(range(len(b) + 1))
    while True:
        best = None
        for k in range(len(bounds) - 2):
            r = ranks.get(b[bounds[k]:bounds[k + 2]])
            if r is not None and (best is None or r < best[0]):
                best = (r, k)
        if best is None:
            break
        del bounds[best[1] + 1]
    return [ranks[b[bounds[k]:bounds[k + 1]]] for k in range(len(bounds) - 1)]


def glm4_encode(ranks, data):
    s = data.decode('utf-8', 'surrogateescape')
    ids = []
    for chunk in glm4_pretokenize(s):
        ids += glm4_bpe(ranks, chunk.encode('utf-8', 'surrogateescape'))
    return ids


def load_ranks(path):
    ranks = {}
    for line in open(path, 'rb').read().splitlines():
        if not line:
            continue
        tok, rank = line.split()
        ranks[base64.b64decode(tok)] = int(rank)
    return ranks


# ---------------------------------------------------------------------------------------------
# Test strings (bytes). Names are for messages only.

LLAMA_CHK = ("\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
             "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
             "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
             "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
             "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL")

CODE_SNIPPET = ("\n```c++\n#include <iostream>\n\nint main() {\n    printf(\"hello world\\n\");    "
                "// say hello\n}\n```\n\n```python\nif __name__ == '__main__':\n    "
                "print('hello world')        # say hello\n```\n")


def cases():
    u = lambda s: s.encode('utf-8')  # noqa: E731
    c = [
        ('empty', b''),
        ('hello', u('Hello world')),
        ('genesis', u('In the beginning God created the heaven and the earth.')),
        ('lead_space', u(' leading space')),
        ('lead_spaces', u('   three leading')),
        ('trail_space', u('trailing space ')),
        ('trail_spaces', u('trailing spaces   ')),
        ('only_space', u(' ')),
        ('only_spaces', u('     ')),
        ('space_runs', u('a  b   c    d     e')),
        ('newlines', u('multiple\n\nnewlines\n')),
        ('only_newline', u('\n')),
        ('tabs', u('tab\tseparated\t\tvalues\t')),
        ('only_tab', u('\t')),
        ('crlf', u('line1\r\nline2\r\n')),
        ('digits', u('12345 67890 3.14159 2024年1月 007')),
        ('emoji', u('👋 hi 🚀😶\u200d🌫️ ok ✅')),
        ('fullwidth', u('你好，世界！（测试）：；？ＡＢＣ１２３ ｱｲｳ')),
        ('nfkc_misc', u('ﬁne ½ ① ㍿ Å e\u0301 ｶﾞ \u2126')),
        ('ideographic_space', u('a\u3000b\u00a0c\u2003d')),
        ('rare_cjk', u('𠀀𪚥龘齉靐')),
        ('chinese', u('你好')),
        ('chinese_poem', u('床前明月光，疑是地上霜。举头望明月，低头思故乡。')),
        ('chinese_prose', u('虽然参与者们都应该遵守这一份行为准则，但我们承认人们有时候会遭遇不顺。')),
        ('mixed', u('我想在apple工作1314151天～ Debian 系统')),
        ('cyrillic', u('нещо на Български')),
        ('khmer', u('កាន់តែពិសេសអាច')),
        ('greek', u('Ἐν ἀρχῇ ἦν ὁ λόγος')),
        ('punct', u("''''''```````\"\"\"\"......!!!!!!?????? ------=======")),
        ('contractions', u("I've been 'told he's there, 'RE you sure? 'M not sure I'll")),
        ('ud_n', u('<n>')),
        ('ud_tab', u('a<|tab|>b')),
        ('ud_blank', u('<|blank_4|>x<|blank_80|><|blank_2|>')),
        ('ud_blank_undefined', u('<|blank_81|><|blank_1|>')),
        ('ud_user', u('<|user|>hi[CODE]x<|user|')),
        ('ud_mixed', u('def main():<n><|blank_4|>print(1)<|tab|># hi')),
        ('control_text', u('[gMASK]<sop> text <s></s><unk>')),
        ('byte_piece_text', u('<0x41><0xE4>')),
        ('nul', b'a\x00b'),
        ('controls', b'\x01\x02\x7f x \x1b[0m'),
        ('invalid_ff', b'abc\xff\xfedef'),
        ('invalid_trunc', b'\xe4\xbd'),
        ('invalid_trunc_mid', b'x\xe4\xbdy'),
        ('invalid_overlong', b'\xc0\x80\xc1\xbf'),
        ('invalid_surrogate', b'\xed\xa0\x80z'),
        ('invalid_cont', b'\x80\x80 \xbf'),
        ('replacement_char', u('a\ufffdb')),
        ('long_word', u('a' * 300)),
        ('long_spaces', u('x' + ' ' * 200 + 'y')),
        ('long_digits', u('1234567890' * 30)),
        ('repeat_zh', u('好' * 100)),
        ('llama_chk', u(LLAMA_CHK)),
        ('code', u(CODE_SNIPPET)),
        ('v1_code', u("def main():\n    print('hello world')\t# greeting")),
        ('v1_spaces', u('a' + ' ' * 85 + 'b  c ' + ' ' * 81 + '\t\t\n')),
        ('round', u('[Round 0]\n问：你好\n答：你好👋！我是人工智能助手 ChatGLM-6B，很高兴见到你。\n')),
    ]
    return c


# ---------------------------------------------------------------------------------------------

def v1_preprocess(text):
    """GLM-SPEC A.8 steps 1-3."""
    text = text.replace('\n', '<n>').replace('\t', '<|tab|>')
    for k in range(80, 1, -1):
        text = text.replace(' ' * k, '<|blank_%d|>' % k)
    return text


def v1_postprocess(text):
    text = text.replace('<n>', '\n').replace('<|tab|>', '\t')
    for k in range(2, 81):
        text = text.replace('<|blank_%d|>' % k, ' ' * k)
    return text


def sp_encode(sp, data):
    """sentencepiece encode of raw bytes; None if the library rejects the input."""
    try:
        return sp.encode(data)
    except Exception:
        try:
            return sp.encode(data.decode('utf-8'))
        except Exception:
            return None


def sp_decode(sp, ids):
    d = sp.decode(ids)
    return d if isinstance(d, bytes) else d.encode('utf-8')


def pb_model(pieces, trainer, normalizer):
    """Serialize a small ModelProto: pieces [(text, score, type)], trainer/normalizer dicts
    {field: int or bytes}."""
    def emit(f, v):
        if isinstance(v, bytes):
            return wr_varint(f << 3 | 2) + wr_varint(len(v)) + v
        return wr_varint(f << 3) + wr_varint(v)
    out = bytearray()
    for text, score, typ in pieces:
        body = emit(1, text.encode()) + wr_varint(2 << 3 | 5) + struct.pack('<f', score)
        if typ != 1:
            body += emit(3, typ)
        out += emit(1, body)
    out += emit(2, b''.join(emit(f, v) for f, v in sorted(trainer.items())))
    out += emit(3, b''.join(emit(f, v) for f, v in sorted(normalizer.items())))
    return bytes(out)


def write_fuzz_seeds(all_cases):
    """Seeds for tests/fuzz/fuzz_tokenizer.c (first byte = mode, see there)."""
    d = os.path.join(HERE, '..', '..', 'fuzz', 'corpus', 'tokenizer')
    os.makedirs(d, exist_ok=True)  # only the seeds are rewritten; crash inputs added later stay
    seeds = {}
    base = [('<unk>', 0, 2), ('<s>', 0, 3), ('</s>', 0, 3)]
    normal = [('▁', -1, 1), ('a', -2, 1), ('b', -3, 1), ('ab', -4, 1), ('▁ab', -5, 1),
              ('abab', -6, 1), ('▁a', -7, 5)]
    seeds['m0_min_bpe'] = pb_model(base + normal, {3: 2}, {1: b'identity', 4: 0})
    seeds['m0_min_unigram'] = pb_model(base + normal + [('<n>', 0, 4), ('<|tab|>', 0, 4)],
                                       {3: 1}, {1: b'identity'})
    byte_pieces = [('<0x%02X>' % b, 0, 6) for b in range(256)]
    seeds['m0_byte_fallback'] = pb_model(base + byte_pieces + normal, {3: 2, 35: 1},
                                         {1: b'identity', 3: 1, 4: 0, 5: 1})
    seeds['m0_suffix_noescape'] = pb_model(base + normal, {3: 1, 24: 1}, {5: 0})
    ranks = b''.join(base64.b64encode(bytes([b])) + b' %d\n' % b for b in range(256))
    for i, t in enumerate([b'ab', b'aa', b'aaa', b' a', b'\n\n', b'the', b' the']):
        ranks += base64.b64encode(t) + b' %d\n' % (256 + i)
    seeds['m1_ranks'] = ranks
    pick = {'hello', 'lead_spaces', 'space_runs', 'newlines', 'tabs', 'crlf', 'digits', 'emoji',
            'fullwidth', 'nfkc_misc', 'rare_cjk', 'chinese_poem', 'ud_blank', 'ud_mixed',
            'invalid_ff', 'invalid_trunc_mid', 'invalid_surrogate', 'nul', 'llama_chk', 'code',
            'contractions', 'long_spaces', 'v1_spaces'}
    for name, data in all_cases:
        if name in pick:
            seeds['m2_' + name] = data
            if len(data) < 200:
                seeds['m3_' + name] = data
    for name, data in seeds.items():
        mode = int(name[1])
        with open(os.path.join(d, name), 'wb') as f:
            f.write(bytes([mode]) + data)


def dump_compact(obj, depth=0):
    """JSON with one line per case (objects holding 'ids'), nested containers indented."""
    pad = ' ' * depth
    if isinstance(obj, dict) and 'ids' not in obj:
        items = ['%s %s: %s' % (pad, json.dumps(k), dump_compact(v, depth + 1))
                 for k, v in obj.items()]
        return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        items = [pad + ' ' + dump_compact(v, depth + 1) for v in obj]
        return '[\n' + ',\n'.join(items) + '\n' + pad + ']'
    return json.dumps(obj, ensure_ascii=True, separators=(',', ':'))


def write_npy_i32(path, ids):
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }" % len(ids)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + ' ' * pad + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode('latin1'))
        f.write(struct.pack('<%di' % len(ids), *ids))


def main():
    out = lambda name: os.path.join(HERE, name)  # noqa: E731
    en = bible('gen1:1-50:26', 'psa1:1-150:6', 'mat1:1-28:20', 'joh1:1-21:25')
    zh = fortunes('chinese')[:6000] + fortunes('tang300')
    tmp = out('.train.tmp')
    tmp_en = out('.train_en.tmp')
    open(tmp, 'w', encoding='utf-8').write('\n'.join(en + zh) + '\n')
    open(tmp_en, 'w', encoding='utf-8').write('\n'.join(en) + '\n')
    spm.set_random_generator_seed(1234)
    ud = ['<n>', '<|tab|>'] + ['<|blank_%d|>' % k for k in range(2, 81)]
    ctrl = ['[MASK]', '[gMASK]', '[sMASK]', '<unused_0>', '<sop>', '<eop>', '<ENC>', '<dBLOCK>']
    train = [
        ('sp_bpe', tmp, dict(model_type='bpe', vocab_size=2000, byte_fallback=True,
                             normalization_rule_name='identity', add_dummy_prefix=True,
                             remove_extra_whitespaces=False, character_coverage=0.995,
                             user_defined_symbols=['<|user|>', '[CODE]'])),
        ('sp_unigram', tmp, dict(model_type='unigram', vocab_size=2000, byte_fallback=True,
                                 normalization_rule_name='nmt_nfkc',
                                 remove_extra_whitespaces=False, character_coverage=0.995,
                                 user_defined_symbols=ud, control_symbols=ctrl)),
        ('sp_tiny', tmp_en, dict(model_type='unigram', vocab_size=500)),
    ]
    for name, inp, kw in train:
        spm.SentencePieceTrainer.train(input=inp, model_prefix=out(name), num_threads=1,
                                       minloglevel=2, **kw)
        os.remove(out(name + '.vocab'))
    os.remove(tmp)
    os.remove(tmp_en)

    # Derived models (goldens still come from the library loading them):
    #  sp_bpe_unused   a few merged pieces re-typed UNUSED (BPE resegmentation)
    #  sp_tiny_unused  UNUSED pieces (unigram skips them), the normalizer replaced by identity
    #                  without a charsmap (remove_extra_whitespaces still true), and the
    #                  nmt_nfkc charsmap moved to a denormalizer_spec (applied by decode)
    #  sp_tiny_ud      user-defined pieces vs decoys (see below)
    #  sp_bpe_suffix   treat_whitespace_as_suffix = true
    #  sp_bpe_noescape escape_whitespaces = false, remove_extra_whitespaces = true
    enc = lambda names: set(n.encode() for n in names)  # noqa: E731
    derive_model(out('sp_bpe.model'), out('sp_bpe_unused.model'),
                 retype=enc(['▁the', '▁and', 'th', '▁God', 'ing']))
    charsmap = None
    for f, w, v, raw in fields(open(out('sp_tiny.model'), 'rb').read()):
        if f == 3:
            charsmap = [v2 for f2, w2, v2, _ in fields(v) if f2 == 2][0]
    derive_model(out('sp_tiny.model'), out('sp_tiny_unused.model'),
                 retype=enc(['▁the', '▁and', 'ing', '▁God']),
                 normalizer={1: b'identity'}, drop_norm=(2,),
                 denormalizer={1: b'nmt_nfkc', 2: charsmap, 3: 0, 4: 0, 5: 0})
    # sp_tiny_ud: USER_DEFINED pieces plus NORMAL decoys scored like the best NORMAL piece, so
    # the unigram user-defined bonus (length * max(FLT_MIN, best score) - 0.1) decides
    tiny_pieces, _ = model_info(out('sp_tiny.model'))
    best = max(p['score'] for p in tiny_pieces if p['type'] == 1)
    derive_model(out('sp_tiny.model'), out('sp_tiny_ud.model'),
                 normalizer={1: b'identity', 4: 0}, drop_norm=(2,),
                 append=[('<|blank_4|>', 0.0, 4), ('<|blank_80|>', 0.0, 4), ('<n>', 0.0, 4),
                         ('<|blank', best, 1), ('_4|>', best, 1), ('<|bl', best, 1),
                         ('ank_80|>', best, 1), ('<n', best, 1)])
    derive_model(out('sp_bpe.model'), out('sp_bpe_suffix.model'), trainer={24: 1})
    derive_model(out('sp_bpe.model'), out('sp_bpe_noescape.model'), normalizer={4: 1, 5: 0})

    # Held-out evaluation text (not in the training data).
    ev_en = bible('rut1:1-4:22', 'ecc1:1-12:14')
    ev_zh = fortunes('song100')[:300] + fortunes('chinese')[-120:]
    eval_text = '\n'.join(ev_en) + '\n\n' + '\n'.join(ev_zh) + '\n'
    open(out('eval.txt'), 'w', encoding='utf-8').write(eval_text)
    eval_bytes = eval_text.encode('utf-8')

    gold = {
        'generator': 'tests/data/tokenizer/gen.py',
        'sentencepiece_version': spm.__version__,
        'python_unicodedata': unicodedata.unidata_version,
        'models': {},
    }
    all_cases = cases()
    for name in MODELS:
        path = out(name + '.model')
        sp = spm.SentencePieceProcessor(model_file=path)
        pieces, info = model_info(path)
        info['sha256'] = hashlib.sha256(open(path, 'rb').read()).hexdigest()
        info['unk_id'] = sp.unk_id()
        m = {'file': name + '.model', 'info': info, 'cases': []}
        for cname, data in all_cases:
            ids = sp_encode(sp, data)
            if ids is None:
                print('note: %s rejects %s' % (name, cname), file=sys.stderr)
                continue
            m['cases'].append({'name': cname, 'text_hex': data.hex(), 'ids': ids,
                               'decoded_hex': sp_decode(sp, ids).hex()})
        if name in EVAL_MODELS:
            ev = sp.encode(eval_text)
            write_npy_i32(out('eval_%s.npy' % name), ev)
            m['eval_ids'] = len(ev)
        gold['models'][name] = m

    # GLM flavours over the SentencePiece models.
    flav = []
    sp = spm.SentencePieceProcessor(model_file=out('sp_unigram.model'))
    gmask, sop = sp.piece_to_id('[gMASK]'), sp.piece_to_id('<sop>')
    for offset in (0, 20000):
        for cname, data in all_cases:
            try:
                text = data.decode('utf-8')
            except UnicodeDecodeError:
                continue
            ids = [i + offset for i in sp.encode(v1_preprocess(text))]
            dec = v1_postprocess(sp.decode([i - offset for i in ids]))
            flav.append({'family': 'chatglm1', 'model': 'sp_unigram', 'image_tokens': offset,
                         'name': cname, 'text_hex': data.hex(), 'ids': ids,
                         'suffix': [gmask + offset, sop + offset],
                         'decoded_hex': dec.encode('utf-8').hex()})
    sp = spm.SentencePieceProcessor(model_file=out('sp_bpe.model'))
    n = sp.get_piece_size()
    for fam in ('chatglm2', 'chatglm3'):
        for cname, data in all_cases[:12]:
            ids = sp.encode(data.decode('utf-8'))
            flav.append({'family': fam, 'model': 'sp_bpe', 'image_tokens': 0, 'name': cname,
                         'text_hex': data.hex(), 'ids': ids, 'prefix': [n + 1, n + 3],
                         'decoded_hex': sp_decode(sp, ids).hex()})
    gold['flavours'] = flav

    # GLM-4 with the real rank file.
    if os.path.exists(GLM4_PATH):
        raw = open(GLM4_PATH, 'rb').read()
        ranks = load_ranks(GLM4_PATH)
        ref = json.load(open(out('glm4_ref.json')))
        for r in ref['cases']:
            got = glm4_encode(ranks, bytes.fromhex(r['text_hex']))
            assert got == r['ids'], (r['name'], got)
        g4 = {'sha256': hashlib.sha256(raw).hexdigest(), 'n_ranks': len(ranks), 'cases': []}
        for cname, data in all_cases:
            g4['cases'].append({'name': cname, 'text_hex': data.hex(),
                                'ids': glm4_encode(ranks, data)})
        ev = glm4_encode(ranks, eval_bytes)
        write_npy_i32(out('eval_glm4.npy'), ev)
        g4['eval_ids'] = len(ev)
        gold['glm4'] = g4
    else:
        print('warning: %s absent, GLM-4 goldens not regenerated' % GLM4_PATH, file=sys.stderr)
        old = json.load(open(out('goldens.json')))
        gold['glm4'] = old.get('glm4')

    with open(out('goldens.json'), 'w', encoding='utf-8') as f:
        f.write(dump_compact(gold))
    write_fuzz_seeds(all_cases)
    for name in sorted(os.listdir(HERE)):
        p = out(name)
        print('%-24s %8d  %s' % (name, os.path.getsize(p),
                                 hashlib.sha256(open(p, 'rb').read()).hexdigest()[:16]))


if __name__ == '__main__':
    main()
