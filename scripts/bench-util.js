'use strict';
// Shared by the benchmarks: robust statistics over repeated rounds.

const median = (xs) => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Average nanoseconds per call of `fn` over `calls` back-to-back calls. */
function perCallNs(fn, calls) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) fn();
  return Number(process.hrtime.bigint() - t) / calls;
}

module.exports = { median, perCallNs };
