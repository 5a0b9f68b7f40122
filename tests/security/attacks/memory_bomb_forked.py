# Spreads a memory bomb over several processes, each under the per-process address-space limit:
# only the sandbox-wide memory cap (cgroup / container) can stop it.
import os
import time


def _hoard(mb):
    block = bytearray(mb * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    return block


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    for _ in range(4):
        if os.fork() == 0:
            _hoard(400)
            time.sleep(60)
            os._exit(0)
    kept = _hoard(400)
    time.sleep(60)
    return float(len(kept) > 0)
