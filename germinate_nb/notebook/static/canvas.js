// DagCanvas front end (anywidget ESM, no build step).
//
// Layers inside the viewport (.germinate-canvas):
//   .gc-layer   the kernel's matplotlib SVG (edges, arrowheads, back edges, phase headers),
//               CSS-transformed: translate(tx, ty) scale(k)
//   canvas      nodes, labels, selection ring, search/focus highlights, drawn each frame that
//               something changed, at the same transform (screen = t + k * user)
//   .gc-tip     the hover tooltip
// The view {k, tx, ty, vw, vh, label_px} is written back to the kernel (debounced) for node_xy.

const LABEL_PX = 11; // label font size on screen, whatever the zoom
const MIN_ROW_PX = 13; // below this row spacing on screen, labels are hidden (overview)
const MAX_K = 6;
const HIT_PX = 9;
const PHASE_STEP = 96; // render/canvas.py DX: user units between two phases
const ROW_STEP = 28; // render/canvas.py DY: user units between two rows
const MARGIN_TOP = 40; // render/canvas.py MARGIN_TOP
const PAGE_EDGES_MAX = 30000; // edges drawn by the page per frame at most (the rest: zoom in)

// anywidget hands each render() its own model proxy: every view keeps its own status table,
// asks the kernel for a snapshot when it starts ("hello"), then applies the kernel's patches.
function asArray(value, Type) {
  if (!value) return new Type(0);
  if (value instanceof DataView) return new Type(value.buffer, value.byteOffset, value.byteLength / Type.BYTES_PER_ELEMENT);
  if (value instanceof ArrayBuffer) return new Type(value);
  if (ArrayBuffer.isView(value)) return new Type(value.buffer, value.byteOffset, value.byteLength / Type.BYTES_PER_ELEMENT);
  return new Type(0);
}

