"""Stage 2b: training a model on an HDF5 dataset.

Training: HDF5 dataset to graphs (:mod:`.dataset`), losses (:mod:`.losses`,
:mod:`.bandloss`), the trainer (:mod:`.trainer`), its configuration (:mod:`.config`) and the
per-structure refinement (:mod:`.refine`).
"""
