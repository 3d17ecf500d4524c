// Tolerant reader for `nvidia-smi -q -x`: a small XML tree builder and the few fields the inventory needs from it.
import { presentText, readMigMode, readNumber, readVersion } from './nvidia-smi-values.ts';

export interface XmlMigDevice {
  /** The MIG device index, the `Device N` of `nvidia-smi -L`. */
  index: number | null;
  memory_total_mib: number | null;
  /** Some DTD versions name the MIG uuid here; older ones do not. */
  uuid: string | null;
}

export interface XmlGpu {
  uuid: string | null;
  name: string | null;
  pci_bus_id: string | null;
  mig_mode: 'enabled' | 'disabled' | null;
  memory_total_mib: number | null;
  mig_devices: XmlMigDevice[];
}

export interface XmlInventory {
  driver_version: string | null;
  cuda_version: string | null;
  gpus: XmlGpu[];
  warnings: string[];
}

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (whole, name: string) => {
    if (name.startsWith('#x') || name.startsWith('#X')) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(Number(name.slice(1)));
    return entities[name.toLowerCase()] ?? whole;
  });
}

/**
 * Builds an element tree. Forgiving on purpose: a stray closing tag is ignored, an unclosed element ends with
 * its parent, and declarations, DOCTYPE, comments and processing instructions are skipped.
 */
function readXmlTree(xml: string): XmlElement {
  const root: XmlElement = { name: '#root', attrs: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  const tokens = /<!--[\s\S]*?-->|<!\[CDATA\[([\s\S]*?)\]\]>|<![^>]*>|<\?[\s\S]*?\?>|<(\/?)([^\s/>]+)([^>]*?)(\/?)>|([^<]+)|</g;
  for (let match = tokens.exec(xml); match !== null; match = tokens.exec(xml)) {
    const current = stack.at(-1) ?? root;
    const [, cdata, closing, name, rawAttrs, selfClosing, text] = match;
    if (cdata !== undefined) {
      current.text += cdata;
    } else if (text !== undefined) {
      current.text += decodeEntities(text);
    } else if (name !== undefined && closing === '/') {
      const open = stack.map((e) => e.name).lastIndexOf(name);
      if (open > 0) stack.length = open;
    } else if (name !== undefined) {
      const attrs: Record<string, string> = {};
      for (const a of (rawAttrs ?? '').matchAll(/([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        if (a[1]) attrs[a[1]] = decodeEntities(a[2] ?? a[3] ?? '');
      }
      const element: XmlElement = { name, attrs, children: [], text: '' };
      current.children.push(element);
      if (selfClosing !== '/') stack.push(element);
    }
  }
  return root;
}

function child(element: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  for (const name of names) {
    const found = element?.children.find((c) => c.name === name);
    if (found) return found;
  }
  return undefined;
}

function descendant(element: XmlElement, name: string): XmlElement | undefined {
  for (const c of element.children) {
    if (c.name === name) return c;
    const deeper = descendant(c, name);
    if (deeper) return deeper;
  }
  return undefined;
}

function textOf(element: XmlElement | undefined): string | null {
  return element ? presentText(element.text) : null;
}

function mibOf(element: XmlElement | undefined, warnings: string[], what: string): number | null {
  const raw = textOf(element);
  const value = readNumber(raw ?? undefined);
  if (value === undefined) {
    warnings.push(`${what} '${(raw ?? '').slice(0, 60)}' is not a MiB value; left unknown`);
    return null;
  }
  return value === null || value < 0 ? null : Math.round(value);
}

// The frame-buffer total of a GPU or MIG device; element names drift between DTD versions, BAR1 never counts.
function memoryTotalOf(element: XmlElement, warnings: string[], what: string): number | null {
  const usage = child(element, 'fb_memory_usage', 'memory_usage', 'fb_memory');
  return mibOf(usage ? child(usage, 'total') : undefined, warnings, what);
}

function readMigDevices(gpu: XmlElement, warnings: string[]): XmlMigDevice[] {
  const container = child(gpu, 'mig_devices');
  // `<mig_devices>None</mig_devices>` when MIG is off: no child elements, nothing to read.
  if (!container) return [];
  return container.children
    .filter((c) => c.name === 'mig_device')
    .map((device, i) => {
      const index = readNumber(textOf(child(device, 'index', 'device_index')) ?? undefined);
      if (index === undefined) warnings.push(`MIG device ${i + 1}: index is not a number`);
      const uuid = textOf(child(device, 'uuid', 'mig_uuid'));
      return {
        index: index ?? null,
        memory_total_mib: memoryTotalOf(device, warnings, `MIG device ${i + 1} memory`),
        uuid: uuid?.startsWith('MIG-') ? uuid : null,
      };
    });
}

function readGpu(gpu: XmlElement, warnings: string[]): XmlGpu {
  const uuid = textOf(child(gpu, 'uuid'));
  const migMode = child(gpu, 'mig_mode');
  const pci = child(gpu, 'pci');
  return {
    uuid: uuid?.startsWith('GPU-') ? uuid : null,
    name: textOf(child(gpu, 'product_name', 'name')),
    pci_bus_id: textOf(child(pci, 'pci_bus_id', 'bus_id')) ?? presentText(gpu.attrs.id),
    mig_mode: readMigMode(textOf(child(migMode, 'current_mig', 'current'))),
    memory_total_mib: memoryTotalOf(gpu, warnings, `GPU ${uuid ?? '?'} memory`),
    mig_devices: readMigDevices(gpu, warnings),
  };
}

/**
 * Parses `nvidia-smi -q -x`: the driver and CUDA versions (children of `<nvidia_smi_log>`, R610's kmd_version and
 * cuda_umd_version first) and, per `<gpu>`, its uuid, name, PCI bus id, MIG mode and MIG devices.
 */
export function parseQueryXml(xml: string): XmlInventory {
  const warnings: string[] = [];
  const tree = readXmlTree(xml);
  const log = descendant(tree, 'nvidia_smi_log');
  if (!log) warnings.push('no <nvidia_smi_log> element in the -q -x output');
  const top = log ?? tree;
  const gpuElements = log ? log.children.filter((c) => c.name === 'gpu') : [];
  if (log && gpuElements.length === 0) warnings.push('no <gpu> element in the -q -x output');
  const gpus = gpuElements.map((g) => readGpu(g, warnings));
  gpus.forEach((g, i) => {
    if (g.uuid === null) warnings.push(`<gpu> ${i + 1} in the -q -x output has no readable uuid`);
  });
  return {
    driver_version: readVersion(textOf(child(top, 'kmd_version'))) ?? readVersion(textOf(child(top, 'driver_version'))),
    cuda_version: readVersion(textOf(child(top, 'cuda_umd_version'))) ?? readVersion(textOf(child(top, 'cuda_version'))),
    gpus,
    warnings,
  };
}
