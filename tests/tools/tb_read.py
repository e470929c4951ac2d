#!/usr/bin/env python3
"""tb_read.py: an independent reader of TensorBoard event files, for tests.

    tb_read.py RUNDIR     checks RUNDIR/tb/events.out.tfevents.* against RUNDIR/log.jsonl

Reads the TFRecord framing (u64 length, masked CRC32C of the length, data, masked CRC32C of
the data; CRC32C computed here bit by bit, not with the trainer's table), decodes every
record as tensorflow.Event with the field numbers and types parsed from
tests/fixtures/tf_event.proto (a generic protobuf wire-format decoder written here), and
requires: the first record of each file is file_version "brain.Event:2"; every numeric member
of every "step"/"valid" line of log.jsonl is a scalar "train/KEY"/"valid/KEY" at that step
with that value (float32) and wall time; and no other scalars. Exit 0 or 1 with the reason.
Pure Python (no protobuf package needed).
"""
import glob
import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def parse_proto(path):
    """{message name: {field number: (name, type, repeated)}}; nested messages by short name."""
    text = re.sub(r"//[^\n]*", "", open(path).read())
    msgs, stack = {}, []
    for tok in re.finditer(r"message\s+(\w+)\s*\{|oneof\s+\w+\s*\{|\}|"
                           r"(repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", text):
        if tok.group(1):
            stack.append(tok.group(1))
            msgs[tok.group(1)] = {}
        elif tok.group(0).startswith("oneof"):
            stack.append(None)
        elif tok.group(0) == "}":
            stack.pop()
        elif tok.group(3):
            owner = [m for m in stack if m][-1]
            msgs[owner][int(tok.group(5))] = (tok.group(4), tok.group(3), bool(tok.group(2)))
    return msgs


def varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def decode(msgs, name, buf):
    out, i = {}, 0
    fields = msgs[name]
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            raw, i = varint(buf, i)
        elif wt == 1:
            raw, i = buf[i:i + 8], i + 8
        elif wt == 5:
            raw, i = buf[i:i + 4], i + 4
        elif wt == 2:
            n, i = varint(buf, i)
            raw, i = buf[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        if i > len(buf):
            raise ValueError("truncated field %d" % num)
        if num not in fields:
            raise ValueError("%s: unknown field %d" % (name, num))
        fname, ftype, rep = fields[num]
        if ftype == "double":
            v = struct.unpack("<d", raw)[0]
        elif ftype == "float":
            v = struct.unpack("<f", raw)[0]
        elif ftype in ("int64", "int32"):
            v = raw - (1 << 64) if raw >= 1 << 63 else raw
        elif ftype == "string":
            v = raw.decode("utf-8")
        elif ftype == "bytes":
            v = raw
        else:
            v = decode(msgs, ftype, raw)
        if rep:
            out.setdefault(fname, []).append(v)
        else:
            out[fname] = v
    return out


def read_records(path):
    data = open(path, "rb").read()
    i, recs = 0, []
    while i < len(data):
        if i + 12 > len(data):
            raise ValueError("%s: truncated record header at byte %d" % (path, i))
        (n,) = struct.unpack("<Q", data[i:i + 8])
        (lc,) = struct.unpack("<I", data[i + 8:i + 12])
        if masked(crc32c(data[i:i + 8])) != lc:
            raise ValueError("%s: bad length CRC at byte %d" % (path, i))
        body = data[i + 12:i + 12 + n]
        if len(body) != n or i + 16 + n > len(data):
            raise ValueError("%s: truncated record at byte %d" % (path, i))
        (dc,) = struct.unpack("<I", data[i + 12 + n:i + 16 + n])
        if masked(crc32c(body)) != dc:
            raise ValueError("%s: bad data CRC at byte %d" % (path, i))
        recs.append(body)
        i += 16 + n
    return recs


def main():
    run_dir = sys.argv[1]
    msgs = parse_proto(os.path.join(HERE, "..", "fixtures", "tf_event.proto"))
    files = sorted(glob.glob(os.path.join(run_dir, "tb", "events.out.tfevents.*")))
    if not files:
        sys.exit("no event files in %s/tb" % run_dir)
    got = {}
    n_events = 0
    for f in files:
        recs = read_records(f)
        first = decode(msgs, "Event", recs[0])
        if first.get("file_version") != "brain.Event:2":
            sys.exit("%s: first record is not file_version brain.Event:2: %r" % (f, first))
        for body in recs[1:]:
            ev = decode(msgs, "Event", body)
            for v in ev["summary"]["value"]:
                got.setdefault((v["tag"], ev.get("step", 0)), []).append(
                    (v.get("simple_value", 0.0), ev.get("wall_time", 0.0)))  # proto3: 0 is absent
                n_events += 1
    want = {}
    for line in open(os.path.join(run_dir, "log.jsonl")):
        o = json.loads(line)
        group = {"step": "train", "valid": "valid"}.get(o.get("event"))
        if not group:
            continue
        for k, v in o.items():
            if k in ("time", "event", "step") or not isinstance(v, (int, float)):
                continue
            want.setdefault((group + "/" + k, o["step"]), []).append(
                (struct.unpack("<f", struct.pack("<f", v))[0], o["time"]))
    if set(got) != set(want):
        missing, extra = sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5]
        sys.exit("scalars differ from log.jsonl: missing %s, extra %s" % (missing, extra))
    for key in want:
        a, b = sorted(got[key]), sorted(want[key])
        if len(a) != len(b):
            sys.exit("%s: %d events, log has %d" % (key, len(a), len(b)))
        for (va, ta), (vb, tb) in zip(a, b):
            if va != vb or abs(ta - tb) > 0.002:
                sys.exit("%s: event (%r, t=%.3f) but the log says (%r, t=%.3f)"
                         % (key, va, ta, vb, tb))
    tags = sorted({t for t, _ in got})
    print("tb_read: %d files, %d scalar events, %d tags (%s), all match log.jsonl"
          % (len(files), n_events, len(tags), ", ".join(tags[:6]) + ", ..."))


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit("tb_read: %s" % e)
