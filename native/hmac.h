// HMAC-SHA-2 over plain byte spans (RFC 2104), with the key's inner and outer
// hash states computed once per key. No Node-API here: this is the engine the
// bindings, the batch loops and the worker threads share.
#pragma once

#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>

namespace kmshmac {

enum class Algorithm : int { Sha224 = 0, Sha256 = 1, Sha384 = 2, Sha512 = 3 };

constexpr int kAlgorithmCount = 4;
constexpr size_t kMaxMacLength = 64;

size_t MacLength(Algorithm alg);
inline size_t BlockLength(Algorithm alg) { return alg == Algorithm::Sha224 || alg == Algorithm::Sha256 ? 64 : 128; }

// A key ready to MAC: the hash states after absorbing (key ^ ipad) and
// (key ^ opad). Copyable on purpose: async jobs take their own copy, so
// destroying a key while a batch is in flight is safe. Wipe() every copy.
struct HmacKey {
  Algorithm alg = Algorithm::Sha256;
  size_t mac_length = 32;
  union {
    struct {
      SHA256_CTX inner, outer;
    } s256;
    struct {
      SHA512_CTX inner, outer;
    } s512;
  };

  HmacKey() : s256{} {}
  // Sets up the states; keys longer than the block are hashed first.
  void Init(Algorithm alg, const uint8_t* key, size_t key_length);
  // Overwrites every byte of key-derived state.
  void Wipe();

  // Writes mac_length bytes to out.
  void Mac(const uint8_t* message, size_t length, uint8_t* out) const;
  // Constant time in the MAC bytes; a MAC of another length is a mismatch.
  bool Verify(const uint8_t* message, size_t length, const uint8_t* mac, size_t mac_length) const;
};

}  // namespace kmshmac
