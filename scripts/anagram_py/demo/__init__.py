"""The demo models' code (docs/demo_model.md, docs/demo_objects.md): small IF-architecture
models trained on the CPU on rendered pictures, with the commands in scripts/demo/.

    glyphs      the glyph pictures and captions (models/demo-glyphs), --data glyphs
    objects     the emoji pictures and captions (models/demo-objects), --data objects
    data        --data NAME -> that data module
    diffusion   the diffusion model's training (scripts/demo/train_demo.py)
    clip        the noise-aware CLIP's training (scripts/demo/train_demo_clip.py)
    judge       the independent judge's training (scripts/demo/train_judge.py)
    evaluate    judging anagrams the program made (scripts/demo/evaluate_demo.py)
"""
