// CIDR matching for allowlists (IPv4 and IPv6; IPv4-mapped IPv6 addresses match IPv4 ranges).
import { isIPv4, isIPv6 } from 'node:net';

function ipv4Bits(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6Bits(ip: string): bigint {
  let text = ip;
  // A trailing dotted IPv4 (::ffff:10.0.0.1) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const bits = ipv4Bits(v4[1]!);
    text = `${text.slice(0, -v4[1]!.length)}${(bits >> 16n).toString(16)}:${(bits & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

/** An address as bits and width; IPv4-mapped IPv6 (::ffff:a.b.c.d) is read as IPv4. */
function parse(ip: string): { bits: bigint; width: 32 | 128 } | null {
  const plain = ip.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain);
  if (mapped) return { bits: ipv4Bits(mapped[1]!), width: 32 };
  if (isIPv4(plain)) return { bits: ipv4Bits(plain), width: 32 };
  if (isIPv6(plain)) return { bits: ipv6Bits(plain), width: 128 };
  return null;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const [range, prefixText] = cidr.split('/');
  const net = range ? parse(range) : null;
  const addr = parse(ip);
  const prefix = Number(prefixText);
  if (!net || !addr || net.width !== addr.width || !Number.isInteger(prefix) || prefix < 0 || prefix > net.width) return false;
  const shift = BigInt(net.width - prefix);
  return net.bits >> shift === addr.bits >> shift;
}

export function allowedBy(cidrs: readonly string[], ip: string | undefined): boolean {
  return ip !== undefined && cidrs.some((c) => cidrContains(c, ip));
}