function render({ model, el }) {
  const s = { statuses: {}, notes: {}, marks: {} };
  el.classList.add("germinate-canvas-widget");

  // -- DOM ---------------------------------------------------------------------------------
  const bar = document.createElement("div");
  bar.className = "gc-toolbar";
  const mk = (tag, cls, text, title) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    if (title) e.title = title;
    return e;
  };
  const fitBtn = mk("button", "gc-btn gc-fit", "Fit", "Show the whole DAG (reset the view)");
  fitBtn.type = "button";
  const outBtn = mk("button", "gc-btn gc-zoom-out", "\u2212", "Zoom out");
  const inBtn = mk("button", "gc-btn gc-zoom-in", "+", "Zoom in");
  const focusChip = mk("button", "gc-btn gc-focus-chip", "", "Leave the lineage focus");
  focusChip.style.display = "none";
  const legend = mk("span", "gc-legend");
  const info = mk("span", "gc-info");
  bar.append(fitBtn, outBtn, inBtn, focusChip, legend, info);

  const vp = mk("div", "germinate-canvas");
  vp.tabIndex = 0;
  const layer = mk("div", "gc-layer");
  const canvas = mk("canvas", "gc-nodes");
  const tip = mk("div", "gc-tip");
  tip.style.display = "none";
  const hint = mk("div", "gc-hint", "click the picture, or hold Ctrl, to zoom with the wheel");
  hint.style.display = "none";
  let hintTimer = null;
  vp.append(layer, canvas, tip, hint);
  el.append(bar, vp);
  const ctx = canvas.getContext("2d");

  // -- model data --------------------------------------------------------------------------
  let names = [], X = new Float32Array(0), Y = new Float32Array(0), E = new Int32Array(0);
  let index = new Map(), W = 1, H = 1, maxChars = 4;
  let diamonds = new Set(); // condition tasks
  let matches = null; // Set of indices matching the search (null = no search)
  let focus = null; // Set of indices in focus (null = none)
  let view = { k: 1, tx: 0, ty: 0 };
  let userMoved = false;
  let patches = 0; // patches received; vp.dataset.patches says how many are drawn

  function loadGeometry() {
    names = model.get("names") ? model.get("names").split("\n") : [];
    const xy = asArray(model.get("xy"), Float32Array);
    const n = names.length;
    X = new Float32Array(n); Y = new Float32Array(n);
    for (let i = 0; i < n; i++) { X[i] = xy[2 * i]; Y[i] = xy[2 * i + 1]; }
    E = asArray(model.get("edges"), Int32Array);
    index = new Map(names.map((k, i) => [k, i]));
    diamonds = new Set((model.get("conditions") || []).map((k) => index.get(k)).filter((i) => i !== undefined));
    maxChars = names.reduce((m, k) => Math.max(m, k.length), 0);
    [W, H] = model.get("size");
    const bg = model.get("background");
    layer.innerHTML = !bg ? "" : typeof bg === "string" ? bg : new TextDecoder().decode(bg);
    const svg = layer.querySelector("svg");
    if (svg) {
      svg.setAttribute("width", W); // 1 user unit = 1 CSS px at k = 1
      svg.setAttribute("height", H);
      svg.classList.add("gc-mpl");
    }
    loadSearch(); loadFocus(); updateLegend();
    sizeViewport();
    if (!userMoved) fitView(); else schedule();
  }

  // -- view --------------------------------------------------------------------------------
  function vpSize() { return [vp.clientWidth || 1, vp.clientHeight || 1]; }
  function sizeViewport() {
    const vw = vp.clientWidth || el.clientWidth || 800;
    let k = Math.min(1, vw / W);
    // a small DAG too wide to read at full width opens at the zoom where labels show (see
    // fitView): tall enough for all its rows at that zoom, panned sideways
    if (k * rowStep() < MIN_ROW_PX && names.length <= 400) k = Math.min(1, MIN_ROW_PX / rowStep());
    const fitH = Math.ceil(H * k) + 16;
    vp.style.height = Math.max(120, Math.min(model.get("max_height"), fitH)) + "px";
  }
  function minK() { const [vw, vh] = vpSize(); return Math.min(vw / W, vh / H, 1) * 0.5; }
  function setView(k, tx, ty) {
    view = { k: Math.min(MAX_K, Math.max(minK(), k)), tx, ty };
    schedule();
    syncView();
  }
  function fitBox(x0, y0, x1, y1, cap = 1) {
    const [vw, vh] = vpSize();
    const pad = 16;
    const k = Math.min((vw - 2 * pad) / Math.max(x1 - x0, 1), (vh - 2 * pad) / Math.max(y1 - y0, 1), cap);
    setView(k, (vw - k * (x0 + x1)) / 2, (vh - k * (y0 + y1)) / 2);
  }
  // fit: the whole picture; for small DAGs never below the zoom where labels show
  function fitView() {
    const [vw] = vpSize();
    const k = Math.min(vw / W, vpSize()[1] / H, 1);
    if (k * rowStep() < MIN_ROW_PX && names.length <= 400) {
      const kl = Math.min(1, MIN_ROW_PX / rowStep());
      setView(kl, 8, 8); // top-left at a legible zoom: pan or Fit... shows the rest
    } else {
      fitBox(0, 0, W, H);
    }
  }
  function rowStep() { return ROW_STEP; }
  function zoomAt(f, sx, sy) {
    const k = Math.min(MAX_K, Math.max(minK(), view.k * f));
    const r = k / view.k;
    userMoved = true;
    setView(k, sx - (sx - view.tx) * r, sy - (sy - view.ty) * r);
  }
  let syncTimer = null;
  function syncView() {
    clearTimeout(syncTimer);
    syncTimer = setTimeout(() => {
      const [vw, vh] = vpSize();
      model.set("view", { k: view.k, tx: view.tx, ty: view.ty, vw, vh, label_px: labelsShown() ? LABEL_PX : null });
      model.save_changes();
    }, 60);
  }
  const api = {
    fit() { userMoved = false; fitBox(0, 0, W, H); },
    center(name) {
      const i = index.get(name);
      if (i === undefined) return;
      const [vw, vh] = vpSize();
      setView(view.k, vw / 2 - view.k * X[i], vh / 2 - view.k * Y[i]);
    },
    onPatch() { patches++; updateLegend(); schedule(); updateTip(); },
  };
  const onMsg = (msg) => {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "patch") {
      if (msg.reset) { s.statuses = {}; s.notes = {}; s.marks = {}; }
      Object.assign(s.statuses, msg.statuses || {});
      Object.assign(s.notes, msg.notes || {});
      for (const [k, v] of Object.entries(msg.marks || {})) { if (v) s.marks[k] = v; else delete s.marks[k]; }
      api.onPatch(msg);
    } else if (msg.type === "fit") api.fit();
    else if (msg.type === "center") api.center(msg.name);
  };
  model.on("msg:custom", onMsg);

  // -- drawing -----------------------------------------------------------------------------
  let frame = 0;
  function schedule() { if (!frame) frame = requestAnimationFrame(draw); }
  function css(name, fallback) {
    const v = getComputedStyle(vp).getPropertyValue(name).trim();
    return v || fallback;
  }
  function labelsShown() { return view.k * rowStep() >= MIN_ROW_PX; }
  let charPx = LABEL_PX * 0.6;
  function labelText(name, maxPx) {
    const fit = Math.floor(maxPx / charPx);
    if (name.length <= fit) return name;
    return fit >= 4 ? name.slice(0, fit - 1) + "\u2026" : null;
  }
  let retries = 0;
  function draw() {
    frame = 0;
    if (!vp.clientWidth || !vp.clientHeight) {
      // not laid out this instant (a theme switch swaps the style sheets): keep the canvas as
      // it is and look again shortly, rather than shrink it to 1 px until something else draws
      if (retries++ < 40) setTimeout(schedule, 150);
      return;
    }
    retries = 0;
    const [vw, vh] = vpSize();
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(vw * dpr) || canvas.height !== Math.round(vh * dpr)) {
      canvas.width = Math.round(vw * dpr); canvas.height = Math.round(vh * dpr);
      canvas.style.width = vw + "px"; canvas.style.height = vh + "px";
    }
    layer.style.transform = `translate(${view.tx}px, ${view.ty}px) scale(${view.k})`;
    layer.classList.toggle("gc-dim", !!(focus || matches));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, vw, vh);
    const { k, tx, ty } = view;
    const r = Math.max(2.5, 7 * k);
    const palette = model.get("palette") || {};
    const pending = palette.pending || "#d0d7de";
    const stroke = css("--jp-ui-font-color2", "#57606a");
    const n = names.length;
    const m = r + 2;
    // visible nodes, bucketed by colour and by emphasis
    const buckets = new Map();
    const visible = [];
    for (let i = 0; i < n; i++) {
      const sx = tx + k * X[i], sy = ty + k * Y[i];
      if (sx < -m || sy < -m || sx > vw + m || sy > vh + m) continue;
      visible.push(i);
      const dim = (focus && !focus.has(i)) || (matches && !matches.has(i));
      const col = palette[s.statuses[names[i]]] || pending;
      const key = (dim ? "d" : "n") + col;
      let b = buckets.get(key);
      if (!b) buckets.set(key, (b = []));
      b.push(i);
    }
    // edges the SVG does not carry (big DAGs): the visible ones, when zoomed in enough
    if (!model.get("svg_edges") && E.length && k * ROW_STEP >= 4) {
      ctx.beginPath();
      let drawn = 0;
      for (let e = 0; e < E.length && drawn < PAGE_EDGES_MAX; e += 2) {
        const a = E[e], b = E[e + 1];
        const ax = tx + k * X[a], ay = ty + k * Y[a], bx = tx + k * X[b], by = ty + k * Y[b];
        if ((ax < 0 && bx < 0) || (ax > vw && bx > vw) || (ay < 0 && by < 0) || (ay > vh && by > vh)) continue;
        ctx.moveTo(ax, ay);
        ctx.lineTo(bx, by);
        drawn++;
      }
      ctx.strokeStyle = css("--jp-border-color1", "#8c959f");
      ctx.globalAlpha = focus || matches ? 0.25 : 0.8;
      ctx.lineWidth = 0.8;
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    // lineage edges over the dimmed background
    if (focus && E.length) {
      ctx.beginPath();
      for (let e = 0; e < E.length; e += 2) {
        const a = E[e], b = E[e + 1];
        if (!focus.has(a) || !focus.has(b)) continue;
        ctx.moveTo(tx + k * X[a], ty + k * Y[a]);
        ctx.lineTo(tx + k * X[b], ty + k * Y[b]);
      }
      ctx.strokeStyle = css("--jp-brand-color1", "#0969da");
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    for (const [key, idx] of buckets) {
      ctx.globalAlpha = key[0] === "d" ? 0.25 : 1;
      ctx.beginPath();
      for (const i of idx) {
        const sx = tx + k * X[i], sy = ty + k * Y[i];
        if (diamonds.has(i)) { // a workflow condition: a diamond
          const d = r * 1.25;
          ctx.moveTo(sx, sy - d); ctx.lineTo(sx + d, sy); ctx.lineTo(sx, sy + d); ctx.lineTo(sx - d, sy);
          ctx.closePath();
          continue;
        }
        ctx.moveTo(sx + r, sy);
        ctx.arc(sx, sy, r, 0, 2 * Math.PI);
      }
      ctx.fillStyle = key.slice(1);
      ctx.fill();
      if (r > 3) { ctx.lineWidth = 0.8; ctx.strokeStyle = stroke; ctx.stroke(); }
    }
    ctx.globalAlpha = 1;
    // tasks whose code changed since they last ran: a dashed ring
    const changed = Object.keys(s.marks);
    if (changed.length) {
      ctx.beginPath();
      for (const name of changed) {
        const i = index.get(name);
        if (i === undefined) continue;
        const sx = tx + k * X[i], sy = ty + k * Y[i];
        ctx.moveTo(sx + r + 2, sy);
        ctx.arc(sx, sy, r + 2, 0, 2 * Math.PI);
      }
      ctx.setLineDash([3, 2]);
      ctx.strokeStyle = css("--jp-warn-color1", "#9a6700");
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.setLineDash([]);
    }
    // search matches: accent rings
    if (matches) {
      ctx.beginPath();
      for (const i of matches) {
        const sx = tx + k * X[i], sy = ty + k * Y[i];
        ctx.moveTo(sx + r + 3, sy);
        ctx.arc(sx, sy, r + 3, 0, 2 * Math.PI);
      }
      ctx.strokeStyle = css("--jp-warn-color0", "#bf8700");
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    // labels: constant size on screen, shown when rows are far enough apart
    if (labelsShown() && visible.length <= 6000) {
      const font = css("--jp-ui-font-family", "sans-serif");
      ctx.font = `${LABEL_PX}px ${font}`;
      charPx = ctx.measureText("abcdefghijklmnopqrstuvwxyz_0123456789").width / 37;
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      const color = css("--jp-ui-font-color1", "#1f2328");
      const halo = css("--jp-layout-color0", "#ffffff");
      ctx.lineJoin = "round";
      ctx.lineWidth = 3;
      ctx.strokeStyle = halo;
      // labels sit right of their node, in the gap before the next phase
      const maxPx = Math.max(24, PHASE_STEP * k - 2 * r - 8);
      for (const i of visible) {
        const text = labelText(names[i], maxPx);
        if (!text) continue;
        const dim = (focus && !focus.has(i)) || (matches && !matches.has(i));
        ctx.globalAlpha = dim ? 0.35 : 1;
        const lx = tx + k * X[i] + r + 3, ly = ty + k * Y[i];
        ctx.strokeText(text, lx, ly);
        ctx.fillStyle = color;
        ctx.fillText(text, lx, ly);
      }
      ctx.globalAlpha = 1;
    }
    // phase headers: constant size, pinned to the top edge, thinned out when crowded
    const px = model.get("phase_x") || [];
    if (px.length) {
      const font = css("--jp-ui-font-family", "sans-serif");
      ctx.font = `${LABEL_PX}px ${font}`;
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.lineJoin = "round";
      ctx.lineWidth = 3;
      ctx.strokeStyle = css("--jp-layout-color0", "#ffffff");
      ctx.fillStyle = css("--jp-ui-font-color2", "#57606a");
      const step = Math.max(1, Math.ceil(64 / (PHASE_STEP * k)));
      const top = Math.max(3, ty + k * MARGIN_TOP - 24);
      for (let p = 0; p < px.length; p += step) {
        const sx = tx + k * px[p];
        if (sx < -40 || sx > vw + 40) continue;
        const text = `phase ${p + 1}`;
        ctx.strokeText(text, sx, top);
        ctx.fillText(text, sx, top);
      }
    }
    // selection
    const sel = index.get(model.get("selected"));
    if (sel !== undefined) {
      const sx = tx + k * X[sel], sy = ty + k * Y[sel];
      ctx.beginPath();
      ctx.arc(sx, sy, r + 5, 0, 2 * Math.PI);
      ctx.strokeStyle = css("--jp-brand-color1", "#0969da");
      ctx.lineWidth = 3;
      ctx.stroke();
    }
    // say when part of the DAG is outside the view (a wide DAG opens at a legible zoom)
    const outside = visible.length < n ? ` \u00b7 ${n - visible.length} outside the view: drag, or Fit` : "";
    info.textContent = `${n} tasks \u00b7 ${Math.round(k * 100)}%` + (labelsShown() ? "" : " \u00b7 zoom in for labels") + outside;
    vp.dataset.labels = labelsShown() ? "shown" : "hidden";
    vp.dataset.selected = sel !== undefined ? names[sel] : "";
    vp.dataset.patches = String(patches);
    vp.dataset.zoom = k.toFixed(3);
  }

  function updateLegend() {
    const palette = model.get("palette") || {};
    const present = new Set(Object.values(s.statuses));
    if (Object.keys(s.statuses).length < names.length) present.add("pending");
    const chips = Object.keys(palette).filter((k) => present.has(k)).map((k) => {
      const e = mk("span", "gc-chip", k);
      e.style.setProperty("--gc-chip", palette[k]);
      return e;
    });
    if (Object.keys(s.marks).length) chips.push(mk("span", "gc-chip gc-chip-changed", "changed"));
    legend.replaceChildren(...chips);
  }

  // -- search and focus --------------------------------------------------------------------
  // the kernel decides what matches (names, namespaces, status: filters): a list of names
  function loadSearch() {
    const found = model.get("matches");
    if (!found || !model.get("search")) { matches = null; } else {
      matches = new Set(found.map((k) => index.get(k)).filter((i) => i !== undefined));
    }
    vp.dataset.matches = matches ? String(matches.size) : "";
    schedule();
  }
  function loadFocus() {
    const f = model.get("focus_names") || [];
    focus = f.length ? new Set(f.map((k) => index.get(k)).filter((i) => i !== undefined)) : null;
    focusChip.style.display = focus ? "" : "none";
    focusChip.textContent = focus ? `lineage of ${model.get("selected") || "?"} (${focus.size}) \u2715` : "";
    if (focus) {
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const i of focus) { x0 = Math.min(x0, X[i]); y0 = Math.min(y0, Y[i]); x1 = Math.max(x1, X[i]); y1 = Math.max(y1, Y[i]); }
      userMoved = true;
      fitBox(x0 - 40, y0 - 30, x1 + 40, y1 + 30, 1.5);
    }
    schedule();
  }
  focusChip.addEventListener("click", () => { model.set("focus_names", []); model.save_changes(); loadFocus(); api.fit(); });

  // -- pointer -----------------------------------------------------------------------------
  function local(ev) { const b = vp.getBoundingClientRect(); return [ev.clientX - b.left, ev.clientY - b.top]; }
  function hit(sx, sy) {
    const { k, tx, ty } = view;
    const lim = Math.max(HIT_PX, 7 * k + 2);
    let best = -1, bd = lim * lim;
    for (let i = 0; i < names.length; i++) {
      const dx = tx + k * X[i] - sx, dy = ty + k * Y[i] - sy;
      const d = dx * dx + dy * dy;
      if (d < bd) { bd = d; best = i; }
    }
    return best;
  }
  let drag = null;
  vp.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    const [sx, sy] = local(ev);
    drag = { sx, sy, tx: view.tx, ty: view.ty, moved: false, id: ev.pointerId };
  });
  vp.addEventListener("pointermove", (ev) => {
    const [sx, sy] = local(ev);
    if (drag) {
      const dx = sx - drag.sx, dy = sy - drag.sy;
      if (!drag.moved && dx * dx + dy * dy > 9) {
        drag.moved = true;
        vp.setPointerCapture(drag.id);
        vp.classList.add("gc-panning");
        hideTip();
      }
      if (drag.moved) { userMoved = true; setView(view.k, drag.tx + dx, drag.ty + dy); return; }
    }
    hover = [sx, sy];
    if (!hoverFrame) hoverFrame = requestAnimationFrame(updateTip);
  });
  const endDrag = (ev) => {
    if (!drag) return;
    const d = drag;
    drag = null;
    vp.classList.remove("gc-panning");
    if (d.moved) return;
    const [sx, sy] = local(ev);
    const i = hit(sx, sy);
    if (i >= 0) {
      model.set("selected", names[i]);
      model.save_changes();
      schedule(); // the ring shows at once, before the kernel answers
    }
  };
  vp.addEventListener("pointerup", endDrag);
  vp.addEventListener("pointercancel", () => { drag = null; vp.classList.remove("gc-panning"); });
  vp.addEventListener("dblclick", (ev) => {
    const [sx, sy] = local(ev);
    const i = hit(sx, sy);
    if (i >= 0) model.send({ type: "focus", name: names[i] });
  });
  let active = false; // after a click inside: the wheel zooms; plain page scroll otherwise
  vp.addEventListener("pointerdown", () => { active = true; vp.classList.add("gc-active"); });
  vp.addEventListener("wheel", (ev) => {
    if (!active && !ev.ctrlKey && !ev.metaKey) {
      hint.style.display = "";
      clearTimeout(hintTimer);
      hintTimer = setTimeout(() => { hint.style.display = "none"; }, 1500);
      return; // let the notebook scroll
    }
    ev.preventDefault();
    const [sx, sy] = local(ev);
    const dy = ev.deltaMode === 1 ? ev.deltaY * 16 : ev.deltaY;
    zoomAt(Math.exp(-dy * 0.0015), sx, sy);
  }, { passive: false });
  vp.addEventListener("pointerleave", () => {
    hover = null; hideTip(); active = false; vp.classList.remove("gc-active");
  });
  vp.addEventListener("keydown", (ev) => {
    if (ev.key === "+" || ev.key === "=") zoomAt(1.25, ...vpSize().map((v) => v / 2));
    else if (ev.key === "-") zoomAt(0.8, ...vpSize().map((v) => v / 2));
    else if (ev.key === "0") api.fit();
    else return;
    ev.stopPropagation();
    ev.preventDefault();
  });
  fitBtn.addEventListener("click", () => api.fit());
  inBtn.addEventListener("click", () => zoomAt(1.25, ...vpSize().map((v) => v / 2)));
  outBtn.addEventListener("click", () => zoomAt(0.8, ...vpSize().map((v) => v / 2)));

  // -- tooltip -----------------------------------------------------------------------------
  let hover = null, hoverFrame = 0;
  function hideTip() { tip.style.display = "none"; tip.dataset.name = ""; }
  function updateTip() {
    hoverFrame = 0;
    if (!hover || drag) return;
    const i = hit(hover[0], hover[1]);
    if (i < 0) { hideTip(); return; }
    const name = names[i];
    const status = s.statuses[name] || "pending";
    const note = s.notes[name] || {};
    const rows = [["status", status]];
    if (note.duration) rows.push(["duration", note.duration]);
    if (note.error) rows.push(["error", String(note.error).split("\n")[0]]);
    if (s.marks[name]) rows.push(["note", "code changed since its last run"]);
    const head = mk("div", "gc-tip-name", name);
    const body = rows.map(([a, b]) => {
      const r = mk("div", "gc-tip-row");
      r.append(mk("span", "gc-tip-key", a), mk("span", "gc-tip-" + a, b));
      return r;
    });
    tip.replaceChildren(head, ...body);
    tip.dataset.name = name;
    tip.style.display = "";
    const [vw, vh] = vpSize();
    const { k, tx, ty } = view;
    let x = tx + k * X[i] + 12, y = ty + k * Y[i] + 12;
    if (x + tip.offsetWidth > vw) x = Math.max(0, vw - tip.offsetWidth - 4);
    if (y + tip.offsetHeight > vh) y = Math.max(0, ty + k * Y[i] - tip.offsetHeight - 12);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  // -- model events ------------------------------------------------------------------------
  const onGeometry = () => loadGeometry();
  const onSel = () => schedule();
  const onSearch = () => loadSearch();
  const onFocus = () => loadFocus();
  const onPalette = () => { updateLegend(); schedule(); };
  const onSvgEdges = () => schedule();
  // every model event this view listens to, subscribed here and dropped when the view goes
  const listeners = [
    ["change:matches", onSearch],
    ["change:search", onSearch],
    ["change:svg_edges", onSvgEdges],
    ["change:background", onGeometry],
    ["change:names", onGeometry],
    ["change:selected", onSel],
    ["change:phase_x", onSel],
    ["change:focus_names", onFocus],
    ["change:palette", onPalette],
  ];
  for (const [event, fn] of listeners) model.on(event, fn);

  // theme switches (JupyterLab sets data-jp-theme-name on <body>) repaint the canvas
  const themeObs = new MutationObserver(() => { schedule(); setTimeout(schedule, 400); });
  themeObs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  let lastW = 0;
  const ro = new ResizeObserver(() => {
    const w = vp.clientWidth;
    if (!w) return;
    if (w !== lastW) {
      lastW = w;
      sizeViewport();
      if (!userMoved) fitView();
    }
    schedule();
    syncView();
  });
  ro.observe(vp);
  // test handle (no kernel round trip): the node's centre as fractions of the viewport
  vp.gcNodeXY = (name) => {
    const i = index.get(name);
    if (i === undefined) return null;
    const [vw, vh] = vpSize();
    return [(view.tx + view.k * X[i]) / vw, (view.ty + view.k * Y[i]) / vh];
  };
  loadGeometry();
  model.send({ type: "hello" });

  return () => {
    model.send({ type: "bye" }); // this view is gone (its output cleared or re-rendered)
    model.off("msg:custom", onMsg);
    ro.disconnect();
    themeObs.disconnect();
    for (const [event, fn] of listeners) model.off(event, fn);
  };
}

export default { render };
