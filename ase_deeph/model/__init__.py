"""Stage 2a: the equivariant network and its model file.

Graph (:mod:`.graph`), SO(2) convolutions (:mod:`.so2`), norms (:mod:`.norms`), output
blocks (:mod:`.blocks`), the network (:mod:`.network`), its configuration
(:mod:`.config`) and the model file (:mod:`.checkpoint`: safetensors + JSON, no pickle).
"""
