"""The command line: the Hydra app, its modes, its callbacks, and the run directory it leaves.

The top layer of the package: it may import from every other part, and nothing imports from it.
"""
