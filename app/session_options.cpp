// The session options gen and batch share.
#include "commands.h"

namespace anagram::cli {

void add_session_options(CLI::App* cmd, SessionOptions& session, SessionOptionsFor command) {
  const bool batch = command == SessionOptionsFor::kBatch;
  cmd->add_option("-b,--bundle", session.bundle,
                  batch ? "Bundle of jobs that name none"
                        : "Model bundle folder (default: $ANAGRAM_BUNDLE or the bundled demo "
                          "model, models/demo-glyphs)")
      ->capture_default_str();
  cmd->add_option("-d,--device", session.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--dtype", session.dtype,
                  "auto, or the bundle's dtype (float32, float16 or bfloat16) to insist on it")
      ->capture_default_str();
  cmd->add_option("--text-device", session.text_device,
                  "Device of the T5 text encoder (default: --device; cpu keeps T5-XXL off the "
                  "GPU)");
  cmd->add_option("--embeddings-cache", session.embeddings_cache,
                  "Folder for prompt embeddings, so later runs skip the text encoder");
  cmd->add_option("--threads", session.threads,
                  batch ? "CPU threads of LibTorch and of its BLAS library per sample (0: their "
                          "defaults, or 1 each with --workers above 1)"
                        : "CPU threads of LibTorch and of its BLAS library (0: their defaults); "
                          "the same seed gives the same bytes for the same thread counts")
      ->capture_default_str();
}

}  // namespace anagram::cli
