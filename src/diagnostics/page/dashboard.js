// @ts-check
// The live page's script, inlined into its <script> block; the CSP allows this exact text by
// hash. Plain browser JS, no build step: tsc checks it against the DOM (page/tsconfig.json).

/**
 * What the page reads of the JSON route (GET ./ with Accept: application/json).
 * @typedef {{ rss: number | null, rssAnon: number | null, rssFile: number | null, rssShmem: number | null, swap: number | null }} ProcessMemory
 * @typedef {{ heapTotal: number, heapUsed: number, physical: number, external: number }} V8Memory
 * @typedef {{ time: number, allocated: number | null, resident: number | null, heldBack: number | null,
 *   heldBackRatio: number | null, releasable: number | null, mapped: number | null, process: ProcessMemory,
 *   v8: V8Memory | null, costMs: number, notes: string[] }} Stats
 * @typedef {{ running: boolean, intervalMs: number, trims: number, releasedBytes: number,
 *   skips: Record<string, number>, lastTrim: { time: number, releasedBytes: number | null } | null }} AutoTrim
 * @typedef {{ name: string, version: string | null, method: string, library: string | null,
 *   preload: { entries: Array<{ entry: string, loaded: boolean | null }> }, notes: string[] }} Allocator
 * @typedef {{ stats: Stats, trims: { trims: number, releasedBytes: number, durationMs: number },
 *   autoTrim: AutoTrim | null, allocator: Allocator,
 *   configuration: { env: Record<string, string | null>, settings: Record<string, unknown> | null, error: string | null },
 *   endpoint: { trim: 'off' | 'token' | 'unauthenticated', refreshMs: number, doctor: boolean } }} Sample
 *
 * What it reads of GET ./doctor, and of POST ./trim.
 * @typedef {{ id: string, severity: string, title: string, summary: string, evidence: Record<string, unknown>, advice: string[] }} Finding
 * @typedef {{ time: number, rss: number | null, v8Heap: number | null, arrayBuffers: number | null, nativeInUse: number | null,
 *   heldBack: number | null, other: number | null, trimmedBytes?: number | null }} Parts
 * @typedef {{ findings: Finding[], parts: Parts[], window: { start: number, end: number, samples: number },
 *   notes: string[], monitor: { intervalMs: number } }} Diagnosis
 * @typedef {{ supported: boolean, releasedBytes: number | null, durationMs: number, rssBefore: number | null,
 *   rssAfter: number | null, notes: string[] }} TrimResult
 *
 * A point of the live chart, and a table row: label, value, and whether the value is a number.
 * @typedef {{ t: number, rss: number | null, v8: number, alloc: number | null, held: number | null, unsplit: boolean, other: number | null }} Point
 * @typedef {[string, string, number?]} Row
 */

