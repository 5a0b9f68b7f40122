# Fills the scratch space with many files (each under the file size limit) until something gives.
import os


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    block = os.urandom(1 << 20)
    for n in range(100_000):
        with open(f"/tmp/fill-{n}", "wb") as f:
            for _ in range(8):
                f.write(block)
    return 1.0
