#!/usr/bin/env bash
# TensorBoardWriter's event files, read back by an independent reader (read_tfevents.py: standard library only,
# bitwise CRC-32C): every tag / step / value tb_write_sample wrote is there (float32-rounded), the first record is
# the file_version event, and a flipped byte or a truncated file is rejected with a message.
# Usage: tensorboard_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
sample="$build/regression/tb_write_sample"
reader="$src/regression/obs/read_tfevents.py"
[ -x "$sample" ] || { echo "missing $sample: build the tb_write_sample target"; exit 1; }
out=$(mktemp -d /tmp/slime_tensorboard.XXXXXX)
trap 'rm -rf "$out"' EXIT

"$sample" "$out/logs" "$out/expected.json"

# The command-line reader on the directory.
python3 "$reader" "$out/logs" >"$out/scalars.json"

python3 - "$reader" "$out/expected.json" "$out/scalars.json" <<'PY'
import importlib.util, json, math, os, struct, subprocess, sys

reader_path, expected_path, cli_path = sys.argv[1:]
spec = importlib.util.spec_from_file_location("read_tfevents", reader_path)
reader = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reader)

# The reader's own CRC against the published check value, so a bug there cannot hide one in the writer.
assert reader.crc32c(b"123456789") == 0xE3069283, hex(reader.crc32c(b"123456789"))
assert reader.crc32c(bytes(32)) == 0x8A9136AA

expected = json.load(open(expected_path))
path = expected["event_file"]
events = reader.read_events(path)
first = events[0]
assert first["file_version"] == "brain.Event:2", first
assert first["values"] == [] and first["wall_time"] > 1.5e9, first
for event in events[1:]:
    assert event["file_version"] is None and event["wall_time"] > 1.5e9, event
multi = [e for e in events if len(e["values"]) == 3]
assert len(multi) == expected["multi_value_events"], (len(multi), expected["multi_value_events"])

def f32(value):
    if isinstance(value, str):
        return float(value)  # "nan", "inf", "-inf"
    return struct.unpack("<f", struct.pack("<f", value))[0]

def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b

got = reader.scalars(events)
assert sorted(got) == sorted(expected["scalars"]), (sorted(got), sorted(expected["scalars"]))
count = 0
for tag, points in expected["scalars"].items():
    want = [(step, f32(value)) for step, value in points]
    have = got[tag]
    assert len(have) == len(want), (tag, len(have), len(want))
    for (step_have, value_have), (step_want, value_want) in zip(have, want):
        assert step_have == step_want, (tag, step_have, step_want)
        assert same(value_have, value_want), (tag, step_want, value_have, value_want)
        count += 1
assert any(step > 2**32 for step, _ in got["misc/big_step"]) and (-1, f32(-0.75)) in got["misc/big_step"]

# The command-line output agrees with the library calls (JSON turns tuples into lists).
cli = json.load(open(cli_path))
assert sorted(cli) == sorted(got)
for tag in got:
    assert all(s1 == s2 and same(v1, v2) for (s1, v1), (s2, v2) in zip(cli[tag], got[tag])), tag

# Damage: each flipped byte (a sample of positions over every part of the framing) and a truncation must make
# the reader fail, both as a library (EventFileError) and as a command (exit status 1, a message on stderr).
blob = open(path, "rb").read()
positions = sorted(set(list(range(16)) + list(range(16, len(blob), 29)) + list(range(len(blob) - 8, len(blob)))))
damaged = path + ".damaged"
for pos in positions:
    corrupt = bytearray(blob)
    corrupt[pos] ^= 0x01
    open(damaged, "wb").write(bytes(corrupt))
    try:
        reader.read_records(damaged)
    except reader.EventFileError as e:
        assert "CRC mismatch" in str(e) or "truncated" in str(e), str(e)
    else:
        raise AssertionError(f"flipping byte {pos} went unnoticed")
for cut, message in ((len(blob) - 3, "truncated record"), (len(blob) - 20, "truncated record")):
    open(damaged, "wb").write(blob[:cut])
    try:
        reader.read_records(damaged)
    except reader.EventFileError as e:
        assert message in str(e), str(e)
    else:
        raise AssertionError(f"truncating to {cut} bytes went unnoticed")
corrupt = bytearray(blob)
corrupt[len(blob) // 2] ^= 0xFF
open(damaged, "wb").write(bytes(corrupt))
run = subprocess.run([sys.executable, reader_path, damaged], capture_output=True, text=True)
assert run.returncode == 1 and "CRC mismatch" in run.stderr, (run.returncode, run.stderr)
open(damaged, "wb").write(blob[:-1])
run = subprocess.run([sys.executable, reader_path, damaged], capture_output=True, text=True)
assert run.returncode == 1 and "truncated" in run.stderr, (run.returncode, run.stderr)
os.remove(damaged)

print(f"read_tfevents.py read {len(events)} records, {count} scalars over {len(got)} tags; "
      f"{len(positions)} flipped bytes and 2 truncations detected")
PY
