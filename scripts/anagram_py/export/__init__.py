"""The exporters: DeepFloyd IF to a model bundle (if_*), GLIDE's noise-aware CLIP into a bundle
(glide_clip), a transformers CLIP to a scorer folder (clip_scorer).

The IF exporter in phases, one module each: if_sources (load or build the pipeline parts),
if_attention (the capturing attention processor), if_trace (trace, make device-independent),
if_verify (traces and saved files against eager diffusers/transformers), if_bundle (manifest
and the bundle folder), if_cli (the command line of scripts/export/export_if.py).
"""
