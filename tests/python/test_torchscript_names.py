"""Traced and scripted classes of scripts/anagram_py keep the TorchScript names the committed
bundles and goldens were saved with (the names are part of the files' bytes)."""
import os
import tempfile
import unittest
import zipfile

import torch

from anagram_py import glide_clip, golden_io
from anagram_py.demo import judge
from anagram_py.export import clip_scorer, if_trace


class SavedNames(unittest.TestCase):
    def test_pinned_qualified_names(self):
        expected = {
            if_trace.UNetBundleModule: "__torch__.UNetBundleModule",
            if_trace.TextEncoderBundleModule: "__torch__.TextEncoderBundleModule",
            if_trace.Stage2UNetBundleModule: "__torch__.Stage2UNetBundleModule",
            glide_clip.ImageEmbedder: "__torch__.clip_model.ImageEmbedder",
            glide_clip.LayerNorm: "__torch__.clip_model.LayerNorm",
            clip_scorer.TextFeatures: "__torch__.export_clip_scorer.TextFeatures",
            golden_io._TensorContainer: "__torch__.golden_io._TensorContainer",
            judge.Judge: "__torch__.Judge",   # models/demo-judge/judge.pt
        }
        for cls, name in expected.items():
            self.assertEqual(torch._jit_internal._qualified_name(cls), name)

    def test_every_glide_clip_module_is_pinned(self):
        for value in vars(glide_clip).values():
            if isinstance(value, type) and issubclass(value, torch.nn.Module) and \
                    value.__module__ == glide_clip.__name__:
                self.assertEqual(value._jit_override_qualname,
                                 f"__torch__.clip_model.{value.__name__}")

    def test_a_traced_module_and_a_golden_file_use_them(self):
        traced = torch.jit.trace(glide_clip.LayerNorm(4), torch.zeros(2, 4))
        self.assertEqual(traced._c._type().qualified_name(), "__torch__.clip_model.LayerNorm")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "g.pt")
            golden_io.save_tensors(path, {"x": torch.arange(3)})
            names = zipfile.ZipFile(path).namelist()
        self.assertIn("g/code/__torch__/golden_io.py", names)


if __name__ == "__main__":
    unittest.main()
