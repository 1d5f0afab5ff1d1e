"""Write a diffusers IF pipeline folder: the layout `DiffusionPipeline.save_pretrained` gives.

    write_pipeline(outdir, "IFPipeline", unet=..., text_encoder=..., tokenizer=..., scheduler=...)
    write_pipeline(outdir2, "IFSuperResolutionPipeline", unet=..., scheduler=...,
                   image_noising_scheduler=...)

Each component is saved with its own save_pretrained into a subfolder of its name, and
model_index.json names every component of the pipeline class ([library, class], or
[null, null] for one left out, e.g. the safety checker and watermarker). The folder is
written beside OUTDIR under a temporary name and renamed into place (an existing OUTDIR is
replaced). scripts/export/export_if.py reads such folders.
"""
import json
import os
import shutil
import tempfile

# The components of DeepFloyd IF's pipelines, as their model_index.json lists them.
COMPONENTS = {
    "IFPipeline": ["feature_extractor", "safety_checker", "scheduler", "text_encoder",
                   "tokenizer", "unet", "watermarker"],
    "IFSuperResolutionPipeline": ["feature_extractor", "image_noising_scheduler",
                                  "safety_checker", "scheduler", "text_encoder", "tokenizer",
                                  "unet", "watermarker"],
}


def model_index(pipeline_class, parts):
    import diffusers

    index = {"_class_name": pipeline_class, "_diffusers_version": diffusers.__version__,
             "requires_safety_checker": False}
    for name in COMPONENTS[pipeline_class]:
        part = parts.get(name)
        index[name] = [None, None] if part is None else \
            [type(part).__module__.split(".")[0], type(part).__name__]
    return index


def write_pipeline(outdir, pipeline_class, **parts):
    """Write the pipeline folder OUTDIR from `parts` (component name -> object with
    save_pretrained); components of the class that are not given are recorded as absent."""
    unknown = set(parts) - set(COMPONENTS[pipeline_class])
    if unknown:
        raise ValueError(f"{pipeline_class} has no component {sorted(unknown)}")
    outdir = os.path.abspath(outdir)
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(outdir)}-", dir=parent)
    try:
        pipe_dir = os.path.join(tmp, "pipeline")
        for name, part in parts.items():
            part.save_pretrained(os.path.join(pipe_dir, name))
        with open(os.path.join(pipe_dir, "model_index.json"), "w") as f:
            json.dump(model_index(pipeline_class, parts), f, indent=2, sort_keys=True)
            f.write("\n")
        if os.path.exists(outdir):
            shutil.rmtree(outdir)
        os.rename(pipe_dir, outdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return outdir
