"""Stage 3: H(R) and S(R) at run time.

Where H(R), S(R) come from at run time: a model's prediction (:mod:`.predict`), the
provider contract and the shipped models (:mod:`.provider`), the analytic toy model
(:mod:`.toy`) and the GPU eigen path (:mod:`.accel`). Importing this package loads no torch.
"""
