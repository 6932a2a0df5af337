"""A corpus of hostile and broken inputs for rmt-torch's readers, with the outcome each must have.

Usage: .venv/bin/python scripts/make_hostile.py OUT_DIR

Writes the files into OUT_DIR and OUT_DIR/cases.json: a list of
{"name", "args" (with {file} for the input), "exit", "stderr" (a substring the one-line error
must hold, or null), "stdout" (a substring the output must hold, or null)}. Every case that
fails must fail with exit 2 and one line on stderr naming the file; none may crash, hang or
exit 0 with a wrong answer. tests/integration/hostile.rs runs them.

Categories: torch.save zip archives (every record size, offset, stride and count lied about,
pickles that amplify, nest deeply or name code), TorchScript archives (short records, missing
code, deep module trees), legacy torch.save files, safetensors headers, .npy input batches,
files that are not regular files, numbers that must not pass silently, and options and theory
sizes that must be refused.
"""
import io
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
CASES = []
MODELS = Path(__file__).resolve().parent.parent / "models"
MLP = str(MODELS / "digits_mlp_trained.pt")


def case(name, data=None, args=("analyze", "{file}"), exit=2, stderr=None, stdout=None):
    """Registers a case; `data` (bytes) is written to OUT/name when given."""
    if data is not None:
        (OUT / name).write_bytes(data)
    CASES.append(
        {"name": name, "args": list(args), "exit": exit, "stderr": stderr, "stdout": stdout}
    )


