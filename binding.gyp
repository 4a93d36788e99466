{
  # Built against the headers of the Node that runs it (npm's nodedir);
  # OpenSSL symbols are resolved from the node process at load time
  # (native/openssl_api.cc), so nothing links libcrypto.
  "variables": {
    "openssl_fips%": "",
    "kms_hmac_sanitize%": "false"
  },
  "targets": [
    {
      "target_name": "kms_hmac",
      "sources": [
        "native/addon.cc",
        "native/batch.cc",
        "native/hmac.cc",
        "native/openssl_api.cc",
        "native/async_batch.cc",
        "native/js_args.cc",
        "native/recycled.cc",
        "native/thread_pool.cc",
        "native/mb/mb_hmac.cc",
        "native/mb/mb_paths.cc",
        "native/mb/lanes_sse2.cc",
        "native/mb/lanes_avx2.cc",
        "native/mb/lanes_avx512.cc",
        "native/mb/sha256_shani.cc",
        "native/mb/mb_dispatch.cc",
        "native/mb/mb_exports.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED",
        "OPENSSL_SUPPRESS_DEPRECATED"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "10.15"
      },
      "msvs_settings": {
        "VCCLCompilerTool": { "ExceptionHandling": 1 }
      },
      "conditions": [
        ["OS=='linux'", {
          "ldflags": ["-Wl,-z,relro", "-Wl,-z,now"],
          # dlsym (native/openssl_api.cc) lives in libdl before glibc 2.34.
          # Named here, a build on an old glibc (the release workflow's 2.28
          # baseline) records libdl's dlsym version instead of leaving it
          # unversioned; from glibc 2.34 on, -ldl is an empty stub.
          "libraries": ["-ldl"]
        }],
        ["kms_hmac_sanitize=='true'", {
          "cflags_cc": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"],
          # A test-only failure path (native/async_batch.cc), compiled into this build alone.
          "defines": ["KMS_HMAC_FAULT_INJECTION"],
          "ldflags": ["-fsanitize=address,undefined"]
        }]
      ],
      "configurations": {
        "Release": {
          "cflags_cc": ["-O3", "-D_FORTIFY_SOURCE=2", "-ffile-prefix-map=<(module_root_dir)=."]
        },
        "Debug": {
          "defines": ["NODE_ADDON_API_ENABLE_TYPE_CHECK_ON_AS"],
          "cflags_cc": ["--coverage"],
          "ldflags": ["--coverage"]
        }
      }
    }
  ]
}
