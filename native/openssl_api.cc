#include "openssl_api.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace kmshmac {
namespace {

OpenSslApi g_api;
bool g_loaded = false;

void* FindSymbol(const char* name) {
#if defined(_WIN32)
  return reinterpret_cast<void*>(GetProcAddress(GetModuleHandle(nullptr), name));
#else
  return dlsym(RTLD_DEFAULT, name);
#endif
}

template <typename Fn>
bool Resolve(Fn* slot, const char* name, std::string* missing) {
  void* symbol = FindSymbol(name);
  if (symbol == nullptr) {
    if (!missing->empty()) missing->append(", ");
    missing->append(name);
    return false;
  }
  *slot = reinterpret_cast<Fn>(symbol);
  return true;
}

}  // namespace

const OpenSslApi* LoadOpenSsl(std::string* error) {
  if (g_loaded) return &g_api;
  OpenSslApi api{};
  std::string missing;
  bool ok = true;
  ok &= Resolve(&api.sha224_init, "SHA224_Init", &missing);
  ok &= Resolve(&api.sha256_init, "SHA256_Init", &missing);
  ok &= Resolve(&api.sha256_update, "SHA256_Update", &missing);
  ok &= Resolve(&api.sha256_final, "SHA256_Final", &missing);
  ok &= Resolve(&api.sha384_init, "SHA384_Init", &missing);
  ok &= Resolve(&api.sha512_init, "SHA512_Init", &missing);
  ok &= Resolve(&api.sha512_update, "SHA512_Update", &missing);
  ok &= Resolve(&api.sha512_final, "SHA512_Final", &missing);
  ok &= Resolve(&api.cleanse, "OPENSSL_cleanse", &missing);
  ok &= Resolve(&api.memcmp, "CRYPTO_memcmp", &missing);
  ok &= Resolve(&api.version_num, "OpenSSL_version_num", &missing);
  ok &= Resolve(&api.version, "OpenSSL_version", &missing);
  if (!ok) {
    *error = "the host process does not export OpenSSL symbols: " + missing;
    return nullptr;
  }
  const unsigned long major = api.version_num() >> 28;
  if (major != 3) {
    *error = std::string("unsupported OpenSSL ") + api.version(0) + " (need 3.x)";
    return nullptr;
  }
  g_api = api;
  g_loaded = true;
  return &g_api;
}

const OpenSslApi& Ssl() { return g_api; }

}  // namespace kmshmac