# ----------------------------------------------------------------------------------------
# A tiny pickler for protocol 2: exactly the opcodes torch.save writes, so that every field
# can be given any value.
def s(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def integer(n):
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    return b"\x8a\x08" + struct.pack("<q", n)


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def glob(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def ordered_dict(pairs):
    return glob("collections", "OrderedDict") + b")R" + b"(" + b"".join(s(k) + v for k, v in pairs) + b"u"


def tensor(key, numel, offset, size, stride, storage="FloatStorage"):
    pid = tup(s("storage"), glob("torch", storage), s(key), s("cpu"), integer(numel))
    return (
        glob("torch._utils", "_rebuild_tensor_v2")
        + tup(
            pid + b"Q",
            integer(offset),
            tup(*map(integer, size)),
            tup(*map(integer, stride)),
            b"\x89",
            glob("collections", "OrderedDict") + b")R",
        )
        + b"R"
    )


def pickle_of(body):
    return b"\x80\x02" + body + b"."


def zipped(entries, compression=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def checkpoint(pickle_bytes, storages, compression=zipfile.ZIP_STORED):
    """A torch.save-style zip: archive/data.pkl and archive/data/<key>."""
    entries = {"archive/data.pkl": pickle_bytes, "archive/version": b"3\n"}
    for key, data in storages.items():
        entries[f"archive/data/{key}"] = data
    return zipped(entries, compression)


W = np.random.default_rng(0).standard_normal((32, 16)).astype(np.float32)
W_BYTES = W.tobytes()


def weights(view=(0, (32, 16), (16, 1)), numel=512, storage="FloatStorage", key="0"):
    offset, size, stride = view
    return pickle_of(ordered_dict([("fc.weight", tensor(key, numel, offset, size, stride, storage))]))


# ----------------------------------------------------------------------------------------
# torch.save zip archives.
case("zip_valid.pt", checkpoint(weights(), {"0": W_BYTES}), exit=0, stdout="fc.weight")
# OrderedDict([[name, tensor]]), as Python 2-era torch wrote it: read; a pair of three is refused.
def dict_of_lists(pairs):
    return glob("collections", "OrderedDict") + tup(b"](" + b"".join(b"](" + item + b"e" for item in pairs) + b"e") + b"R"
FC = tensor("0", 512, 0, (32, 16), (16, 1))
case("zip_dict_of_lists.pt", checkpoint(pickle_of(dict_of_lists([s("fc.weight") + FC])), {"0": W_BYTES}), exit=0, stdout="fc.weight")
case("zip_dict_of_triples.pt", checkpoint(pickle_of(dict_of_lists([s("fc.weight") + FC + s("x")])), {"0": W_BYTES}), stderr="3-item pair")
# One 1 MiB string memoised once and referenced 6000 times: shown cut short, never copied
# 6000 times; 70 000 references to a 1 KiB key would spell out 70 MB of names: refused.
BIG = "x" * (1 << 20)
torch.save({"fc.weight": torch.from_numpy(W), **{f"k{i}": BIG for i in range(6000)}}, OUT / "memo_string_fetched_6000_times.pt")
case("memo_string_fetched_6000_times.pt", args=("info", "{file}"), exit=0, stdout="(1048576 bytes)")
KEY = "y" * 1024
torch.save({"fc.weight": torch.from_numpy(W), "o": [{KEY: 1} for _ in range(70_000)]}, OUT / "memo_names_blow_up.pt")
case("memo_names_blow_up.pt", args=("info", "{file}"), stderr="more than 64 MiB")
case("zip_short_storage.pt", checkpoint(weights(), {"0": W_BYTES[:100]}), stderr="holds 100 bytes, not 512 elements")
case("zip_long_storage.pt", checkpoint(weights(), {"0": W_BYTES + b"\0" * 64}), stderr="holds 2112 bytes, not 512 elements")
case("zip_missing_storage.pt", checkpoint(weights(), {}), stderr="data/0 is missing")
case("zip_view_past_end.pt", checkpoint(weights(view=(1, (32, 16), (16, 1))), {"0": W_BYTES}), stderr="reaches past its storage")
case("zip_stride_past_end.pt", checkpoint(weights(view=(0, (32, 16), (17, 1))), {"0": W_BYTES}), stderr="reaches past its storage")
case("zip_negative_stride.pt", checkpoint(weights(view=(0, (32, 16), (-16, 1))), {"0": W_BYTES}), stderr="bad size")
case("zip_negative_size.pt", checkpoint(weights(view=(0, (-32, 16), (16, 1))), {"0": W_BYTES}), stderr="bad size")
case("zip_rank_mismatch.pt", checkpoint(weights(view=(0, (32, 16), (16,))), {"0": W_BYTES}), stderr="bad size")
case("zip_huge_shape.pt", checkpoint(weights(view=(0, (2**40, 2**40), (0, 0))), {"0": W_BYTES}), stderr="overflows")
case("zip_expanded_terabytes.pt", checkpoint(weights(view=(0, (2**20, 2**20), (0, 0))), {"0": W_BYTES}), stderr="needs about")
case("zip_huge_numel.pt", checkpoint(weights(numel=2**62), {"0": W_BYTES}), stderr="not 4611686018427387904 elements")
case("zip_numel_negative.pt", checkpoint(weights(numel=-5), {"0": W_BYTES}), stderr="persistent id")
case("zip_offset_negative.pt", checkpoint(weights(view=(-1, (32, 16), (16, 1))), {"0": W_BYTES}), stderr="_rebuild_tensor_v2")
case("zip_unknown_storage.pt", checkpoint(weights(storage="MysteryStorage"), {"0": W_BYTES}), stderr="MysteryStorage")
case(
    "zip_complex_storage.pt",
    checkpoint(weights(storage="ComplexFloatStorage", numel=256, view=(0, (16, 16), (16, 1))), {"0": W_BYTES}),
    stderr="complex",
)
case(
    "zip_complex_beside_real.pt",
    checkpoint(
        pickle_of(
            ordered_dict(
                [
                    ("z", tensor("0", 256, 0, (16, 16), (16, 1), "ComplexFloatStorage")),
                    ("fc.weight", tensor("1", 512, 0, (32, 16), (16, 1))),
                ]
            )
        ),
        {"0": W_BYTES, "1": W_BYTES},
    ),
    exit=0,
    stdout="fc.weight",
)
case("zip_deflated_storage.pt", checkpoint(weights(), {"0": W_BYTES}, zipfile.ZIP_DEFLATED), stderr="compressed")
case("zip_no_data_pkl.pt", zipped({"archive/version": b"3\n", "archive/data/0": W_BYTES}), stderr="neither TorchScript code nor")
case("zip_empty.pt", zipped({}), stderr="not a model file")
case("zip_pickle_garbage.pt", checkpoint(b"\x80\x02\xff\xfe", {"0": W_BYTES}), stderr="unsupported pickle opcode")
case("zip_pickle_empty.pt", checkpoint(b"", {"0": W_BYTES}), stderr="truncated")
case("zip_pickle_protocol_9.pt", checkpoint(b"\x80\x09N.", {}), stderr="newer than 5")
case("zip_pickle_stack_underflow.pt", checkpoint(b"\x80\x02u.", {}), stderr="MARK")
case("zip_pickle_memo_unset.pt", checkpoint(b"\x80\x02h\x07.", {}), stderr="never set")
case("zip_pickle_memo_huge_index.pt", checkpoint(b"\x80\x02Nr\xff\xff\xff\x7f.", {}), stderr="memo index")
case("zip_pickle_string_claims_2gb.pt", checkpoint(b"\x80\x02X\xff\xff\xff\x7f", {}), stderr="truncated")
case("zip_pickle_bytes_claims_exabytes.pt", checkpoint(b"\x80\x02\x8e" + struct.pack("<Q", 2**62), {}), stderr="truncated")
case("zip_pickle_not_utf8.pt", checkpoint(b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", {}), stderr="UTF-8")
case("zip_pickle_os_system.pt", checkpoint(pickle_of(glob("os", "system") + tup(s("echo pwned")) + b"R"), {}), stderr="os.system")
case("zip_pickle_whole_module.pt", checkpoint(pickle_of(glob("__main__", "Net") + b")\x81}b"), {}), stderr="__main__.Net")
case("zip_pickle_eval_builtin.pt", checkpoint(pickle_of(glob("builtins", "eval") + tup(s("1+1")) + b"R"), {}), stderr="builtins.eval")
case("zip_pickle_not_a_dict.pt", checkpoint(pickle_of(integer(7)), {}), stderr="no weight matrices")
case("zip_pickle_list_of_nothing.pt", checkpoint(pickle_of(b"]"), {}), stderr="no weight matrices")
case("zip_persistent_id_int.pt", checkpoint(pickle_of(integer(3) + b"Q"), {}), stderr="persistent id")
case("zip_persistent_id_other_tag.pt", checkpoint(pickle_of(tup(s("module"), s("x")) + b"Q"), {}), stderr="persistent id")
case("zip_rebuild_without_args.pt", checkpoint(pickle_of(glob("torch._utils", "_rebuild_tensor_v2") + b")R"), {}), stderr="_rebuild_tensor_v2")
case("zip_rebuild_size_strings.pt", checkpoint(pickle_of(ordered_dict([("w", glob("torch._utils", "_rebuild_tensor_v2") + tup(tup(s("storage"), glob("torch", "FloatStorage"), s("0"), s("cpu"), integer(4)) + b"Q", integer(0), tup(s("a")), tup(integer(1)), b"\x89", b"N") + b"R")])), {"0": W_BYTES[:16]}), stderr="tensor size")
# Amplification and nesting.
memo_bomb = b"\x80\x02(" + b"B" + struct.pack("<I", 1 << 20) + b"\x07" * (1 << 20) + b"q\x00" + b"h\x00" * 200_000 + b"l."
case("zip_memo_bomb.pt", checkpoint(memo_bomb, {}), stderr="no weight matrices")
deep_tuple = b"\x80\x02)" + b"\x85" * 200_000 + b"."
case("zip_deep_tuple.pt", checkpoint(deep_tuple, {}), stderr="no weight matrices")
deep_list = b"\x80\x02" + b"]" * 100_000 + b"a" * 99_999 + b"."
case("zip_deep_list.pt", checkpoint(deep_list, {}), stderr="no weight matrices")
deep_dict = b"\x80\x02" + b"}" * 50_000 + b"."
case("zip_deep_dicts_unbuilt.pt", checkpoint(deep_dict, {}), stderr="no weight matrices")
cycle = b"\x80\x02]q\x00h\x00a."
case("zip_self_containing_list.pt", checkpoint(cycle, {}), stderr="no weight matrices")
case("zip_shared_lists.pt", checkpoint(b"\x80\x02" + b"]" + b"".join([b"q\x00(h\x00h\x00l" for _ in range(40)]) + b".", {}), stderr="more than 64 MiB")
case("zip_many_marks.pt", checkpoint(b"\x80\x02" + b"(" * 1_000_000 + b".", {}), stderr="stack underflow")
# Zip headers that lie.
valid_zip = bytearray(checkpoint(weights(), {"0": W_BYTES}))


def patch_sizes(data, entry, size):
    """Sets the uncompressed size of `entry` in its local and central headers."""
    data = bytearray(data)
    name = entry.encode()
    local = data.find(b"PK\x03\x04" + b"")
    while local != -1:
        name_len = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_len] == name:
            struct.pack_into("<I", data, local + 22, size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len] == name:
            struct.pack_into("<I", data, central + 24, size)
        central = data.find(b"PK\x01\x02", central + 4)
    return bytes(data)


case("zip_pickle_declares_2gb.pt", patch_sizes(valid_zip, "archive/data.pkl", 0x7FFF_FFF0), stderr="data.pkl declares 2147483632 bytes")
case("zip_storage_declares_2gb.pt", patch_sizes(valid_zip, "archive/data/0", 0x7FFF_FFF0), stderr="holds 2147483632 bytes, not 512")
case("zip_pickle_declares_less.pt", patch_sizes(valid_zip, "archive/data.pkl", 10), stderr="data.pkl: truncated")
eocd = valid_zip.rfind(b"PK\x05\x06")
lying_count = bytearray(valid_zip)
struct.pack_into("<HH", lying_count, eocd + 8, 0xFFFF, 0xFFFF)
case("zip_central_directory_count_lies.pt", bytes(lying_count), stderr="archive")
lying_offset = bytearray(valid_zip)
struct.pack_into("<I", lying_offset, eocd + 16, 0x7FFF_FFFF)
case("zip_central_directory_offset_lies.pt", bytes(lying_offset), stderr="archive")
for cut in (5, 30, 100, len(valid_zip) // 3, len(valid_zip) // 2, len(valid_zip) - 40, len(valid_zip) - 1):
    case(f"zip_truncated_at_{cut}.pt", bytes(valid_zip[:cut]))
flipped = bytearray(valid_zip)
for at in range(60, len(flipped), 97):
    flipped[at] ^= 0xFF
case("zip_bytes_flipped.pt", bytes(flipped))

# ----------------------------------------------------------------------------------------
# TorchScript archives.
class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


torch.manual_seed(0)
scripted_path = OUT / "ts_valid.pt"
torch.jit.script(Small().eval()).save(str(scripted_path))
case("ts_valid.pt", exit=0, stdout="fc1.weight")
with zipfile.ZipFile(scripted_path) as archive:
    TS = {name: archive.read(name) for name in archive.namelist()}
prefix = next(name for name in TS if name.endswith("data.pkl"))[: -len("data.pkl")]


def script_variant(changes=(), removed=()):
    entries = {name: data for name, data in TS.items() if name not in {prefix + r for r in removed}}
    for record, data in dict(changes).items():
        entries[prefix + record] = data
    return zipped(entries)


short = {f"data/{k}": TS[prefix + f"data/{k}"][:8] for k in ["0"]}
case("ts_short_record.pt", script_variant(short), stderr="holds 8 bytes")
case("ts_short_record_jacobian.pt", script_variant(short), args=("jacobian", "{file}", "--input", str(MODELS / "digits_mlp_batch.pt")), stderr="holds 8 bytes")
case("ts_missing_record.pt", script_variant(removed=["data/0"]), stderr="data/0 is missing")
case("ts_missing_code.pt", script_variant(removed=["code/__torch__/torch/nn/modules/linear.py"]), stderr="code of class")
case("ts_data_pkl_plain_dict.pt", script_variant({"data.pkl": pickle_of(ordered_dict([]))}), stderr="does not hold a scripted module")
case("ts_data_pkl_garbage.pt", script_variant({"data.pkl": b"\x80\x02\xff"}), stderr="unsupported pickle opcode")
case("ts_data_pkl_missing.pt", script_variant(removed=["data.pkl"]), stderr="archive")
deep_modules = b"\x80\x02" + (glob("__torch__", "M") + b")\x81}(" + s("m")) * 2000 + b"N" + b"ub" * 2000 + b"."
case(
    "ts_deep_modules.pt",
    zipped({"deep/data.pkl": deep_modules, "deep/code/__torch__.py": b"class M(Module):\n  __parameters__ = []\n", "deep/constants.pkl": pickle_of(b")")}),
    stderr="nested deeper than",
)
case("ts_constants_short.pt", script_variant({"constants.pkl": pickle_of(tup(tensor("0", 1000, 0, (1000,), (1,))) ), "constants/0": b"\0" * 16}), args=("jacobian", "{file}", "--input", str(MODELS / "digits_mlp_batch.pt")), stderr="holds 16 bytes")
ts_bytes = scripted_path.read_bytes()
for cut in (10, 200, len(ts_bytes) // 2, len(ts_bytes) - 30):
    case(f"ts_truncated_at_{cut}.pt", ts_bytes[:cut])

# ----------------------------------------------------------------------------------------
# Legacy torch.save files.
buffer = io.BytesIO()
torch.save({"fc.weight": torch.from_numpy(W)}, buffer, _use_new_zipfile_serialization=False)
LEGACY = buffer.getvalue()
case("legacy_valid.pt", LEGACY, exit=0, stdout="fc.weight")
wrong_magic = bytearray(LEGACY)
wrong_magic[5] ^= 0xFF
case("legacy_wrong_magic.pt", bytes(wrong_magic), stderr="legacy torch.save checkpoint")
count_at = len(LEGACY) - len(W_BYTES) - 8
for label, count in (("huge", 2**60), ("short", 10), ("long", 10_000)):
    patched = bytearray(LEGACY)
    struct.pack_into("<Q", patched, count_at, count)
    case(f"legacy_storage_count_{label}.pt", bytes(patched), stderr="storage")
for cut in (3, 20, 60, count_at - 5, count_at + 4, len(LEGACY) - 100, len(LEGACY) - 1):
    case(f"legacy_truncated_at_{cut}.pt", LEGACY[:cut])

# ----------------------------------------------------------------------------------------
# safetensors headers.
def safetensors(header, data=b"", length=None):
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(text) if length is None else length) + text + data


good = {"fc.weight": {"dtype": "F32", "shape": [32, 16], "data_offsets": [0, 2048]}}
case("st_valid.safetensors", safetensors(good, W_BYTES), exit=0, stdout="fc.weight")
case("st_header_claims_exabytes.safetensors", safetensors(good, W_BYTES, length=2**62), stderr="header")
case("st_header_past_end.safetensors", safetensors(good, W_BYTES, length=100_000), stderr="header")
case("st_header_not_json.safetensors", safetensors(b"{not json", W_BYTES), stderr="not valid JSON")
case("st_header_not_object.safetensors", safetensors(b"[1, 2]", W_BYTES), stderr="not a model file")
case("st_header_deep_json.safetensors", safetensors(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), stderr="not valid JSON")
case("st_header_empty_object.safetensors", safetensors({}, b""), stderr="no tensors")
case("st_only_length.safetensors", struct.pack("<Q", 0), stderr="safetensors")
case("st_seven_bytes.safetensors", b"\x08\x00\x00\x00\x00\x00\x00", stderr="not a model file")
for label, entry in {
    "offsets_reversed": {"dtype": "F32", "shape": [32, 16], "data_offsets": [2048, 0]},
    "offsets_past_data": {"dtype": "F32", "shape": [32, 16], "data_offsets": [0, 4096]},
    "offsets_short": {"dtype": "F32", "shape": [32, 16], "data_offsets": [0, 100]},
    "shape_overflow": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 2048]},
    "shape_negative": {"dtype": "F32", "shape": [-32, 16], "data_offsets": [0, 2048]},
    "shape_string": {"dtype": "F32", "shape": ["32", 16], "data_offsets": [0, 2048]},
    "offsets_negative": {"dtype": "F32", "shape": [32, 16], "data_offsets": [-8, 2040]},
    "offsets_one": {"dtype": "F32", "shape": [32, 16], "data_offsets": [0]},
    "dtype_missing": {"shape": [32, 16], "data_offsets": [0, 2048]},
    "dtype_number": {"dtype": 32, "shape": [32, 16], "data_offsets": [0, 2048]},
}.items():
    case(f"st_{label}.safetensors", safetensors({"fc.weight": entry}, W_BYTES), stderr="fc.weight")
case(
    "st_unknown_dtype.safetensors",
    safetensors({"fc.weight": {"dtype": "F4", "shape": [32, 16], "data_offsets": [0, 256]}}, W_BYTES[:256]),
    stderr="not floating point (F4)",
)
case(
    "st_complex_only.safetensors",
    safetensors({"z": {"dtype": "C64", "shape": [16, 16], "data_offsets": [0, 2048]}}, W_BYTES),
    stderr="complex",
)
f8 = torch.from_numpy(W).to(torch.float8_e4m3fn)
save_file({"fc.weight": f8}, str(OUT / "st_float8.safetensors"))
case("st_float8.safetensors", args=("analyze", "{file}", "-f", "json"), exit=0, stdout="float8_e4m3fn")
st_bytes = safetensors(good, W_BYTES)
for cut in (4, 9, 40, len(st_bytes) - 100, len(st_bytes) - 1):
    case(f"st_truncated_at_{cut}.safetensors", st_bytes[:cut])

# ----------------------------------------------------------------------------------------
# .npy input batches (through jacobian --input).
def npy(header, data=b"", version=1, length=None):
    text = header.encode()
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) if length is None else length)
    else:
        head = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text) if length is None else length)
    return head + text + data


