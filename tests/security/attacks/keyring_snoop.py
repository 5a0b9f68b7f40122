# Reaches for the service's kernel keyrings: reads a key planted in its session keyring (by serial
# and by description), plants one of its own for the next tenant, or revokes the caller's key.
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
NR = {
    "x86_64": {"add_key": 248, "request_key": 249, "keyctl": 250},
    "aarch64": {"add_key": 217, "request_key": 218, "keyctl": 219},
}.get(os.uname().machine, {})
KEYCTL_REVOKE, KEYCTL_READ = 3, 11
SESSION, USER = -3, -4


def _call(name, *args):
    return libc.syscall(NR[name], *args) if name in NR else -1


def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    found = []
    buf = ctypes.create_string_buffer(4096)
    serial = int(item.get("key_serial") or 0)
    if serial and _call("keyctl", KEYCTL_READ, serial, buf, len(buf)) > 0:
        found.append("read the planted key")
    description = item.get("key_description", "").encode()
    if description and _call("request_key", b"user", description, None, 0) > 0:
        found.append("found the planted key by its description")
    for ring in (SESSION, USER):
        if _call("add_key", b"user", b"rftkit-left-behind", b"x", 1, ring) > 0:
            found.append(f"planted a key in keyring {ring}")
    if serial and _call("keyctl", KEYCTL_REVOKE, serial) == 0:
        found.append("revoked the caller's key")
    try:
        with open("/proc/keys") as f:
            if description and description.decode() in f.read():
                found.append("/proc/keys lists the planted key")
    except OSError:
        pass
    print("found:", found)
    return 1.0 if found else 0.0
