# Breaks the worker runtime from inside: its JSON encoder and the real stdout, then returns 1.0.
import json
import sys


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    json.dumps = None
    sys.__stdout__.write('{"i": 1, "value": 1.0}')
    return 1.0
