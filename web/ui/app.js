// imgpipe web UI: upload images, choose a transform, follow each image
// through the pipeline. Plain JavaScript, no build step, no dependencies.
//
// Live status comes from the Server-Sent Events of /v1/events; every image
// that is not final is also polled (GET /v1/images/{id}) about every two
// seconds, so the page keeps working when the event stream is down.
'use strict';

(() => {
  const POLL_MS = 2000;
  const HIDDEN_POLL_MS = 10000;
  const POLL_BATCH = 8;
  const UPLOAD_CONCURRENCY = 3;
  const RECENT_PAGE = 12;
  // Live additions stop here; Refresh or Load more still work. This keeps a
  // page left open on a busy server from growing without end.
  const RECENT_LIVE_MAX = 60;

  const STATUS_LABEL = {
    uploading: 'Uploading',
    queued: 'Queued',
    processing: 'Processing',
    done: 'Done',
    failed: 'Failed',
    refused: 'Refused',
  };
  // Rank of a status: a view never moves a card backwards (a late poll answer
  // must not undo what a newer event showed), but within its run: a failed
  // image uploaded again starts a new run (retries one more) from queued.
  const RANK = { uploading: 0, queued: 1, processing: 2, done: 3, failed: 3, refused: 3 };
  const runOf = (v) => (v && v.retries) || 0;
  // supersedes tells whether view a may replace view b of the same image.
  const supersedes = (a, b) => !b || runOf(a) > runOf(b) || (runOf(a) === runOf(b) && RANK[a.status] >= RANK[b.status]);
  // Failures the server tries again when the image is uploaded again: they
  // come from the machine at the time, not the image (roles.RetryableFailure).
  const RETRYABLE = new Set(['timeout', 'canceled', 'workers_stopped', 'internal', 'transform_failed']);
  // Codes of a 400 about the file itself, which sending it again cannot cure.
  const FILE_FAULTS = new Set(['empty_body', 'no_file']);
  // Events that say an image is being worked on, before a poll confirms it.
  const PROCESSING_EVENTS = new Set(['transform.started', 'transform.retry']);

  const isFinal = (s) => RANK[s] === 3;

  // ---------------------------------------------------------------- helpers

  const $ = (sel, root = document) => root.querySelector(sel);

  // h builds an element. attrs: class, text, dataset, on<event>, or any
  // attribute (true gives an empty attribute; null, undefined and false are
  // left out). Text always goes in as text, never as HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function fmtBytes(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) return '';
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
  }

  const fmtFormat = (f) => (f ? String(f).toUpperCase() : '?');

  // readableSpec shows a query as typed, not as encoded
  // (watermark_text=© 2026, not watermark_text=%C2%A9+2026); the title
  // keeps the exact one.
  function readableSpec(spec) {
    try {
      return [...new URLSearchParams(spec || '')].map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join('&');
    } catch {
      return spec;
    }
  }

  // downloadName is what a result is saved as: the upload's name with the
  // variant and the result's extension (photo.png -> photo-thumb.webp).
  function downloadName(name, variant, format) {
    const base = String(name || 'image').replace(/\.[^./]{1,5}$/, '') || 'image';
    const ext = { jpeg: 'jpg', tiff: 'tif' }[format] || format || 'img';
    return `${base}${variant ? `-${variant}` : ''}.${ext}`;
  }

  function fmtInfo(info) {
    if (!info) return '';
    const parts = [fmtFormat(info.format)];
    if (info.width && info.height) parts.push(`${info.width}×${info.height}`);
    if (typeof info.size === 'number') parts.push(fmtBytes(info.size));
    return parts.join(' · ');
  }

  function fmtChange(before, after) {
    if (!before || !after || !before.size || typeof after.size !== 'number') return '';
    const pct = Math.round(((after.size - before.size) / before.size) * 100);
    if (pct === 0) return '±0 %';
    return pct < 0 ? `−${-pct} %` : `+${pct} %`;
  }

  function fmtTime(t) {
    const d = new Date(t);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function fmtDateTime(t) {
    const d = new Date(t);
    if (Number.isNaN(d.getTime()) || d.getFullYear() < 2000) return '';
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay ? fmtTime(t) : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }

  const announcer = $('#announcer');
  function announce(msg) {
    // Clear first so that the same message twice is read twice.
    announcer.textContent = '';
    setTimeout(() => { announcer.textContent = msg; }, 50);
  }

  // apiError reads the {"error":{"code","message"}} shape, or makes one from
  // whatever came back.
  function apiError(status, body, fallback) {
    if (body && typeof body.error === 'object' && body.error) {
      return { code: body.error.code || `http_${status}`, message: body.error.message || fallback };
    }
    if (status === 0) return { code: 'network', message: 'Could not reach the server. Check the connection and try again.' };
    return { code: `http_${status}`, message: fallback || `The server answered HTTP ${status}.` };
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    if (!r.ok) {
      const e = apiError(r.status, body, `${url}: HTTP ${r.status}`);
      const err = new Error(e.message);
      err.status = r.status;
      err.code = e.code;
      throw err;
    }
    return body;
  }

  // ------------------------------------------------------- image registry
  //
  // Every image id the page shows is tracked once, whatever number of cards
  // show it (an upload and the same image in the recent list).

  const tracked = new Map(); // id -> {view, cards, events, lastFetch, inflight, timer}

  const eventKey = (ev) => ev.id || `${ev.event}@${ev.time}`;

  // Events of images the page does not track yet, kept a while: an
  // upload's first events can arrive before its answer names the image.
  const early = new Map(); // id -> [event]
  const EARLY_IMAGES = 200;
  const EARLY_EVENTS = 20;
  function keepEarly(ev) {
    let list = early.get(ev.image_id);
    if (!list) {
      if (early.size >= EARLY_IMAGES) early.delete(early.keys().next().value);
      list = [];
      early.set(ev.image_id, list);
    }
    if (list.length < EARLY_EVENTS) list.push(ev);
  }

  // timeBefore tells whether RFC 3339 time a is before b, to the nanosecond
  // (a Date keeps milliseconds; events of one image are often closer).
  function timeBefore(a, b) {
    const fraction = (t) => Number(((/\.(\d+)/.exec(t) || [])[1] || '').padEnd(9, '0').slice(3, 9));
    const ma = Date.parse(a);
    const mb = Date.parse(b);
    return ma < mb || (ma === mb && fraction(a) < fraction(b));
  }

  // lastEvent is an image's latest event by time: the stream carries each
  // process's events in order, not the processes' in time order.
  function lastEvent(t) {
    let last = null;
    for (const ev of t.events.values()) {
      if (!last || !timeBefore(ev.time, last.time)) last = ev;
    }
    return last;
  }

  function track(id) {
    let t = tracked.get(id);
    if (!t) {
      t = { view: null, cards: new Set(), events: new Map(), lastFetch: 0, inflight: false, timer: 0 };
      for (const ev of early.get(id) || []) t.events.set(eventKey(ev), ev);
      early.delete(id);
      tracked.set(id, t);
    }
    return t;
  }

  function attach(card, id) {
    card.id = id;
    card.el.dataset.id = id;
    const t = track(id);
    t.cards.add(card);
    if (t.view) card.setView(t.view);
    const last = lastEvent(t);
    if (last) card.showEvent(last);
  }

  function detach(card) {
    card.dispose();
    const t = card.id && tracked.get(card.id);
    if (!t) return;
    t.cards.delete(card);
    if (!t.cards.size) {
      clearTimeout(t.timer);
      tracked.delete(card.id);
    }
  }

  function applyView(view) {
    if (!view || !view.id) return;
    const t = track(view.id);
    if (!supersedes(view, t.view)) return;
    t.view = view;
    for (const c of t.cards) c.setView(view);
  }

  async function refresh(id) {
    const t = tracked.get(id);
    if (!t || t.inflight) return;
    t.inflight = true;
    t.lastFetch = Date.now();
    try {
      applyView(await getJSON(`/v1/images/${encodeURIComponent(id)}`));
    } catch (err) {
      if (err.status === 404) {
        for (const c of t.cards) c.lost();
        if (t.view) t.view = { ...t.view, status: 'failed' };
      }
      // Anything else: the next poll tries again.
    } finally {
      t.inflight = false;
      t.lastFetch = Date.now();
    }
  }

  function scheduleRefresh(id, delay) {
    const t = tracked.get(id);
    if (!t) return;
    clearTimeout(t.timer);
    t.timer = setTimeout(() => refresh(id), delay);
  }

  // The fallback poll: each image that is not final, about every POLL_MS.
  setInterval(() => {
    const now = Date.now();
    const every = document.hidden ? HIDDEN_POLL_MS : POLL_MS;
    let n = 0;
    for (const [id, t] of tracked) {
      if (!t.view || isFinal(t.view.status) || t.inflight) continue;
      if (now - t.lastFetch < every - 100) continue;
      refresh(id);
      if (++n >= POLL_BATCH) break;
    }
  }, 500);

  // ------------------------------------------------------------------ card

  class Card {
    constructor({ filename = '', file = null, compact = false }) {
      this.id = '';
      this.filename = filename;
      this.compact = compact;
      this.status = '';
      this.view = null;
      this.renderKey = '';
      this.previewURL = file && /^image\//.test(file.type) ? URL.createObjectURL(file) : '';
      this.file = file;

      this.el = h('li', {
        class: compact ? 'card compact' : 'card',
        'data-testid': compact ? 'recent-card' : 'image-card',
        'data-filename': filename,
      });
      this.media = h('div', { class: 'card-media' });
      this.titleEl = h('h3', { class: 'card-title', title: filename, text: filename || 'Image' });
      this.badge = h('span', { class: 'badge', 'data-testid': 'status' });
      this.progress = h('progress', { class: 'upload-progress', max: '100', hidden: true, 'aria-label': `Upload of ${filename}` });
      this.specEl = h('p', { class: 'spec', hidden: true });
      this.facts = h('dl', { class: 'facts', hidden: true });
      this.errorEl = h('p', { class: 'error', 'data-testid': 'error', hidden: true });
      this.noteEl = h('p', { class: 'note', 'data-testid': 'note', hidden: true });
      this.eventEl = h('p', { class: 'last-event', 'data-testid': 'last-event', hidden: true });
      this.linksEl = h('p', { class: 'links', 'data-testid': 'links', hidden: true });
      this.activityList = h('ol', { class: 'activity-list' });
      this.activity = h('details', { class: 'activity', hidden: true },
        h('summary', { text: 'Activity' }), this.activityList);
      this.activity.addEventListener('toggle', () => {
        if (this.activity.open) this.loadActivity();
      });

      this.el.append(
        this.media,
        h('div', { class: 'card-body' },
          h('div', { class: 'card-head' }, this.titleEl, this.badge),
          this.progress, this.errorEl, this.noteEl, this.specEl, this.facts,
          this.eventEl, this.linksEl, this.activity),
      );
      this.setStatus(compact ? 'queued' : 'uploading');
      this.renderMedia();
    }

    get name() {
      return this.filename || (this.view && this.view.original && this.view.original.filename) || (this.id ? `${this.id.slice(0, 12)}…` : 'Image');
    }

    setStatus(status, { progress } = {}) {
      const prev = this.status;
      this.status = status;
      this.el.dataset.status = status;
      // An upload that never reached the server was not refused by it.
      let label = status === 'refused' && this.unsent ? 'Not sent' : STATUS_LABEL[status] || status;
      if (status === 'uploading' && typeof progress === 'number') label += ` ${Math.round(progress * 100)} %`;
      this.badge.textContent = label;
      this.badge.className = `badge badge-${status}`;
      this.progress.hidden = status !== 'uploading';
      if (typeof progress === 'number') this.progress.value = Math.round(progress * 100);
      if (prev && prev !== status && !this.compact && isFinal(status)) {
        const detail = status === 'failed' || status === 'refused' ? `: ${this.errorEl.textContent}` : '';
        announce(`${this.name}: ${label}${detail}`);
      }
      updateSessionControls();
    }

    // markDuplicate notes that this upload matched an image the server
    // already had (same bytes, same transform).
    markDuplicate() {
      this.noteEl.textContent = 'Same image and transform as an earlier upload: this is that image.';
      this.noteEl.hidden = false;
    }

    // markRequeued notes that the upload queued a failed image again.
    markRequeued() {
      this.noteEl.textContent = 'This image failed before for a reason that may have passed: it is queued for another try.';
      this.noteEl.hidden = false;
    }

    setProgress(fraction) {
      if (this.status === 'uploading') this.setStatus('uploading', { progress: fraction });
    }

    // refuse shows an upload that the server did not take.
    refuse(err, httpStatus, query) {
      this.sending = false;
      this.unsent = !httpStatus;
      this.showError(err.message, httpStatus ? `${httpStatus} ${err.code}` : err.code);
      if (query != null) this.showSpec(query || '(none)');
      if (this.file) {
        this.setFacts([['Before', [this.file.type || 'unknown type', fmtBytes(this.file.size)].join(' · '), 'before']]);
      }
      // A refusal of the file itself (413, 415, 422, a 400 about the file)
      // would come again; one of the transform (400, fixed in the form),
      // of the moment (429, 503) or of the network may not.
      const again = (httpStatus === 400 && !FILE_FAULTS.has(err.code)) ||
        httpStatus === 0 || httpStatus === 408 || httpStatus === 429 || httpStatus >= 500;
      if (this.file && again) {
        this.linksEl.replaceChildren(h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'retry', text: 'Try again',
          title: 'Upload this file again with the transform now in the form', onclick: () => retryUpload(this),
        }));
        this.linksEl.hidden = false;
      }
      this.setStatus('refused');
      this.renderMedia();
    }

    lost() {
      this.showError('The server no longer knows this image.', 'not_found');
      this.setStatus('failed');
      this.renderMedia();
    }

    showError(message, code) {
      this.errorEl.replaceChildren();
      if (!message) {
        this.errorEl.hidden = true;
        return;
      }
      if (code) this.errorEl.append(h('span', { class: 'error-code', text: code }), ' ');
      this.errorEl.append(message);
      this.errorEl.hidden = false;
    }

    showSpec(spec) {
      this.specEl.replaceChildren(h('span', { class: 'label', text: 'Spec ' }), h('code', { title: spec || '' }, breakable(readableSpec(spec) || '(none)')));
      this.specEl.hidden = false;
    }

    setFacts(rows) {
      this.facts.replaceChildren();
      for (const [term, desc, testid] of rows) {
        this.facts.append(h('div', { class: 'fact' }, h('dt', { text: term }), h('dd', { 'data-testid': testid, text: desc })));
      }
      this.facts.hidden = rows.length === 0;
    }

    setView(v) {
      // While its file is sent again, a card shows the upload, not the
      // run it retries (a poll or an event may still bring that): the
      // answer brings the new one.
      if (this.sending) return;
      const newRun = !!this.view && runOf(v) > runOf(this.view);
      this.view = v;
      if (!this.filename && v.original && v.original.filename) {
        this.titleEl.textContent = v.original.filename;
        this.titleEl.title = v.original.filename;
        this.el.dataset.filename = v.original.filename;
      } else if (!this.filename && v.id) {
        // Sent as a raw body, without a name: the id tells cards apart.
        this.titleEl.textContent = this.name;
        this.titleEl.title = v.id;
      }
      const results = v.results || (v.result ? [v.result] : []);
      const key = JSON.stringify([runOf(v), v.status, v.error || '', v.spec, results.map((r) => [r.variant, r.sha256, r.size])]);
      const changed = key !== this.renderKey;
      this.renderKey = key;
      // The error goes in before the status changes, so that the
      // announcement of a failure can read it.
      if (changed) this.showError(v.status === 'failed' ? v.error || 'The transform failed.' : '', v.status === 'failed' ? v.error_code || 'transform_failed' : '');
      if (newRun || RANK[v.status] >= RANK[this.status]) this.setStatus(v.status);
      if (!changed) return;

      this.showSpec(v.spec);
      const rows = [['Before', fmtInfo(v.original), 'before']];
      for (const r of results) {
        const change = fmtChange(v.original, r);
        const label = results.length > 1 ? `After (${r.variant})` : 'After';
        rows.push([label, fmtInfo(r) + (change ? ` (${change})` : ''), 'after']);
      }
      if (this.compact && v.created_at) rows.push(['Uploaded', fmtDateTime(v.created_at), 'created']);
      this.setFacts(rows);
      this.renderLinks();
      this.activity.hidden = this.compact;
      this.renderMedia();
      if (this.activity.open) this.loadActivity();
    }

    renderLinks() {
      const v = this.view;
      if (!v || !v.links) return;
      const link = (href, text, testid) => h('a', { href, text, 'data-testid': testid, target: '_blank', rel: 'noopener' });
      const results = v.results || (v.result ? [v.result] : []);
      const several = results.length > 1;
      const items = [link(v.links.original, 'Original', 'link-original')];
      if (v.status === 'done') {
        for (const r of results) {
          items.push(h('a', {
            href: this.resultURL(v, r, several), text: several ? `Download ${r.variant}` : 'Download',
            download: downloadName(this.name, several ? r.variant : '', r.format), 'data-testid': 'link-download',
          }));
        }
      }
      items.push(link(v.links.activity, 'Activity JSON', 'link-activity'));
      if (!this.compact) items.push(link(v.links.self, 'JSON', 'link-self'));
      if (v.status === 'failed' && this.file && this.query != null && RETRYABLE.has(v.error_code)) {
        items.push(h('button', {
          type: 'button', class: 'secondary small', 'data-testid': 'retry-failed', text: 'Try again',
          title: 'Upload this file again: the server queues it for a new try', onclick: () => retryUpload(this, this.query),
        }));
      }
      this.linksEl.replaceChildren();
      items.forEach((a, i) => {
        if (i) this.linksEl.append(' ');
        this.linksEl.append(a);
      });
      this.linksEl.hidden = false;
    }

    renderMedia() {
      const v = this.view;
      const results = v ? v.results || (v.result ? [v.result] : []) : [];
      if (v && v.status === 'done' && results.length) {
        const figs = results.map((r) => this.figure(v, r, results.length > 1));
        this.media.replaceChildren(...figs);
        this.media.className = `card-media has-result${results.length > 1 ? ' variants' : ''}`;
        this.dropPreview();
        return;
      }
      const status = this.status;
      if (this.previewURL && status !== 'refused') {
        const preview = h('img', { class: 'preview', src: this.previewURL, alt: `Preview of ${this.name}` });
        // A file the browser cannot show (TIFF, HEIF): the placeholder instead.
        preview.addEventListener('error', () => {
          this.dropPreview();
          this.renderMedia();
        }, { once: true });
        this.media.replaceChildren(preview);
        if (status !== 'failed') {
          this.media.append(h('span', { class: 'media-overlay', 'aria-hidden': 'true' }, h('span', { class: 'spinner' })));
        }
        this.media.className = `card-media pending media-${status}`;
        return;
      }
      const text = {
        uploading: 'Uploading…', queued: 'Waiting for a worker…', processing: 'Rendering…',
        failed: 'No result', refused: this.unsent ? 'Not sent' : 'Not accepted', done: 'Done',
      }[status] || '';
      this.media.replaceChildren(h('div', { class: 'placeholder' },
        isFinal(status) ? h('span', { class: 'placeholder-icon', 'aria-hidden': 'true', text: status === 'done' ? '✓' : '!' })
          : h('span', { class: 'spinner', 'aria-hidden': 'true' }),
        h('span', { text })));
      this.media.className = `card-media pending media-${status}`;
    }

    resultURL(v, r, several) {
      return (v.links.variants && v.links.variants[r.variant]) ||
        (several ? `${v.links.result}?variant=${encodeURIComponent(r.variant)}` : v.links.result);
    }

    figure(v, r, several) {
      const src = this.resultURL(v, r, several);
      const img = h('img', {
        src,
        alt: `${this.name}, ${several ? `variant ${r.variant}, ` : ''}result ${fmtInfo(r)}`,
        width: r.width || null,
        height: r.height || null,
        loading: this.compact ? 'lazy' : null,
        decoding: 'async',
        'data-testid': 'result-img',
        'data-variant': r.variant,
      });
      img.addEventListener('error', () => {
        img.replaceWith(h('div', { class: 'placeholder' },
          h('span', { text: `This browser cannot show ${fmtFormat(r.format)}.` })));
      }, { once: true });
      const fig = h('figure', { class: 'variant', 'data-testid': 'variant', 'data-variant': r.variant },
        h('a', { href: src, target: '_blank', rel: 'noopener', class: 'img-link', 'aria-label': `Open ${several ? `variant ${r.variant}` : 'result'} of ${this.name}` }, img));
      if (several) fig.append(h('figcaption', { title: `${r.variant}: ${fmtInfo(r)}`, text: r.variant }));
      return fig;
    }

    dropPreview() {
      if (this.previewURL) {
        URL.revokeObjectURL(this.previewURL);
        this.previewURL = '';
      }
    }

    showEvent(ev) {
      const parts = [ev.event];
      if (ev.role) parts.push(ev.instance ? `${ev.role} on ${ev.instance}` : ev.role);
      const time = fmtTime(ev.time);
      if (time) parts.push(time);
      this.eventEl.replaceChildren(h('span', { class: 'label', text: 'Last event ' }), parts.join(' · '));
      this.eventEl.hidden = this.compact;
      if (this.activity.open) this.renderActivity();
    }

    async loadActivity() {
      if (!this.view) return;
      const t = tracked.get(this.id);
      try {
        const body = await getJSON(this.view.links.activity);
        for (const ev of body.events || []) t && t.events.set(eventKey(ev), ev);
        this.renderActivity();
      } catch (err) {
        this.activityList.replaceChildren(h('li', { class: 'error', text: `Could not load the activity: ${err.message}` }));
      }
    }

    renderActivity() {
      const t = tracked.get(this.id);
      const events = t ? [...t.events.values()].sort((a, b) => String(a.time).localeCompare(String(b.time))) : [];
      if (!events.length) {
        this.activityList.replaceChildren(h('li', { class: 'hint', text: 'No activity recorded yet.' }));
        return;
      }
      this.activityList.replaceChildren(...events.map((ev) => h('li', {},
        h('time', { datetime: ev.time, text: fmtTime(ev.time) }), ' ',
        h('strong', { text: ev.event }), ' ',
        h('span', { class: 'muted', text: [ev.role, ev.instance].filter(Boolean).join(' @ ') }),
        ev.detail ? h('span', { class: 'detail', text: ` — ${ev.detail}` }) : null)));
    }

    dispose() {
      this.dropPreview();
      this.el.remove();
    }
  }

  // -------------------------------------------------------- transform form

  const form = $('#upload-form');
  const fileInput = $('#file-input');
  const uploadButton = $('#upload-button');
  const clearSelection = $('#clear-selection');
  const formMessage = $('#form-message');
  const customPanel = $('#custom-panel');
  const presetPanel = $('#preset-panel');
  const presetList = $('#preset-list');
  const presetStatus = $('#preset-status');
  const specPreview = $('#spec-preview');
  const defaultNote = $('#default-note');
  // From /v1/presets and /v1/limits; until they load, the server checks.
  let defaultSpec = '';
  let limits = {};

  const mode = () => (form.elements.mode.value === 'preset' ? 'preset' : 'custom');

  function setMode() {
    const preset = mode() === 'preset';
    customPanel.hidden = preset;
    customPanel.disabled = preset;
    presetPanel.hidden = !preset;
    presetPanel.disabled = !preset;
    updatePreview();
  }

  function clearInvalid() {
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  function wholeNumber(id, label, lo, hi) {
    const el = $(`#${id}`);
    const v = el.value.trim();
    if (el.validity && el.validity.badInput) return { error: `${label} must be a number.`, field: el };
    if (!v) return {};
    if (!/^\d+$/.test(v) || +v < lo || +v > hi) return { error: `${label} must be a whole number from ${lo} to ${hi}.`, field: el };
    return { value: String(+v) };
  }

  // encodeQuery encodes params, leaving commas as they are (preset=a,b reads
  // better than preset=a%2Cb and means the same).
  const encodeQuery = (params) => params.toString().replace(/%2C/gi, ',');

  // buildSpec reads the form into the query of POST /v1/images.
  function buildSpec() {
    const p = new URLSearchParams();
    if (mode() === 'preset') {
      const names = [...presetList.querySelectorAll('input:checked')].map((i) => i.value);
      if (!names.length) return { error: 'Choose at least one preset, or switch to Custom.', field: presetList.querySelector('input') };
      p.set('preset', names.join(','));
      return { params: p };
    }
    const maxDim = limits.max_output_dimension || 16384;
    for (const [id, name, label, lo, hi] of [
      ['width', 'width', 'Width', 1, maxDim],
      ['height', 'height', 'Height', 1, maxDim],
    ]) {
      const r = wholeNumber(id, label, lo, hi);
      if (r.error) return r;
      if (r.value) p.set(name, r.value);
    }
    if ($('#fit').value) p.set('fit', $('#fit').value);
    if ($('#format').value) p.set('format', $('#format').value);
    const q = wholeNumber('quality', 'Quality', 1, 100);
    if (q.error) return q;
    if (q.value) p.set('quality', q.value);
    const wm = $('#watermark-text').value.trim();
    if (wm) p.set('watermark_text', wm);
    if ($('#grayscale').checked) p.set('grayscale', 'true');
    const blurEl = $('#blur');
    const blur = blurEl.value.trim();
    if ((blurEl.validity && blurEl.validity.badInput) || (blur && !(Number(blur) >= 0 && Number(blur) <= 50))) {
      return { error: 'Blur must be a number from 0 to 50.', field: blurEl };
    }
    if (blur && Number(blur) > 0) p.set('blur', String(Number(blur)));
    if ($('#rotate').value) p.set('rotate', $('#rotate').value);
    const extra = $('#extra-params').value.trim().replace(/^[?&]+/, '');
    if (extra) {
      for (const [k, v] of new URLSearchParams(extra)) if (k) p.set(k, v);
    }
    return { params: p };
  }

  function updatePreview() {
    const spec = buildSpec();
    if (spec.error) {
      // No request to show: this one would be refused (no preset ticked,
      // a width out of range), and the default does not apply to it.
      specPreview.textContent = spec.error;
      specPreview.classList.add('invalid');
      defaultNote.hidden = true;
      return;
    }
    specPreview.classList.remove('invalid');
    const q = spec.params ? encodeQuery(spec.params) : '';
    specPreview.textContent = `POST /v1/images${q ? `?${q}` : ''}`;
    // With no parameter at all the server applies its default transform:
    // say which, rather than let "default" read as "unchanged".
    defaultNote.hidden = !!q || !defaultSpec;
    defaultNote.replaceChildren('No parameters: the server\'s default applies, ', h('code', {}, breakable(defaultSpec)), '.');
  }

  function showFormMessage(msg, field) {
    formMessage.textContent = msg || '';
    formMessage.hidden = !msg;
    if (field) {
      field.setAttribute('aria-invalid', 'true');
      field.focus();
    }
  }

  // breakable lets a long spec wrap after each '&' or ';'.
  function breakable(text) {
    const out = [];
    for (const part of text.split(/(?<=[&;])/)) {
      if (out.length) out.push(document.createElement('wbr'));
      out.push(part);
    }
    return out;
  }

  async function loadLimits() {
    try {
      limits = (await getJSON('/v1/limits')) || {};
    } catch {
      return; // the server still checks every upload
    }
    if (limits.max_output_dimension) for (const id of ['width', 'height']) $(`#${id}`).max = String(limits.max_output_dimension);
    updatePreview();
  }

  async function loadPresets() {
    const modePreset = $('#mode-preset');
    try {
      const body = await getJSON('/v1/presets');
      defaultSpec = (body && body.default) || '';
      updatePreview();
      const presets = (body && body.presets) || {};
      const names = Object.keys(presets).sort();
      if (!names.length) {
        presetStatus.textContent = 'This server has no presets.';
        modePreset.disabled = true;
        return;
      }
      presetList.replaceChildren(...names.map((name, i) => h('label', { class: 'preset-option', 'data-testid': 'preset-option' },
        h('input', { type: 'checkbox', id: `preset-${i}`, name: 'preset', value: name }),
        h('span', { class: 'preset-name', text: name }),
        h('code', { class: 'preset-spec' }, breakable(String(presets[name]))))));
      presetStatus.textContent = '';
      presetStatus.hidden = true;
    } catch (err) {
      presetStatus.textContent = `Could not load the presets: ${err.message}`;
      modePreset.disabled = true;
    }
  }

  // ------------------------------------------------------------ selection

  const pending = [];
  const selection = $('#selection');
  const selectedList = $('#selected-files');

  function addFiles(list) {
    let added = 0;
    for (const f of list || []) {
      if (pending.some((p) => p.name === f.name && p.size === f.size && p.lastModified === f.lastModified)) continue;
      pending.push(f);
      added++;
    }
    if (added) showFormMessage('');
    renderSelection();
  }

  function renderSelection() {
    selectedList.replaceChildren(...pending.map((f, i) => h('li', { class: 'selected-file', 'data-testid': 'selected-file' },
      h('span', { class: 'file-name', title: f.name, text: f.name }),
      h('span', { class: 'muted', text: [f.type || 'unknown type', fmtBytes(f.size)].join(' · ') }),
      h('button', {
        type: 'button', class: 'icon-button', 'aria-label': `Remove ${f.name}`, text: '×',
        onclick: () => {
          pending.splice(i, 1);
          renderSelection();
          (selectedList.querySelector('button') || fileInput).focus();
        },
      }))));
    selection.hidden = pending.length === 0;
    $('#selection-count').textContent = pending.length ? `(${pending.length})` : '';
    uploadButton.disabled = pending.length === 0;
    clearSelection.disabled = pending.length === 0;
    uploadButton.textContent = pending.length > 1 ? `Upload ${pending.length} files` : 'Upload';
  }

  fileInput.addEventListener('change', () => {
    addFiles(fileInput.files);
    // Let the same file be picked again later.
    fileInput.value = '';
  });
  clearSelection.addEventListener('click', () => {
    pending.length = 0;
    renderSelection();
    fileInput.focus();
  });

  // Drag and drop anywhere on the page; paste works too.
  const hasFiles = (e) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  let dragDepth = 0;
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth++;
    document.body.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) document.body.classList.remove('dragging');
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    document.body.classList.remove('dragging');
    addFiles(e.dataTransfer.files);
  });
  document.addEventListener('paste', (e) => {
    const files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) addFiles(files);
  });

  // --------------------------------------------------------------- upload

  const uploadsEl = $('#uploads');
  const uploadCards = new Set();
  const queue = [];
  let active = 0;

  // Leaving the page would drop the files not sent yet: the browser asks.
  window.addEventListener('beforeunload', (e) => {
    if (active || queue.length) e.preventDefault();
  });

  function updateSessionControls() {
    $('#uploads-empty').hidden = uploadCards.size > 0;
    $('#clear-finished').hidden = ![...uploadCards].some((c) => isFinal(c.status));
  }

  function sendFile(file, query, onProgress) {
    return new Promise((resolve) => {
      const fd = new FormData();
      fd.append('file', file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', `/v1/images${query ? `?${query}` : ''}`);
      xhr.setRequestHeader('Accept', 'application/json');
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable && e.total) onProgress(e.loaded / e.total);
      });
      xhr.addEventListener('load', () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
        resolve({ status: xhr.status, body });
      });
      xhr.addEventListener('error', () => resolve({ status: 0, body: null }));
      xhr.addEventListener('abort', () => resolve({ status: 0, body: null }));
      xhr.send(fd);
    });
  }

  // accept reads the answer to an upload: one image, {"images":[...]} or an
  // error, and shows it on the card.
  function accept(card, query, { status, body }) {
    card.sending = false;
    let item = body;
    if (body && Array.isArray(body.images)) item = body.images.find((i) => i.filename === card.filename) || body.images[0];
    if (status >= 200 && status < 300 && item && item.id && !(item.error && typeof item.error === 'object')) {
      const before = card.view; // the failure a Try again answers, if any
      // Before attach: the image may be known already (the recent list, a
      // fast failure), and attach renders its view, Try again included.
      // The answer goes in first, so that the view attach renders is the
      // newest (a new run's, not the failure it replaces).
      card.query = query;
      applyView(item);
      attach(card, item.id);
      if (item.duplicate && before && before.status === 'failed' && runOf(item) > runOf(before)) card.markRequeued();
      else if (item.duplicate) card.markDuplicate();
      if (!isFinal(item.status)) scheduleRefresh(item.id, 300);
      return;
    }
    const fallback = status ? `The server refused the file (HTTP ${status}).` : '';
    card.refuse(apiError(status, item && item.error ? item : body, fallback), status, query);
  }

  function pump() {
    while (active < UPLOAD_CONCURRENCY && queue.length) {
      const { card, file, query } = queue.shift();
      active++;
      card.setStatus('uploading', { progress: 0 });
      sendFile(file, query, (f) => card.setProgress(f))
        .then((res) => accept(card, query, res))
        .catch((err) => card.refuse({ code: 'client', message: String(err && err.message ? err.message : err) }, 0, query))
        .finally(() => {
          active--;
          pump();
        });
    }
  }

  // retryUpload sends a card's file again: a refused one with the form's
  // transform as it is now (fixed, after a 400), a failed one with the
  // query it was sent with (the same image, queued for another try).
  function retryUpload(card, sentWith) {
    let query = sentWith;
    if (query == null) {
      const spec = buildSpec();
      if (spec.error) {
        showFormMessage(spec.error, spec.field);
        return;
      }
      query = encodeQuery(spec.params);
    }
    card.sending = true;
    card.showError('');
    card.linksEl.hidden = true; // it held the focused button: keep focus on the card
    card.setStatus('uploading', { progress: 0 });
    card.renderMedia();
    card.titleEl.tabIndex = -1;
    card.titleEl.focus();
    queue.push({ card, file: card.file, query });
    pump();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearInvalid();
    if (!pending.length) {
      showFormMessage('Choose at least one image first.', fileInput);
      return;
    }
    const spec = buildSpec();
    if (spec.error) {
      showFormMessage(spec.error, spec.field);
      return;
    }
    const tooBig = pending.filter((f) => limits.max_upload_bytes && f.size > limits.max_upload_bytes);
    if (tooBig.length) {
      const names = tooBig.map((f) => `${f.name} (${fmtBytes(f.size)})`).join(', ');
      const first = selectedList.querySelectorAll('button')[pending.indexOf(tooBig[0])];
      showFormMessage(`This server takes images of up to ${fmtBytes(limits.max_upload_bytes)}; remove ${names}.`, first);
      return;
    }
    showFormMessage('');
    const q = encodeQuery(spec.params);
    const files = pending.splice(0);
    renderSelection();
    const frag = document.createDocumentFragment();
    for (const file of files) {
      const card = new Card({ filename: file.name, file });
      uploadCards.add(card);
      frag.append(card.el);
      queue.push({ card, file, query: q });
    }
    uploadsEl.prepend(frag);
    updateSessionControls();
    // The Upload button, focused, is now disabled: focus would fall to the
    // page. The file picker is where the next batch starts.
    fileInput.focus();
    announce(`Uploading ${files.length} file${files.length > 1 ? 's' : ''}.`);
    pump();
  });

  $('#clear-finished').addEventListener('click', () => {
    for (const c of [...uploadCards]) {
      if (!isFinal(c.status)) continue;
      uploadCards.delete(c);
      if (c.id) detach(c);
      else c.dispose();
    }
    updateSessionControls();
  });

  form.addEventListener('input', () => {
    clearInvalid();
    updatePreview();
  });
  form.addEventListener('change', (e) => {
    if (e.target && e.target.name === 'mode') setMode();
    else updatePreview();
  });

  // --------------------------------------------------------------- recent

  const recentList = $('#recent-list');
  const recentStatus = $('#recent-status');
  const recentMore = $('#recent-more');
  const recentCards = new Map(); // id -> Card
  let recentCursor = '';
  let recentLoaded = false;

  function recentCard(view, { prepend = false } = {}) {
    if (recentCards.has(view.id)) return;
    const card = new Card({ filename: (view.original && view.original.filename) || '', compact: true });
    recentCards.set(view.id, card);
    attach(card, view.id);
    applyView(view);
    if (prepend) recentList.prepend(card.el);
    else recentList.append(card.el);
    recentStatus.hidden = true;
  }

  let recentBusy = false;
  async function loadRecent(reset) {
    if (recentBusy) return;
    recentBusy = true;
    if (!recentCards.size) {
      recentStatus.hidden = false;
      recentStatus.textContent = 'Loading…';
    }
    recentMore.disabled = true;
    $('#recent-refresh').disabled = true;
    try {
      const q = new URLSearchParams({ limit: String(RECENT_PAGE) });
      if (recentCursor && !reset) q.set('cursor', recentCursor);
      const body = await getJSON(`/v1/images?${q}`);
      if (reset) {
        // Replace the list only once the new page is here: no flicker.
        for (const c of recentCards.values()) detach(c);
        recentCards.clear();
      }
      for (const v of body.images || []) recentCard(v);
      recentCursor = body.next_cursor || '';
      recentMore.hidden = !recentCursor;
      recentStatus.textContent = recentCards.size ? '' : 'No images yet.';
      recentStatus.hidden = recentCards.size > 0;
    } catch (err) {
      recentStatus.hidden = false;
      recentStatus.textContent = `Could not load recent images: ${err.message}`;
    } finally {
      recentMore.disabled = false;
      $('#recent-refresh').disabled = false;
      recentLoaded = true;
      recentBusy = false;
    }
  }

  $('#recent-refresh').addEventListener('click', () => loadRecent(true));
  recentMore.addEventListener('click', () => loadRecent(false));

  // Images accepted while the page is open join the top of the list.
  const joining = new Set();
  async function joinRecent(id) {
    if (joining.has(id) || recentCards.has(id) || recentCards.size + joining.size >= RECENT_LIVE_MAX) return;
    joining.add(id);
    try {
      recentCard(await getJSON(`/v1/images/${encodeURIComponent(id)}`), { prepend: true });
    } catch { /* it shows on the next refresh */ } finally {
      joining.delete(id);
    }
  }

  // ---------------------------------------------------------------- events

  const liveStatus = $('#live-status');
  function setLive(state) {
    liveStatus.dataset.state = state;
    liveStatus.textContent = {
      connecting: 'Connecting…',
      live: 'Live',
      reconnecting: 'Reconnecting… (polling)',
      polling: 'Polling',
    }[state] || state;
    liveStatus.title = state === 'live'
      ? 'Status changes arrive as they happen.'
      : 'Live events are unavailable; images are checked every 2 s.';
  }

  function onEvent(ev) {
    if (!ev || !ev.image_id) return;
    const id = ev.image_id;
    if (ev.event === 'accepted' && recentLoaded) joinRecent(id);
    const t = tracked.get(id);
    if (!t) {
      keepEarly(ev);
      return;
    }
    t.events.set(eventKey(ev), ev);
    const last = lastEvent(t);
    for (const c of t.cards) c.showEvent(last);
    if (!t.view || isFinal(t.view.status)) return;
    if (PROCESSING_EVENTS.has(ev.event) && t.view.status === 'queued') applyView({ ...t.view, status: 'processing' });
    scheduleRefresh(id, 50);
  }

  let source = null;
  function connectEvents() {
    if (!('EventSource' in window)) {
      setLive('polling');
      return;
    }
    setLive('connecting');
    source = new EventSource('/v1/events');
    source.addEventListener('open', () => setLive('live'));
    source.addEventListener('message', (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      onEvent(ev);
    });
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (for example a non-stream answer): try again later.
        setLive('polling');
        source.close();
        setTimeout(connectEvents, 10000);
      } else {
        setLive('reconnecting');
      }
    });
  }

  // ------------------------------------------------------------------ start

  setMode();
  renderSelection();
  updateSessionControls();
  connectEvents();
  Promise.allSettled([loadPresets(), loadLimits(), loadRecent(true)]).then(() => {
    updatePreview();
    document.body.dataset.ready = 'true';
  });
})();
