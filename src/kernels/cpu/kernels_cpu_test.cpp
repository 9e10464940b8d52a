// Finite-difference gradient checks of every CPU op (in float64), plus adjoint checks of the layout ops and a
// comparison of the blocked attention against a direct O(L^2) reference on sequences longer than one block.
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/ops.h"

using namespace slime;
using namespace slime::cpu;
using Vector = std::vector<double>;

namespace {

Vector random_vector(size_t n, Rng& rng, double scale = 1.0) {
  Vector v(n);
  for (double& x : v) x = scale * rng.normal();
  return v;
}

double dot(const Vector& a, const Vector& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic d loss / d x against central differences, element by element.
void check_gradient(const char* what, Vector& x, const Vector& analytic, const std::function<double()>& loss) {
  REQUIRE(analytic.size() == x.size());
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    const double h = 1e-6 * std::max(1.0, std::abs(saved));
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double err = std::abs(numeric - analytic[i]) / std::max(1.0, std::abs(numeric));
    worst = std::max(worst, err);
  }
  INFO(what << ": worst relative error " << worst);
  CHECK(worst < 1e-6);
}

}  // namespace

TEST_CASE("linear: gradients of x, W and bias") {
  Rng rng(1);
  const int64_t T = 5, in = 7, out = 4;
  Vector x = random_vector(T * in, rng), w = random_vector(out * in, rng), b = random_vector(out, rng);
  Vector proj = random_vector(T * out, rng);
  auto loss = [&] {
    Vector y(T * out);
    linear_forward<double>(x.data(), w.data(), b.data(), y.data(), T, in, out);
    return dot(y, proj);
  };
  Vector dx(T * in), dw(out * in, 0.0), db(out, 0.0);
  linear_backward<double>(x.data(), w.data(), proj.data(), dx.data(), dw.data(), db.data(), T, in, out);
  check_gradient("linear dx", x, dx, loss);
  check_gradient("linear dW", w, dw, loss);
  check_gradient("linear db", b, db, loss);
}

TEST_CASE("rmsnorm: gradients of x and weight") {
  Rng rng(2);
  const int64_t R = 6, n = 9;
  Vector x = random_vector(R * n, rng), w = random_vector(n, rng), proj = random_vector(R * n, rng);
  const double eps = 1e-5;
  auto loss = [&] {
    Vector y(R * n), rstd(R);
    rmsnorm_forward<double>(x.data(), w.data(), eps, y.data(), rstd.data(), R, n);
    return dot(y, proj);
  };
  Vector y(R * n), rstd(R), dx(R * n), dw(n, 0.0);
  rmsnorm_forward<double>(x.data(), w.data(), eps, y.data(), rstd.data(), R, n);
  for (int64_t r = 0; r < R; ++r) {
    double ms = 0;
    for (int64_t j = 0; j < n; ++j) ms += x[r * n + j] * x[r * n + j];
    CHECK(rstd[r] == Approx(1.0 / std::sqrt(ms / n + eps)).epsilon(1e-12));
  }
  rmsnorm_backward<double>(x.data(), w.data(), rstd.data(), proj.data(), dx.data(), dw.data(), R, n);
  check_gradient("rmsnorm dx", x, dx, loss);
  check_gradient("rmsnorm dw", w, dw, loss);
}

TEST_CASE("rope: rotation matches the closed form and its gradient is the inverse rotation") {
  Rng rng(3);
  const int64_t heads = 3, T = 4, d = 8, half = d / 2;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, 2.0f * i / d);
  std::vector<int64_t> pos = {0, 1, 5, 17};
  Vector cos(T * half), sin(T * half);
  rope_tables<double>(inv_freq.data(), half, pos.data(), T, cos.data(), sin.data());
  Vector x = random_vector(heads * T * d, rng), proj = random_vector(heads * T * d, rng);
  Vector y = x;
  rope_apply<double>(y.data(), cos.data(), sin.data(), heads, T, d, false);
  // closed form for one element: head 1, token 2, pair 1
  {
    int64_t base = (1 * T + 2) * d;
    double angle = static_cast<double>(static_cast<float>(pos[2]) * inv_freq[1]);
    CHECK(y[base + 1] == Approx(x[base + 1] * std::cos(angle) - x[base + 1 + half] * std::sin(angle)));
    CHECK(y[base + 1 + half] == Approx(x[base + 1 + half] * std::cos(angle) + x[base + 1] * std::sin(angle)));
  }
  auto loss = [&] {
    Vector z = x;
    rope_apply<double>(z.data(), cos.data(), sin.data(), heads, T, d, false);
    return dot(z, proj);
  };
  Vector dx = proj;
  rope_apply<double>(dx.data(), cos.data(), sin.data(), heads, T, d, true);
  check_gradient("rope dx", x, dx, loss);
}