BATCH = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)


def batch_case(name, data, stderr, exit=2):
    case(name, data, args=("jacobian", MLP, "--input", "{file}"), exit=exit, stderr=stderr)


batch_case("npy_valid.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 64), }", BATCH.tobytes()), None, exit=0)
batch_case("npy_short_data.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 64), }", BATCH.tobytes()[:100]), "runs past the end")
batch_case("npy_shape_overflow.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", b""), "impossible shape")

# Targets of the loss Hessian (through hessian --target): the reader's refusals, then labels
# and values the loss cannot take.
def target_case(name, data, stderr, loss="cross-entropy"):
    case(name, data, args=("hessian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--target", "{file}",
                           "--loss", loss, "--top-k", "1"), stderr=stderr)


LABELS = np.arange(16, dtype=np.int64) % 10
target_case("target_short_data.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (16,), }", LABELS.tobytes()[:40]), "runs past the end")
target_case("target_shape_overflow.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"), "impossible shape")
target_case("target_class_out_of_range.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (16,), }", (LABELS + 90).tobytes()), "class 99")
target_case("target_class_negative.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (16,), }", (LABELS - 1).tobytes()), "class -1")
target_case("target_too_few.npy", npy("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", LABELS[:4].tobytes()), "expected 16 of them")
target_case("target_nan_values.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (16, 10), }", np.full((16, 10), np.nan).tobytes()), "the loss is NaN", loss="mse")
target_case("target_float_labels.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (16,), }", LABELS.astype(np.float64).tobytes()), "class indices")
batch_case("npy_shape_negative.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-4, 64), }", b""), "bad dimension")
batch_case("npy_big_endian.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (4, 64), }", BATCH.tobytes()), ">f4 is not supported")
batch_case("npy_object_dtype.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", b"\0" * 32), "|O is not supported")
batch_case("npy_version_9.npy", b"\x93NUMPY\x09\x00" + b"\0" * 20, "unsupported format version 9")
batch_case("npy_header_past_end.npy", npy("{'descr': '<f4'}", length=60000), "truncated header")
batch_case("npy_header_claims_4gb.npy", npy("{'descr': '<f4'}", version=2, length=0xFFFF_FFF0), "truncated header")
batch_case("npy_no_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, }", b""), "lacks 'shape'")
batch_case("npy_no_descr.npy", npy("{'fortran_order': False, 'shape': (4, 64), }", b""), "lacks 'descr'")
batch_case("npy_header_binary.npy", npy("{'descr': '<f4', \xff}", b""), ".npy")
batch_case("npy_integers.npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4, 64), }", bytes(256)), "x.float() / 255")
batch_case("npy_fortran_valid.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (4, 64), }", np.asfortranarray(BATCH).tobytes(order="F")), None, exit=0)
batch_case("npy_magic_only.npy", b"\x93NUMPY", "no NUMPY header")
batch_case("batch_text.txt", b"0.1, 0.2, 0.3\n", "not a tensor file")
batch_case("batch_wrong_shape.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 7), }", bytes(112)), "RuntimeError")

