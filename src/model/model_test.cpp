// Model module tests: config.json parsing (both transformers styles, errors), HF <-> Megatron layouts and
// checkpoint I/O (round trips, bad files), and decoder invariants (packing, logprob consistency, gradients).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "ckpt/safetensors.h"
#include "core/io.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/generate_reference.h"
#include "core/rng.h"
#include "model/hf_mapping.h"
#include "model/init.h"

using namespace slime;
using namespace slime::model;

namespace {

json tiny_qwen2_json() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 50, "hidden_size": 16,
    "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": true, "hidden_act": "silu",
    "max_position_embeddings": 128, "use_sliding_window": false})");
}

json tiny_qwen3_json() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 45, "hidden_size": 16,
    "intermediate_size": 20, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
    "head_dim": 6, "rms_norm_eps": 1e-6, "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
    "tie_word_embeddings": false, "hidden_act": "silu", "attention_bias": false})");
}

std::string fresh_dir(const std::string& name) {
  std::string dir = "/tmp/slime_model_test_" + name;
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  return dir;
}

double rel_diff(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

}  // namespace

TEST_CASE("config: transformers 4 and 5 styles, derived sizes and padding") {
  ModelConfig q2 = ModelConfig::from_hf_json(tiny_qwen2_json(), "q2/config.json");
  CHECK(q2.family == Family::Qwen2);
  CHECK(q2.qkv_bias);
  CHECK_FALSE(q2.qk_norm);
  CHECK(q2.head_dim == 4);
  CHECK(q2.rope.theta == 10000.0);
  CHECK(q2.padded_vocab_size == 50);
  q2.pad_vocab(128, 2);
  CHECK(q2.padded_vocab_size == 256);

  ModelConfig q3 = ModelConfig::from_hf_json(tiny_qwen3_json(), "q3/config.json");
  CHECK(q3.family == Family::Qwen3);
  CHECK(q3.qk_norm);
  CHECK_FALSE(q3.qkv_bias);
  CHECK(q3.head_dim == 6);
  CHECK(q3.rope.theta == 1e6);
  CHECK(q3.qkv_rows() == (4 + 2) * 6);
}

TEST_CASE("config: llama3 rope scaling follows transformers' formula") {
  json j = json::parse(R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 10, "hidden_size": 32,
    "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
    "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 64}})");
  ModelConfig c = ModelConfig::from_hf_json(j, "llama/config.json");
  REQUIRE(c.rope.type == "llama3");
  std::vector<float> inv = rope_inv_freq(c);
  REQUIRE(inv.size() == 8);
  int scaled = 0, kept = 0, smoothed = 0;
  for (int i = 0; i < 8; ++i) {
    double base = 1.0 / std::pow(500000.0, 2.0 * i / 16.0);
    double wavelen = 2 * M_PI / base, expect;
    if (wavelen < 16) {
      expect = base;
      ++kept;
    } else if (wavelen > 64) {
      expect = base / 8;
      ++scaled;
    } else {
      double s = (64 / wavelen - 1) / 3;
      expect = (1 - s) * base / 8 + s * base;
      ++smoothed;
    }
    CHECK(inv[i] == Approx(expect).epsilon(1e-5));
  }
  CHECK(scaled > 0);
  CHECK(kept > 0);
  CHECK(smoothed > 0);
}

TEST_CASE("config: unsupported or malformed configs name the file and the field") {
  auto fails = [](json j, const std::string& needle) {
    CHECK_THROWS_WITH(ModelConfig::from_hf_json(j, "m/config.json"),
                      Catch::Contains("m/config.json") && Catch::Contains(needle));
  };
  json j = tiny_qwen2_json();
  j["architectures"] = {"MistralForCausalLM"};
  fails(j, "unsupported architecture 'MistralForCausalLM'");
  j = tiny_qwen2_json();
  j.erase("hidden_size");
  fails(j, "missing field 'hidden_size'");
  j = tiny_qwen2_json();
  j["num_attention_heads"] = "four";
  fails(j, "field 'num_attention_heads': expected integer, got string");
  j = tiny_qwen2_json();
  j["num_key_value_heads"] = 3;
  fails(j, "must be a multiple of num_key_value_heads");
  j = tiny_qwen2_json();
  j["use_sliding_window"] = true;
  fails(j, "use_sliding_window");
  j = tiny_qwen2_json();
  j["hidden_act"] = "gelu";
  fails(j, "hidden_act 'gelu'");
  j = tiny_qwen3_json();
  j["attention_bias"] = true;
  fails(j, "attention_bias");
  j = tiny_qwen3_json();
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1e6}, {"factor", 4.0}};
  fails(j, "rope scaling type 'yarn'");
  CHECK_THROWS_WITH(ModelConfig::from_hf_dir("/nonexistent/model"), Catch::Contains("config.json: not found"));
  std::string dir = "/tmp/slime_model_test_malformed_config";
  std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str());
  write_file_atomic(dir + "/config.json", "{\"architectures\": [\"Qwen2ForCausalLM\"], \"vocab_size\": 10,");
  CHECK_THROWS_WITH(ModelConfig::from_hf_dir(dir), Catch::Contains(dir + "/config.json: malformed JSON"));
}

