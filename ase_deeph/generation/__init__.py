"""Stage 1: training data from the embedded DFT.

Training data from the embedded DFT (PySCF): generator configs (:mod:`.config`), structure
specs (:mod:`.structure_spec`), structure builders (:mod:`.structures`) and the resumable,
seeded generator (:mod:`.generate`).
"""
