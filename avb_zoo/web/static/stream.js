// The runtime's portable random stream, operation for operation as avb_zoo/runtime/stream.py defines it:
// splitmix64 words keyed by (seed, stream), Marsaglia's polar method, a libm-free log, float32 rounding.
// The same seed gives the same float32 draws here and in `avb-zoo sample` / `avb-zoo encode`.
(function (root) {
  "use strict";
  const MASK = (1n << 64n) - 1n;
  const GAMMA = 0x9e3779b97f4a7c15n;
  const LN2 = 0.6931471805599453;
  const SQRT_HALF = 0.7071067811865476;
  const SERIES_TERMS = 12;
  const STREAMS = { PRIOR: 1, ENCODER_NOISE: 2, BINARIZE: 3, POSTERIOR_NOISE: 4 };

  function mix64(z) {
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }

  function streamKey(seed, stream) {
    return mix64(BigInt.asUintN(64, BigInt(seed))) ^ BigInt(stream);
  }

  function word(key, i) {
    return mix64((key + BigInt(i + 1) * GAMMA) & MASK);
  }

  // log(s) for s > 0 from frexp and a fixed atanh series: the same IEEE operations as portable_log in Python
  function portableLog(s) {
    let m = s;
    let e = 0;
    while (m >= 1.0) { m = m * 0.5; e += 1; }
    while (m < 0.5) { m = m * 2.0; e -= 1; }
    if (m < SQRT_HALF) { m = m * 2.0; e -= 1; }
    const t = (m - 1.0) / (m + 1.0);
    const t2 = t * t;
    let p = 1.0 / (2 * SERIES_TERMS - 1);
    for (let k = SERIES_TERMS - 2; k >= 0; k--) p = p * t2 + 1.0 / (2 * k + 1);
    return e * LN2 + 2.0 * t * p;
  }

  class NormalStream {
    constructor(seed, stream) {
      this.key = streamKey(seed, stream);
      this.nextWord = 0;
      this.spare = [];
    }
    // the next `count` draws as a Float32Array
    take(count) {
      const out = new Float32Array(count);
      let n = 0;
      while (n < count && this.spare.length) out[n++] = this.spare.shift();
      while (n < count) {
        const w1 = word(this.key, this.nextWord);
        const w2 = word(this.key, this.nextWord + 1);
        this.nextWord += 2;
        const v1 = Number(w1 >> 11n) * 2 ** -52 - 1.0;
        const v2 = Number(w2 >> 11n) * 2 ** -52 - 1.0;
        const s = v1 * v1 + v2 * v2;
        if (!(s < 1.0 && s > 0.0)) continue;
        const f = Math.sqrt((-2.0 * portableLog(s)) / s);
        out[n++] = Math.fround(v1 * f);
        if (n < count) out[n++] = Math.fround(v2 * f);
        else this.spare.push(Math.fround(v2 * f));
      }
      return out;
    }
  }

  function normal(seed, stream, count) {
    return new NormalStream(seed, stream).take(count);
  }

  const api = { NormalStream, normal, portableLog, streamKey, word, STREAMS };
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.AvbStream = api;
})(typeof globalThis !== "undefined" ? globalThis : this);
