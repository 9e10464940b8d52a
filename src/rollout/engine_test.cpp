// The rollout engine on the CPU: prefix sharing, continuous batching equals generating each request alone (with
// chunked prefill and preemption), log-probs equal the training forward's, sampling follows the distribution
// (chi-square), stop conditions, aborts, bad input, and the router.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/io.h"
#include "core/rng.h"
#include "model/decoder.h"
#include "model/generate_reference.h"
#include "model/init.h"
#include "rollout/block_manager.h"
#include "rollout/engine.h"
#include "rollout/engine_options.h"
#include "rollout/scheduler.h"
#include "rollout/router.h"
#include "tokenizer/test_fixtures.h"
#include "tokenizer/tokenizer.h"

using namespace slime;
using namespace slime::rollout;

namespace {

model::ModelConfig tiny_config(int64_t vocab = 64) {
  json j = json::parse(R"({"architectures": ["Qwen3ForCausalLM"], "hidden_size": 32, "intermediate_size": 48,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
    "max_position_embeddings": 128, "tie_word_embeddings": false})");
  j["vocab_size"] = vocab;
  return model::ModelConfig::from_hf_json(j, "tiny");
}

std::vector<int64_t> random_prompt(Rng& rng, int64_t length, int64_t vocab) {
  std::vector<int64_t> p(length);
  for (int64_t& t : p) t = static_cast<int64_t>(rng.below(vocab));
  return p;
}

Sequence make_seq(int64_t id, std::vector<int64_t> tokens) {
  Sequence s;
  s.id = id;
  s.prompt_length = static_cast<int64_t>(tokens.size());
  s.tokens = std::move(tokens);
  return s;
}

}  // namespace

TEST_CASE("block manager: prefix blocks are shared once computed, reference counted and recycled") {
  BlockManager bm(8, 4);
  Sequence a = make_seq(0, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});  // 3 blocks, 2 full blocks before the last token
  Sequence b = make_seq(1, {1, 2, 3, 4, 5, 6, 7, 8, 9, 11});
  REQUIRE(bm.can_allocate(a));
  bm.allocate(a);
  CHECK(a.block_table.size() == 3);
  CHECK(a.num_computed == 0);
  bm.allocate(b);  // a's blocks are not computed yet: no sharing
  CHECK(b.num_computed == 0);
  CHECK(bm.num_free_blocks() == 2);
  a.num_computed = 10;
  bm.commit_computed(a);
  bm.deallocate(b);
  bm.allocate(b);  // now the two full blocks of the common prefix are shared
  CHECK(b.num_computed == 8);
  CHECK(b.num_cached_prefix == 8);
  CHECK(b.block_table[0] == a.block_table[0]);
  CHECK(b.block_table[1] == a.block_table[1]);
  CHECK(b.block_table[2] != a.block_table[2]);
  bm.deallocate(a);
  bm.deallocate(b);
  CHECK(bm.num_free_blocks() == 8);
  // A freed block keeps its hash until reused: the prefix is still found.
  Sequence c = make_seq(2, {1, 2, 3, 4, 5, 6, 7, 8, 0});
  bm.allocate(c);
  CHECK(c.num_computed == 8);
  // A prompt exactly two blocks long computes its last block (its last token's logits are needed).
  Sequence d = make_seq(3, {1, 2, 3, 4, 5, 6, 7, 8});
  bm.allocate(d);
  CHECK(d.num_computed == 4);
  // Appending crosses into a new block only when the next token starts one.
  Sequence e = make_seq(4, {9, 9, 9});
  bm.allocate(e);
  e.tokens.push_back(1);
  CHECK(bm.can_append(e));
  bm.may_append(e);
  CHECK(e.block_table.size() == 1);
  e.tokens.push_back(2);
  bm.may_append(e);
  CHECK(e.block_table.size() == 2);
}

