#!/usr/bin/python3
"""Generate the torch.save fixtures read by tests/check_torchzip.c and tests/check_pickle.c.

Run from anywhere with the Debian PyTorch (python3-torch 1.13):

    /usr/bin/python3 tests/data/torchzip/gen_fixtures.py

Python is used ONLY to produce these files; glmq itself never runs Python. The script writes,
next to itself:

  basic.bin          OrderedDict of one tensor per supported dtype (+ a 0-d scalar), saved to a path
  module.bin         nn.Module state_dict (OrderedDict carrying _metadata, stored via BUILD)
  plain_dict.bin     plain dict saved to a BytesIO (record prefix 'archive/')
  param.bin          dict of nn.Parameter objects (_rebuild_parameter)
  shared.bin         views sharing storages at offsets, transposed/permuted/strided views, and one
                     tensor saved under two names (memoized)
  legacy.bin         _use_new_zipfile_serialization=False (must be refused)
  torchscript.pt     torch.jit.save archive (must be refused)
  quantized.bin      a quantized tensor (_rebuild_qtensor: disallowed global)
  deflated.bin       basic.bin rewritten by zipfile with ZIP_DEFLATED members
  deflated_corrupt.bin  deflated.bin with bytes flipped inside the compressed 'f32' member
  truncated.bin      the first half of basic.bin
  short_storage.bin  basic.bin with member data/<key of 'f32'> two bytes short
  evil_posix_system.pkl / .bin   pickle.dumps of an object reducing to os.system('touch MARKER')
  evil_os_system.pkl / .bin      raw bytes: GLOBAL 'os system' + REDUCE
  evil_eval.pkl      raw bytes: GLOBAL 'builtins eval' + REDUCE
  deep_nest.pkl      PROTO 2 followed by 5000 x (MARK EMPTY_LIST)
  NAME.data.pkl      the data.pkl record of basic, module, shared and param (for check_pickle)
  expected.json      for every loadable fixture: name, dtype, shape, stride, storage offset and
                     all element values (row-major, as float64) taken from torch itself

All tensors are tiny: the whole directory stays well under 300 KB.
"""
import collections
import io
import json
import os
import struct
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = "/tmp/glmq_torchzip_pwned"  # the hostile payloads would create this file

DTYPE_NAME = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def out(name):
    return os.path.join(HERE, name)


def describe(sd):
    """Expected view of a state dict: list of entries in dict order."""
    res = []
    for k, t in sd.items():
        t = t.detach()
        res.append({
            "name": k,
            "dtype": DTYPE_NAME[t.dtype],
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": t.storage_offset(),
            "contiguous": bool(t.is_contiguous()),
            "values": [float(v) for v in t.contiguous().reshape(-1).double().tolist()],
        })
    return res


def save_path(obj, name, **kw):
    torch.save(obj, out(name), **kw)


def fixed_info(name):
    """A ZipInfo with a fixed timestamp, so regenerated fixtures are byte-identical."""
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


def rewrite_zip(src, dst, mutate=None, compression=zipfile.ZIP_STORED):
    """Copy a zip member by member, optionally changing bytes (mutate(name, data) -> data)."""
    with zipfile.ZipFile(out(src)) as zi, zipfile.ZipFile(out(dst), "w", compression) as zo:
        for info in zi.infolist():
            data = zi.read(info.filename)
            if mutate:
                data = mutate(info.filename, data)
            zo.writestr(fixed_info(info.filename), data, compress_type=compression)


def storage_key(path, tensor_name):
    """The storage key ('0', '1', ...) of a tensor in a torch.save zip, found with torch itself."""
    keys = {}

    class Finder(torch.serialization.pickle.Unpickler):  # only to read our own fixture
        def persistent_load(self, pid):
            return pid

        def find_class(self, mod, name):
            if mod == "torch._utils" and name == "_rebuild_tensor_v2":
                return lambda st, *a: st
            return super().find_class(mod, name)

    with zipfile.ZipFile(out(path)) as z:
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        sd = Finder(io.BytesIO(z.read(pkl))).load()
    for k, pid in sd.items():
        keys[k] = pid[2]
    return keys[tensor_name]


def zip_with_pickle(dst, pkl):
    with zipfile.ZipFile(out(dst), "w") as z:
        z.writestr(fixed_info("archive/data.pkl"), pkl)
        z.writestr(fixed_info("archive/version"), "3\n")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + MARKER,))


