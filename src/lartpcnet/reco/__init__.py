"""Reconstruction on network output: Michel electrons (``michel``, on segmentation) and the
neutrino event selection (``selection``, on the cosmic tagger)."""
