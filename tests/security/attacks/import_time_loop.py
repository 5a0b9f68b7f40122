# Never finishes loading.
while True:
    pass


def grade(sample, item):
    return 1.0
