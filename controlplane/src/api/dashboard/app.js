// ringway's dashboard: reads Traefik's API (same endpoints) four times a second and renders it.
"use strict";

const base = location.pathname.replace(/\/dashboard(\/.*)?$/, "");
const api = (path) => fetch(`${base}/api${path}`, { cache: "no-store" }).then((r) => {
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
});

// Lists are paged by the API (100 per page): follow X-Next-Page to the end.
async function all(path) {
  let page = 1;
  const out = [];
  for (;;) {
    const r = await fetch(`${base}/api${path}?per_page=1000&page=${page}`, { cache: "no-store" });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    out.push(...(await r.json()));
    const next = Number(r.headers.get("X-Next-Page") || "1");
    if (next <= page) return out;
    page = next;
  }
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const status = (s) => el("span", { class: `status ${s}` }, s);
const code = (t) => el("code", {}, t);
const rate = (v) => (v === undefined ? "0.0" : v.toFixed(1));

function nameCell(item) {
  const errors = (item.error || []).map((e) => el("div", { class: "errors" }, e));
  return el("td", {}, el("b", {}, item.name), errors);
}

function fill(id, rows, columns, key) {
  const query = document.getElementById("search").value.trim().toLowerCase();
  const body = document.querySelector(`#${id} tbody`);
  const shown = rows.filter((r) => !query || JSON.stringify(r).toLowerCase().includes(query));
  const trs = shown.map((r) => el("tr", { [`data-${key}`]: r.name, "data-status": r.status }, columns.map((c) => c(r))));
  if (trs.length === 0) {
    trs.push(el("tr", { class: "empty" }, el("td", { colspan: String(columns.length) }, "none")));
  }
  body.replaceChildren(...trs);
}

function servers(s) {
  if (s.loadBalancer) {
    const up = s.serverStatus || {};
    return (s.loadBalancer.servers || []).map((x) => {
      const where = x.url || x.address;
      return el("span", { class: `server ${up[where] || "UP"}`, "data-server": where }, where);
    });
  }
  if (s.weighted) return (s.weighted.services || []).map((c) => el("span", { class: "server" }, `${c.name} × ${c.weight}`));
  return "";
}

function card(label, counts) {
  return el("div", { class: "card" },
    el("small", {}, label),
    el("b", {}, counts.total),
    el("small", {}, el("span", { class: "warn" }, `${counts.warnings} warnings`), " · ",
      el("span", { class: "bad" }, `${counts.errors} errors`)));
}

async function refresh() {
  const [overview, eps, hr, hs, hm, tr, ts, rates] = await Promise.all([
    api("/overview"), all("/entrypoints"), all("/http/routers"), all("/http/services"),
    all("/http/middlewares"), all("/tcp/routers"), all("/tcp/services"), api("/ringway/rates"),
  ]);
  document.getElementById("generation").textContent = `configuration #${rates.generation}`;
  document.getElementById("overview").replaceChildren(
    card("HTTP routers", overview.http.routers), card("HTTP services", overview.http.services),
    card("HTTP middlewares", overview.http.middlewares), card("TCP routers", overview.tcp.routers),
    card("TCP services", overview.tcp.services),
    el("div", { class: "card" }, el("small", {}, "Providers"), el("b", {}, (overview.providers || []).join(", ") || "—"),
      el("small", {}, `metrics: ${overview.features.metrics || "off"} · access log: ${overview.features.accessLog ? "on" : "off"}`)));
  document.getElementById("entrypoints").replaceChildren(
    ...eps.map((e) => el("span", { class: "chip", "data-entrypoint": e.name }, el("b", {}, e.name), " ", code(e.address))));
  fill("http-routers", hr, [
    (r) => el("td", {}, status(r.status)), nameCell, (r) => el("td", {}, code(r.rule)),
    (r) => el("td", {}, (r.entryPoints || []).join(", ")), (r) => el("td", {}, r.service),
    (r) => el("td", {}, (r.middlewares || []).join(", ")),
    (r) => el("td", { class: "num", "data-rate": "" }, rate(rates.routers[r.name])),
    (r) => el("td", {}, r.provider),
  ], "router");
  fill("http-services", hs, [
    (s) => el("td", {}, status(s.status)), nameCell, (s) => el("td", {}, s.type || "internal"),
    (s) => el("td", {}, servers(s)), (s) => el("td", {}, (s.usedBy || []).join(", ")),
    (s) => el("td", { class: "num", "data-rate": "" }, rate(rates.services[s.name])),
    (s) => el("td", {}, s.provider),
  ], "service");
  fill("http-middlewares", hm, [
    (m) => el("td", {}, status(m.status)), nameCell, (m) => el("td", {}, m.type),
    (m) => el("td", {}, (m.usedBy || []).join(", ")), (m) => el("td", {}, m.provider),
  ], "middleware");
  fill("tcp-routers", tr, [
    (r) => el("td", {}, status(r.status)), nameCell, (r) => el("td", {}, code(r.rule)),
    (r) => el("td", {}, (r.entryPoints || []).join(", ")), (r) => el("td", {}, r.service),
    (r) => el("td", {}, r.tls ? (r.tls.passthrough ? "passthrough" : "terminated") : "—"),
    (r) => el("td", {}, r.provider),
  ], "router");
  fill("tcp-services", ts, [
    (s) => el("td", {}, status(s.status)), nameCell, (s) => el("td", {}, s.type),
    (s) => el("td", {}, servers(s)), (s) => el("td", {}, (s.usedBy || []).join(", ")),
    (s) => el("td", {}, s.provider),
  ], "service");
}

async function loop() {
  const live = document.getElementById("live");
  const err = document.getElementById("error");
  try {
    await refresh();
    live.classList.remove("stale");
    err.hidden = true;
  } catch (e) {
    live.classList.add("stale");
    err.hidden = false;
    err.textContent = `cannot reach the API: ${e.message}`;
  }
  setTimeout(loop, 250);
}

api("/version").then((v) => { document.getElementById("version").textContent = `v${v.Version}`; }).catch(() => {});
document.getElementById("search").addEventListener("input", () => refresh().catch(() => {}));
loop();