# ----------------------------------------------------------------------------------------
# Files that are not regular files, or not models.
fifo = OUT / "fifo.pt"
if fifo.exists():
    fifo.unlink()
os.mkfifo(fifo)
case("fifo.pt", stderr="named pipe")
(OUT / "directory.pt").mkdir(exist_ok=True)
case("directory.pt", stderr="a directory")
device = OUT / "device.pt"
if device.is_symlink() or device.exists():
    device.unlink()
device.symlink_to("/dev/zero")
case("device.pt", stderr="a device")
loop = OUT / "loop.pt"
if loop.is_symlink():
    loop.unlink()
loop.symlink_to("loop.pt")
case("loop.pt", stderr="loop.pt")
case("missing.pt", stderr="No such file")
case("empty.pt", b"", stderr="empty")
case("text.pt", b"just some text\n" * 10, stderr="not a model file")
case("random.bin", np.random.default_rng(7).bytes(4096), stderr="not a model file")
case("pdf.pt", b"%PDF-1.4\n" + bytes(100), stderr="not a model file")

# ----------------------------------------------------------------------------------------
# Checkpoint directories whose index lies (every other shape of a broken directory is in
# tests/integration/directories.rs).
def directory(name, index):
    d = OUT / name
    d.mkdir(exist_ok=True)
    (d / "model.safetensors.index.json").write_bytes(index)
    (d / "model-00001-of-00001.safetensors").write_bytes(safetensors(good, W_BYTES))