TEST_CASE("layout ops are adjoint pairs") {
  Rng rng(4);
  const int64_t T = 5, H = 6, G = 2, d = 4;
  Vector qkv = random_vector(T * (H + 2 * G) * d, rng);
  Vector q(H * T * d), k(G * T * d), v(G * T * d);
  qkv_to_heads<double>(qkv.data(), q.data(), k.data(), v.data(), T, H, G, d);
  // Group 1's second query head (h = 4) sits at slot 1 of group 1 in the fused row.
  CHECK(q[(4 * T + 3) * d + 2] == qkv[3 * (H + 2 * G) * d + (1 * (H / G + 2) + 1) * d + 2]);
  CHECK(v[(1 * T + 0) * d + 1] == qkv[(1 * (H / G + 2) + H / G + 1) * d + 1]);
  Vector back(qkv.size());
  heads_to_qkv<double>(q.data(), k.data(), v.data(), back.data(), T, H, G, d);
  CHECK(back == qkv);
  Vector y(T * H * d), x = random_vector(H * T * d, rng), x2(H * T * d);
  heads_to_tokens<double>(x.data(), y.data(), T, H, d);
  tokens_to_heads<double>(y.data(), x2.data(), T, H, d);
  CHECK(x2 == x);
  CHECK(y[(2 * H + 5) * d + 3] == x[(5 * T + 2) * d + 3]);
}

TEST_CASE("attention: gradients of q, k, v over packed sequences with GQA") {
  Rng rng(5);
  const std::vector<int64_t> cu = {0, 5, 6, 14};  // lengths 5, 1, 8
  const AttentionShape shape{14, 4, 2, 3, 3};
  const int64_t n_q = shape.heads * shape.tokens * shape.head_dim;
  const int64_t n_kv = shape.groups * shape.tokens * shape.head_dim;
  const double scale = 1.0 / std::sqrt(3.0);
  Vector q = random_vector(n_q, rng), k = random_vector(n_kv, rng), v = random_vector(n_kv, rng);
  Vector proj = random_vector(n_q, rng);
  auto loss = [&] {
    Vector out(n_q), lse(shape.heads * shape.tokens);
    attention_forward<double>(shape, cu.data(), q.data(), k.data(), v.data(), scale, out.data(), lse.data());
    return dot(out, proj);
  };
  Vector out(n_q), lse(shape.heads * shape.tokens), dq(n_q), dk(n_kv), dv(n_kv);
  attention_forward<double>(shape, cu.data(), q.data(), k.data(), v.data(), scale, out.data(), lse.data());
  // The single-token sequence attends only to itself: its output is its own value vector.
  for (int64_t j = 0; j < shape.head_dim; ++j) CHECK(out[(0 * shape.tokens + 5) * 3 + j] == Approx(v[5 * 3 + j]));
  attention_backward<double>(shape, cu.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), proj.data(),
                             scale, dq.data(), dk.data(), dv.data());
  check_gradient("attention dq", q, dq, loss);
  check_gradient("attention dk", k, dk, loss);
  check_gradient("attention dv", v, dv, loss);
}

