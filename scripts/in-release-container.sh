#!/bin/sh
# Runs a command inside one of the release workflow's Linux build images
# (.github/workflows/release.yml), after supplying what the image lacks:
#   quay.io/pypa/manylinux_2_28_*  AlmaLinux 8: glibc 2.28 and gcc-toolset, whose
#                                  libstdc++ links its post-GCC-8 parts statically,
#                                  so a build here needs no newer glibc or libstdc++
#                                  than Node itself. Node is the runner's own
#                                  (setup-node), mounted at /opt/node; Python for
#                                  node-gyp is the image's.
#   node:24-alpine                 musl: the compiler and Python come from apk.
# Usage: docker run --rm -v "$PWD:/src" -w /src [-v NODE_PREFIX:/opt/node] IMAGE \
#          sh scripts/in-release-container.sh COMMAND...
set -eu
if [ -f /etc/alpine-release ]; then
  apk add --no-cache build-base python3 >/dev/null
else
  export PATH="/opt/node/bin:/opt/python/cp312-cp312/bin:$PATH"
  export npm_config_nodedir=/opt/node # the headers that came with that Node: nothing is downloaded
fi
exec "$@"
