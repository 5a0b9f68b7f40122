# Leaves processes behind (a subprocess, a forked copy, a double-forked daemon) and, in a later
# sample, checks whether any of them survived.
import os
import subprocess
import time


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return "State:\tZ" not in f.read()
    except OSError:
        return False


def grade(sample, item):
    mode = item.get("mode")
    if mode == "attack":
        pids = [subprocess.Popen(["sleep", item["marker"]]).pid]
        child = os.fork()
        if child == 0:
            while True:
                time.sleep(1)
        pids.append(child)
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", item["marker"]])
            os._exit(0)
        with open("/tmp/children", "w") as f:
            f.write(" ".join(map(str, pids)))
        return 1.0
    if mode == "check":
        try:
            with open("/tmp/children") as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return 0.0
        return 1.0 if any(_alive(p) for p in pids) else 0.0
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