TEST_CASE("hf mapping: fused QKV is grouped per KV head and fc1 is [gate; up]") {
  ModelConfig c = ModelConfig::from_hf_json(tiny_qwen3_json(), "q3");  // H=4, G=1, d=6
  ModelConfig c2 = ModelConfig::from_hf_json(tiny_qwen2_json(), "q2");  // H=4, G=2, d=4
  for (const ModelConfig& cfg : {c, c2}) {
    Decoder model(cfg);
    init_random(cfg, model.params(), 3, 0.5f);
    auto hf = export_hf_tensors(cfg, model.params());
    std::map<std::string, Tensor> by_name(hf.begin(), hf.end());
    const int64_t h = cfg.hidden_size, d = cfg.head_dim, per = cfg.heads_per_group();
    const float* qkv = model.params().at("decoder.layers.1.self_attention.linear_qkv.weight").value.data<float>();
    const float* q = by_name.at("model.layers.1.self_attn.q_proj.weight").data<float>();
    const float* k = by_name.at("model.layers.1.self_attn.k_proj.weight").data<float>();
    const float* v = by_name.at("model.layers.1.self_attn.v_proj.weight").data<float>();
    for (int64_t g = 0; g < cfg.num_kv_heads; ++g) {
      const int64_t base = g * (per + 2) * d;
      // last query head of group g, first column; K_g and V_g rows, last column
      CHECK(qkv[(base + (per - 1) * d) * h] == q[((g * per + per - 1) * d) * h]);
      CHECK(qkv[(base + per * d + 2) * h + h - 1] == k[(g * d + 2) * h + h - 1]);
      CHECK(qkv[(base + (per + 1) * d + d - 1) * h] == v[(g * d + d - 1) * h]);
    }
    const int64_t F = cfg.intermediate_size;
    const float* fc1 = model.params().at("decoder.layers.0.mlp.linear_fc1.weight").value.data<float>();
    CHECK(fc1[0] == by_name.at("model.layers.0.mlp.gate_proj.weight").data<float>()[0]);
    CHECK(fc1[F * h + 5] == by_name.at("model.layers.0.mlp.up_proj.weight").data<float>()[5]);
  }
}

TEST_CASE("hf checkpoint: save and load round trip, sharded, fp32 exact and bf16 rounded") {
  for (bool tied : {true, false}) {
    json j = tiny_qwen2_json();
    j["tie_word_embeddings"] = tied;
    ModelConfig c = ModelConfig::from_hf_json(j, "q2");
    c.pad_vocab(64);  // padded rows exist in Megatron layout only
    Decoder a(c);
    init_random(c, a.params(), 11, 0.3f);
    std::string dir = fresh_dir(tied ? "rt_tied" : "rt_untied");
    save_hf_checkpoint(dir, c, a.params(), DType::F32, 4000);  // several shards
    CHECK(path_exists(dir + "/model.safetensors.index.json"));
    ModelConfig c_back = ModelConfig::from_hf_dir(dir);
    c_back.pad_vocab(64);
    Decoder b(c_back);
    load_hf_weights(dir, c_back, b.params());
    for (const Param& p : a.params().all()) {
      const Param& q = b.params().at(p.name);
      REQUIRE(q.value.shape() == p.value.shape());
      CHECK(std::memcmp(q.value.raw(), p.value.raw(), p.value.nbytes()) == 0);
    }
    std::string dir16 = fresh_dir(tied ? "rt16_tied" : "rt16_untied");
    save_hf_checkpoint(dir16, c, a.params(), DType::BF16);
    Decoder b16(c);
    load_hf_weights(dir16, c, b16.params());
    const Param& p = a.params().at("decoder.layers.1.mlp.linear_fc2.weight");
    const Param& q = b16.params().at(p.name);
    for (int64_t i = 0; i < p.value.numel(); ++i)
      CHECK(q.value.data<float>()[i] == bf16_to_f32(f32_to_bf16(p.value.data<float>()[i])));
  }
}

