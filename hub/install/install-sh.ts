// Renders install.sh (a real shell file beside this module) with the hub's URL, OS and architecture filled in.
import { readFileSync } from 'node:fs';

const TEMPLATE = readFileSync(new URL('./install.sh', import.meta.url), 'utf8');

/** Values are written into the script between single quotes; a quote inside would end the string early. */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function renderInstallScript(opts: { hubUrl: string; hubOs: string; hubArch: string }): string {
  const values: Record<string, string> = { HUB_URL: opts.hubUrl, HUB_OS: opts.hubOs, HUB_ARCH: opts.hubArch };
  // A function replacement, so "$&" or "$'" in a value is taken literally rather than as a replacement pattern.
  return TEMPLATE.replace(/@(HUB_URL|HUB_OS|HUB_ARCH)@/g, (_m, name: string) => shQuote(values[name]!));
}
