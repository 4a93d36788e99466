// Types for the parts of scripts/prebuild.js the tests use.

/** 'musl' on Alpine, else 'glibc': the tag prebuildify gives and node-gyp-build looks for. */
export const HOST_LIBC: 'glibc' | 'musl';

/** The architectures `npm run prebuild` builds by default on this host. */
export function defaultArches(): string[];

/** A prebuild's path inside the package, e.g. prebuilds/linux-arm64/kms-hmac.glibc.node. */
export function prebuildPath(arch: string): string;
