# One tenant plants state (a global, a scratch file, an environment variable); the other probes.
import os

PLANTED = []


def grade(sample, item):
    mode = item.get("mode")
    if mode == "plant":
        PLANTED.append(item["secret"])
        with open("/tmp/planted", "w") as f:
            f.write(item["secret"])
        os.environ["PLANTED"] = item["secret"]
        return 1.0
    if mode == "probe":
        seen = list(PLANTED)
        try:
            with open("/tmp/planted") as f:
                seen.append(f.read())
        except OSError:
            pass
        seen.append(os.environ.get("PLANTED", ""))
        return 1.0 if item["secret"] in seen else 0.0
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
