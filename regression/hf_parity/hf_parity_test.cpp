// Parity with transformers: for every golden model made by make_golden.py, the CPU model loaded from the same
// safetensors must reproduce transformers' logits (relative error <= 1e-4), token log-probs (absolute <= 1e-5) and
// entropy, and the gradients of the golden loss for every HF parameter (relative error <= 1e-3).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <dirent.h>
#include <map>
#include <string>
#include <vector>

#include "ckpt/safetensors.h"
#include "core/io.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/hf_mapping.h"

using namespace slime;
using namespace slime::model;

namespace {

std::string golden_root() {
  const char* src = std::getenv("SLIME_SOURCE_DIR");
  return std::string(src ? src : ".") + "/regression/hf_parity/golden";
}

std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  if (DIR* dir = opendir(golden_root().c_str())) {
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name[0] != '.' && path_exists(golden_root() + "/" + name + "/golden.safetensors")) names.push_back(name);
    }
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<int64_t> ints(const Tensor& t) {
  REQUIRE(t.dtype() == DType::I64);
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

std::vector<double> doubles(const Tensor& t) {
  std::vector<double> out(t.numel());
  if (t.dtype() == DType::F64) {
    for (int64_t i = 0; i < t.numel(); ++i) out[i] = t.data<double>()[i];
  } else {
    Tensor f = t.to_f32();
    for (int64_t i = 0; i < t.numel(); ++i) out[i] = f.data<float>()[i];
  }
  return out;
}

double relative_error(const std::vector<double>& ours, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num += (ours[i] - ref[i]) * (ours[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace

TEST_CASE("CPU model matches transformers on the golden models") {
  std::vector<std::string> models = golden_models();
  INFO("golden files live in " << golden_root() << " (made by regression/hf_parity/make_golden.py)");
  REQUIRE(models.size() >= 4);
  for (const std::string& name : models) {
    SECTION(name) {
      const std::string dir = golden_root() + "/" + name;
      ckpt::SafetensorsFile golden = ckpt::SafetensorsFile::open(dir + "/golden.safetensors");
      ModelConfig config = ModelConfig::from_hf_dir(dir);
      config.pad_vocab(128);  // Megatron's default padding: the padded rows must not change any result
      Decoder model(config);
      load_hf_weights(dir, config, model.params());

      PackedBatch batch;
      batch.tokens = ints(golden.read("input_ids"));
      batch.positions = ints(golden.read("position_ids"));
      batch.cu_seqlens = ints(golden.read("cu_seqlens"));
      const std::vector<int64_t> targets = ints(golden.read("targets"));
      const double temperature = doubles(golden.read("temperature"))[0];
      const double entropy_coef = doubles(golden.read("entropy_coef"))[0];
      const std::vector<double> advantages = doubles(golden.read("advantages"));
      const int64_t T = batch.num_tokens(), V = config.vocab_size;

      // Logits (our rows are padded to the Megatron vocab; compare the true-vocab columns).
      Tensor logits = model.forward_logits(batch);
      std::vector<double> ours(T * V);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < V; ++j) ours[t * V + j] = logits.data<float>()[t * config.padded_vocab_size + j];
      const double logits_err = relative_error(ours, doubles(golden.read("logits")));

      // Log-probs and entropy at the golden temperature.
      Tensor logprobs, entropy;
      model.params().zero_grad();
      model.forward(batch, targets, static_cast<float>(temperature), &logprobs, &entropy);
      const std::vector<double> ref_lp = doubles(golden.read("logprobs")), ref_ent = doubles(golden.read("entropy"));
      double lp_err = 0, ent_err = 0, loss = 0;
      for (int64_t t = 0; t < T; ++t) {
        lp_err = std::max(lp_err, std::abs(logprobs.data<float>()[t] - ref_lp[t]));
        ent_err = std::max(ent_err, std::abs(entropy.data<float>()[t] - ref_ent[t]));
        loss += advantages[t] * logprobs.data<float>()[t] + entropy_coef * entropy.data<float>()[t];
      }
      const double ref_loss = doubles(golden.read("loss"))[0];

      // Gradients of loss = sum adv * logprob + coef * sum entropy, compared per HF parameter.
      std::vector<float> dlp(advantages.begin(), advantages.end());
      model.backward(Tensor::from_vector(dlp, {T}), Tensor::from_vector(std::vector<float>(T, entropy_coef), {T}));
      double worst_grad = 0;
      std::string worst_name;
      int compared = 0;
      for (const auto& [hf_name, grad] : export_hf_tensors(config, model.params(), true)) {
        REQUIRE(golden.find("grad." + hf_name) != nullptr);
        std::vector<double> ours_g(grad.data<float>(), grad.data<float>() + grad.numel());
        double err = relative_error(ours_g, doubles(golden.read("grad." + hf_name)));
        INFO(name << " grad " << hf_name << " relative error " << err);
        CHECK(err <= 1e-3);
        if (err > worst_grad) {
          worst_grad = err;
          worst_name = hf_name;
        }
        ++compared;
      }
      auto meta = [&](const char* key) {
        auto it = golden.metadata().find(key);
        return it == golden.metadata().end() ? std::string("?") : it->second;
      };
      std::printf("hf_parity %-18s tokens %4lld  logits rel %.2e  logprob abs %.2e  entropy abs %.2e  "
                  "loss %.6f vs %.6f  grads %d, worst rel %.2e (%s)  "
                  "[torch fp32 vs fp64: logits rel %s, logprob abs %s]\n",
                  name.c_str(), static_cast<long long>(T), logits_err, lp_err, ent_err, loss, ref_loss, compared,
                  worst_grad, worst_name.c_str(), meta("torch_fp32_logits_rel_err").c_str(),
                  meta("torch_fp32_logprob_abs_err").c_str());
      CHECK(logits_err <= 1e-4);
      CHECK(lp_err <= 1e-5);
      CHECK(ent_err <= 1e-4);
      CHECK(std::abs(loss - ref_loss) <= 1e-4 * std::max(1.0, std::abs(ref_loss)));
    }
  }
}