directory("dir_index_not_json", b"{weight_map")
case("dir_index_not_json", stderr="not valid JSON")
directory("dir_index_deep_json", b'{"weight_map": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
case("dir_index_deep_json", stderr="not valid JSON")
directory("dir_index_no_map", b'{"metadata": {}}')
case("dir_index_no_map", stderr="no weight_map")
directory("dir_index_shard_number", b'{"weight_map": {"fc.weight": 7}}')
case("dir_index_shard_number", stderr="not a file name")
directory("dir_index_absolute_shard", b'{"weight_map": {"fc.weight": "/etc/passwd"}}')
case("dir_index_absolute_shard", stderr="not a file name")
directory("dir_index_ghost", b'{"weight_map": {"ghost.weight": "model-00001-of-00001.safetensors"}}')
case("dir_index_ghost", stderr="does not hold it")
# config.json as --split-fused reads it: a fused GPT-2 projection beside each.
fused = {"h.0.attn.c_attn.weight": {"dtype": "F32", "shape": [16, 48], "data_offsets": [0, 3072]}}


def fused_directory(name, config):
    d = OUT / name
    d.mkdir(exist_ok=True)
    (d / "model.safetensors").write_bytes(safetensors(fused, W_BYTES + W_BYTES[:1024]))
    target = d / "config.json"
    if isinstance(config, bytes):
        target.write_bytes(config)
    elif not target.is_dir():
        target.mkdir()


fused_directory("cfg_not_json", b"{num_attention_heads")
case("cfg_not_json", args=("analyze", "{file}", "--split-fused"), stderr="not valid JSON")
fused_directory("cfg_deep_json", b"[" * 100_000 + b"]" * 100_000)
case("cfg_deep_json", args=("analyze", "{file}", "--split-fused"), stderr="not valid JSON")
fused_directory("cfg_too_large", b" " * (2 << 20) + b"{}")
case("cfg_too_large", args=("analyze", "{file}", "--split-fused"), stderr="too large")
fused_directory("cfg_is_a_directory", None)
case("cfg_is_a_directory", args=("analyze", "{file}", "--split-fused"), stderr="not a regular file")
fused_directory("cfg_huge_heads", b'{"num_attention_heads": 18446744073709551615, "num_key_value_heads": 1}')
case("cfg_huge_heads", args=("analyze", "{file}", "--split-fused", "-f", "json"), exit=0, stdout="not split")
fused_directory("cfg_zero_heads", b'{"n_head": 0}')
case("cfg_zero_heads", args=("analyze", "{file}", "--split-fused", "-f", "json"), exit=0, stdout="c_attn.weight[q]")

empty_dir = OUT / "dir_config_only"
empty_dir.mkdir(exist_ok=True)
(empty_dir / "config.json").write_text("{}")
case("dir_config_only", stderr="without model weights")

# ----------------------------------------------------------------------------------------
# Numbers that must not pass silently.
def tensors(name, **named):
    save_file({key: value.contiguous() for key, value in named.items()}, str(OUT / name))


rng = torch.Generator().manual_seed(3)
base = torch.randn(60, 40, generator=rng, dtype=torch.float64)
with_nan = base.clone()
with_nan[3, 4] = float("nan")
tensors("num_nan.safetensors", w=with_nan)
case("num_nan.safetensors", stderr="non-finite")
with_inf = base.clone()
with_inf[0, 0] = float("inf")
tensors("num_inf.safetensors", w=with_inf)
case("num_inf.safetensors", stderr="non-finite")
tensors("num_all_zero.safetensors", w=torch.zeros(60, 40))
case("num_all_zero.safetensors", stderr="zero matrix")
tensors("num_tiny_only.safetensors", w=base * 1e-200)
case("num_tiny_only.safetensors", stderr="outside float64's range")
tensors("num_huge_only.safetensors", w=base * 1e200)
case("num_huge_only.safetensors", stderr="outside float64's range")
tensors("num_tiny_beside_normal.safetensors", tiny=base * 1e-200, normal=base)
case("num_tiny_beside_normal.safetensors", args=("analyze", "{file}", "-f", "json"), exit=0, stdout="outside float64's range")
tensors("num_row_vector.safetensors", w=torch.randn(1, 48))
case("num_row_vector.safetensors", stderr="eigenvalues < minimum")
tensors("num_only_bias.safetensors", bias=torch.randn(48))
case("num_only_bias.safetensors", stderr="1-D")
tensors("num_scaled_1e150.safetensors", w=base * 1e-150)
case("num_scaled_1e150.safetensors", args=("analyze", "{file}", "-f", "json"), exit=0, stdout="e-298")
tensors("num_escape_name.safetensors", **{"\x1b[31mred\x1b[0m\nname": base})
case("num_escape_name.safetensors", exit=0, stdout="\\u{1b}[31mred")
tensors("num_integer_only.safetensors", steps=torch.arange(64).reshape(8, 8))
case("num_integer_only.safetensors", stderr="not floating point")

# ----------------------------------------------------------------------------------------
# Options and sizes that must be refused before any work.
VALID = str(OUT / "st_valid.safetensors")


def refused(name, args, stderr):
    case(name, args=args, stderr=stderr)


refused("opt_fail_if_nan", ("zoo", str(OUT / "zoo_ok"), "--fail-if", "alpha>nan"), "finite")
# Shares of one model to merge that are not analyses, or are analyses of another schema.
case("merge_not_json.json", b"{not json", args=("analyze", "merge", "{file}"), stderr="not an analysis in JSON")
case("merge_other_schema.json", json.dumps({"schema": "rmt-torch/zoo/v1"}).encode(), args=("analyze", "merge", "{file}"), stderr="a rmt-torch/zoo/v1 file")
case("merge_no_schema.json", b"[1, 2]", args=("analyze", "merge", "{file}"), stderr="no schema")
case("merge_lying_share.json", json.dumps({"schema": "rmt-torch/analysis/v2", "layers": "x"}).encode(), args=("analyze", "merge", "{file}"), stderr="not an analysis in JSON")
refused("opt_shard_out_of_range", ("analyze", VALID, "--shard", "3/3"), "I/N")
refused("opt_fail_if_changed_without_base", ("zoo", str(OUT / "zoo_ok"), "--fail-if-changed", "max_cka<1"), "--base")
refused("opt_farms_q_nan", ("analyze", VALID, "--estimator", "farms", "--farms-q", "nan"), "finite number")
refused("opt_farms_grid_one", ("analyze", VALID, "--estimator", "farms", "--farms-grid", "1"), "--farms-grid")
refused("opt_farms_without_farms", ("analyze", VALID, "--farms-window", "64"), "farms estimators")
refused("opt_estimator_unknown", ("analyze", VALID, "--estimator", "hill"), "hill-median")
refused("opt_allocate_target_one", ("allocate", "sparsity", VALID, "--target", "1"), "--target")
refused("opt_allocate_lora_no_blocks", ("allocate", "lora", VALID), "no transformer blocks")
refused("opt_fail_if_unknown_field", ("zoo", str(OUT / "zoo_ok"), "--fail-if", "alpah>3"), "alpah")
refused("opt_tw_level", ("analyze", VALID, "--tw-level", "2"), "--tw-level")
refused("opt_tw_level_nan", ("analyze", VALID, "--tw-level", "nan"), "finite number")
refused("opt_min_evals_zero", ("analyze", VALID, "--min-evals", "0"), "--min-evals")
refused("opt_output_is_input", ("analyze", VALID, "-o", VALID), "input")
refused("opt_output_is_directory", ("analyze", VALID, "-o", str(OUT)), "directory")
refused("opt_dist_cdf_nan", ("dist", "tw1", "--cdf", "nan"), "finite number")
refused("opt_dist_quantile_inf", ("dist", "tw1", "--quantile", "inf"), "finite number")
refused("opt_threads_zero", ("--threads", "0", "analyze", VALID), "--threads")
refused("opt_samples_zero", ("jacobian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--samples", "0"), "--samples")
refused("opt_isometry_negative", ("jacobian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--isometry-tolerance=-1"), "--isometry-tolerance")
refused("opt_hessian_tolerance_nan", ("hessian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--target", str(MODELS / "digits_batch_labels.pt"), "--tolerance", "nan"), "finite number")
refused("opt_hessian_batch_size_zero", ("hessian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--target", str(MODELS / "digits_batch_labels.pt"), "--batch-size", "0"), "--batch-size")
refused("opt_hessian_loss_unknown", ("hessian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--target", str(MODELS / "digits_batch_labels.pt"), "--loss", "hinge"), "--loss")
refused("opt_hessian_reorthogonalisation_unknown", ("hessian", MLP, "--input", str(MODELS / "digits_mlp_batch.pt"), "--target", str(MODELS / "digits_batch_labels.pt"), "--reorthogonalisation", "sometimes"), "partial")
refused("opt_layers_bad_regex", ("analyze", VALID, "--layers", "(["), "--layers")
refused("opt_key_on_safetensors", ("analyze", VALID, "--key", "model"), "--key")
for label, args in {
    "kernel_n": ("theory", "kernel", "--n", "1000000"),
    "kernel_width": ("theory", "kernel", "--width-ratio", "100000000"),
    "depth_n": ("theory", "depth", "--n", "100000"),
    "depth_width": ("theory", "depth", "--width", "1000000"),
    "depth_depths": ("theory", "depth", "--depths", "1000000000"),
    "random_features_n": ("theory", "random-features", "--n", "1000000"),
    "random_features_features": ("theory", "random-features", "--features", "100000000", "--simulate", "3"),
    "preactivation_width": ("theory", "preactivation", "--width", "1000000"),
    "preactivation_input": ("theory", "preactivation", "--input-dim", "1000000000000"),
    "preactivation_layers": ("theory", "preactivation", "--layers", "1000000000"),
    "dyson_samples": ("theory", "dyson", "--samples", "1000000000000"),
    "dyson_dt": ("theory", "dyson", "--dt", "1e-12"),
    "dyson_chains": ("theory", "dyson", "--chains", "1000000000"),
    "ridge_simulate": ("theory", "ridge", "--simulate", "10000000"),
    "ridge_trials": ("theory", "ridge", "--simulate", "100", "--trials", "1000000000000"),
}.items():
    refused(f"theory_{label}", args, "")

# ----------------------------------------------------------------------------------------
# GGUF files, built field by field so that any count, length, offset or type can lie.
def gguf_str(text):
    data = text if isinstance(text, bytes) else text.encode()
    return struct.pack("<Q", len(data)) + data


def gguf_kv(key, value_type, payload):
    return gguf_str(key) + struct.pack("<I", value_type) + payload


def gguf_tensor(name, ne, qtype, offset):
    return gguf_str(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack("<I", qtype) + struct.pack("<Q", offset)


def gguf(records, kvs=(), data=b"", version=3, counts=None, alignment=32):
    n_tensors, n_kv = counts if counts is not None else (len(records), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + b"".join(kvs) + b"".join(records)
    return head + b"\0" * (-len(head) % alignment) + data


def q8_0_rows(rows, cols, scale=0.01):
    blocks = rows * cols // 32
    block = struct.pack("<e", scale) + bytes((i * 37) % 256 for i in range(32))
    return block * blocks


Q8 = 8
GOOD_Q8 = [gguf_tensor("fc.weight", (64, 32), Q8, 0)]
GOOD_DATA = q8_0_rows(32, 64)
ARCH = gguf_kv("general.architecture", 8, gguf_str("llama"))
case("gguf_valid.gguf", gguf(GOOD_Q8, [ARCH], GOOD_DATA), exit=0, stdout="fc.weight")
case("gguf_version_1.gguf", gguf(GOOD_Q8, [], GOOD_DATA, version=1), stderr="version 1")
case("gguf_version_99.gguf", gguf(GOOD_Q8, [], GOOD_DATA, version=99), stderr="version 99")
case("gguf_big_endian.gguf", gguf(GOOD_Q8, [], GOOD_DATA, version=3 << 24), stderr="big-endian")
case("gguf_only_magic.gguf", b"GGUF", stderr="runs past the end")
case("gguf_no_tensors.gguf", gguf([], [ARCH]), stderr="no tensors")
case("gguf_tensor_count_huge.gguf", gguf(GOOD_Q8, [], GOOD_DATA, counts=(2**63, 0)), stderr="more than its")
case("gguf_kv_count_huge.gguf", gguf(GOOD_Q8, [ARCH], GOOD_DATA, counts=(1, 2**64 - 1)), stderr="GGUF")
case("gguf_key_length_huge.gguf", gguf(GOOD_Q8, [struct.pack("<Q", 2**62) + b"x"], GOOD_DATA), stderr="metadata key of")
case("gguf_string_past_end.gguf", gguf(GOOD_Q8, [gguf_kv("general.name", 8, struct.pack("<Q", 10**9) + b"abc")], GOOD_DATA), stderr="runs past the end")
case("gguf_array_claims_exabytes.gguf", gguf(GOOD_Q8, [gguf_kv("a", 9, struct.pack("<IQ", 10, 2**61))], GOOD_DATA), stderr="array")
case("gguf_string_array_huge.gguf", gguf(GOOD_Q8, [gguf_kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2**40) + gguf_str("a"))], GOOD_DATA), stderr="runs past the end")
case("gguf_nested_arrays.gguf", gguf(GOOD_Q8, [gguf_kv("deep", 9, struct.pack("<IQ", 9, 1) * 100_000)], GOOD_DATA), stderr="nests arrays")
case("gguf_unknown_value_type.gguf", gguf(GOOD_Q8, [gguf_kv("odd", 99, b"\0" * 8)], GOOD_DATA), stderr="unknown value type 99")
case("gguf_alignment_three.gguf", gguf(GOOD_Q8, [gguf_kv("general.alignment", 4, struct.pack("<I", 3))], GOOD_DATA), stderr="power of two")
case("gguf_alignment_zero.gguf", gguf(GOOD_Q8, [gguf_kv("general.alignment", 4, struct.pack("<I", 0))], GOOD_DATA), stderr="power of two")
case("gguf_alignment_string.gguf", gguf(GOOD_Q8, [gguf_kv("general.alignment", 8, gguf_str("32"))], GOOD_DATA), stderr="not a uint32")
case("gguf_duplicate_key.gguf", gguf(GOOD_Q8, [ARCH, ARCH], GOOD_DATA), stderr="appears twice")
case("gguf_duplicate_tensor.gguf", gguf(GOOD_Q8 * 2, [], GOOD_DATA), stderr="appears twice")
case("gguf_key_not_utf8.gguf", gguf(GOOD_Q8, [gguf_kv(b"\xff\xfe", 4, struct.pack("<I", 1))], GOOD_DATA), stderr="not UTF-8")
case("gguf_five_dims.gguf", gguf([gguf_tensor("fc.weight", (64, 32, 1, 1, 1), Q8, 0)], [], GOOD_DATA), stderr="5 dimensions")
case("gguf_dim_huge.gguf", gguf([gguf_tensor("fc.weight", (64, 2**63), Q8, 0)], [], GOOD_DATA), stderr="dimension of")
case("gguf_shape_overflows.gguf", gguf([gguf_tensor("fc.weight", (2**40, 2**40), 0, 0)], [], GOOD_DATA), stderr="overflows")
case("gguf_shape_past_end.gguf", gguf([gguf_tensor("fc.weight", (2**20, 2**20), 0, 0)], [], GOOD_DATA), stderr="run past the end")
case("gguf_unknown_type.gguf", gguf([gguf_tensor("fc.weight", (64, 32), 99, 0)], [], GOOD_DATA), stderr="ggml type 99")
case("gguf_undecoded_type.gguf", gguf([gguf_tensor("fc.weight", (256, 4), 16, 0)], [], b"\0" * 264), stderr="does not decode")
case("gguf_row_not_whole_blocks.gguf", gguf([gguf_tensor("fc.weight", (40, 32), Q8, 0)], [], GOOD_DATA), stderr="whole number")
case("gguf_offset_unaligned.gguf", gguf([gguf_tensor("fc.weight", (64, 32), Q8, 8)], [], GOOD_DATA + b"\0" * 8), stderr="alignment")
case("gguf_offset_past_end.gguf", gguf([gguf_tensor("fc.weight", (64, 32), Q8, 2**40)], [], GOOD_DATA), stderr="run past the end")
case("gguf_offset_wraps.gguf", gguf([gguf_tensor("fc.weight", (64, 32), Q8, 2**64 - 32)], [], GOOD_DATA), stderr="run past the end")
case("gguf_nan_scales.gguf", gguf(GOOD_Q8, [], q8_0_rows(32, 64, scale=float("nan"))), stderr="non-finite")
# Tall (64 × 32 as stored): decoded band by band as its Gram matrix is formed.
case("gguf_nan_scales_tall.gguf", gguf([gguf_tensor("fc.weight", (32, 64), Q8, 0)], [], q8_0_rows(64, 32, scale=float("nan"))), stderr="2048 non-finite")
GOOD_GGUF = gguf(GOOD_Q8, [ARCH, gguf_kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + gguf_str("a") + gguf_str("bc") + gguf_str("d"))], GOOD_DATA)
for cut in (4, 12, 30, 60, 100, len(GOOD_GGUF) - len(GOOD_DATA) + 10, len(GOOD_GGUF) - 1):
    case(f"gguf_truncated_at_{cut}.gguf", GOOD_GGUF[:cut])

