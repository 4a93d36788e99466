/**
 * Which hosts the endpoint answers for, and which addresses are loopback.
 *
 * DNS rebinding: a web page the user visits can point its own name at
 * 127.0.0.1 and then send requests to the endpoint from the browser. The
 * browser still names the attacker's host in the `Host` header, so the
 * endpoint answers only requests addressed to a loopback name or address
 * (localhost, 127.0.0.0/8, [::1], with any port) or to a host the operator
 * listed (`--allowed-host`, `allowedHosts`). Every other request gets 403
 * before anything else is looked at.
 */
import { BlockList, isIP } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** A host name (letters, digits, `.`, `-`, `_`) or a dotted-quad IPv4 address. */
const NAME = /^[a-z0-9_.-]+$/;

/**
 * The host part of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`),
 * lower-cased, IPv6 without brackets; undefined when malformed.
 */
export function hostOf(hostHeader: string): string | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(hostHeader.toLowerCase());
  if (m === null || (m[3] !== undefined && Number(m[3]) > 65535)) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? m[1] : undefined;
  return NAME.test(m[2]!) ? m[2] : undefined;
}

/**
 * Whether `host` (a name or an address, IPv6 with or without brackets, no
 * port) is loopback: `localhost`, an address in 127.0.0.0/8, or ::1.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  const family = isIP(h);
  return family !== 0 && LOOPBACK.check(h, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Checks the operator's allowed hosts (names or addresses, without a port:
 * any port is accepted) and returns them as `isAllowedHost` compares them.
 * Throws TypeError for a malformed entry.
 */
export function checkAllowedHosts(hosts: readonly string[] | undefined): string[] {
  if (hosts === undefined) return [];
  if (!Array.isArray(hosts)) throw new TypeError('allowedHosts must be an array of host names or addresses');
  return hosts.map((h: unknown) => {
    const host = typeof h === 'string' ? h.toLowerCase().replace(/^\[(.*)\]$/, '$1') : '';
    if (isIP(host) === 6 || NAME.test(host)) return host;
    throw new TypeError(
      `allowed host ${JSON.stringify(h)}: give a host name or an address, without a port (any port is accepted)`,
    );
  });
}

/**
 * Whether a request whose `Host` header is `hostHeader` may be answered: its
 * host is loopback or one of `allowedHosts` (as checkAllowedHosts returns
 * them). A missing or malformed Host header is not allowed.
 */
export function isAllowedHost(hostHeader: string | undefined, allowedHosts: readonly string[]): boolean {
  const host = hostHeader === undefined ? undefined : hostOf(hostHeader);
  return host !== undefined && (isLoopbackHost(host) || allowedHosts.includes(host));
}
