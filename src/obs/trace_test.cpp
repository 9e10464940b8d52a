// TraceWriter / TraceSpan / merge_traces: the JSON parses back with the expected events, spans nest, a null
// writer does nothing, threads get their own tracks, unclosed and half-written traces merge, bad inputs fail.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "obs/obs_test_util.h"
#include "obs/trace.h"

using namespace slime::obs;
using Catch::Matchers::Contains;
using nlohmann::json;

using slime::obs::testing::TempDir;

namespace {

std::vector<json> events_with(const json& trace, const std::string& ph, const std::string& name = "") {
  std::vector<json> found;
  for (const auto& event : trace)
    if (event.at("ph") == ph && (name.empty() || event.at("name") == name)) found.push_back(event);
  return found;
}

void busy_wait_us(int64_t us) {
  const int64_t start = trace_now_us();
  while (trace_now_us() - start < us) {
  }
}

}  // namespace

TEST_CASE("trace clock and thread ids", "[obs]") {
  const int64_t a = trace_now_us();
  busy_wait_us(50);
  CHECK(trace_now_us() >= a + 50);
  CHECK(trace_thread_id() == trace_thread_id());
  int64_t other = -1;
  std::thread([&] { other = trace_thread_id(); }).join();
  CHECK(other != trace_thread_id());
}

TEST_CASE("TraceWriter: metadata, complete, instant and counter events parse back", "[obs]") {
  const TempDir temp("trace_events");
  const std::string dir = temp.path + "/traces";
  TraceWriter writer(dir, 2, "rank 2 (rollout)");
  CHECK(writer.path() == dir + "/trace-rank2.json");
  writer.set_thread_name("main");
  writer.complete("train", "step \"quoted\"", 100, 25, {{"step", 4}, {"loss", 0.25}}, 7);
  writer.instant("sync", "weights updated", {{"version", 3}}, 'g', 130);
  writer.instant("misc", "no args");
  writer.counter("tokens", {{"generated", 1024}, {"prompt", 512}}, 140);
  CHECK_THROWS_WITH(writer.complete("train", "bad", 0, 1, json::array({1})), Contains("args must be a JSON object"));
  CHECK_THROWS_WITH(writer.counter("bad", {{"x", "text"}}), Contains("expected a number"));
  CHECK_THROWS_WITH(writer.instant("c", "bad", nullptr, 'x'), Contains("scope"));
  writer.close();
  writer.close();
  CHECK_THROWS_WITH(writer.instant("c", "late"), Contains("already closed"));

  const std::string text = slime::read_text_file(writer.path());
  CHECK(text.substr(0, 2) == "[\n");
  CHECK(text.substr(text.size() - 3) == "\n]\n");
  const json trace = json::parse(text);
  REQUIRE(trace.is_array());
  REQUIRE(trace.size() == 7);

  const auto process_name = events_with(trace, "M", "process_name");
  REQUIRE(process_name.size() == 1);
  CHECK(process_name[0]["pid"] == 2);
  CHECK(process_name[0]["args"]["name"] == "rank 2 (rollout)");
  CHECK(events_with(trace, "M", "process_sort_index")[0]["args"]["sort_index"] == 2);
  const auto thread_name = events_with(trace, "M", "thread_name");
  REQUIRE(thread_name.size() == 1);
  CHECK(thread_name[0]["tid"] == trace_thread_id());
  CHECK(thread_name[0]["args"]["name"] == "main");

  const auto complete = events_with(trace, "X");
  REQUIRE(complete.size() == 1);
  CHECK(complete[0] == json{{"name", "step \"quoted\""}, {"cat", "train"}, {"ph", "X"}, {"ts", 100}, {"dur", 25},
                            {"pid", 2}, {"tid", 7}, {"args", {{"step", 4}, {"loss", 0.25}}}});
  const auto instant = events_with(trace, "i");
  REQUIRE(instant.size() == 2);
  CHECK(instant[0] == json{{"name", "weights updated"}, {"cat", "sync"}, {"ph", "i"}, {"ts", 130}, {"pid", 2},
                           {"tid", trace_thread_id()}, {"s", "g"}, {"args", {{"version", 3}}}});
  CHECK(!instant[1].contains("args"));
  CHECK(instant[1]["s"] == "t");
  const auto counter = events_with(trace, "C");
  REQUIRE(counter.size() == 1);
  CHECK(counter[0] == json{{"name", "tokens"}, {"ph", "C"}, {"ts", 140}, {"pid", 2},
                           {"args", {{"generated", 1024}, {"prompt", 512}}}});
  // One event per line: the viewers do not need it, merge_traces' crash recovery does.
  CHECK(std::count(text.begin(), text.end(), '\n') == 1 + 7 + 1);
}