def main():
    torch.manual_seed(1234)
    expected = {}

    # ---- basic: one tensor per dtype --------------------------------------------------------
    basic = collections.OrderedDict()
    basic["f16"] = torch.tensor([[0.5, -1.0], [2.0, 65504.0], [1e-4, -0.0]], dtype=torch.float16)
    basic["bf16"] = torch.tensor([1.5, -2.25, 3.0e38, 1e-3], dtype=torch.bfloat16)
    basic["f32"] = torch.randn(2, 3)
    basic["f64"] = torch.tensor([3.141592653589793, -1e-300], dtype=torch.float64)
    basic["i64"] = torch.tensor([-(2**40), 0, 7], dtype=torch.int64)
    basic["i32"] = torch.tensor([-5, 2**31 - 1], dtype=torch.int32)
    basic["i16"] = torch.tensor([-32768, 12345], dtype=torch.int16)
    basic["i8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    basic["u8"] = torch.tensor([0, 1, 255], dtype=torch.uint8)
    basic["bool"] = torch.tensor([True, False, True])
    basic["scalar"] = torch.tensor(2.5)
    basic["w4d"] = torch.randn(2, 1, 2, 3)
    save_path(basic, "basic.bin")
    expected["basic.bin"] = describe(basic)

    # ---- an nn.Module state dict (OrderedDict + _metadata via BUILD) -------------------------
    mod = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3),
                              torch.nn.Linear(3, 2, bias=False)).half()
    sd = mod.state_dict()
    save_path(sd, "module.bin")
    expected["module.bin"] = describe(sd)

    # ---- plain dict, saved to a buffer (prefix 'archive/') -----------------------------------
    plain = {"layer.0.weight": torch.randn(3, 4, dtype=torch.float32).to(torch.bfloat16),
             "layer.0.bias": torch.zeros(3, dtype=torch.bfloat16)}
    buf = io.BytesIO()
    torch.save(plain, buf)
    with open(out("plain_dict.bin"), "wb") as f:
        f.write(buf.getvalue())
    expected["plain_dict.bin"] = describe(plain)

    # ---- Parameters --------------------------------------------------------------------------
    params = {"p": torch.nn.Parameter(torch.randn(2, 3)),
              "q": torch.nn.Parameter(torch.randn(3), requires_grad=False)}
    save_path(params, "param.bin")
    expected["param.bin"] = describe(params)

    # ---- shared storages, offsets, strided views, a tied tensor ------------------------------
    base = torch.arange(24, dtype=torch.float32) * 0.5 - 3.0
    m = torch.arange(6, dtype=torch.float16).reshape(2, 3)
    cube = torch.arange(24, dtype=torch.int16).reshape(2, 3, 4)
    w = torch.randn(3, 2).to(torch.bfloat16)
    shared = collections.OrderedDict()
    shared["a"] = base[2:8]                    # offset 2
    shared["b"] = base[10:22].view(3, 4)       # offset 10, same storage
    shared["every3"] = base[1::3]              # 1-D stride 3, offset 1
    shared["t"] = m.t()                        # transposed: stride (1, 3)
    shared["m"] = m                            # the same storage, contiguous
    shared["perm"] = cube.permute(2, 0, 1)     # 3-D non-contiguous
    shared["embed.weight"] = w                 # tied: one object under two names
    shared["lm_head.weight"] = w
    shared["col"] = base.view(4, 6)[:, 1:3]    # 2-D slice: stride (6, 1), offset 1
    save_path(shared, "shared.bin")
    expected["shared.bin"] = describe(shared)

    # ---- refused formats ---------------------------------------------------------------------
    save_path({"w": torch.ones(2)}, "legacy.bin", _use_new_zipfile_serialization=False)
    src = out("_ts_module.py")
    with open(src, "w") as f:
        f.write("import torch\nclass M(torch.nn.Module):\n"
                "    def forward(self, x):\n        return x + 1\n")
    import importlib.util
    spec = importlib.util.spec_from_file_location("_ts_module", src)
    tsm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tsm)
    torch.jit.save(torch.jit.script(tsm.M()), out("torchscript.pt"))
    os.remove(src)
    q = torch.quantize_per_tensor(torch.tensor([1.0, 2.0]), 0.1, 0, torch.qint8)
    save_path({"q": q}, "quantized.bin")

    # ---- zip variants ------------------------------------------------------------------------
    rewrite_zip("basic.bin", "deflated.bin", compression=zipfile.ZIP_DEFLATED)
    expected["deflated.bin"] = expected["basic.bin"]

    key = storage_key("basic.bin", "f32")
    data = bytearray(open(out("deflated.bin"), "rb").read())
    with zipfile.ZipFile(out("deflated.bin")) as z:
        info = z.getinfo("basic/data/" + key)
    nlen, elen = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + nlen + elen
    for i in range(info.compress_size // 3, info.compress_size // 3 + 4):
        data[start + i] ^= 0x55
    with open(out("deflated_corrupt.bin"), "wb") as f:
        f.write(bytes(data))

    whole = open(out("basic.bin"), "rb").read()
    with open(out("truncated.bin"), "wb") as f:
        f.write(whole[:len(whole) // 2])

    rewrite_zip("basic.bin", "short_storage.bin",
                mutate=lambda n, d: d[:-2] if n == "basic/data/" + key else d)

    # ---- hostile pickles ---------------------------------------------------------------------
    evil = pickle_dumps({"w": Evil()})
    with open(out("evil_posix_system.pkl"), "wb") as f:
        f.write(evil)
    zip_with_pickle("evil_posix_system.bin", evil)

    cmd = ("touch " + MARKER).encode()
    os_system = (b"\x80\x02cos\nsystem\nq\x00X" + struct.pack("<I", len(cmd)) + cmd +
                 b"\x85R.")
    with open(out("evil_os_system.pkl"), "wb") as f:
        f.write(os_system)
    zip_with_pickle("evil_os_system.bin", os_system)

    code = b"__import__('os').system('touch " + MARKER.encode() + b"')"
    ev = (b"\x80\x02cbuiltins\neval\nX" + struct.pack("<I", len(code)) + code + b"\x85R.")
    with open(out("evil_eval.pkl"), "wb") as f:
        f.write(ev)

    with open(out("deep_nest.pkl"), "wb") as f:
        f.write(b"\x80\x02" + b"(]" * 5000 + b".")

    # ---- the raw data.pkl of some fixtures, for check_pickle and the pickle fuzz corpus -----
    for name in ("basic", "module", "shared", "param"):
        with zipfile.ZipFile(out(name + ".bin")) as z:
            with open(out(name + ".data.pkl"), "wb") as f:
                f.write(z.read(name + "/data.pkl"))

    with open(out("expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")


def pickle_dumps(obj):
    import pickle
    return pickle.dumps(obj, protocol=2)


if __name__ == "__main__":
    main()
