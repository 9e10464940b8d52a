// Tokenizer benchmark (not a test): load time of a tokenizer.json, then encode and decode throughput over a corpus
// of files, on one thread. Encode is measured cold (a fresh tokenizer whose word cache fills during the pass, as in a
// single pass over new text) and warm (later passes). regression/tokenizer/bench.sh runs it next to the
// @lenml/tokenizers peer on the same corpus and prints the ratio.
// Usage: tokenizer_bench TOKENIZER_JSON CORPUS_FILE... [--passes N]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/io.h"
#include "core/timer.h"
#include "tokenizer/tokenizer.h"

using slime::tokenizer::Tokenizer;

int main(int argc, char** argv) {
  try {
    std::vector<std::string> files;
    int passes = 3;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--passes" && i + 1 < argc) {
        passes = std::atoi(argv[++i]);
      } else {
        files.push_back(arg);
      }
    }
    SLIME_CHECK(files.size() >= 2 && passes >= 1, "usage: tokenizer_bench TOKENIZER_JSON CORPUS_FILE... [--passes N]");
    // Each corpus file is one document, encoded in chunks of at most 64 KiB cut at line ends (valid UTF-8 cuts).
    std::vector<std::string> chunks;
    size_t corpus_bytes = 0;
    for (size_t f = 1; f < files.size(); ++f) {
      const std::string text = slime::read_text_file(files[f]);
      corpus_bytes += text.size();
      for (size_t begin = 0; begin < text.size();) {
        size_t end = std::min(text.size(), begin + 65536);
        if (end < text.size()) {
          const size_t newline = text.rfind('\n', end);
          if (newline != std::string::npos && newline > begin) end = newline + 1;
        }
        chunks.push_back(text.substr(begin, end - begin));
        begin = end;
      }
    }
    const double megabytes = static_cast<double>(corpus_bytes) / 1e6;

    slime::Stopwatch load_clock;
    const Tokenizer tokenizer = Tokenizer::from_file(files[0]);
    const double load_seconds = load_clock.seconds();

    std::vector<std::vector<int32_t>> encoded(chunks.size());
    slime::Stopwatch cold_clock;
    size_t tokens = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
      encoded[i] = tokenizer.encode(chunks[i], false);
      tokens += encoded[i].size();
    }
    const double cold_seconds = cold_clock.seconds();
    slime::Stopwatch warm_clock;
    for (int pass = 0; pass < passes; ++pass)
      for (size_t i = 0; i < chunks.size(); ++i) encoded[i] = tokenizer.encode(chunks[i], false);
    const double warm_seconds = warm_clock.seconds() / passes;
    slime::Stopwatch decode_clock;
    size_t decoded_bytes = 0;
    for (int pass = 0; pass < passes; ++pass)
      for (const auto& ids : encoded) decoded_bytes += tokenizer.decode(ids).size();
    const double decode_seconds = decode_clock.seconds() / passes;

    std::printf("tokenizer   %s\n", files[0].c_str());
    std::printf("corpus      %zu files, %.2f MB, %zu tokens (%.2f bytes/token)\n", files.size() - 1, megabytes, tokens,
                static_cast<double>(corpus_bytes) / static_cast<double>(tokens));
    std::printf("load        %.3f s\n", load_seconds);
    std::printf("encode cold %.2f MB/s (%.3f s)\n", megabytes / cold_seconds, cold_seconds);
    std::printf("encode warm %.2f MB/s (%.3f s per pass, %d passes)\n", megabytes / warm_seconds, warm_seconds, passes);
    std::printf("decode      %.2f MB/s of text (%.3f s per pass)\n",
                static_cast<double>(decoded_bytes) / passes / 1e6 / decode_seconds, decode_seconds);
    std::printf("RESULT {\"load_s\": %.4f, \"encode_cold_mb_s\": %.3f, \"encode_warm_mb_s\": %.3f, "
                "\"decode_mb_s\": %.3f, \"tokens\": %zu, \"bytes\": %zu}\n",
                load_seconds, megabytes / cold_seconds, megabytes / warm_seconds,
                static_cast<double>(decoded_bytes) / passes / 1e6 / decode_seconds, tokens, corpus_bytes);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", error.what());
    return 1;
  }
}