TEST_CASE("TraceSpan: nesting, args, end()", "[obs]") {
  const TempDir temp("trace_spans");
  const std::string dir = temp.path;
  TraceWriter writer(dir, 0, "rank 0 (trainer)");
  {
    TraceSpan outer(&writer, "train", "step", {{"step", 1}});
    busy_wait_us(20);
    {
      TraceSpan inner(&writer, "train", "forward");
      inner.arg("micro_batch", 0);
      busy_wait_us(30);
    }
    TraceSpan ended(&writer, "train", "optimizer");
    ended.end();
    ended.end();  // once only
    busy_wait_us(20);
  }
  writer.close();
  const json trace = json::parse(slime::read_text_file(writer.path()));
  const auto outer = events_with(trace, "X", "step");
  const auto inner = events_with(trace, "X", "forward");
  REQUIRE(outer.size() == 1);
  REQUIRE(inner.size() == 1);
  REQUIRE(events_with(trace, "X", "optimizer").size() == 1);
  const int64_t outer_ts = outer[0]["ts"], outer_dur = outer[0]["dur"];
  const int64_t inner_ts = inner[0]["ts"], inner_dur = inner[0]["dur"];
  CHECK(outer[0]["args"]["step"] == 1);
  CHECK(inner[0]["args"]["micro_batch"] == 0);
  CHECK(inner_dur >= 30);
  CHECK(outer_dur >= 70);
  CHECK(inner_ts >= outer_ts + 20);
  CHECK(inner_ts + inner_dur <= outer_ts + outer_dur);
  CHECK(inner[0]["tid"] == outer[0]["tid"]);
  // The inner span ends first, so it is written first; viewers nest by time, not by order.
  CHECK(trace[2]["name"] == "forward");
}

TEST_CASE("TraceSpan: a null writer is a no-op", "[obs]") {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000000; ++i) {
    TraceSpan span(nullptr, "train", "step");
    span.arg("i", i);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 0.5);  // a million disabled spans; in practice well under a millisecond with -O3
}

TEST_CASE("TraceWriter: spans from several threads", "[obs]") {
  const TempDir temp("trace_threads");
  const std::string dir = temp.path;
  TraceWriter writer(dir, 1, "rank 1 (trainer)");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&writer, t] {
      writer.set_thread_name("worker " + std::to_string(t));
      for (int i = 0; i < 200; ++i) TraceSpan span(&writer, "work", "item", {{"i", i}});
    });
  for (auto& thread : threads) thread.join();
  writer.close();
  const json trace = json::parse(slime::read_text_file(writer.path()));
  const auto spans = events_with(trace, "X", "item");
  CHECK(spans.size() == 800);
  std::set<int64_t> tids;
  for (const auto& span : spans) tids.insert(span["tid"].get<int64_t>());
  CHECK(tids.size() == 4);
  CHECK(events_with(trace, "M", "thread_name").size() == 4);
}

