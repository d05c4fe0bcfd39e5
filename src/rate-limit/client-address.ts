import { isIPv4, isIPv6 } from 'node:net';

/**
 * The address a per-IP limit counts a client under. An IPv4 address counts
 * alone. An IPv6 client counts by its /64: a site is normally given at least
 * a /64 (RFC 6177), and a host picks its interface identifier within it at will
 * (RFC 4941/8981 temporary addresses do so on their own), so counting each
 * address would give one client 2^64 budgets. An IPv4-mapped address
 * (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2) is the IPv4 client it names, so a
 * dual-stack socket and a proxy writing either form share one counter.
 * Anything else (the shared `unknown`) is returned as is.
 */
export function rateLimitAddress(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const groups = ipv6Groups(ip);
  const mapped = groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
  if (mapped) {
    const [high, low] = [groups[6], groups[7]];
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted tail converted). */
function ipv6Groups(ip: string): number[] {
  let text = ip;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (isIPv4(tail)) {
    const [a, b, c, d] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::');
  const split = (part: string | undefined) => (part ? part.split(':') : []);
  const before = split(head);
  const after = split(rest);
  const zeros = rest === undefined ? 0 : 8 - before.length - after.length;
  return [...before, ...Array<string>(zeros).fill('0'), ...after].map((group) =>
    Number.parseInt(group, 16),
  );
}
