"""Stage III export (scripts/anagram_py/export/sd_upscaler.py, docs/stage3.md): the tiny
variant of the x4 upscaler exported into a copy of the tiny bundle; the saved UNet, VAE
decoder and text encoder against eager diffusers / transformers rebuilt from the same seeds;
the manifest's "stage3" object and file hashes; the bundle's other entries untouched.
Skipped without diffusers and transformers."""
import importlib.util
import json
import os
import shutil
import tempfile
import unittest

import torch

HAVE_DIFFUSERS = all(importlib.util.find_spec(m) is not None
                     for m in ("diffusers", "transformers", "regex"))


@unittest.skipUnless(HAVE_DIFFUSERS, "needs diffusers, transformers and regex")
class Stage3Export(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        from anagram_py.export import sd_upscaler
        from anagram_py.paths import TINY_BUNDLE

        torch.set_num_threads(1)
        cls.tmp = tempfile.mkdtemp(prefix="stage3-test-")
        cls.bundle = os.path.join(cls.tmp, "bundle")
        shutil.copytree(TINY_BUNDLE, cls.bundle)
        with open(os.path.join(TINY_BUNDLE, "manifest.json")) as f:
            cls.before = json.load(f)
        error = None
        for _ in range(3):  # see sd_upscaler.finite_pair: rare non-finite eager outputs here
            try:
                sd_upscaler.main(["--tiny", cls.bundle, "--threads", "1"])
                error = None
                break
            except SystemExit as e:
                error = e
                if "non-finite" not in str(e):
                    raise
        if error is not None:
            raise error
        with open(os.path.join(cls.bundle, "manifest.json")) as f:
            cls.m = json.load(f)
        cls.parts = sd_upscaler.build_random("tiny")  # the same seeds: the same weights
        cls.sd = sd_upscaler

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def load(self, key):
        return torch.jit.load(os.path.join(self.bundle, self.m["stage3"][key]["file"]))

    def assert_same(self, got, expected):
        if not (torch.isfinite(got).all() and torch.isfinite(expected).all()):
            self.skipTest("non-finite output (the intermittent issue of docs/stage3.md)")
        self.assertEqual(got.shape, expected.shape)
        self.assertLessEqual((got - expected).abs().max().item(), 1e-5)

    def test_unet_matches_eager_diffusers(self):
        unet = self.parts["unet"].eval()
        traced = self.load("unet")
        for batch, size, t, levels in ((2, 16, 987, [20, 20]), (1, 24, 3, [350])):
            x, ts, s, c = self.sd.unet_inputs(unet, batch, size, torch.float32,
                                              torch.device("cpu"), 7, t, levels)
            with torch.no_grad():
                expected = unet(x, ts, encoder_hidden_states=s, class_labels=c).sample
                self.assert_same(traced(x, ts, s, c), expected)
            self.assertEqual(tuple(expected.shape), (batch, 4, size, size))

    def test_vae_decoder_matches_eager_diffusers(self):
        vae = self.parts["vae"].eval()
        traced = self.load("vae_decoder")
        z = self.sd.latents(vae, 2, 16, torch.float32, torch.device("cpu"), 3)
        with torch.no_grad():
            expected = vae.decode(z / 0.08333).sample
            self.assert_same(traced(z), expected)
        self.assertEqual(tuple(expected.shape), (2, 3, 64, 64))

    def test_text_encoder_matches_eager_transformers(self):
        from anagram_py.glide_clip import BPETokenizer
        bpe = BPETokenizer(self.sd.BPE_SOURCE)
        ids, lengths = bpe.tokens_and_lengths(["a red apple", ""], 77)
        self.assertEqual(ids[1, :3].tolist(), [49406, 49407, 0])  # OpenCLIP: 0 padding
        with torch.no_grad():
            expected = self.parts["text"].eval()(ids).last_hidden_state
            self.assert_same(self.load("text_encoder")(ids), expected)

    def test_manifest_entries(self):
        from anagram_py import manifest as bm
        s3 = self.m["stage3"]
        self.assertEqual((s3["stage"], s3["image"]["size"], s3["latent"]["size"]), (3, 1024, 256))
        self.assertEqual((s3["unet"]["in_channels"], s3["unet"]["out_channels"]), (7, 4))
        self.assertEqual(s3["latent"]["scaling_factor"], 0.08333)
        self.assertEqual(s3["scheduler"]["prediction_type"], "v_prediction")
        self.assertEqual(s3["scheduler"]["steps_offset"], 1)
        self.assertFalse(s3["scheduler"]["set_alpha_to_one"])
        self.assertEqual(s3["low_res_scheduler"]["beta_schedule"], "scaled_linear")
        self.assertEqual(s3["max_noise_level"], 350)
        files = [s3["unet"]["file"], s3["text_encoder"]["file"], s3["vae_decoder"]["file"],
                 s3["tokenizer"]["bpe_vocab"]]
        self.assertTrue(all(f.startswith("stage3/") for f in files[:3]))
        # the tiny bundle's CLIP copy of the vocabulary is byte-identical: named, not copied
        self.assertEqual(s3["tokenizer"]["bpe_vocab"], "bpe_simple_vocab_16e6.txt.gz")
        self.assertEqual(s3["tokenizer"]["bpe_vocab"], self.m["clip"]["bpe_vocab"])
        self.assertFalse(os.path.exists(os.path.join(self.bundle, self.sd.BPE_FILE)))
        m = bm.load(self.bundle)
        self.assertEqual(bm.check_files(self.bundle, m), [])
        for f in files:
            self.assertIn(f, bm.named_files(m))
            self.assertEqual(self.m["files"][f], bm.file_entry(os.path.join(self.bundle, f)))

    def test_bpe_vocab_is_copied_unless_identical_at_the_top(self):
        folder = os.path.join(self.tmp, "bpe-check")
        os.makedirs(folder, exist_ok=True)
        shared = os.path.join(folder, "bpe_simple_vocab_16e6.txt.gz")
        self.assertEqual(self.sd.bpe_vocab_name(folder), self.sd.BPE_FILE)  # none there
        with open(shared, "wb") as f:
            f.write(b"not the vocabulary")
        self.assertEqual(self.sd.bpe_vocab_name(folder), self.sd.BPE_FILE)  # another file
        shutil.copyfile(self.sd.BPE_SOURCE, shared)
        self.assertEqual(self.sd.bpe_vocab_name(folder), "bpe_simple_vocab_16e6.txt.gz")

    def test_the_rest_of_the_bundle_is_kept(self):
        for key, value in self.before.items():
            if key == "files":
                for name, entry in value.items():
                    if name.startswith("stage3/"):  # re-exported: their debug pickles hold
                        self.assertIn(name, self.m["files"])  # the exporting paths
                    else:
                        self.assertEqual(self.m["files"][name], entry)
            elif key == "source":
                for k, v in value.items():
                    self.assertEqual(self.m["source"][k], v)
            else:
                self.assertEqual(self.m[key], value, key)
        self.assertEqual(len(self.m["stages"]), 2)  # the C++ program reads at most two


if __name__ == "__main__":
    unittest.main()