(function () {
  'use strict';
  var base = location.pathname.replace(/\/dashboard$/, '').replace(/\/?$/, '/');
  /** @type {Point[]} */
  var points = [];
  var MAX_POINTS = 600;
  var refreshMs = 1000;
  /** @type {number | null} */
  var timer = null;
  var busy = false;
  var trimMode = 'off';
  /**
   * The element with this id, of this type: the markup is served with this script.
   * @template {HTMLElement} T
   * @param {string} id
   * @param {{ new (): T }} type
   * @returns {T}
   */
  function element(id, type) {
    var e = document.getElementById(id);
    if (!(e instanceof type)) throw new Error('#' + id + ' is not a ' + type.name);
    return e;
  }
  /** @param {string} id */
  var $ = function (id) { return element(id, HTMLElement); };
  /** @type {Record<string, string>} */
  var COLORS = {};
  ['v8', 'ab', 'alloc', 'held', 'other', 'rss', 'trim'].forEach(function (k) {
    COLORS[k] = getComputedStyle(document.documentElement).getPropertyValue('--' + k).trim();
  });

  /** @param {number | null | undefined} b */
  function bytes(b) {
    if (b === null || b === undefined) return '\u2014';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0, v = b;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + units[i];
  }
  /** @param {string} id @param {string} value */
  function text(id, value) { $(id).textContent = value; }
  /** @param {string} id @param {Row[]} rows */
  function fillTable(id, rows) {
    var t = $(id);
    while (t.firstChild) t.removeChild(t.firstChild);
    rows.forEach(function (r) {
      var tr = document.createElement('tr');
      var a = document.createElement('td'); a.textContent = r[0];
      var b = document.createElement('td'); b.textContent = r[1];
      if (r[2]) b.className = 'num';
      tr.appendChild(a); tr.appendChild(b); t.appendChild(tr);
    });
  }

  /** @param {Sample} j @returns {Point} */
  function split(j) {
    var s = j.stats;
    var rss = s.process.rss;
    // A program read through its agent (serve --pid) is not Node: it has no V8 heap.
    var v8 = s.v8 ? s.v8.physical : 0;
    // An allocator that does not split its resident memory into allocated and held back
    // (mimalloc) still owns all of it: count it as the allocator's, not as "other".
    var unsplit = s.allocated === null && s.heldBack === null && s.resident !== null;
    var alloc = unsplit ? s.resident : s.allocated, held = s.heldBack;
    var known = v8 + (alloc || 0) + (held || 0);
    return { t: s.time, rss: rss, v8: v8, alloc: alloc, held: held, unsplit: unsplit,
      other: rss === null ? null : Math.max(0, rss - known) };
  }

  /** @param {number} v */
  function niceMax(v) {
    if (!(v > 0)) return 1024 * 1024;
    var mib = 1024 * 1024;
    var steps = [1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50, 64, 80, 100, 128, 200, 256, 400, 512, 800, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
    for (var i = 0; i < steps.length; i++) if (steps[i] * mib >= v) return steps[i] * mib;
    return Math.ceil(v / (65536 * mib)) * 65536 * mib;
  }

  /**
   * A canvas sized to its box in device pixels, its context cleared and scaled to CSS pixels.
   * @param {string} id
   */
  function canvas(id) {
    var c = element(id, HTMLCanvasElement);
    var dpr = window.devicePixelRatio || 1;
    var w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
    }
    var g = c.getContext('2d');
    if (!g) throw new Error('#' + id + ' has no 2d context');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    return { g: g, w: w, h: h };
  }

  function draw() {
    var cv = canvas('chart'), g = cv.g, w = cv.w, h = cv.h;
    var L = 78, R = 12, T = 10, B = 26;
    var pw = w - L - R, ph = h - T - B;
    var top = 0;
    points.forEach(function (p) { top = Math.max(top, p.rss || 0, p.v8 + (p.alloc || 0) + (p.held || 0) + (p.other || 0)); });
    var ymax = niceMax(top * 1.05);
    var now = points.length ? points[points.length - 1].t : Date.now();
    var span = Math.max(60000, points.length ? now - points[0].t : 0);
    var t0 = now - span;
    /** @param {number} t */
    var x = function (t) { return L + ((t - t0) / span) * pw; };
    /** @param {number} v */
    var y = function (v) { return T + ph - (v / ymax) * ph; };

    g.font = '12px system-ui, sans-serif';
    g.fillStyle = '#5b6473';
    g.strokeStyle = '#e3e6ea';
    g.lineWidth = 1;
    g.textAlign = 'right'; g.textBaseline = 'middle';
    for (var i = 0; i <= 4; i++) {
      var v = (ymax * i) / 4, yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke();
      g.fillText(bytes(v), L - 8, yy);
    }
    g.textAlign = 'center'; g.textBaseline = 'top';
    var tick = span > 600000 ? 120000 : span > 240000 ? 60000 : span > 120000 ? 30000 : 10000;
    for (var tt = now; tt >= t0; tt -= tick) {
      var xx = x(tt);
      g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke();
      g.fillText(tt === now ? 'now' : '-' + Math.round((now - tt) / 1000) + 's', xx, T + ph + 6);
    }
    if (!points.length) return;

    /** @type {Array<'v8' | 'alloc' | 'held' | 'other'>} */
    var layers = ['v8', 'alloc', 'held', 'other'];
    var below = points.map(function () { return 0; });
    layers.forEach(function (k) {
      var upper = points.map(function (p, i) { return below[i] + (p[k] || 0); });
      g.beginPath();
      if (points.length === 1) {
        g.rect(x(points[0].t) - 3, y(upper[0]), 6, y(below[0]) - y(upper[0]));
      } else {
        points.forEach(function (p, i) { i ? g.lineTo(x(p.t), y(upper[i])) : g.moveTo(x(p.t), y(upper[i])); });
        for (var j = points.length - 1; j >= 0; j--) g.lineTo(x(points[j].t), y(below[j]));
        g.closePath();
      }
      g.fillStyle = COLORS[k];
      g.fill();
      below = upper;
    });
    g.beginPath();
    g.strokeStyle = COLORS.rss; g.lineWidth = 2;
    points.forEach(function (p, i) { if (p.rss !== null) { i ? g.lineTo(x(p.t), y(p.rss)) : g.moveTo(x(p.t), y(p.rss)); } });
    g.stroke();
  }

  /** @param {Sample} j */
  function render(j) {
    var s = j.stats, p = split(j);
    var a = j.allocator;
    text('allocator', a.name + (a.version ? ' ' + a.version : ''));
    text('rss', bytes(p.rss));
    text('v8', bytes(p.v8));
    text('allocLabel', p.unsplit ? 'allocator: resident (allocated + held back)' : 'allocator: allocated');
    text('alloc', bytes(p.alloc));
    text('held', bytes(p.held) + (s.heldBackRatio !== null ? ' (' + Math.round(s.heldBackRatio * 100) + '%)' : ''));
    text('releasable', bytes(s.releasable));
    text('other', bytes(p.other));
    fillTable('allocTable', [
      ['allocated', bytes(s.allocated), 1], ['resident', bytes(s.resident), 1], ['held back', bytes(s.heldBack), 1],
      ['releasable', bytes(s.releasable), 1], ['mapped', bytes(s.mapped), 1],
      ['RSS anon / file / shmem', bytes(s.process.rssAnon) + ' / ' + bytes(s.process.rssFile) + ' / ' + bytes(s.process.rssShmem), 1],
      ['swap', bytes(s.process.swap), 1],
      ['V8 heap used / total', s.v8 ? bytes(s.v8.heapUsed) + ' / ' + bytes(s.v8.heapTotal) : bytes(null), 1],
      ['V8 external', bytes(s.v8 ? s.v8.external : null), 1],
      ['sample cost', s.costMs.toFixed(2) + ' ms', 1]
    ]);
    var t = j.trims, at = j.autoTrim;
    /** @type {Row[]} */
    var trimRows = [['trims (all callers)', String(t.trims), 1], ['released by trims', bytes(t.releasedBytes), 1], ['time in trims', t.durationMs.toFixed(1) + ' ms', 1]];
    if (at) {
      var skips = at.skips;
      trimRows.push(['auto-trim', (at.running ? 'running' : 'stopped') + ', every ' + Math.round(at.intervalMs / 1000) + ' s']);
      trimRows.push(['auto-trim trims / released', at.trims + ' / ' + bytes(at.releasedBytes), 1]);
      Object.keys(skips).forEach(function (r) { if (skips[r]) trimRows.push(['auto-trim skipped: ' + r, String(skips[r]), 1]); });
      if (at.lastTrim) trimRows.push(['last auto-trim', new Date(at.lastTrim.time).toLocaleTimeString() + ', ' + bytes(at.lastTrim.releasedBytes)]);
    } else {
      trimRows.push(['auto-trim', 'not started']);
    }
    fillTable('trimTable', trimRows);
    /** @type {Row[]} */
    var cfg = [['detected by', a.method]];
    if (a.library) cfg.push(['library', a.library]);
    (a.preload.entries || []).forEach(function (e) { cfg.push(['LD_PRELOAD entry', e.entry + (e.loaded ? '' : ' (not loaded)')]); });
    var env = j.configuration.env, envSet = 0;
    Object.keys(env).forEach(function (k) { var value = env[k]; if (value !== null && k !== 'LD_PRELOAD') { envSet++; cfg.push([k, value]); } });
    if (!envSet) cfg.push(['environment', 'no allocator variables set (defaults apply)']);
    var set = j.configuration.settings;
    if (set) Object.entries(set).forEach(function (e) { cfg.push([e[0], String(e[1])]); });
    else if (!j.configuration.error) cfg.push(['settings', 'none reported by this allocator']);
    if (j.configuration.error) cfg.push(['settings', 'unavailable: ' + j.configuration.error]);
    fillTable('configTable', cfg);
    var notes = $('notes');
    while (notes.firstChild) notes.removeChild(notes.firstChild);
    a.notes.concat(s.notes).forEach(function (n) { var li = document.createElement('li'); li.textContent = n; notes.appendChild(li); });
    $('notesPanel').hidden = !notes.firstChild;
    trimMode = j.endpoint.trim;
    $('trimPanel').hidden = trimMode === 'off';
    $('token').hidden = trimMode !== 'token';
    refreshMs = j.endpoint.refreshMs;
    // The doctor is asked only once the endpoint says it serves one (not with monitor: false).
    if (j.endpoint.doctor && !doctorOn) { doctorOn = true; pollDoctor(); }
  }

  function poll() {
    timer = null;
    if (busy || document.hidden) return;
    busy = true;
    fetch(base, { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(/** @param {Sample} j */ function (j) {
        var p = split(j);
        if (!points.length || points[points.length - 1].t !== p.t) points.push(p);
        if (points.length > MAX_POINTS) points.shift();
        render(j);
        draw();
        var st = $('status'); st.className = ''; st.textContent = 'updated ' + new Date(j.stats.time).toLocaleTimeString() + ', every ' + (refreshMs / 1000) + ' s';
      })
      .catch(function (e) {
        var st = $('status'); st.className = 'error'; st.textContent = 'cannot read ' + base + ': ' + e.message;
      })
      .then(function () { busy = false; schedule(); });
  }
  function schedule() { if (!timer && !document.hidden) timer = setTimeout(poll, refreshMs); }

  // The doctor: findings and the parts of RSS over the monitor's window, served by the handler
  // (GET doctor), so a page load shows the past. Trims are marked on that chart.
  /** @type {Diagnosis | null} */
  var doctor = null;
  var doctorOn = false;
  /** @type {number | null} */
  var doctorTimer = null;
  var DOCTOR_MIN_MS = 2000;
  /** @type {Array<['v8Heap' | 'arrayBuffers' | 'nativeInUse' | 'heldBack' | 'other', string]>} */
  var PARTS = [['v8Heap', 'v8'], ['arrayBuffers', 'ab'], ['nativeInUse', 'alloc'], ['heldBack', 'held'], ['other', 'other']];

  /** @param {HTMLTableRowElement} tr @param {string} value */
  function cell(tr, value) { var td = document.createElement('td'); td.textContent = value; tr.appendChild(td); }
  /** @param {string} k @param {unknown} v */
  function evidenceText(k, v) {
    if (v === null || v === undefined) return 'unknown';
    if (typeof v === 'number' && /Bytes$/.test(k)) return bytes(v);
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  /** @param {Diagnosis} d */
  function renderFindings(d) {
    var box = $('findings');
    while (box.firstChild) box.removeChild(box.firstChild);
    d.findings.forEach(function (f) {
      var div = document.createElement('div'); div.className = 'finding ' + f.severity; div.setAttribute('data-id', f.id);
      var h = document.createElement('h3');
      var sev = document.createElement('span'); sev.className = 'sev'; sev.textContent = f.severity + ' \u00b7 ' + f.id;
      h.appendChild(sev); h.appendChild(document.createTextNode(f.title)); div.appendChild(h);
      var p = document.createElement('p'); p.textContent = f.summary; div.appendChild(p);
      var det = document.createElement('details'); var sum = document.createElement('summary'); sum.textContent = 'evidence'; det.appendChild(sum);
      var table = document.createElement('table'); var body = document.createElement('tbody');
      Object.keys(f.evidence).forEach(function (k) { var tr = document.createElement('tr'); cell(tr, k); cell(tr, evidenceText(k, f.evidence[k])); body.appendChild(tr); });
      table.appendChild(body); det.appendChild(table); div.appendChild(det);
      if (f.advice.length) {
        var ul = document.createElement('ul');
        f.advice.forEach(function (a) { var li = document.createElement('li'); li.textContent = a; ul.appendChild(li); });
        div.appendChild(ul);
      }
      box.appendChild(div);
    });
    var none = !d.findings.length;
    var msg = none ? 'No findings.' : '';
    if (d.notes && d.notes.length) msg += (msg ? ' ' : '') + d.notes.join(' ');
    text('doctorNote', msg + ' Window: ' + d.window.samples + ' samples over ' + Math.round((d.window.end - d.window.start) / 1000) + ' s.');
  }

  function drawHistory() {
    var cv = canvas('history'), g = cv.g, w = cv.w, h = cv.h;
    var pts = doctor ? doctor.parts : [];
    var L = 78, R = 12, T = 10, B = 26, pw = w - L - R, ph = h - T - B;
    var top = 0;
    pts.forEach(function (p) {
      var sum = 0; PARTS.forEach(function (k) { sum += p[k[0]] || 0; });
      top = Math.max(top, p.rss || 0, sum);
    });
    var ymax = niceMax(top * 1.05);
    var t1 = pts.length ? pts[pts.length - 1].time : Date.now();
    var t0 = pts.length ? pts[0].time : t1 - 60000;
    var span = Math.max(1000, t1 - t0);
    /** @param {number} t */
    var x = function (t) { return L + ((t - t0) / span) * pw; };
    /** @param {number} v */
    var y = function (v) { return T + ph - (v / ymax) * ph; };
    g.font = '12px system-ui, sans-serif'; g.fillStyle = '#5b6473'; g.strokeStyle = '#e3e6ea'; g.lineWidth = 1;
    g.textAlign = 'right'; g.textBaseline = 'middle';
    for (var i = 0; i <= 4; i++) { var v = (ymax * i) / 4, yy = Math.round(y(v)) + 0.5; g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke(); g.fillText(bytes(v), L - 8, yy); }
    g.textAlign = 'center'; g.textBaseline = 'top';
    for (var k = 0; k <= 4; k++) { var tt = t0 + (span * k) / 4; g.fillText(new Date(tt).toLocaleTimeString(), x(tt), T + ph + 6); }
    if (!pts.length) return;
    var below = pts.map(function () { return 0; });
    PARTS.forEach(function (part) {
      var upper = pts.map(function (p, i) { return below[i] + (p[part[0]] || 0); });
      g.beginPath();
      pts.forEach(function (p, i) { i ? g.lineTo(x(p.time), y(upper[i])) : g.moveTo(x(p.time), y(upper[i])); });
      for (var j = pts.length - 1; j >= 0; j--) g.lineTo(x(pts[j].time), y(below[j]));
      g.closePath(); g.fillStyle = COLORS[part[1]]; g.fill();
      below = upper;
    });
    g.beginPath(); g.strokeStyle = COLORS.rss; g.lineWidth = 2;
    var started = false;
    pts.forEach(function (p) { if (p.rss !== null) { started ? g.lineTo(x(p.time), y(p.rss)) : g.moveTo(x(p.time), y(p.rss)); started = true; } });
    g.stroke();
    var trims = pts.filter(function (p) { return p.trimmedBytes !== null && p.trimmedBytes !== undefined; });
    g.strokeStyle = COLORS.trim; g.fillStyle = COLORS.trim; g.lineWidth = 2; g.textAlign = 'left';
    trims.forEach(function (p) {
      var xx = Math.round(x(p.time)) + 0.5;
      g.setLineDash([4, 3]); g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke(); g.setLineDash([]);
      g.fillText('trim \u2212' + bytes(p.trimmedBytes), xx + 4, T + 2);
    });
    var released = trims.reduce(function (a, p) { return a + (p.trimmedBytes || 0); }, 0);
    text('historyTrims', trims.length ? trims.length + ' trim' + (trims.length > 1 ? 's' : '') + ' in the window, released ' + bytes(released) : 'no trims in the window');
  }

  function pollDoctor() {
    doctorTimer = null;
    if (document.hidden) return;
    fetch(base + 'doctor', { headers: { Accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        if (r.status === 404) { $('doctorPanel').hidden = true; $('historyPanel').hidden = true; return null; }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(/** @param {Diagnosis | null} d */ function (d) {
        if (!d) return;
        doctor = d;
        $('doctorPanel').hidden = false; $('historyPanel').hidden = false;
        renderFindings(d);
        drawHistory();
        doctorTimer = setTimeout(pollDoctor, Math.max(DOCTOR_MIN_MS, d.monitor.intervalMs));
      })
      .catch(function (e) { text('doctorNote', 'cannot read ' + base + 'doctor: ' + e.message); doctorTimer = setTimeout(pollDoctor, DOCTOR_MIN_MS); });
  }

  $('trimForm').addEventListener('submit', function (event) {
    // The form only gathers the token; the request is a fetch, never a navigation.
    event.preventDefault();
    var btn = element('trimButton', HTMLButtonElement);
    if (btn.disabled) return;
    /** @type {Record<string, string>} */
    var headers = {};
    if (trimMode === 'token') {
      var tok = element('token', HTMLInputElement).value.trim();
      if (!tok) { text('trimResult', 'enter the token first'); return; }
      headers.Authorization = 'Bearer ' + tok;
    }
    btn.disabled = true;
    text('trimResult', 'trimming\u2026');
    fetch(base + 'trim', { method: 'POST', headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(/** @param {{ ok: boolean, j: TrimResult & { error?: string } }} x */ function (x) {
        if (!x.ok) { text('trimResult', 'refused: ' + x.j.error); return; }
        var r = x.j;
        text('trimResult', r.supported
          ? 'released ' + bytes(r.releasedBytes) + ' in ' + r.durationMs.toFixed(1) + ' ms (RSS ' + bytes(r.rssBefore) + ' \u2192 ' + bytes(r.rssAfter) + ')'
          : 'nothing to trim: ' + r.notes.join('; '));
        if (timer) { clearTimeout(timer); timer = null; }
        poll();
        if (doctorTimer) { clearTimeout(doctorTimer); doctorTimer = setTimeout(pollDoctor, DOCTOR_MIN_MS); }
      })
      .catch(function (e) { text('trimResult', 'failed: ' + e.message); })
      .then(function () { btn.disabled = false; });
  });
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) return;
    poll();
    if (doctorOn && !doctorTimer) pollDoctor();
  });
  window.addEventListener('resize', function () { draw(); drawHistory(); });
  draw();
  poll();
})();