TEST_CASE("hf checkpoint: bad files get errors naming the file and tensor") {
  ModelConfig c = ModelConfig::from_hf_json(tiny_qwen2_json(), "q2");
  Decoder model(c);
  init_random(c, model.params(), 1);
  auto tensors = export_hf_tensors(c, model.params());
  auto write = [&](const std::string& name, std::vector<std::pair<std::string, Tensor>> ts) {
    std::string dir = fresh_dir(name);
    ckpt::write_safetensors(dir + "/model.safetensors", ts);
    write_file_atomic(dir + "/config.json", c.to_hf_json().dump());
    return dir;
  };
  {
    auto ts = tensors;
    ts[3].second = Tensor::zeros({7, 16}, DType::F32);  // wrong shape for k_proj
    std::string dir = write("bad_shape", ts);
    Decoder m(c);
    CHECK_THROWS_WITH(load_hf_weights(dir, c, m.params()),
                      Catch::Contains("model.safetensors") && Catch::Contains(ts[3].first) &&
                          Catch::Contains("has shape [7, 16]"));
  }
  {
    auto ts = tensors;
    ts.erase(ts.begin() + 2);
    std::string dir = write("missing", ts);
    Decoder m(c);
    CHECK_THROWS_WITH(load_hf_weights(dir, c, m.params()),
                      Catch::Contains(tensors[2].first) && Catch::Contains("missing"));
  }
  {
    auto ts = tensors;
    ts.push_back({"model.layers.9.mlp.extra.weight", Tensor::zeros({2}, DType::F32)});
    std::string dir = write("extra", ts);
    Decoder m(c);
    CHECK_THROWS_WITH(load_hf_weights(dir, c, m.params()), Catch::Contains("unexpected tensor 'model.layers.9"));
  }
  {
    auto ts = tensors;
    ts[0].second = Tensor::zeros(ts[0].second.shape(), DType::I32);
    std::string dir = write("int_dtype", ts);
    Decoder m(c);
    CHECK_THROWS_WITH(load_hf_weights(dir, c, m.params()), Catch::Contains("dtype I32"));
  }
  {
    std::string dir = write("truncated", tensors);
    std::string file = dir + "/model.safetensors";
    std::string bytes = read_text_file(file);
    std::ofstream(file, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size() - 100);
    Decoder m(c);
    CHECK_THROWS_WITH(load_hf_weights(dir, c, m.params()), Catch::Contains("model.safetensors"));
  }
}

TEST_CASE("decoder: packing sequences is the same as running them one by one") {
  ModelConfig c = ModelConfig::from_hf_json(tiny_qwen3_json(), "q3");
  Decoder model(c);
  init_random(c, model.params(), 5, 0.4f);
  std::vector<std::vector<int64_t>> seqs = {{1, 5, 9, 2, 44}, {7}, {3, 3, 3, 8, 20, 31, 0}};
  Tensor packed = model.forward_logits(PackedBatch::from_sequences(seqs));
  int64_t row = 0;
  for (const auto& seq : seqs) {
    Tensor alone = model.forward_logits(PackedBatch::from_sequences({seq}));
    const int64_t n = alone.numel();
    CHECK(rel_diff(packed.data<float>() + row * c.padded_vocab_size, alone.data<float>(), n) < 1e-6);
    row += static_cast<int64_t>(seq.size());
  }
}

