# syntax=docker/dockerfile:1
# `kms-hmac serve` in a container: the native addon as a prebuild (the same
# build `npm run prebuild` makes for the npm tarball), run as the image's
# unprivileged `node` user, with a health check on /healthz.
#
#   docker build -t kms-hmac .
#   docker run -p 4599:4599 -p 9464:9464 \
#     -v "$PWD/tls:/etc/kms-hmac/tls:ro" -v kms-hmac-data:/var/lib/kms-hmac \
#     -e KMS_HMAC_ACCESS_KEY_ID -e KMS_HMAC_SECRET_ACCESS_KEY -e KMS_HMAC_PASSPHRASE_FILE=/run/secrets/passphrase \
#     kms-hmac
#
# The README ("Running serve in production") says what was and was not run of this file.

FROM node:24-slim AS build
# node-gyp's toolchain, for the addon and better-sqlite3.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
COPY binding.gyp tsconfig.json tsconfig.build.json ./
COPY native ./native
COPY assembly ./assembly
COPY scripts ./scripts
COPY src ./src
COPY bin ./bin
# npm ci builds the addon, the WebAssembly and dist/; the prebuild is this architecture's only.
RUN npm ci \
 && node scripts/prebuild.js --arch "$(node -p process.arch)" \
 && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
COPY --from=build /src/prebuilds ./prebuilds
RUN mkdir -p /var/lib/kms-hmac /etc/kms-hmac/tls && chown node:node /var/lib/kms-hmac
USER node
VOLUME ["/var/lib/kms-hmac"]
EXPOSE 4599 9464
# The metrics port answers /healthz on loopback inside the container, plain HTTP, whatever TLS the serving port has.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9464/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# docker stop waits 10 s before SIGKILL: the drain gets 8 of them.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/kms-hmac.js", "serve"]
CMD ["--host", "0.0.0.0", "--port", "4599", \
     "--tls-cert", "/etc/kms-hmac/tls/tls.crt", "--tls-key", "/etc/kms-hmac/tls/tls.key", \
     "--metrics-port", "9464", "--metrics-host", "0.0.0.0", \
     "--keystore", "/var/lib/kms-hmac/keystore.db", "--drain-timeout", "8000"]
