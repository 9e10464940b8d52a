// Tensor parallelism (run under mpirun -np 2): a TP=2 decoder gives the same log-probs, entropy and parameter
// gradients (each rank's shard) as the TP=1 decoder each rank also builds on its own.
#include <catch2/catch.hpp>
#include <cmath>

#include "comm/parallel.h"
#include "core/io.h"
#include "model/decoder.h"
#include "model/init.h"

using namespace slime;
using namespace slime::model;

namespace {

double rel_diff(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

void check_tp_matches_single(const json& config_json) {
  comm::ParallelGroups groups = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
  REQUIRE(groups.tp.size == 2);
  ModelConfig c = ModelConfig::from_hf_json(config_json, "tp test");
  c.pad_vocab(8, 2);
  Decoder single(c), sharded(c, groups.tp);
  init_random(c, single.params(), 21, 0.4f);
  init_random(c, sharded.params(), 21, 0.4f);

  PackedBatch batch = PackedBatch::from_sequences({{1, 2, 3, 4, 5, 6}, {7, 8, 9}, {40}});
  std::vector<int64_t> targets = {2, 3, 4, 5, 6, 0, 8, 9, 44, 11};
  std::vector<float> w_lp = {0.3f, -1.0f, 0.5f, 0.2f, 1.0f, -0.4f, 0.7f, 0.1f, -0.3f, 0.6f};
  std::vector<float> w_ent = {0.1f, 0.2f, -0.3f, 0.0f, 0.5f, 0.1f, -0.2f, 0.3f, 0.2f, -0.1f};
  Tensor lp1, ent1, lp2, ent2;
  single.forward(batch, targets, 0.8f, &lp1, &ent1);
  sharded.forward(batch, targets, 0.8f, &lp2, &ent2);
  CHECK(rel_diff(lp2.data<float>(), lp1.data<float>(), 10) < 1e-6);
  CHECK(rel_diff(ent2.data<float>(), ent1.data<float>(), 10) < 1e-6);
  single.backward(Tensor::from_vector(w_lp, {10}), Tensor::from_vector(w_ent, {10}));
  sharded.backward(Tensor::from_vector(w_lp, {10}), Tensor::from_vector(w_ent, {10}));
  for (const Param& p : single.params().all()) {
    const Param& q = sharded.params().at(p.name);
    Tensor expect = Tensor::empty(q.local_shape(), DType::F32);
    extract_shard(q, p.grad, expect);
    INFO(p.name << " on TP rank " << groups.tp.rank);
    CHECK(rel_diff(q.grad.data<float>(), expect.data<float>(), expect.numel()) < 1e-5);
    Tensor expect_value = Tensor::empty(q.local_shape(), DType::F32);
    extract_shard(q, p.value, expect_value);
    CHECK(rel_diff(q.value.data<float>(), expect_value.data<float>(), expect.numel()) == 0.0);
  }
  // Logits: this rank's vocab slice of the full logits.
  Tensor full = single.forward_logits(batch), part = sharded.forward_logits(batch);
  const int64_t Vl = c.padded_vocab_size / 2, v0 = groups.tp.rank * Vl;
  for (int64_t t = 0; t < batch.num_tokens(); ++t)
    CHECK(rel_diff(part.data<float>() + t * Vl, full.data<float>() + t * c.padded_vocab_size + v0, Vl) < 1e-6);
  groups.release();
}

}  // namespace

TEST_CASE("TP=2 equals TP=1: Qwen3 (QK-norm, GQA) with untied embeddings") {
  check_tp_matches_single(json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "vocab_size": 45,
    "hidden_size": 16, "intermediate_size": 20, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 6, "tie_word_embeddings": false})"));
}

TEST_CASE("TP=2 equals TP=1: Qwen2 (QKV bias) with tied embeddings") {
  check_tp_matches_single(json::parse(R"({"architectures": ["Qwen2ForCausalLM"], "vocab_size": 50,
    "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "tie_word_embeddings": true})"));
}

TEST_CASE("TP size that does not divide the KV heads is an error") {
  comm::ParallelGroups groups = comm::ParallelGroups::create(MPI_COMM_WORLD, 2);
  ModelConfig c = ModelConfig::from_hf_json(json::parse(R"({"architectures": ["Qwen2ForCausalLM"],
    "vocab_size": 50, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 1,
    "num_attention_heads": 3, "num_key_value_heads": 1, "head_dim": 4})"), "tp test");
  c.pad_vocab(8, 2);
  CHECK_THROWS_WITH(Decoder(c, groups.tp), Catch::Contains("must divide the number of KV heads"));
  groups.release();
}
