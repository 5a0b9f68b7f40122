# Kills its worker while the module is being loaded, before grade() exists.
import os

os._exit(13)


def grade(sample, item):
    return 1.0
