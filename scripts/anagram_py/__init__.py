"""Shared Python code of the `anagram` repository's scripts (export, golden values, tiny models,
the demo models).

The entry points live beside this package, grouped by purpose (scripts/export, scripts/golden,
scripts/tiny, scripts/demo, scripts/tools); everything they share is here, once:

    paths              where the checkout's models/ and tests/golden/ are
    manifest           the bundle manifest (docs/bundle.md): read any schema, write schema 2
    files              atomic file writes
    torchscript        names that saved TorchScript archives give our classes
    tolerance          how closely two evaluations of one computation must agree
    if_configs         DeepFloyd IF UNet, T5 and scheduler configurations
    diffusers_folder   writing a diffusers IF pipeline folder
    glide_clip         GLIDE's noise-aware CLIP and its BPE tokenizer
    golden_io          golden tensors in a form the C++ tests read
    splitmix64         the C++ program's seeded generator
    export/            the exporters (IF bundle, GLIDE CLIP, CLIP scorer)
    golden/            what several golden generators and check_bundle share
    tiny/              the tiny random test models
    demo/              the demo models: their pictures, trainings and evaluation

Import it from an editable install (`pip install --no-deps --no-build-isolation -e scripts`,
done by scripts/setup_python.sh) or with PYTHONPATH=scripts; it reads files of the checkout
(paths.ROOT), so it is not meant to be installed elsewhere.
"""