TEST_CASE("continuous batching gives each request the tokens it gets alone (greedy), through chunking and preemption") {
  model::ModelConfig c = tiny_config();
  model::Decoder model(c);
  model::init_random(c, model.params(), 3, 0.6f);
  Rng rng(4);
  std::vector<GenerateRequest> requests;
  for (int i = 0; i < 12; ++i) {
    GenerateRequest r;
    r.prompt = random_prompt(rng, 3 + static_cast<int64_t>(rng.below(14)), c.vocab_size);
    r.params.temperature = 0;
    r.params.max_new_tokens = 6 + static_cast<int64_t>(rng.below(10));
    requests.push_back(r);
  }
  // 12 requests share 2 prompts' worth of blocks: the scheduler must chunk, preempt and recompute.
  EngineConfig config;
  config.num_blocks = 14;
  config.block_size = 4;
  config.max_running = 8;
  config.max_batched_tokens = 7;
  Engine engine(model, config);
  const std::vector<GenerateOutput> outputs = engine.generate(requests);
  CHECK(engine.stats().preemptions > 0);
  for (size_t i = 0; i < requests.size(); ++i) {
    model::SamplingParams greedy;
    greedy.temperature = 0;
    greedy.max_new_tokens = requests[i].params.max_new_tokens;
    const model::Generation alone = model::generate_reference(model, requests[i].prompt, greedy);
    INFO("request " << i);
    CHECK(outputs[i].tokens == alone.tokens);
    CHECK(outputs[i].finish_reason == "length");
    for (size_t t = 0; t < alone.logprobs.size(); ++t) CHECK(outputs[i].logprobs[t] == Approx(alone.logprobs[t]).margin(1e-5));
  }
}

TEST_CASE("engine log-probs equal the training forward's log-probs of the same tokens") {
  model::ModelConfig c = tiny_config();
  model::Decoder model(c);
  model::init_random(c, model.params(), 5, 0.6f);
  EngineConfig config;
  config.num_blocks = 64;
  config.block_size = 4;
  Engine engine(model, config);
  Rng rng(6);
  std::vector<GenerateRequest> requests;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest r;
    r.prompt = random_prompt(rng, 5, c.vocab_size);
    r.params.temperature = 0.7f;
    r.params.top_p = 0.9f;
    r.params.max_new_tokens = 10;
    r.params.seed = 100 + i;
    requests.push_back(r);
  }
  const auto outputs = engine.generate(requests);
  double worst = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<int64_t> full = requests[i].prompt;
    full.insert(full.end(), outputs[i].tokens.begin(), outputs[i].tokens.end());
    model::PackedBatch batch = model::PackedBatch::from_sequences({full});
    std::vector<int64_t> targets(full.begin() + 1, full.end());
    targets.push_back(0);
    Tensor lp;
    model.forward(batch, targets, 0.7f, &lp, nullptr);
    for (size_t t = 0; t < outputs[i].tokens.size(); ++t) {
      const double train = lp.data<float>()[requests[i].prompt.size() - 1 + t];
      worst = std::max(worst, std::abs(train - outputs[i].logprobs[t]));
    }
  }
  std::printf("engine vs training forward: worst |log-prob difference| %.3g over 60 sampled tokens\n", worst);
  INFO("worst |engine - trainer| log-prob " << worst);
  CHECK(worst <= 1e-5);
}