TEST_CASE("decoder: forward log-probs equal log-softmax of the logits, and bad input is rejected") {
  ModelConfig c = ModelConfig::from_hf_json(tiny_qwen2_json(), "q2");
  c.pad_vocab(64);
  Decoder model(c);
  init_random(c, model.params(), 6, 0.5f);
  PackedBatch batch = PackedBatch::from_sequences({{1, 2, 3, 4}, {5, 6, 7}});
  std::vector<int64_t> targets = {2, 3, 4, 49, 6, 7, 0};
  const float temperature = 0.8f;
  Tensor lp, ent;
  model.forward(batch, targets, temperature, &lp, &ent);
  Tensor logits = model.forward_logits(batch);
  for (int64_t t = 0; t < 7; ++t) {
    const float* z = logits.data<float>() + t * c.padded_vocab_size;
    double m = -1e30, s = 0, h = 0;
    for (int64_t j = 0; j < c.vocab_size; ++j) m = std::max(m, static_cast<double>(z[j]) / temperature);
    for (int64_t j = 0; j < c.vocab_size; ++j) s += std::exp(z[j] / temperature - m);
    for (int64_t j = 0; j < c.vocab_size; ++j) {
      double logp = z[j] / temperature - m - std::log(s);
      h -= std::exp(logp) * logp;
    }
    CHECK(lp.data<float>()[t] == Approx(z[targets[t]] / temperature - m - std::log(s)).margin(1e-5));
    CHECK(ent.data<float>()[t] == Approx(h).margin(1e-5));
  }
  CHECK_THROWS_WITH(model.forward(PackedBatch::from_sequences({{1, 50}}), {1, 2}, 1.0f, &lp, nullptr),
                    Catch::Contains("token 1 has id 50"));
  CHECK_THROWS_WITH(model.forward(batch, {1, 2}, 1.0f, &lp, nullptr), Catch::Contains("2 targets for 7 tokens"));
  CHECK_THROWS_WITH(model.backward(lp, Tensor()), Catch::Contains("needs a preceding forward"));
}

TEST_CASE("decoder: parameter gradients agree with finite differences (fp32 smoke test)") {
  // The exact check is the HF parity test against transformers' autograd; this one catches gross errors cheaply.
  for (const json& j : {tiny_qwen2_json(), tiny_qwen3_json()}) {
    ModelConfig c = ModelConfig::from_hf_json(j, "m");
    Decoder model(c);
    init_random(c, model.params(), 7, 0.5f);
    PackedBatch batch = PackedBatch::from_sequences({{1, 2, 3, 4, 5}, {9, 8, 7}});
    std::vector<int64_t> targets = {2, 3, 4, 5, 6, 8, 7, 1};
    std::vector<float> w_lp = {0.3f, -1.0f, 0.5f, 0.2f, 1.0f, -0.4f, 0.7f, 0.1f};
    std::vector<float> w_ent = {0.1f, 0.2f, -0.3f, 0.0f, 0.5f, 0.1f, -0.2f, 0.3f};
    auto loss = [&] {
      Tensor lp, ent;
      model.forward(batch, targets, 0.9f, &lp, &ent);
      double s = 0;
      for (int t = 0; t < 8; ++t) s += w_lp[t] * lp.data<float>()[t] + w_ent[t] * ent.data<float>()[t];
      return s;
    };
    model.params().zero_grad();
    loss();
    model.backward(Tensor::from_vector(w_lp, {8}), Tensor::from_vector(w_ent, {8}));
    int checked = 0;
    for (Param& p : model.params().all()) {
      const int64_t n = p.value.numel();
      for (int64_t i : {int64_t{0}, n / 3, n - 1}) {
        float* v = p.value.data<float>() + i;
        const float saved = *v, step = 1e-2f;
        *v = saved + step;
        double up = loss();
        *v = saved - step;
        double down = loss();
        *v = saved;
        double numeric = (up - down) / (2 * step);
        double analytic = p.grad.data<float>()[i];
        INFO(p.name << "[" << i << "] numeric " << numeric << " analytic " << analytic);
        CHECK(std::abs(numeric - analytic) < 2e-3 + 2e-2 * std::abs(numeric));
        ++checked;
      }
    }
    CHECK(checked == 3 * static_cast<int>(model.params().all().size()));
  }
}

