"""Synthetic presentation attacks, clip files and the ISO/IEC 30107-3 evaluation.

Import submodules directly; the package module imports nothing.
"""
