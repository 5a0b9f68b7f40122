# Floods stdout and stderr, through Python and straight at the file descriptors, then scores normally.
import os
import sys


def grade(sample, item):
    if item.get("mode") == "attack":
        line = "x" * (1 << 20)
        for _ in range(100):
            print(line)
            sys.stderr.write(line)
            os.write(1, b"\x00\x00\x00\x10{not the protocol}" * 1000)
            os.write(2, b"y" * (1 << 16))
        print("\x00\x00\x00\x05hello")
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
