// The OpenSSL functions this addon uses, resolved at run time from the host
// process (the node binary exports its bundled OpenSSL).
//
// Why not link against them: Node-API's ABI promise does not cover OpenSSL,
// and Node loads addons with RTLD_LAZY, so a symbol the host lacks would turn
// into a fatal lookup error at first call. Resolving every symbol once, at
// module load, turns that into a catchable load error instead, and the
// package falls back to its WebAssembly engine.
//
// Why the low-level SHA-2 API: HMAC with precomputed inner/outer states needs
// copyable hash states. SHA256_CTX/SHA512_CTX are plain structs (copy = ~200
// bytes of memcpy) that run OpenSSL's SHA-NI/AVX2 block functions; the EVP
// route costs a provider round trip per message. The functions are deprecated
// but present in every OpenSSL 3.x; a build without them fails to load
// cleanly rather than crashing.
#pragma once

#include <openssl/sha.h>

#include <cstddef>
#include <string>

namespace kmshmac {

struct OpenSslApi {
  int (*sha224_init)(SHA256_CTX*);
  int (*sha256_init)(SHA256_CTX*);
  int (*sha256_update)(SHA256_CTX*, const void*, size_t);
  int (*sha256_final)(unsigned char*, SHA256_CTX*);
  int (*sha384_init)(SHA512_CTX*);
  int (*sha512_init)(SHA512_CTX*);
  int (*sha512_update)(SHA512_CTX*, const void*, size_t);
  int (*sha512_final)(unsigned char*, SHA512_CTX*);
  void (*cleanse)(void*, size_t);
  int (*memcmp)(const void*, const void*, size_t);
  unsigned long (*version_num)();
  const char* (*version)(int);
};

// Resolves all symbols and checks that the host runs OpenSSL 3.x. On failure
// returns nullptr and describes the problem in *error. Thread-safe after the
// first successful call (the module init calls it first).
const OpenSslApi* LoadOpenSsl(std::string* error);

// The loaded API; only valid after LoadOpenSsl succeeded.
const OpenSslApi& Ssl();

}  // namespace kmshmac