TEST_CASE("attention: blocked kernel equals the direct formula on sequences longer than a block") {
  Rng rng(6);
  const std::vector<int64_t> cu = {0, 300, 301, 900};
  const AttentionShape shape{900, 2, 1, 8, 3};
  const int64_t n_q = shape.heads * shape.tokens * shape.head_dim;
  const int64_t n_kv = shape.groups * shape.tokens * shape.head_dim;
  const double scale = 0.3;
  Vector q = random_vector(n_q, rng), k = random_vector(n_kv, rng), v = random_vector(n_kv, rng);
  Vector dout = random_vector(n_q, rng);
  Vector out(n_q), lse(shape.heads * shape.tokens), dq(n_q), dk(n_kv), dv(n_kv);
  attention_forward<double>(shape, cu.data(), q.data(), k.data(), v.data(), scale, out.data(), lse.data());
  attention_backward<double>(shape, cu.data(), q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(),
                             scale, dq.data(), dk.data(), dv.data());
  // Direct reference, one (head, sequence) at a time.
  const int64_t T = shape.tokens, d = shape.head_dim;
  Vector ref_out(n_q, 0.0), ref_dq(n_q, 0.0), ref_dk(n_kv, 0.0), ref_dv(n_kv, 0.0);
  for (int64_t h = 0; h < shape.heads; ++h) {
    for (size_t b = 0; b + 1 < cu.size(); ++b) {
      for (int64_t i = cu[b]; i < cu[b + 1]; ++i) {
        std::vector<double> p(i - cu[b] + 1);
        double m = -1e300, sum = 0;
        for (int64_t j = cu[b]; j <= i; ++j) {
          double sc = 0;
          for (int64_t c = 0; c < d; ++c) sc += q[(h * T + i) * d + c] * k[j * d + c];
          p[j - cu[b]] = sc * scale;
          m = std::max(m, p[j - cu[b]]);
        }
        for (double& x : p) sum += (x = std::exp(x - m));
        for (double& x : p) x /= sum;
        double delta = 0;
        for (int64_t c = 0; c < d; ++c) {
          double o = 0;
          for (int64_t j = cu[b]; j <= i; ++j) o += p[j - cu[b]] * v[j * d + c];
          ref_out[(h * T + i) * d + c] = o;
          delta += o * dout[(h * T + i) * d + c];
        }
        for (int64_t j = cu[b]; j <= i; ++j) {
          double dp = 0;
          for (int64_t c = 0; c < d; ++c) dp += dout[(h * T + i) * d + c] * v[j * d + c];
          double ds = p[j - cu[b]] * (dp - delta);
          for (int64_t c = 0; c < d; ++c) {
            ref_dv[j * d + c] += p[j - cu[b]] * dout[(h * T + i) * d + c];
            ref_dq[(h * T + i) * d + c] += scale * ds * k[j * d + c];
            ref_dk[j * d + c] += scale * ds * q[(h * T + i) * d + c];
          }
        }
      }
    }
  }
  auto max_diff = [](const Vector& a, const Vector& b) {
    double m = 0;
    for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
    return m;
  };
  CHECK(max_diff(out, ref_out) < 1e-12);
  CHECK(max_diff(dq, ref_dq) < 1e-11);
  CHECK(max_diff(dk, ref_dk) < 1e-11);
  CHECK(max_diff(dv, ref_dv) < 1e-11);
}

TEST_CASE("swiglu: gradient of the fused gate/up input") {
  Rng rng(7);
  const int64_t T = 4, F = 6;
  Vector gu = random_vector(T * 2 * F, rng, 2.0), proj = random_vector(T * F, rng);
  auto loss = [&] {
    Vector out(T * F);
    swiglu_forward<double>(gu.data(), out.data(), T, F);
    return dot(out, proj);
  };
  Vector dgu(T * 2 * F);
  swiglu_backward<double>(gu.data(), proj.data(), dgu.data(), T, F);
  check_gradient("swiglu", gu, dgu, loss);
}

TEST_CASE("embedding: gradient accumulates repeated ids") {
  Rng rng(8);
  const int64_t V = 5, h = 3, T = 6;
  std::vector<int64_t> ids = {1, 3, 1, 0, 4, 1};
  Vector table = random_vector(V * h, rng), proj = random_vector(T * h, rng);
  auto loss = [&] {
    Vector out(T * h);
    embedding_forward<double>(ids.data(), table.data(), out.data(), T, h);
    return dot(out, proj);
  };
  Vector dtable(V * h, 0.0);
  embedding_backward<double>(ids.data(), proj.data(), dtable.data(), T, h);
  check_gradient("embedding", table, dtable, loss);
  for (int64_t j = 0; j < h; ++j) CHECK(dtable[2 * h + j] == 0.0);  // id 2 never appears
}

