// Types for the part of scripts/prebuild.js the tests use.

/** The architectures `npm run prebuild` builds by default on this host. */
export function defaultArches(): string[];

/** A prebuild's path inside the package, e.g. prebuilds/linux-arm64/kms-hmac.glibc.node. */
export function prebuildPath(arch: string): string;
