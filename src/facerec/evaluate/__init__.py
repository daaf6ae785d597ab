"""Evaluation protocols: LFW pairs (verification), closed-set and open-set identification.

Each returns a plain dict (the JSON contract) and can draw a PNG; the CLI prints a table.
"""
