"""A workdir's metric records: ``metrics.jsonl`` and TensorBoard event files, cut back on resume.

The trainer writes an epoch's records before its checkpoint commits (the save is asynchronous),
so a run killed between the two leaves records of an epoch that the resumed run redoes. On resume
the records after the restored step are dropped, and the workdir ends with one record per epoch,
as an uninterrupted run's. Event files cannot be edited in place: those holding later events are
rewritten (atomically) without them, record by record, so that TensorBoard, and any other reader
of the files, sees each epoch once.

Event files are TFRecord files of ``Event`` protos: per record, the length (uint64, little endian),
its masked CRC-32C, the data and its masked CRC-32C.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Iterator, Optional

from jsnn._io import atomic_write

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def drop_records_after(path: str, step: int) -> int:
  """Rewrites the JSON-lines file ``path`` without the records whose ``step`` is above ``step``.

  A last line cut short by a kill is dropped too; other lines are kept as they are. The file is
  left untouched (not rewritten) when there is nothing to drop.

  Returns:
    The number of lines dropped.
  """
  if not os.path.exists(path):
    return 0
  with open(path, "rb") as f:
    lines = f.read().splitlines(keepends=True)
  keep = []
  for line in lines:
    if not line.endswith(b"\n"):
      continue   # the line a kill cut short (always the last)
    try:
      record = json.loads(line)
    except ValueError:
      keep.append(line)
      continue
    if not (isinstance(record, dict) and isinstance(record.get("step"), int)
            and record["step"] > step):
      keep.append(line)
  if len(keep) < len(lines):
    atomic_write(path, lambda f: f.write(b"".join(keep)), mode="wb")
  return len(lines) - len(keep)


def read_records(path: str) -> Iterator[bytes]:
  """The serialized records of a TFRecord file, up to the first incomplete or damaged one."""
  from tensorboardX.record_writer import masked_crc32c   # pylint: disable=import-outside-toplevel
  with open(path, "rb") as f:
    data = f.read()
  pos = 0
  while pos + _HEADER.size <= len(data):
    length, length_crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    end = start + length
    if (length_crc != masked_crc32c(data[pos:pos + 8]) or end + _FOOTER.size > len(data)
        or _FOOTER.unpack_from(data, end)[0] != masked_crc32c(data[start:end])):
      return
    yield data[start:end]
    pos = end + _FOOTER.size


def _frame(record: bytes) -> bytes:
  from tensorboardX.record_writer import masked_crc32c   # pylint: disable=import-outside-toplevel
  header = struct.pack("<Q", len(record))
  return (header + struct.pack("<I", masked_crc32c(header)) + record
          + struct.pack("<I", masked_crc32c(record)))


def drop_events_after(logdir: str, step: int) -> int:
  """Rewrites each event file in ``logdir`` that holds events after ``step`` without them.

  A rewritten file also loses an incomplete last record (a kill during a write). Files with
  nothing to drop are left untouched.

  Returns:
    The number of events dropped.
  """
  from tensorboardX.proto.event_pb2 import Event   # pylint: disable=import-outside-toplevel
  if not os.path.isdir(logdir):
    return 0
  dropped = 0
  for name in sorted(os.listdir(logdir)):
    path = os.path.join(logdir, name)
    if not (name.startswith("events.out.tfevents.") and os.path.isfile(path)):
      continue
    records = list(read_records(path))
    keep = [r for r in records if _step(Event, r) is None or _step(Event, r) <= step]
    if len(keep) < len(records):
      atomic_write(path, lambda f: f.write(b"".join(_frame(r) for r in keep)), mode="wb")
      dropped += len(records) - len(keep)
  return dropped


def _step(event_type, record: bytes) -> Optional[int]:
  """The step of a scalar summary event; None for the others (the file's header, say)."""
  event = event_type.FromString(record)
  return event.step if event.HasField("summary") else None


def read_scalars(logdir: str) -> list[tuple[str, int, float]]:
  """Every scalar in the event files of ``logdir``: ``(tag, step, value)``, in file order."""
  from tensorboardX.proto.event_pb2 import Event   # pylint: disable=import-outside-toplevel
  out = []
  for name in sorted(os.listdir(logdir)):
    if name.startswith("events.out.tfevents."):
      for record in read_records(os.path.join(logdir, name)):
        event = Event.FromString(record)
        for value in event.summary.value:
          out.append((value.tag, event.step, value.simple_value))
  return out
