"""The names saved TorchScript archives give our Python classes.

TorchScript names a traced or scripted class after its Python module: `__torch__.<module>.<Class>`,
or `__torch__.<Class>` for a class of the script being run. That name is part of the code stored
in the archive, so it is part of the file's bytes. The committed bundles, judges and goldens were
written when these classes lived in top-level scripts (export_if.py and train_judge.py run as
scripts, clip_model.py, golden_io.py, export_clip_scorer.py); `saved_as` keeps those names, so the
same weights still give the same bytes (scripts/tools/keep_committed_modules.py relies on it)
wherever the class lives now.
"""


def saved_as(module_name):
    """Class decorator: save the class as `__torch__.<module_name>.<Class>` (`__torch__.<Class>`
    when module_name is ""), through TorchScript's `_jit_override_qualname` hook."""
    def pin(cls):
        prefix = "__torch__." + module_name if module_name else "__torch__"
        # Read by torch._jit_internal._qualified_name (torch 1.x and 2.x) for traced and
        # scripted modules alike; subclasses would inherit it, so pin leaf classes only.
        cls._jit_override_qualname = f"{prefix}.{cls.__name__}"
        return cls
    return pin