TEST_CASE("sampling: greedy, temperature, top-k and top-p follow their definitions") {
  // logits giving probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1
  std::vector<float> logits = {std::log(0.3f), std::log(0.5f), std::log(0.05f), std::log(0.15f), 99.0f};
  const int64_t vocab = 4;  // the 99 is a padding column and must never be chosen
  float lp = 0;
  SamplingParams greedy;
  greedy.temperature = 0;
  CHECK(sample_token(logits.data(), vocab, greedy, 0.9f, &lp) == 1);
  CHECK(lp == Approx(std::log(0.5)).margin(1e-6));
  auto frequencies = [&](SamplingParams p) {
    std::vector<double> count(vocab, 0);
    const int draws = 40000;
    for (int i = 0; i < draws; ++i) count[sample_token(logits.data(), vocab, p, philox_uniform(3, 0, i), &lp)] += 1;
    for (double& c : count) c /= draws;
    return count;
  };
  SamplingParams plain;
  auto f = frequencies(plain);
  CHECK(f[0] == Approx(0.3).margin(0.01));
  CHECK(f[1] == Approx(0.5).margin(0.01));
  CHECK(f[2] == Approx(0.05).margin(0.01));
  CHECK(f[3] == Approx(0.15).margin(0.01));
  SamplingParams topk;
  topk.top_k = 2;  // renormalised over {0.5, 0.3}
  f = frequencies(topk);
  CHECK(f[1] == Approx(0.625).margin(0.01));
  CHECK(f[0] == Approx(0.375).margin(0.01));
  CHECK(f[2] + f[3] == 0.0);
  SamplingParams topp;
  topp.top_p = 0.9f;  // 0.5 + 0.3 = 0.8 < 0.9, so 0.15 joins; 0.05 is cut
  f = frequencies(topp);
  CHECK(f[2] == 0.0);
  CHECK(f[3] == Approx(0.15 / 0.95).margin(0.01));
  SamplingParams hot;
  hot.temperature = 2.0f;  // p ~ sqrt(p0)
  f = frequencies(hot);
  double z = std::sqrt(0.3) + std::sqrt(0.5) + std::sqrt(0.05) + std::sqrt(0.15);
  CHECK(f[0] == Approx(std::sqrt(0.3) / z).margin(0.01));
  // The draw walks the kept tokens in ascending id order (as without truncation): top-k = 2 keeps {1: 0.5, 0: 0.3},
  // renormalised to token 0 on [0, 0.375) and token 1 on [0.375, 1).
  CHECK(sample_token(logits.data(), vocab, topk, 0.0f, &lp) == 0);
  CHECK(sample_token(logits.data(), vocab, topk, 0.37f, &lp) == 0);
  CHECK(sample_token(logits.data(), vocab, topk, 0.38f, &lp) == 1);
  CHECK(sample_token(logits.data(), vocab, topk, 0.999f, &lp) == 1);
  // top-p = 0.9 keeps {1, 0, 3}: in id order 0 on [0, 0.3 / 0.95), 1 on [0.3 / 0.95, 0.8 / 0.95), then 3.
  CHECK(sample_token(logits.data(), vocab, topp, 0.0f, &lp) == 0);
  CHECK(sample_token(logits.data(), vocab, topp, 0.32f, &lp) == 1);
  CHECK(sample_token(logits.data(), vocab, topp, 0.83f, &lp) == 1);
  CHECK(sample_token(logits.data(), vocab, topp, 0.85f, &lp) == 3);
  CHECK(sample_token(logits.data(), vocab, topp, 0.999f, &lp) == 3);
  // The logprob reported is log softmax(logits / T) before truncation.
  CHECK(sample_token(logits.data(), vocab, topk, 0.5f, &lp) == 1);
  CHECK(lp == Approx(std::log(0.5)).margin(1e-6));
  CHECK(sample_token(logits.data(), vocab, topk, 0.0f, &lp) == 0);
  CHECK(lp == Approx(std::log(0.3)).margin(1e-6));
}

TEST_CASE("reference generation is reproducible and stops on stop tokens") {
  ModelConfig c = ModelConfig::from_hf_json(tiny_qwen3_json(), "q3");
  Decoder model(c);
  init_random(c, model.params(), 9, 1.0f);
  SamplingParams p;
  p.max_new_tokens = 12;
  p.seed = 77;
  Generation a = generate_reference(model, {1, 2, 3}, p);
  Generation b = generate_reference(model, {1, 2, 3}, p);
  CHECK(a.tokens == b.tokens);
  CHECK(a.tokens.size() == 12);
  CHECK(a.finish_reason == "length");
  p.seed = 78;
  CHECK(generate_reference(model, {1, 2, 3}, p).tokens != a.tokens);
  p.seed = 77;
  p.stop_token_ids = {a.tokens[4]};
  Generation stopped = generate_reference(model, {1, 2, 3}, p);
  CHECK(stopped.finish_reason == "stop");
  CHECK(stopped.tokens.size() <= 5);
  CHECK(stopped.tokens.back() == a.tokens[4]);
}

