#!/usr/bin/env python3
"""Reads TensorFlow event files (what TensorBoard reads) with the Python standard library only.

Written independently of src/obs/tensorboard.cpp to check it: a bitwise CRC-32C (no table), a generic protobuf
field walker, and no tensorboard / protobuf packages. Every record's framing is verified:

    uint64 length (LE) | uint32 masked_crc32c(length bytes) | data[length] | uint32 masked_crc32c(data)

and each record is decoded as an Event (wall_time 1: double, step 2: int64, file_version 3: string,
summary 5: Summary { value 1: repeated Value { tag 1: string, simple_value 2: float } }); fields this reader does
not know are skipped by wire type.

    read_tfevents.py PATH...   (files, or directories: every file with "tfevents" in its name)

prints {tag: [[step, value], ...]} as JSON (NaN / Infinity as Python's json writes them) and exits 1 with a
message naming the file and offset on a CRC mismatch, a truncated record or a malformed message.
"""
import json
import os
import struct
import sys


class EventFileError(Exception):
    pass


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), bit by bit: reflected polynomial 0x82F63B78."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    """The data of every record, each checked against both of its CRCs."""
    with open(path, "rb") as f:
        blob = f.read()
    records = []
    offset = 0
    while offset < len(blob):
        if len(blob) - offset < 12:
            raise EventFileError(f"{path}: truncated record header at offset {offset}")
        length_bytes = blob[offset:offset + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", blob[offset + 8:offset + 12])
        if length_crc != masked_crc32c(length_bytes):
            raise EventFileError(f"{path}: length CRC mismatch in the record at offset {offset}")
        start = offset + 12
        if len(blob) - start < length + 4:
            raise EventFileError(f"{path}: truncated record at offset {offset}: {length} data bytes + CRC "
                                 f"announced, {len(blob) - start} left")
        data = blob[start:start + length]
        (data_crc,) = struct.unpack("<I", blob[start + length:start + length + 4])
        if data_crc != masked_crc32c(data):
            raise EventFileError(f"{path}: data CRC mismatch in the record at offset {offset}")
        records.append(data)
        offset = start + length + 4
    return records


def read_varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise EventFileError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise EventFileError("varint longer than 10 bytes")


def fields(buf):
    """(field number, wire type, value) for every field of a message: ints for varints, bytes otherwise."""
    pos = 0
    out = []
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = read_varint(buf, pos)
        elif wire_type == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire_type == 2:
            size, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire_type == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise EventFileError(f"field {number}: unsupported wire type {wire_type}")
        if pos > len(buf):
            raise EventFileError(f"field {number}: truncated")
        out.append((number, wire_type, value))
    return out


def expect(wire_type, wanted, what):
    if wire_type != wanted:
        raise EventFileError(f"{what}: wire type {wire_type}, expected {wanted}")


def decode_value(buf):
    """Summary.Value -> (tag, simple_value or None when the value is another kind)."""
    tag, simple_value = None, None
    for number, wire_type, value in fields(buf):
        if number == 1:
            expect(wire_type, 2, "Value.tag")
            tag = value.decode("utf-8")
        elif number == 2:
            expect(wire_type, 5, "Value.simple_value")
            (simple_value,) = struct.unpack("<f", value)
    return tag, simple_value


def decode_event(buf):
    event = {"wall_time": None, "step": 0, "file_version": None, "values": []}
    for number, wire_type, value in fields(buf):
        if number == 1:
            expect(wire_type, 1, "Event.wall_time")
            (event["wall_time"],) = struct.unpack("<d", value)
        elif number == 2:
            expect(wire_type, 0, "Event.step")
            event["step"] = value - (1 << 64) if value >= (1 << 63) else value  # int64: two's complement
        elif number == 3:
            expect(wire_type, 2, "Event.file_version")
            event["file_version"] = value.decode("utf-8")
        elif number == 5:
            expect(wire_type, 2, "Event.summary")
            for summary_number, summary_wire_type, summary_value in fields(value):
                if summary_number == 1:
                    expect(summary_wire_type, 2, "Summary.value")
                    event["values"].append(decode_value(summary_value))
    return event


def read_events(path):
    events = []
    for index, data in enumerate(read_records(path)):
        try:
            events.append(decode_event(data))
        except (EventFileError, UnicodeDecodeError, struct.error) as e:
            raise EventFileError(f"{path}: record {index}: {e}")
    return events


def scalars(events):
    """{tag: [(step, value), ...]} over the events, in file order."""
    out = {}
    for event in events:
        for tag, value in event["values"]:
            if value is not None:
                out.setdefault(tag, []).append((event["step"], value))
    return out


def event_files(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, name) for name in os.listdir(path) if "tfevents" in name)
        else:
            files.append(path)
    return files


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    try:
        files = event_files(argv)
        if not files:
            raise EventFileError(f"no event files in {' '.join(argv)}")
        result = {}
        for path in files:
            for tag, points in scalars(read_events(path)).items():
                result.setdefault(tag, []).extend(points)
    except (EventFileError, OSError) as e:
        print(f"read_tfevents: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
