# Closes every file descriptor, the worker's private protocol pipes included, and returns.
import os


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    os.closerange(0, 65536)
    return 1.0