TEST_CASE("merge_traces: closed, unclosed and half-written inputs", "[obs]") {
  const TempDir temp("trace_merge");
  const std::string dir = temp.path;
  {
    TraceWriter rank0(dir, 0, "rank 0 (trainer)");
    rank0.complete("train", "step", 10, 5);
  }
  // Rank 1 "crashes": flushed but never closed (no final "]").
  std::string unclosed;
  {
    TraceWriter rank1(dir, 1, "rank 1 (rollout)");
    rank1.complete("rollout", "generate", 12, 8);
    rank1.flush();
    unclosed = slime::read_text_file(rank1.path());
  }
  CHECK(unclosed.back() == '}');
  CHECK_THROWS(json::parse(unclosed));
  const std::string rank1_path = dir + "/crashed-rank1.json";
  slime::write_file_atomic(rank1_path, unclosed);
  // Rank 2 died mid-write: its last line is half an event.
  const std::string rank2_path = dir + "/crashed-rank2.json";
  slime::write_file_atomic(rank2_path,
                           "[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":2,\"tid\":0,\"args\":{\"name\":\"r2\"}},\n"
                           "{\"name\":\"ok\",\"ph\":\"X\",\"ts\":1,\"dur\":2,\"pid\":2,\"tid\":0},\n"
                           "{\"name\":\"cut\",\"ph\":\"X\",\"args\":{\"l\":[1,2]");

  const std::string merged_path = dir + "/merged.json";
  const MergeSummary summary = merge_traces({dir + "/trace-rank0.json", rank1_path, rank2_path}, merged_path);
  CHECK(summary.events == 3 + 3 + 2);
  CHECK(summary.unterminated == std::vector<std::string>{rank1_path, rank2_path});
  CHECK(summary.partial_dropped == std::vector<std::string>{rank2_path});
  const json merged = json::parse(slime::read_text_file(merged_path));
  REQUIRE(merged.size() == 8);
  std::set<int64_t> pids;
  for (const auto& event : merged) pids.insert(event["pid"].get<int64_t>());
  CHECK(pids == std::set<int64_t>{0, 1, 2});
  CHECK(events_with(merged, "X", "step")[0]["ts"] == 10);
  CHECK(events_with(merged, "X", "generate")[0]["dur"] == 8);
  CHECK(events_with(merged, "X", "cut").empty());
  // Field order survives the merge (ordered JSON): name first, as TraceWriter writes it.
  const std::string text = slime::read_text_file(merged_path);
  CHECK(text.find("{\"name\":\"step\",\"cat\":\"train\",\"ph\":\"X\",\"ts\":10,\"dur\":5,\"pid\":0") !=
        std::string::npos);
}

TEST_CASE("merge_traces and TraceWriter: errors name the file", "[obs]") {
  const TempDir temp("trace_errors");
  const std::string dir = temp.path;
  const std::string good = dir + "/good.json";
  slime::write_file_atomic(good, "[{\"name\":\"a\",\"ph\":\"i\",\"ts\":0,\"pid\":0,\"tid\":0}]");
  const std::string out = dir + "/out.json";
  CHECK_THROWS_WITH(merge_traces({good, dir + "/missing.json"}, out),
                    Contains(dir + "/missing.json") && Contains("no such file"));
  CHECK_FALSE(slime::path_exists(out));  // nothing half-written is left behind
  CHECK_FALSE(slime::path_exists(out + ".tmp." + std::to_string(::getpid())));

  const std::string object = dir + "/object.json";
  slime::write_file_atomic(object, "{\"traceEvents\":[]}");
  CHECK_THROWS_WITH(merge_traces({object}, out), Contains(object) && Contains("JSON Array format"));
  const std::string numbers = dir + "/numbers.json";
  slime::write_file_atomic(numbers, "[1, 2]");
  CHECK_THROWS_WITH(merge_traces({numbers}, out), Contains(numbers) && Contains("event 0: expected a JSON object"));
  const std::string garbage = dir + "/garbage.json";
  slime::write_file_atomic(garbage, "[\n{\"name\":\"a\"},\n{oops},\n{\"name\":\"b\"}\n]\n");
  CHECK_THROWS_WITH(merge_traces({garbage}, out), Contains(garbage) && Contains("malformed trace JSON"));
  const std::string empty = dir + "/empty.json";
  slime::write_file_atomic(empty, "  \n");
  CHECK_THROWS_WITH(merge_traces({empty}, out), Contains(empty) && Contains("empty file"));
  CHECK_THROWS_WITH(merge_traces({}, out), Contains("no input traces"));

  const std::string blocker = dir + "/not_a_directory";
  slime::write_file_atomic(blocker, "x");
  CHECK_THROWS_WITH(TraceWriter(blocker + "/traces", 0, "rank 0"), Contains(blocker));
  CHECK_THROWS_WITH(merge_traces({good}, blocker + "/merged.json"), Contains(blocker));

  // A single good input merges to itself (events re-serialized one per line).
  CHECK(merge_traces({good}, out).events == 1);
  CHECK(json::parse(slime::read_text_file(out)).size() == 1);
}