TEST_CASE("sampling follows softmax(logits / T) restricted to top-k / top-p (chi-square)") {
  model::ModelConfig c = tiny_config(24);
  model::Decoder model(c);
  model::init_random(c, model.params(), 7, 0.4f);
  const std::vector<int64_t> prompt = {3, 9, 1, 20, 5, 5, 17, 2, 11};  // two full blocks: shared by the draws
  Tensor logits = model.forward_logits(model::PackedBatch::from_sequences({prompt}));
  const float* z = logits.data<float>() + (static_cast<int64_t>(prompt.size()) - 1) * c.padded_vocab_size;
  for (auto [temperature, top_k, top_p] : std::vector<std::tuple<float, int64_t, float>>{
           {1.0f, -1, 1.0f}, {0.6f, 8, 1.0f}, {1.3f, -1, 0.8f}}) {
    // Expected distribution: softmax(z / T) over the kept set.
    std::vector<double> p(c.vocab_size);
    double m = -1e30, sum = 0;
    for (int64_t j = 0; j < c.vocab_size; ++j) m = std::max(m, static_cast<double>(z[j]) / temperature);
    for (int64_t j = 0; j < c.vocab_size; ++j) sum += p[j] = std::exp(z[j] / temperature - m);
    for (double& x : p) x /= sum;
    std::vector<int64_t> order(c.vocab_size);
    for (int64_t j = 0; j < c.vocab_size; ++j) order[j] = j;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    std::vector<char> kept(c.vocab_size, 0);
    double mass = 0;
    const int64_t k = top_k > 0 ? top_k : c.vocab_size;
    double kept_total = 0;
    for (int64_t r = 0; r < k; ++r) kept_total += p[order[r]];
    for (int64_t r = 0; r < k; ++r) {
      kept[order[r]] = 1;
      mass += p[order[r]] / kept_total;
      if (mass >= top_p) break;
    }
    double kept_mass = 0;
    for (int64_t j = 0; j < c.vocab_size; ++j) if (kept[j]) kept_mass += p[j];

    EngineConfig config;
    config.num_blocks = 256;
    config.block_size = 4;
    config.max_running = 256;
    config.max_batched_tokens = 2048;
    Engine engine(model, config);
    const int draws = 4000;
    std::vector<GenerateRequest> requests(draws);
    for (int i = 0; i < draws; ++i) {
      requests[i].prompt = prompt;
      requests[i].params.temperature = temperature;
      requests[i].params.top_k = top_k;
      requests[i].params.top_p = top_p;
      requests[i].params.max_new_tokens = 1;
      requests[i].params.seed = 7777 + i;
    }
    std::vector<double> counts(c.vocab_size, 0);
    for (const GenerateOutput& out : engine.generate(requests)) counts[out.tokens.at(0)] += 1;
    double chi2 = 0;
    int bins = 0;
    for (int64_t j = 0; j < c.vocab_size; ++j) {
      if (!kept[j]) {
        CHECK(counts[j] == 0);  // outside top-k / top-p: never drawn
        continue;
      }
      const double expected = draws * p[j] / kept_mass;
      chi2 += (counts[j] - expected) * (counts[j] - expected) / expected;
      ++bins;
    }
    // Critical value of chi-square at p = 0.001 with (bins - 1) degrees of freedom, Wilson-Hilferty approximation.
    const double dof = bins - 1, zq = 3.09;
    const double critical = dof * std::pow(1 - 2 / (9 * dof) + zq * std::sqrt(2 / (9 * dof)), 3);
    INFO("T " << temperature << " top_k " << top_k << " top_p " << top_p << ": chi2 " << chi2 << " over " << bins
              << " bins, critical " << critical);
    std::printf("sampling T=%.1f top_k=%lld top_p=%.1f: chi2 %.1f over %d bins (critical %.1f at p=0.001)\n",
                temperature, static_cast<long long>(top_k), top_p, chi2, bins, critical);
    CHECK(bins >= 5);  // a meaningful test: several tokens in play
    CHECK(chi2 < critical);
    CHECK(engine.stats().cached_tokens > 0);  // the 4000 requests share the prompt's prefix
  }
}