# ----------------------------------------------------------------------------------------
# Hugging Face quantised checkpoints whose tensors or quantization_config lie.
def quantized_dir(name, tensors, quantization, stderr):
    d = OUT / name
    d.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"quantization_config": quantization}))
    case(name, stderr=stderr)


P = "model.layers.0.mlp.down_proj."
QW = torch.zeros((16, 48), dtype=torch.int32)  # 128 inputs of 4 bits, 48 outputs
QZ = torch.zeros((4, 6), dtype=torch.int32)
SC = torch.full((4, 48), 0.01, dtype=torch.float16)
GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 32}
quantized_dir("q_no_scales", {P + "qweight": QW, P + "qzeros": QZ}, GPTQ, "without their scales")
quantized_dir("q_gptq_3_bits", {P + "qweight": QW, P + "qzeros": QZ, P + "scales": SC}, dict(GPTQ, bits=3), "3-bit codes")
quantized_dir("q_awq_8_bits", {P + "qweight": QW, P + "qzeros": QZ, P + "scales": SC}, {"quant_method": "awq", "bits": 8}, "AWQ with 8-bit codes")
quantized_dir("q_g_idx_out_of_range", {P + "qweight": QW, P + "qzeros": QZ, P + "scales": SC, P + "g_idx": torch.full((128,), 99, dtype=torch.int32)}, GPTQ, "g_idx names groups 99")
quantized_dir("q_zeros_one_dim", {P + "qweight": QW, P + "qzeros": torch.zeros(24, dtype=torch.int32), P + "scales": SC}, GPTQ, "not a matrix")
quantized_dir("q_packed_one_dim", {P + "weight_packed": torch.zeros(768, dtype=torch.int32), P + "weight_scale": torch.ones((48, 4)), P + "weight_shape": torch.tensor([48, 128])}, {"quant_method": "compressed-tensors"}, "not a matrix")
# 100 000 experts of 1×2: each expert is a layer of its own, too small to analyse, none made.
save_file({"model.layers.0.mlp.experts.down_proj": torch.ones((100_000, 1, 2))}, str(OUT / "moe_tiny_experts.safetensors"))
case("moe_tiny_experts.safetensors", stderr="1 eigenvalues < minimum 8 (1×2 per expert)")
quantized_dir("q_zeros_too_narrow", {P + "qweight": QW, P + "qzeros": torch.zeros((4, 1), dtype=torch.int32), P + "scales": SC}, GPTQ, "down_proj")
quantized_dir("q_pack_shape_lies", {P + "weight_packed": torch.zeros((48, 16), dtype=torch.int32), P + "weight_scale": torch.ones((48, 4)), P + "weight_shape": torch.tensor([-1, 5])}, {"quant_method": "compressed-tensors"}, "not a matrix's")
NF4_BYTES = torch.zeros((48 * 128 // 2, 1), dtype=torch.uint8)
def nf4(state):
    data = state if isinstance(state, bytes) else json.dumps(state).encode()
    return {P + "weight": NF4_BYTES, P + "weight.absmax": torch.ones(96), P + "weight.quant_map": torch.linspace(-1, 1, 16),
            P + "weight.quant_state.bitsandbytes__nf4": torch.tensor(list(data), dtype=torch.uint8)}
BNB = {"quant_method": "bitsandbytes"}
quantized_dir("q_nf4_state_not_json", nf4(b"{nope"), BNB, "not JSON")
quantized_dir("q_nf4_blocksize_zero", nf4({"shape": [48, 128], "blocksize": 0}), BNB, "blocksize 0")
quantized_dir("q_nf4_shape_lies", nf4({"shape": [1000, 1000], "blocksize": 64}), BNB, "down_proj")

# A zoo with a good model and hostile ones: the run completes, the bad ones are errors.
zoo = OUT / "zoo_ok"
zoo.mkdir(exist_ok=True)
(zoo / "good.safetensors").write_bytes((OUT / "st_valid.safetensors").read_bytes())
zoo_bad = OUT / "zoo_mixed"
zoo_bad.mkdir(exist_ok=True)
(zoo_bad / "good.safetensors").write_bytes((OUT / "st_valid.safetensors").read_bytes())
(zoo_bad / "deep.pt").write_bytes(checkpoint(b"\x80\x02)" + b"\x85" * 50_000 + b".", {}))
(zoo_bad / "short.pt").write_bytes(checkpoint(weights(), {"0": W_BYTES[:100]}))
case("zoo_mixed", args=("zoo", str(zoo_bad), "--cache", "none"), exit=2, stdout="good.safetensors")
# A named pipe among a zoo's files is never opened, and the report says it passed it over.
zoo_pipe = OUT / "zoo_pipe"
zoo_pipe.mkdir(exist_ok=True)
(zoo_pipe / "good.safetensors").write_bytes((OUT / "st_valid.safetensors").read_bytes())
if not (zoo_pipe / "weights.pt").exists():
    os.mkfifo(zoo_pipe / "weights.pt")
case("zoo_pipe", args=("zoo", str(zoo_pipe), "--cache", "none"), exit=0, stdout="weights.pt: a named pipe (FIFO), never read")

(OUT / "cases.json").write_text(json.dumps(CASES, indent=1))
print(f"{len(CASES)} hostile cases in {OUT}")
