// PNG files read as `avb-zoo encode` reads them (Pillow, then avb_zoo.runtime.inputs.load_images), without a
// canvas: a canvas holds 8 bits per channel, so 16-bit grey would lose precision. The size comes from the header
// before any pixel is decoded; only the image data that size needs is inflated (the browser's
// DecompressionStream, which works off the main thread), so a small file declaring a huge image costs nothing.
// Grey keeps its depth (16-bit: v / 65535), colour becomes Pillow's luma, an image with transparent pixels is read
// by its opacity (a drawing on a clear sheet, as load_images reads it), 16-bit colour keeps its high byte (as
// Pillow reads it).
(function (root) {
  "use strict";
  const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
  const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
  const DEPTHS = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
  const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  const BLOCK = 1 << 16; // bytes read from the file at a time

  // kind: "not-png" (no PNG signature) or "unreadable" (a PNG that cannot be decoded; the reason says why)
  class PngError extends Error {
    constructor(kind, message) {
      super(message);
      this.kind = kind;
    }
  }
  const unreadable = (why) => new PngError("unreadable", why);

  const CRC_TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
    return table;
  })();

  function crcUpdate(crc, bytes) {
    let c = crc;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return c;
  }

  const u32 = (b, at) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
  const ascii = (b) => String.fromCharCode(...b);

  // a Blob read in blocks, front to back: only the bytes asked for (and one block around them) are in memory
  class BlobReader {
    constructor(blob, pos) {
      this.blob = blob;
      this.pos = pos;
      this.block = new Uint8Array(0);
      this.blockAt = 0;
    }

    // up to n bytes from the current position (fewer only at the end of the file)
    async read(n) {
      const from = this.pos - this.blockAt;
      if (from < 0 || from + n > this.block.length) {
        const end = Math.min(this.blob.size, this.pos + Math.max(n, BLOCK));
        this.block = new Uint8Array(await this.blob.slice(this.pos, end).arrayBuffer());
        this.blockAt = this.pos;
      }
      const start = this.pos - this.blockAt;
      const out = this.block.subarray(start, Math.min(start + n, this.block.length));
      this.pos += out.length;
      return out;
    }

    skip(n) {
      this.pos += n;
    }
  }

  // the image data inflated into a buffer of exactly the size the header implies; it stops there, whatever the
  // compressed stream would still give
  class Inflater {
    constructor(size) {
      this.out = new Uint8Array(size);
      this.got = 0;
      this.failure = null;
      const stream = new DecompressionStream("deflate"); // zlib (RFC 1950), what PNG's IDAT holds
      this.writer = stream.writable.getWriter();
      this.reading = this.collect(stream.readable.getReader());
    }

    get full() {
      return this.got === this.out.length;
    }

    async collect(reader) {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          const take = Math.min(value.length, this.out.length - this.got);
          this.out.set(value.subarray(0, take), this.got);
          this.got += take;
          if (this.full) {
            reader.cancel().catch(() => {});
            return;
          }
        }
      } catch (err) {
        this.failure = err;
      }
    }

    async write(data) {
      if (this.full || this.failure) return;
      try {
        await this.writer.write(data.slice());
      } catch (err) {
        // a corrupt stream or a full buffer: collect() has the reason
      }
    }

    async finish() {
      if (!this.full && !this.failure) {
        try {
          await this.writer.close();
        } catch (err) {
          // as in write()
        }
      }
      await this.reading;
    }
  }

  // {width, height, depth, colorType, interlace} from the first 33 bytes (signature and IHDR)
  async function readHeader(blob) {
    const b = new Uint8Array(await blob.slice(0, 33).arrayBuffer());
    if (b.length < 8 || SIGNATURE.some((v, i) => b[i] !== v)) throw new PngError("not-png", "no PNG signature");
    if (b.length < 33 || u32(b, 8) !== 13 || ascii(b.subarray(12, 16)) !== "IHDR") {
      throw unreadable("it has no image header (IHDR)");
    }
    if ((crcUpdate(0xffffffff, b.subarray(12, 29)) ^ 0xffffffff) >>> 0 !== u32(b, 29)) {
      throw unreadable("its image header fails its checksum");
    }
    const header = { width: u32(b, 16), height: u32(b, 20), depth: b[24], colorType: b[25], interlace: b[28] };
    if (!header.width || !header.height || header.width > 0x7fffffff || header.height > 0x7fffffff) {
      throw unreadable(`its header declares a size of ${header.width}x${header.height}`);
    }
    if (!(header.colorType in DEPTHS) || !DEPTHS[header.colorType].includes(header.depth)) {
      throw unreadable(`colour type ${header.colorType} at bit depth ${header.depth} is not a PNG format`);
    }
    if (b[26] !== 0 || b[27] !== 0 || header.interlace > 1) {
      throw unreadable("its header names a compression, filter or interlace method PNG does not define");
    }
    return header;
  }

  // the sub-images of the file's data: the whole image, or Adam7's seven passes
  function passes(h) {
    if (!h.interlace) return [[0, 0, 1, 1, h.width, h.height]];
    return ADAM7.map(([x0, y0, dx, dy]) => [x0, y0, dx, dy, Math.ceil((h.width - x0) / dx),
      Math.ceil((h.height - y0) / dy)]).filter((p) => p[4] > 0 && p[5] > 0);
  }

  function rowBytes(h, width) {
    return Math.ceil((width * CHANNELS[h.colorType] * h.depth) / 8);
  }

  function dataSize(h) {
    return passes(h).reduce((n, p) => n + p[5] * (1 + rowBytes(h, p[4])), 0);
  }

  function paeth(a, b, c) {
    const p = a + b - c;
    const pa = Math.abs(p - a);
    const pb = Math.abs(p - b);
    const pc = Math.abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  }

  // raw samples [height * width * channels] (palette indices for colour type 3) from the inflated data
  function unfilter(h, data) {
    const channels = CHANNELS[h.colorType];
    const samples = new Uint16Array(h.width * h.height * channels);
    const bpp = Math.max(1, (channels * h.depth) >> 3);
    let at = 0;
    for (const [x0, y0, dx, dy, width, height] of passes(h)) {
      const n = rowBytes(h, width);
      let prior = new Uint8Array(n);
      for (let y = 0; y < height; y++) {
        const filter = data[at];
        const row = data.subarray(at + 1, at + 1 + n);
        at += 1 + n;
        for (let i = 0; i < n; i++) {
          const a = i >= bpp ? row[i - bpp] : 0;
          const c = i >= bpp ? prior[i - bpp] : 0;
          const b = prior[i];
          if (filter === 1) row[i] = (row[i] + a) & 0xff;
          else if (filter === 2) row[i] = (row[i] + b) & 0xff;
          else if (filter === 3) row[i] = (row[i] + ((a + b) >> 1)) & 0xff;
          else if (filter === 4) row[i] = (row[i] + paeth(a, b, c)) & 0xff;
          else if (filter !== 0) throw unreadable(`a row uses filter type ${filter}, which PNG does not define`);
        }
        prior = row;
        for (let x = 0; x < width; x++) {
          const out = ((y0 + y * dy) * h.width + x0 + x * dx) * channels;
          for (let k = 0; k < channels; k++) {
            const s = x * channels + k;
            let v;
            if (h.depth === 16) v = (row[2 * s] << 8) | row[2 * s + 1];
            else if (h.depth === 8) v = row[s];
            else {
              const bit = s * h.depth;
              v = (row[bit >> 3] >> (8 - h.depth - (bit & 7))) & ((1 << h.depth) - 1);
            }
            samples[out + k] = v;
          }
        }
      }
    }
    return samples;
  }

  // {header, samples, palette, trns}; ``check(header)`` runs before any image data is read (to refuse a size)
  async function decode(blob, check) {
    const header = await readHeader(blob);
    if (check) check(header);
    const reader = new BlobReader(blob, 33);
    const inflater = new Inflater(dataSize(header));
    let palette = null;
    let trns = null;
    let ended = false; // IEND seen
    let cut = false; // the file ends inside a chunk or before IEND
    try {
      while (!inflater.full && !inflater.failure) {
        const head = await reader.read(8);
        if (head.length < 8) {
          cut = true;
          break;
        }
        const length = u32(head, 0);
        const type = ascii(head.subarray(4, 8));
        if (length > 0x7fffffff) throw unreadable(`its ${type} chunk declares ${length} bytes`);
        if (type === "IEND") {
          ended = true;
          break;
        }
        if (type !== "IDAT" && type !== "PLTE" && type !== "tRNS") {
          reader.skip(length + 4); // text, colour profile, ...: not read, as Pillow does not use them for pixels
          continue;
        }
        const most = { IDAT: Infinity, PLTE: 768, tRNS: 256 }[type];
        if (length > most) throw unreadable(`its ${type} chunk holds ${length} bytes; PNG allows at most ${most}`);
        let crc = crcUpdate(0xffffffff, head.subarray(4, 8));
        const kept = type === "IDAT" ? null : new Uint8Array(length);
        for (let left = length; left > 0 && !inflater.full; ) {
          const part = await reader.read(Math.min(left, BLOCK));
          if (!part.length) {
            cut = true;
            break;
          }
          crc = crcUpdate(crc, part);
          if (kept) kept.set(part, length - left);
          else await inflater.write(part);
          left -= part.length;
          if (!left) {
            const stored = await reader.read(4);
            if (stored.length === 4 && (crc ^ 0xffffffff) >>> 0 !== u32(stored, 0)) {
              throw unreadable(`its ${type} chunk fails its checksum`);
            }
          }
        }
        if (type === "PLTE") palette = kept;
        if (type === "tRNS") trns = kept;
      }
    } finally {
      await inflater.finish();
    }
    if (!inflater.full) {
      if (cut) throw unreadable("the file is truncated");
      if (inflater.failure) throw unreadable(`its image data is not valid zlib data (${inflater.failure.message})`);
      throw unreadable("its image data is shorter than its header declares");
    }
    if (header.colorType === 3 && !palette) throw unreadable("it is a palette image without a palette (PLTE)");
    return { header, samples: unfilter(header, inflater.out), palette, trns };
  }

  // Pillow's RGB -> L (ITU-R 601-2 luma in 16-bit fixed point)
  const luma = (r, g, b) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;

  // model input [c * height * width] in [0, 1] from decode()'s result, as load_images makes it: c = 1 (grey
  // models) or 3 (RGB models: Pillow's convert("RGB"), which drops alpha and clips 16-bit grey at 255)
  function modelInput(image, c) {
    const { header: h, samples, palette, trns } = image;
    const n = h.width * h.height;
    const x = new Float32Array(c * n);
    const channels = CHANNELS[h.colorType];
    // Pillow's modes with an alpha channel: LA, RGBA, and a palette with tRNS (grey and RGB keep a colour key only)
    const transparent = h.colorType === 4 || h.colorType === 6 || (h.colorType === 3 && trns !== null);
    const opacity = c === 1 && transparent ? new Uint8Array(n) : null;
    const to8 = (v) => (h.depth === 16 ? v >> 8 : h.depth === 8 ? v : (v * 255) / ((1 << h.depth) - 1));
    for (let p = 0; p < n; p++) {
      const s = p * channels;
      if (h.colorType === 0 && h.depth === 16) {
        const v = samples[s];
        if (c === 1) x[p] = Math.fround(v / 65535);
        else for (let k = 0; k < 3; k++) x[k * n + p] = Math.fround(Math.min(v, 255) / 255);
        continue;
      }
      let rgb;
      let alpha = 255;
      if (h.colorType === 0) rgb = [to8(samples[s]), to8(samples[s]), to8(samples[s])];
      else if (h.colorType === 2) rgb = [to8(samples[s]), to8(samples[s + 1]), to8(samples[s + 2])];
      else if (h.colorType === 4) {
        rgb = [to8(samples[s]), to8(samples[s]), to8(samples[s])];
        alpha = to8(samples[s + 1]);
      } else if (h.colorType === 6) {
        rgb = [to8(samples[s]), to8(samples[s + 1]), to8(samples[s + 2])];
        alpha = to8(samples[s + 3]);
      } else {
        const i = samples[s];
        rgb = 3 * i + 2 < palette.length ? [palette[3 * i], palette[3 * i + 1], palette[3 * i + 2]] : [0, 0, 0];
        if (trns) alpha = i < trns.length ? trns[i] : 255;
      }
      if (c === 1) {
        x[p] = Math.fround(luma(rgb[0], rgb[1], rgb[2]) / 255);
        if (opacity) opacity[p] = alpha;
      } else {
        for (let k = 0; k < 3; k++) x[k * n + p] = Math.fround(rgb[k] / 255);
      }
    }
    // A grey model reads a drawing on a transparent sheet by its opacity (the ink, whatever the strokes' colour),
    // as load_images does; an image whose pixels are all opaque is read by its luma.
    if (opacity && opacity.some((a) => a < 255)) for (let p = 0; p < n; p++) x[p] = Math.fround(opacity[p] / 255);
    return x;
  }

  const api = { PngError, readHeader, decode, modelInput };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.AvbPng = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