TEST_CASE("stop conditions: stop strings across token boundaries, stop ids, eos, length, context, abort") {
  const tokenizer::Tokenizer& tok = tokenizer::test::fixture_tokenizer("qwen3");
  model::ModelConfig c = tiny_config(151936);
  c.max_position_embeddings = 40;
  model::Decoder model(c);
  model::init_random(c, model.params(), 9, 0.5f);
  EngineConfig config;
  config.num_blocks = 32;
  config.block_size = 4;
  Engine engine(model, config, &tok);
  const std::vector<int32_t> ids = tok.encode("The answer is", false);
  GenerateRequest base;
  base.prompt.assign(ids.begin(), ids.end());
  base.params.temperature = 0;
  base.params.max_new_tokens = 12;
  const GenerateOutput free_run = engine.generate({base})[0];
  REQUIRE(free_run.tokens.size() == 12);
  // A stop string made of the end of token 4's text and the start of token 5's.
  auto text_of = [&](int64_t t) { return tok.decode({static_cast<int32_t>(free_run.tokens[t])}); };
  std::string t4 = text_of(4), t5 = text_of(5);
  REQUIRE(!t4.empty());
  REQUIRE(!t5.empty());
  GenerateRequest with_stop = base;
  with_stop.params.stop = {t4.substr(t4.size() - 1) + t5.substr(0, 1)};
  const GenerateOutput stopped = engine.generate({with_stop})[0];
  CHECK(stopped.finish_reason == "stop");
  CHECK(stopped.matched_stop == with_stop.params.stop[0]);
  CHECK(stopped.tokens.size() <= 6);
  CHECK(std::equal(stopped.tokens.begin(), stopped.tokens.end(), free_run.tokens.begin()));
  // A stop token id, and the model's end-of-sequence ids (unless ignore_eos).
  GenerateRequest stop_id = base;
  stop_id.params.stop_token_ids = {free_run.tokens[2]};
  CHECK(engine.generate({stop_id})[0].tokens.size() == 3);
  EngineConfig eos_config = config;
  eos_config.eos_token_ids = {free_run.tokens[1]};
  Engine eos_engine(model, eos_config, &tok);
  CHECK(eos_engine.generate({base})[0].tokens.size() == 2);
  GenerateRequest ignoring = base;
  ignoring.params.ignore_eos = true;
  CHECK(eos_engine.generate({ignoring})[0].tokens.size() == 12);
  // The context length ends a response early with "length".
  GenerateRequest long_gen = base;
  long_gen.params.max_new_tokens = 100;
  const GenerateOutput capped = engine.generate({long_gen})[0];
  CHECK(capped.finish_reason == "length");
  CHECK(static_cast<int64_t>(base.prompt.size() + capped.tokens.size()) == 40);
  // Aborts keep what was generated.
  const int64_t id = engine.add_request(long_gen);
  engine.step();
  engine.step();
  engine.abort(id);
  const auto aborted = engine.step();
  REQUIRE(aborted.size() == 1);
  CHECK(aborted[0].finish_reason == "abort");
  CHECK(aborted[0].tokens.size() >= 1);
  CHECK_FALSE(engine.has_unfinished());
}

TEST_CASE("bad requests are refused with clear errors") {
  model::ModelConfig c = tiny_config();
  model::Decoder model(c);
  EngineConfig config;
  config.num_blocks = 8;
  config.block_size = 4;
  Engine engine(model, config);
  GenerateRequest r;
  CHECK_THROWS_WITH(engine.add_request(r), Catch::Contains("empty prompt"));
  r.prompt = std::vector<int64_t>(128, 1);
  CHECK_THROWS_WITH(engine.add_request(r), Catch::Contains("the prompt has 128 tokens, the context length is 128"));
  r.prompt = {1, 64};
  CHECK_THROWS_WITH(engine.add_request(r), Catch::Contains("prompt token 1 is 64, outside the vocabulary"));
  r.prompt = {1, 2};
  r.params.stop = {"x"};
  CHECK_THROWS_WITH(engine.add_request(r), Catch::Contains("stop strings need a tokenizer"));
  // A prompt that cannot fit the whole cache is reported instead of waiting forever.
  r.params.stop.clear();
  r.prompt = std::vector<int64_t>(40, 1);
  engine.add_request(r);
  CHECK_THROWS_WITH(engine.step(), Catch::Contains("KV cache too small"));
}

TEST_CASE("router: least outstanding engine, session affinity, abort-all") {
  model::ModelConfig c = tiny_config();
  model::Decoder model(c);
  model::init_random(c, model.params(), 11, 0.5f);
  EngineConfig config;
  config.num_blocks = 64;
  config.block_size = 4;
  Engine e0(model, config), e1(model, config);
  Router router({&e0, &e1});
  GenerateRequest r;
  r.prompt = {1, 2, 3};
  r.params.max_new_tokens = 5;
  const int64_t a = router.submit(r), b = router.submit(r), c2 = router.submit(r);
  CHECK(router.engine_of(a) == 0);
  CHECK(router.engine_of(b) == 1);
  CHECK(router.engine_of(c2) == 0);
  GenerateRequest s = r;
  s.session_id = "conversation-1";
  const int64_t s1 = router.submit(s);  // engine 1 has fewer outstanding
  CHECK(router.engine_of(s1) == 1);
  router.submit(r);
  router.submit(r);
  const int64_t s2 = router.submit(s);  // same session, same engine, whatever the load
  CHECK(router.engine_of(s2) == 1);
  std::map<int64_t, GenerateOutput> done;
  while (router.has_unfinished())
    for (auto& [id, out] : router.step()) done[id] = out;
  CHECK(done.size() == 7);
  for (int i = 0; i < 4; ++i) router.submit(r);
  router.step();
  router.abort_all();
  int aborted = 0;
  while (router.has_unfinished())
    for (auto& [id, out] : router.step()) aborted += out.finish_reason == "abort";
  CHECK(aborted == 4);
}

