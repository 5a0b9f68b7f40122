def grade(sample, item):
    kind = item.get("mode")
    values = {
        "nan": float("nan"),
        "inf": float("inf"),
        "-inf": float("-inf"),
        "none": None,
        "str": "1.0",
        "two": 2.0,
        "negative": -0.5,
        "bool": True,
        "list": [1.0],
        "object": object(),
        "huge": "x" * (50 * 1024 * 1024),
    }
    if kind in values:
        return values[kind]
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
