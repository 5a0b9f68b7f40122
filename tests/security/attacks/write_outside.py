# Tries to write outside the scratch space: system dirs, the sandbox's packages, a host path.
import os
import sys


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    targets = [
        item["host_path"],
        "/rftkit-pwned",
        "/etc/rftkit-pwned",
        "/usr/rftkit-pwned",
        "/usr/lib/rftkit-pwned",
        "/var/lib/rftkit/rftkit-pwned",
        os.path.join(os.path.dirname(os.__file__), "rftkit-pwned.py"),
        os.path.join(sys.prefix, "rftkit-pwned"),
        "/proc/sys/kernel/hostname",
    ]
    written = []
    for path in targets:
        try:
            with open(path, "w") as f:
                f.write("pwned")
            written.append(path)
        except OSError:
            pass
    print("written:", written)
    return 1.0 if written else 0.0
