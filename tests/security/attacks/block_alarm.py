# Blocks the in-worker alarm signal, then spins: only the parent's kill can stop it.
import signal


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM, signal.SIGTERM, signal.SIGINT])
    while True:
        pass
