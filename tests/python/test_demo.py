"""The demo models' package (scripts/anagram_py/demo): the diffusion model's configurations
come from if_configs and are those models/demo-glyphs was made with, and the commands of
scripts/ keep to the layout of scripts/README.md (no edits of the module search path, no
command importing another)."""
import ast
import glob
import importlib.util
import json
import os
import unittest

from anagram_py import if_configs
from anagram_py.demo import data, diffusion, glyphs, objects
from anagram_py.paths import ROOT

HAVE_DIFFUSERS = all(importlib.util.find_spec(m) for m in ("diffusers", "transformers"))


def committed_manifest():
    with open(os.path.join(ROOT, "models", "demo-glyphs", "manifest.json")) as f:
        return json.load(f)


class DataModules(unittest.TestCase):
    def test_data_module(self):
        self.assertIs(data.data_module("glyphs"), glyphs)
        self.assertIs(data.data_module("objects"), objects)
        with self.assertRaises(SystemExit):
            data.data_module("letters")

    def test_same_interface(self):
        for name in ("SIZE", "CLASSES", "TRAIN_SOURCE", "JUDGE_SOURCE", "make_dataset",
                     "all_captions", "class_of_prompt", "prompt_of", "to_model", "save_grid",
                     "other_pictures"):
            self.assertTrue(hasattr(glyphs, name) and hasattr(objects, name), name)


class DiffusionConfigs(unittest.TestCase):
    """models/demo-glyphs's manifest records the configurations it was exported from."""

    def test_scheduler(self):
        stage = committed_manifest()["stages"][0]
        self.assertEqual(stage["scheduler"], if_configs.STAGE1_SCHEDULER)

    @unittest.skipUnless(HAVE_DIFFUSERS, "needs diffusers")
    def test_unet(self):
        from diffusers import UNet2DConditionModel
        recorded = committed_manifest()["stages"][0]["unet"]["config"]
        widths = diffusion.GLYPH_DEFAULTS["widths"]
        built = UNet2DConditionModel.from_config(diffusion.unet_config(widths, glyphs.SIZE))
        config = {k: v for k, v in built.config.items() if not k.startswith("_")}
        for key, value in config.items():
            recorded_value = recorded[key]
            if isinstance(value, tuple):
                value = list(value)
            self.assertEqual(value, recorded_value, key)
        self.assertEqual(set(config), {k for k in recorded if not k.startswith("_")})

    @unittest.skipUnless(HAVE_DIFFUSERS, "needs transformers")
    def test_t5(self):
        from transformers import T5Config
        recorded = committed_manifest()["text_encoder"]["config"]
        built = T5Config(**diffusion.T5_CONFIG).to_dict()
        for key in diffusion.T5_CONFIG:
            self.assertEqual(built[key], recorded[key], key)

    def test_object_widths(self):
        config = diffusion.unet_config(objects.TRAIN_DEFAULTS["widths"], objects.SIZE)
        self.assertEqual(config["block_out_channels"], [32, 64, 128])
        self.assertEqual(config["cross_attention_dim"], 64)


class CommandLayout(unittest.TestCase):
    """scripts/README.md: commands import from anagram_py only, never from each other, and
    never change the module search path."""

    def python_files(self):
        return sorted(glob.glob(os.path.join(ROOT, "scripts", "**", "*.py"), recursive=True))

    def test_no_search_path_edits(self):
        for path in self.python_files():
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "path" and \
                        isinstance(node.value, ast.Name) and node.value.id == "sys":
                    self.fail(f"{os.path.relpath(path, ROOT)}:{node.lineno} uses the sys module's "
                              "search path")

    def test_commands_do_not_import_commands(self):
        commands = glob.glob(os.path.join(ROOT, "scripts", "*", "*.py"))
        commands = [c for c in commands if os.sep + "anagram_py" + os.sep not in c]
        names = {os.path.splitext(os.path.basename(c))[0] for c in commands}
        self.assertIn("train_demo", names)
        for path in commands:
            with open(path) as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    imported = [a.name.split(".")[0] for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    imported = [(node.module or "").split(".")[0]]
                else:
                    continue
                for name in imported:
                    self.assertNotIn(name, names, f"{os.path.relpath(path, ROOT)} imports {name}")


if __name__ == "__main__":
    unittest.main()
