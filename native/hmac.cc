#include "hmac.h"

#include <cstring>

#include "openssl_api.h"

namespace kmshmac {

size_t MacLength(Algorithm alg) {
  switch (alg) {
    case Algorithm::Sha224:
      return 28;
    case Algorithm::Sha256:
      return 32;
    case Algorithm::Sha384:
      return 48;
    case Algorithm::Sha512:
      return 64;
  }
  return 0;
}

namespace {

bool IsSha256Family(Algorithm alg) { return alg == Algorithm::Sha224 || alg == Algorithm::Sha256; }

void InitState256(Algorithm alg, SHA256_CTX* ctx) {
  if (alg == Algorithm::Sha224) Ssl().sha224_init(ctx);
  else Ssl().sha256_init(ctx);
}

void InitState512(Algorithm alg, SHA512_CTX* ctx) {
  if (alg == Algorithm::Sha384) Ssl().sha384_init(ctx);
  else Ssl().sha512_init(ctx);
}

}  // namespace

void HmacKey::Init(Algorithm algorithm, const uint8_t* key, size_t key_length) {
  alg = algorithm;
  mac_length = MacLength(algorithm);
  const size_t block = BlockLength(algorithm);
  uint8_t block_key[128] = {0};
  uint8_t pad[128];

  if (key_length > block) {
    // RFC 2104: K' = H(K), then zero-padded to the block length.
    if (IsSha256Family(alg)) {
      SHA256_CTX ctx;
      InitState256(alg, &ctx);
      Ssl().sha256_update(&ctx, key, key_length);
      Ssl().sha256_final(block_key, &ctx);
      Ssl().cleanse(&ctx, sizeof ctx);
    } else {
      SHA512_CTX ctx;
      InitState512(alg, &ctx);
      Ssl().sha512_update(&ctx, key, key_length);
      Ssl().sha512_final(block_key, &ctx);
      Ssl().cleanse(&ctx, sizeof ctx);
    }
  } else if (key_length > 0) {
    std::memcpy(block_key, key, key_length);
  }

  if (IsSha256Family(alg)) {
    for (size_t i = 0; i < block; i++) pad[i] = block_key[i] ^ 0x36;
    InitState256(alg, &s256.inner);
    Ssl().sha256_update(&s256.inner, pad, block);
    for (size_t i = 0; i < block; i++) pad[i] = block_key[i] ^ 0x5c;
    InitState256(alg, &s256.outer);
    Ssl().sha256_update(&s256.outer, pad, block);
  } else {
    for (size_t i = 0; i < block; i++) pad[i] = block_key[i] ^ 0x36;
    InitState512(alg, &s512.inner);
    Ssl().sha512_update(&s512.inner, pad, block);
    for (size_t i = 0; i < block; i++) pad[i] = block_key[i] ^ 0x5c;
    InitState512(alg, &s512.outer);
    Ssl().sha512_update(&s512.outer, pad, block);
  }
  Ssl().cleanse(block_key, sizeof block_key);
  Ssl().cleanse(pad, sizeof pad);
}

void HmacKey::Wipe() { Ssl().cleanse(&s512, sizeof s512); }

void HmacKey::Mac(const uint8_t* message, size_t length, uint8_t* out) const {
  uint8_t inner_digest[kMaxMacLength];
  if (IsSha256Family(alg)) {
    SHA256_CTX ctx = s256.inner;
    Ssl().sha256_update(&ctx, message, length);
    Ssl().sha256_final(inner_digest, &ctx);
    ctx = s256.outer;
    Ssl().sha256_update(&ctx, inner_digest, mac_length);
    Ssl().sha256_final(out, &ctx);
  } else {
    SHA512_CTX ctx = s512.inner;
    Ssl().sha512_update(&ctx, message, length);
    Ssl().sha512_final(inner_digest, &ctx);
    ctx = s512.outer;
    Ssl().sha512_update(&ctx, inner_digest, mac_length);
    Ssl().sha512_final(out, &ctx);
  }
}

bool HmacKey::Verify(const uint8_t* message, size_t length, const uint8_t* mac, size_t length_of_mac) const {
  uint8_t expected[kMaxMacLength];
  Mac(message, length, expected);
  // The length is public (it follows from the algorithm); only the bytes are secret.
  return length_of_mac == mac_length && Ssl().memcmp(expected, mac, mac_length) == 0;
}

}  // namespace kmshmac
