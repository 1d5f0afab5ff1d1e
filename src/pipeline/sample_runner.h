// One sample of a plan, every stage, on the session's device: the loop Session::generate runs.
//
// Where tensors live: everything the runner builds (view index tensors, noise, x, records) is
// made on the runner's device, which is the device of the UNets, decoders and conditioning it
// is given; run() returns the Sample on the host. The only crossings are the noise (drawn on
// the CPU, moved by NoiseSource), the concept mask (moved once here) and the finished stage
// (moved to the host by download()).
#pragma once

#include <c10/core/Device.h>

#include <vector>

#include "anagram/diffusion/combiner.h"
#include "anagram/diffusion/sampler.h"
#include "anagram/io/sample.h"
#include "anagram/models/unet.h"
#include "anagram/models/vae_decoder.h"
#include "anagram/pipeline/plan.h"
#include "anagram/pipeline/session.h"

namespace anagram {
class AntiSegregation;
}  // namespace anagram

namespace anagram::detail {

// What one stage of a plan runs on, all on the runner's device.
struct StageModels {
  const UNet* unet = nullptr;
  Conditioning conditioning;            // the stage's text model's states of the prompts
  const VaeDecoder* decoder = nullptr;  // a latent stage's decoder, else null
};

class SampleRunner {
 public:
  // stages: one per plan stage, in order.
  SampleRunner(const GenerationPlan& plan, std::vector<StageModels> stages,
               const NoiseCombiner& combiner, c10::Device device, c10::ScalarType dtype,
               const RunOptions& run);

  // Sample `index` of the plan (seed = request seed + index), on the host.
  Sample run(int index) const;

 private:
  struct DeviceRecords;
  // `picture`: in, the previous stage's (1, C, S, S) picture (undefined for the first stage);
  // out, this stage's, both on the device.
  StageResult run_stage(size_t stage_index, torch::Tensor& picture, NoiseSource& noise,
                        int index) const;
  // A finished stage to the host, once: the picture, the picture under each view (through
  // `filters` when factorized), the per-step records and anti-segregation losses (when run).
  void download(const torch::Tensor& picture, const ViewStack& views, const FilterStack* filters,
                const DeviceRecords& records, const AntiSegregation* antiseg,
                StageResult& result) const;
  Denoiser denoiser(const UNet& unet, StageTiming& timing, DeviceRecords* maps,
                    const ViewStack* map_views) const;
  void check_interrupted(const char* when) const;

  const GenerationPlan& plan_;
  std::vector<StageModels> stages_;
  const NoiseCombiner& combiner_;
  c10::Device device_;
  c10::ScalarType dtype_;
  const RunOptions& run_;
  std::vector<ViewPtr> views_;  // the tasks' views, for the per-stage view stacks
  torch::Tensor concept_mask_;  // (N, 77) float32 on the device, where concept maps are used
};

}  // namespace anagram::detail
