"""Synthetic, Leeds-like extracts with ground truth, for demos, tests and benchmarks.

The people are made up; the places, practices, codes and prevalence gradients are real
public reference data, so the pipeline is exercised on data shaped like the real thing.
"""