TEST_CASE("logprob and entropy: values and gradients, padding columns excluded") {
  Rng rng(9);
  const LogitsShape shape{5, 12, 10, 0};  // 2 padding columns
  std::vector<int64_t> targets = {0, 9, 3, 3, 7};
  Vector logits = random_vector(shape.tokens * shape.padded, rng, 3.0);
  for (int64_t t = 0; t < shape.tokens; ++t) logits[t * shape.padded + 10] = 50.0;  // padding must not count
  const double inv_temp = 1.0 / 0.7;
  Vector w_lp = random_vector(shape.tokens, rng), w_ent = random_vector(shape.tokens, rng);
  Vector lp(shape.tokens), ent(shape.tokens), lse(shape.tokens);
  logprob_entropy_forward<double>(shape, logits.data(), targets.data(), inv_temp, lp.data(), ent.data(), lse.data());
  for (int64_t t = 0; t < shape.tokens; ++t) {
    double m = -1e300, s = 0, h = 0;
    for (int64_t j = 0; j < shape.vocab; ++j) m = std::max(m, logits[t * shape.padded + j] * inv_temp);
    for (int64_t j = 0; j < shape.vocab; ++j) s += std::exp(logits[t * shape.padded + j] * inv_temp - m);
    double log_z = m + std::log(s);
    for (int64_t j = 0; j < shape.vocab; ++j) {
      double logp = logits[t * shape.padded + j] * inv_temp - log_z;
      h -= std::exp(logp) * logp;
    }
    CHECK(lp[t] == Approx(logits[t * shape.padded + targets[t]] * inv_temp - log_z).epsilon(1e-12));
    CHECK(ent[t] == Approx(h).epsilon(1e-10));
  }
  auto loss = [&] {
    Vector a(shape.tokens), b(shape.tokens), c(shape.tokens);
    logprob_entropy_forward<double>(shape, logits.data(), targets.data(), inv_temp, a.data(), b.data(), c.data());
    return dot(a, w_lp) + dot(b, w_ent);
  };
  Vector dlogits(logits.size()), mean_z(shape.tokens);
  logprob_entropy_forward<double>(shape, logits.data(), targets.data(), inv_temp, lp.data(), ent.data(), lse.data(),
                                  mean_z.data());
  logprob_entropy_backward<double>(shape, logits.data(), targets.data(), inv_temp, lse.data(), mean_z.data(),
                                   w_lp.data(), w_ent.data(), dlogits.data());
  check_gradient("logprob+entropy", logits, dlogits, loss);
  for (int64_t t = 0; t < shape.tokens; ++t) CHECK(dlogits[t * shape.padded + 11] == 0.0);

  // Vocab-parallel: two "ranks" holding columns [0, 6) and [6, 12) give the same results once reduced.
  const int64_t half = 6;
  Vector left(shape.tokens * half), right(shape.tokens * half);
  for (int64_t t = 0; t < shape.tokens; ++t)
    for (int64_t j = 0; j < half; ++j) {
      left[t * half + j] = logits[t * shape.padded + j];
      right[t * half + j] = logits[t * shape.padded + half + j];
    }
  const LogitsShape s0{shape.tokens, half, shape.vocab, 0}, s1{shape.tokens, half, shape.vocab, half};
  CHECK(s1.valid_columns() == 4);
  Vector m0(shape.tokens), m1(shape.tokens);
  logprob_partial_max<double>(s0, left.data(), inv_temp, m0.data());
  logprob_partial_max<double>(s1, right.data(), inv_temp, m1.data());
  Vector gmax(shape.tokens);
  for (int64_t t = 0; t < shape.tokens; ++t) gmax[t] = std::max(m0[t], m1[t]);
  std::vector<double> se0(shape.tokens), sez0(shape.tokens), tz0(shape.tokens), se1(shape.tokens),
      sez1(shape.tokens), tz1(shape.tokens);
  logprob_partial_sums<double>(s0, left.data(), targets.data(), inv_temp, gmax.data(), se0.data(), sez0.data(),
                               tz0.data());
  logprob_partial_sums<double>(s1, right.data(), targets.data(), inv_temp, gmax.data(), se1.data(), sez1.data(),
                               tz1.data());
  for (int64_t t = 0; t < shape.tokens; ++t) {
    double l = gmax[t] + std::log(se0[t] + se1[t]);
    CHECK(tz0[t] + tz1[t] - l == Approx(lp[t]).epsilon(1e-12));
    CHECK(l - (sez0[t] + sez1[t]) / (se0[t] + se1[t]) == Approx(ent[t]).epsilon(1e-12));
  }
  Vector d0(shape.tokens * half), d1(shape.tokens * half);
  logprob_entropy_backward<double>(s0, left.data(), targets.data(), inv_temp, lse.data(), mean_z.data(), w_lp.data(),
                                   w_ent.data(), d0.data());
  logprob_entropy_backward<double>(s1, right.data(), targets.data(), inv_temp, lse.data(), mean_z.data(),
                                   w_lp.data(), w_ent.data(), d1.data());
  for (int64_t t = 0; t < shape.tokens; ++t)
    for (int64_t j = 0; j < half; ++j) {
      CHECK(d0[t * half + j] == Approx(dlogits[t * shape.padded + j]).margin(1e-14));
      CHECK(d1[t * half + j] == Approx(dlogits[t * shape.padded + half + j]).margin(1e-14));
    }
}

TEST_CASE("gemm: transposes and accumulation agree with a direct product") {
  Rng rng(10);
  const int64_t M = 7, N = 5, K = 3;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      Vector a = random_vector(M * K, rng), b = random_vector(K * N, rng), c = random_vector(M * N, rng);
      Vector expect = c;
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double s = 0;
          for (int64_t p = 0; p < K; ++p) s += (ta ? a[p * M + i] : a[i * K + p]) * (tb ? b[j * K + p] : b[p * N + j]);
          expect[i * N + j] = 0.5 * s + 2.0 * expect[i * N + j];
        }
      gemm<double>(ta, tb, M, N, K, 0.5, a.data(), b.data(), 2.0, c.data());
      for (int64_t i = 0; i < M * N; ++i) CHECK(c[i] == Approx(expect[i]).epsilon(1e-12));
    }
  }
}