TEST_CASE("lpm admits the waiting sequence with the longest cached prefix first; fcfs keeps arrival order") {
  for (bool lpm : {false, true}) {
    BlockManager bm(16, 4);
    Scheduler scheduler(SchedulerConfig{1, 64, lpm}, bm);
    Sequence warm = make_seq(0, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    scheduler.add(&warm);
    std::vector<ScheduledChunk> chunks = scheduler.schedule();
    REQUIRE(chunks.size() == 1);
    warm.status = SequenceStatus::Finished;
    scheduler.after_step(chunks);  // its two full blocks are now cached
    REQUIRE(scheduler.empty());
    Sequence cold = make_seq(1, {20, 21, 22, 23, 24});
    Sequence hot = make_seq(2, {1, 2, 3, 4, 5, 6, 7, 8, 30});
    CHECK(bm.cached_prefix_tokens(cold) == 0);
    CHECK(bm.cached_prefix_tokens(hot) == 8);
    scheduler.add(&cold);
    scheduler.add(&hot);
    chunks = scheduler.schedule();  // max_running = 1: one of them is admitted
    REQUIRE(chunks.size() == 1);
    CHECK(chunks[0].seq == (lpm ? &hot : &cold));
    if (lpm) CHECK(chunks[0].start == 8);
  }
}

TEST_CASE("engine configuration from slime's --sglang-* and --rollout-* options") {
  model::ModelConfig c = tiny_config();
  Args args = parse_args({"--sglang-page-size", "8", "--sglang-max-total-tokens", "100",
                          "--sglang-chunked-prefill-size", "-1", "--rollout-max-context-len", "96",
                          "--sglang-schedule-policy", "lpm", "--rollout-temperature", "0.7", "--eval-temperature",
                          "0", "--rollout-max-response-len", "40", "--rollout-stop", "</answer>"}).args;
  EngineConfig e = engine_config_from_args(args, c, 1, {5});
  CHECK(e.block_size == 8);
  CHECK(e.num_blocks == 12);
  CHECK(e.max_context_len == 96);
  CHECK(e.max_batched_tokens == 96);
  CHECK(e.longest_prefix_first);
  CHECK(e.eos_token_ids == std::vector<int64_t>{5});
  SamplingParams train = sampling_params_from_args(args);
  SamplingParams eval = sampling_params_from_args(args, true);
  CHECK(train.temperature == Approx(0.7));
  CHECK(eval.temperature == 0);
  CHECK(train.max_new_tokens == 40);
  CHECK(train.stop == std::vector<std::string>{"</answer>"});
  // Without --sglang-max-total-tokens the cache is sized from the memory fraction; too small a fraction says so.
  Args tiny = parse_args({"--sglang-mem-fraction-static", "1e-12"}).args;
  CHECK_THROWS_WITH(engine_config_from_args(tiny, c, 1, {}), Catch::Contains("--sglang-mem-fraction-static"));
  CHECK(engine_config_from_args(parse_args({}).args, c, 1, {}).num_blocks > 0);
  CHECK_THROWS_WITH(parse_args({"--sglang-schedule-policy", "dfs-weight"}), Catch::Contains("--sglang-schedule-policy"));
  // The GPU engine's options: CUDA graphs up to a batch size (0 with --sglang-disable-cuda-graph), negative refused.
  EngineConfig gpu = engine_config_from_args(parse_args({"--backend", "cuda", "--sglang-cuda-graph-max-bs", "64"}).args,
                                             c, 1, {});
  CHECK(gpu.backend == EngineBackend::Cuda);
  CHECK(gpu.cuda_graph_max_bs == 64);
  CHECK(gpu.num_blocks == 0);  // the CUDA runner sizes the cache from the device's memory
  CHECK(engine_config_from_args(parse_args({"--sglang-disable-cuda-graph"}).args, c, 1, {}).cuda_graph_max_bs == 0);
  CHECK_THROWS_WITH(engine_config_from_args(parse_args({"--sglang-cuda-graph-max-bs", "-1"}).args, c, 1, {}),
                    Catch::Contains("--sglang-cuda-graph-max-bs"));
}

TEST_CASE("the n samples of a prompt, submitted together, prefill it once and sample like alone") {
  model::ModelConfig c = tiny_config();
  model::Decoder model(c);
  model::init_random(c, model.params(), 11, 0.6f);
  Rng rng(12);
  const std::vector<int64_t> prompt = random_prompt(rng, 21, c.vocab_size);  // 5 full blocks before the last token
  EngineConfig config;
  config.num_blocks = 64;
  config.block_size = 4;
  config.max_batched_tokens = 12;  // the prompt takes two chunks: the copies wait for both
  Engine engine(model, config);
  std::vector<GenerateRequest> requests(4);
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].prompt = prompt;
    requests[i].params.temperature = 1.0f;
    requests[i].params.max_new_tokens = 5;
    requests[i].params.seed = i;
  }
  const std::vector<GenerateOutput> together = engine.generate(requests);
  CHECK(engine.stats().prefill_tokens == 21 + 3 * 1);  // one prefill, then each copy computes its last token
  for (size_t i = 1; i < together.size(); ++i) CHECK(together[i].cached_tokens == 20);
  for (size_t i = 0; i < requests.size(); ++i) {
    Engine alone(model, config);
    const GenerateOutput solo = alone.generate({requests[i]})[0];
    CHECK(together[i].tokens == solo.tokens);
  }
}

