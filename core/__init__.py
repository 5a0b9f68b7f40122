"""What every part of rftkit shares and nothing else: records, error flags, and the rules on them.

A leaf: modules here import no other part of rftkit.
"""