TEST_CASE("value head: forward/backward of the critic agree with finite differences") {
  ModelConfig c = ModelConfig::from_hf_json(tiny_qwen2_json(), "q2");
  Decoder critic(c, comm::Group{}, Head::Value);
  init_random(c, critic.params(), 12, 0.5f);
  CHECK(critic.params().at("output_layer.weight").global_shape == Shape{1, c.hidden_size});
  CHECK(critic.params().at("output_layer.bias").global_shape == Shape{1});
  critic.params().at("output_layer.bias").value.data<float>()[0] = 0.25f;
  PackedBatch batch = PackedBatch::from_sequences({{1, 2, 3, 4}, {5, 6, 7}});
  std::vector<float> w = {0.5f, -1.0f, 0.3f, 0.2f, 0.9f, -0.4f, 0.7f};
  auto loss = [&] {
    Tensor v;
    critic.forward_values(batch, &v);
    double s = 0;
    for (int t = 0; t < 7; ++t) s += w[t] * v.data<float>()[t];
    return s;
  };
  critic.params().zero_grad();
  loss();
  critic.backward_values(Tensor::from_vector(w, {7}));
  CHECK(critic.params().at("output_layer.bias").grad.data<float>()[0] == Approx(0.5 - 1.0 + 0.3 + 0.2 + 0.9 - 0.4 + 0.7));
  for (Param& p : critic.params().all()) {
    for (int64_t i : {int64_t{0}, p.value.numel() - 1}) {
      float* v = p.value.data<float>() + i;
      const float saved = *v, step = 1e-2f;
      *v = saved + step;
      const double up = loss();
      *v = saved - step;
      const double down = loss();
      *v = saved;
      const double numeric = (up - down) / (2 * step), analytic = p.grad.data<float>()[i];
      INFO(p.name << "[" << i << "] numeric " << numeric << " analytic " << analytic);
      CHECK(std::abs(numeric - analytic) < 2e-3 + 2e-2 * std::abs(numeric));
    }
  }
}

TEST_CASE("paged KV cache: chunked prefill and decode reproduce the full forward's logits") {
  for (const json& j : {tiny_qwen2_json(), tiny_qwen3_json()}) {
    ModelConfig c = ModelConfig::from_hf_json(j, "m");
    Decoder model(c);
    init_random(c, model.params(), 13, 0.5f);
    const int64_t block = 4;
    KvCache cache = KvCache::allocate(c, 1, 32, block);
    // Two sequences with scattered blocks; 11 and 6 tokens, fed in chunks of up to 3 tokens.
    const std::vector<std::vector<int64_t>> seqs = {{1, 5, 9, 2, 44, 7, 7, 3, 12, 40, 8}, {3, 3, 30, 8, 20, 31}};
    const std::vector<std::vector<int32_t>> tables = {{7, 2, 19}, {11, 0}};
    std::vector<int64_t> done(2, 0);
    std::vector<std::vector<float>> last_logits(2);
    while (done[0] < 11 || done[1] < 6) {
      cpu::PagedSequences s;
      s.cu_seqlens = {0};
      std::vector<int64_t> tokens, rows;
      for (int b = 0; b < 2; ++b) {
        const int64_t n = std::min<int64_t>(3, static_cast<int64_t>(seqs[b].size()) - done[b]);
        for (int64_t t = 0; t < n; ++t) {
          tokens.push_back(seqs[b][done[b] + t]);
          s.positions.push_back(done[b] + t);
        }
        s.cu_seqlens.push_back(static_cast<int64_t>(tokens.size()));
        done[b] += n;
        s.context_lens.push_back(done[b]);
        s.block_tables.push_back(tables[b]);
        if (n > 0) rows.push_back(s.cu_seqlens.back() - 1);
      }
      Tensor logits = model.forward_paged(s, tokens, cache, rows);
      int r = 0;
      for (int b = 0; b < 2; ++b)
        if (s.cu_seqlens[b + 1] > s.cu_seqlens[b]) {
          last_logits[b].assign(logits.data<float>() + r * c.padded_vocab_size,
                                logits.data<float>() + (r + 1) * c.padded_vocab_size);
          ++r;
        }
    }
    for (int b = 0; b < 2; ++b) {
      Tensor full = model.forward_logits(PackedBatch::from_sequences({seqs[b]}));
      const float* expect = full.data<float>() + (full.dim(0) - 1) * c.padded_vocab_size;
      CHECK(rel_diff(last_logits[b].data(), expect, c.padded_vocab_size) < 1e-5);
    }
  }
}
