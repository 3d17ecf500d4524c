// Just enough multipart/form-data parsing for uploads (audio transcriptions, image edits): fields and file parts.

export interface FilePart {
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface FormData {
  fields: Record<string, string>;
  files: Record<string, FilePart[]>;
}

export class MultipartError extends Error {}

export function parseMultipart(body: Buffer, contentType: string | undefined): FormData {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '');
  if (!contentType?.toLowerCase().startsWith('multipart/form-data') || !m) {
    throw new MultipartError('expected a multipart/form-data body with a boundary');
  }
  const delimiter = Buffer.from(`--${m[1] ?? m[2]}`);
  const form: FormData = { fields: {}, files: {} };
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new MultipartError('multipart body has no parts');
  while (pos >= 0) {
    let start = pos + delimiter.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing "--boundary--"
    if (body[start] === 0x0d && body[start + 1] === 0x0a) start += 2;
    const next = body.indexOf(delimiter, start);
    if (next < 0) throw new MultipartError('multipart body ends without a closing boundary');
    // The part ends with CRLF before the next delimiter.
    const end = body[next - 2] === 0x0d && body[next - 1] === 0x0a ? next - 2 : next;
    addPart(form, body.subarray(start, end));
    pos = next;
  }
  return form;
}

function addPart(form: FormData, part: Buffer): void {
  const headerEnd = part.indexOf('\r\n\r\n');
  if (headerEnd < 0) throw new MultipartError('multipart part without headers');
  const headers = part.subarray(0, headerEnd).toString('utf8').split('\r\n');
  const data = part.subarray(headerEnd + 4);
  let name = '';
  let filename: string | null = null;
  let contentType = 'application/octet-stream';
  for (const line of headers) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'content-disposition') {
      name = /\bname="([^"]*)"/i.exec(value)?.[1] ?? '';
      filename = /\bfilename="([^"]*)"/i.exec(value)?.[1] ?? null;
    } else if (key === 'content-type') contentType = value;
  }
  if (!name) throw new MultipartError('multipart part without a name');
  if (filename !== null) (form.files[name] ??= []).push({ filename, contentType, data: Buffer.from(data) });
  else form.fields[name] = data.toString('utf8');
}