TEST_CASE("weights change with requests in flight: none is dropped, and no prefix of the old weights is shared") {
  model::ModelConfig c = tiny_config();
  model::Decoder model(c);
  model::init_random(c, model.params(), 3, 0.6f);
  Rng rng(9);
  const std::vector<int64_t> prompt = random_prompt(rng, 13, c.vocab_size);
  auto request = [&] {
    GenerateRequest r;
    r.prompt = prompt;
    r.params.temperature = 0;
    r.params.max_new_tokens = 10;
    return r;
  };
  EngineConfig config;
  config.num_blocks = 64;
  config.block_size = 4;
  config.max_running = 8;
  config.max_batched_tokens = 64;
  Engine engine(model, config);
  for (int i = 0; i < 3; ++i) engine.add_request(request());
  std::vector<GenerateOutput> done;
  for (int s = 0; s < 4; ++s)
    for (GenerateOutput& o : engine.step()) done.push_back(o);
  REQUIRE(done.empty());
  REQUIRE(engine.num_unfinished() == 3);

  // New weights while the three run (SGLang: pause, update weights, continue).
  model::init_random(c, model.params(), 77, 0.6f);
  engine.reload_weights();
  engine.set_weight_version(1);
  // The same prompt arriving now finds no cached prefix: those K/V belong to the old weights.
  const int64_t late = engine.add_request(request());
  while (engine.has_unfinished())
    for (GenerateOutput& o : engine.step()) done.push_back(o);
  REQUIRE(done.size() == 4);
  model::SamplingParams greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 10;
  const model::Generation fresh = model::generate_reference(model, prompt, greedy);
  for (const GenerateOutput& o : done) {
    INFO("request " << o.id);
    CHECK(o.finish_reason == "length");
    CHECK(o.tokens.size() == 10);
    CHECK(o.weight_version == 1);
    if (o.id != late) continue;
    CHECK(o.cached_tokens == 0);
    CHECK(o.tokens == fresh.tokens);  // computed under the new weights alone
  }
  // Prefixes computed after the change are shared again.
  const std::vector<GenerateOutput> again = engine.generate({request()});
  CHECK(again[0].cached_tokens > 0);
  CHECK(again[0].tokens == fresh.tokens);
}
