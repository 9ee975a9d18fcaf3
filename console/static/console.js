// The Interlock ops console: plain JS over the admin API (/admin/...), charts drawn with uPlot (installed from npm
// by scripts/setup.sh into vendor/). The Overview draws every panel the API lists (console/panels.py), so a
// panel for a new step needs no change here.
"use strict";

const state = { token: sessionStorage.getItem("interlock-token") || "", charts: {} };
window.interlockConsole = state; // read by the browser tests: state.charts[name] = {t, series}

const $ = (sel, root = document) => root.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

async function api(path, options = {}) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(`/admin${path}`, { ...options, headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const err = new Error(data?.error?.message || `HTTP ${r.status}`);
    err.status = r.status;
    throw err;
  }
  return data;
}

function query(form) {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v !== "") p.set(k, v);
  return p.toString();
}

const fmt = {
  n: (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString(undefined, { maximumFractionDigits: 2 })),
  pct: (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`),
  ms: (v) => (v === null || v === undefined ? "–" : `${Number(v).toFixed(0)} ms`),
  usd: (v) => `$${Number(v || 0).toFixed(4)}`,
};

// -- sign-in ------------------------------------------------------------------------------------------------
async function signIn(token) {
  state.token = token;
  try {
    await api("/console/panels");
  } catch (e) {
    $("#login-error").textContent = e.status === 401 ? "Unknown token." : e.message;
    showLogin();
    return;
  }
  sessionStorage.setItem("interlock-token", token);
  $("#login").hidden = true;
  $("#main").hidden = false;
  route();
}
function showLogin() { $("#login").hidden = false; $("#main").hidden = true; }

// -- overview -----------------------------------------------------------------------------------------------
async function loadOverview() {
  const form = $("#filters");
  const dims = await api(`/console/dimensions?hours=${form.hours.value}`);
  for (const [name, dim] of [["key", "key_id"], ["team", "team_id"], ["model", "model"], ["route", "route"],
    ["prompt_version", "prompt_version"]]) {
    const select = form[name];
    const keep = select.value;
    select.replaceChildren(el("option", { value: "" }, "all"), ...dims[dim].map((v) => el("option", { value: v }, v)));
    select.value = dims[dim].includes(keep) ? keep : "";
  }
  const q = query(form);
  const s = await api(`/console/summary?${q}`);
  const tiles = [
    ["requests", fmt.n(s.requests)], ["error rate", fmt.pct(s.error_rate)], ["p50 latency", fmt.ms(s.latency_ms.p50)],
    ["p95 latency", fmt.ms(s.latency_ms.p95)], ["p99 latency", fmt.ms(s.latency_ms.p99)],
    ["TTFT p50", fmt.ms(s.ttft_ms.p50)], ["TPOT mean", fmt.ms(s.tpot_ms)],
    ["tokens in / out", `${fmt.n(s.tokens.input)} / ${fmt.n(s.tokens.output)}`], ["cost", fmt.usd(s.cost_usd)],
    ["cache hit rate", fmt.pct(s.cache_hit_rate)], ["guard triggers", fmt.n(s.guard_triggers)],
    ["goodput", fmt.pct(s.goodput)], ["feedback +/−", `${s.feedback.positive} / ${s.feedback.negative}`],
  ];
  $("#tiles").replaceChildren(...tiles.map(([label, v]) => el("div", { class: "tile" }, el("b", {}, v), el("span", {}, label))));
  const panels = await api("/console/panels");
  const box = $("#charts");
  box.replaceChildren();
  await Promise.all(panels.map(async (p) => {
    const card = el("div", { class: "chart", "data-panel": p.name }, el("h3", {}, `${p.title} (${p.unit})`));
    box.append(card);
    const data = await api(`/console/panels/${p.name}?${q}`);
    state.charts[p.name] = data;
    draw(card, data);
  }));
}

const COLORS = ["#2f81f7", "#e5534b", "#3fb950", "#d29922", "#a371f7", "#db61a2", "#39c5cf"];
function draw(card, data) {
  const labels = Object.keys(data.series);
  if (!window.uPlot) { // the vendor folder is missing (scripts/setup.sh not run): a table instead
    const rows = data.t.map((t, i) => el("tr", {}, el("td", {}, new Date(t * 1000).toLocaleTimeString()),
      ...labels.map((l) => el("td", {}, fmt.n(data.series[l][i])))));
    card.append(el("table", { class: "grid" }, el("tr", {}, el("th", {}, "time"), ...labels.map((l) => el("th", {}, l))), ...rows));
    return;
  }
  const opts = {
    width: Math.max(420, card.clientWidth - 16), height: 200,
    series: [{}, ...labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
      points: { show: true, size: 4 } }))],
    axes: [{}, { size: 60 }],
  };
  card.uplot = new uPlot(opts, [data.t, ...labels.map((l) => data.series[l])], card);
}

// -- requests and traces ------------------------------------------------------------------------------------
async function loadRequests() {
  const rows = await api(`/console/requests?${query($("#search"))}`);
  $("#requests-table tbody").replaceChildren(...rows.map((r) => el("tr", { "data-id": r.id, onclick: () => openRequest(r.id) },
    el("td", {}, new Date(r.created_at).toLocaleString()), el("td", {}, r.id), el("td", {}, r.key_id ?? "–"),
    el("td", {}, r.model), el("td", {}, r.route), el("td", {}, String(r.status)), el("td", {}, fmt.n(r.latency_ms)),
    el("td", {}, `${r.prompt_tokens}/${r.completion_tokens}`), el("td", {}, fmt.usd(r.cost_usd)))));
}

async function openRequest(id) {
  const d = await api(`/console/requests/${encodeURIComponent(id)}`);
  $("#detail").hidden = false;
  $("#detail-id").textContent = d.record.id;
  const rec = d.record;
  const shown = { ...rec, details: rec.details ? JSON.stringify(rec.details) : null };
  $("#detail-record").replaceChildren(...Object.entries(shown).flatMap(([k, v]) => [el("b", {}, k), el("span", {}, v === null ? "–" : String(v))]));
  const total = Math.max(1e-3, ...d.spans.map((s) => s.offset_ms + s.duration_ms));
  const depth = {};
  for (const s of d.spans) depth[s.span_id] = s.parent_id && depth[s.parent_id] !== undefined ? depth[s.parent_id] + 1 : 0;
  $("#waterfall").replaceChildren(...(d.spans.length ? d.spans.map((s) => {
    const bar = el("div", { class: s.error ? "failed" : "", title: JSON.stringify(s.attributes) });
    bar.style.left = `${(100 * s.offset_ms) / total}%`;
    bar.style.width = `${(100 * s.duration_ms) / total}%`;
    const name = el("span", { class: "span-name" }, `${"\u00a0\u00a0".repeat(depth[s.span_id])}${s.name}`);
    return el("div", { class: "span-row", "data-span": s.name }, name, el("div", { class: "span-bar" }, bar), el("span", {}, fmt.ms(s.duration_ms)));
  }) : [el("p", {}, "No spans stored for this request (trace_store off, or sampled out).")]));
  $("#detail-feedback").replaceChildren(...(d.feedback.length ? d.feedback.map((f) =>
    el("li", {}, `${f.kind} (${f.source})${f.rating ? ` rating ${f.rating}` : ""}${f.comment ? `: ${f.comment}` : ""}`))
    : [el("li", {}, "none")]));
}

// -- feedback -------------------------------------------------------------------------------------------------
async function loadFeedback() {
  const rows = await api(`/console/feedback?${query($("#feedback-filter"))}`);
  $("#feedback-table tbody").replaceChildren(...rows.map((f) => el("tr", { "data-id": f.request_id,
    onclick: () => { location.hash = "#requests"; openRequest(f.request_id); } },
    el("td", {}, new Date(f.created_at).toLocaleString()), el("td", {}, f.kind), el("td", {}, f.source),
    el("td", {}, f.request_id), el("td", {}, f.key_id ?? "–"), el("td", {}, f.rating ?? "–"), el("td", {}, f.comment ?? ""))));
}

// -- keys, teams, models ------------------------------------------------------------------------------------
const list = (v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : null);
const num = (v) => (v === "" ? null : Number(v));
const limitsText = (l) => Object.entries(l).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).join(" ") || "–";

async function loadAccess() {
  const [keys, teams, models] = await Promise.all([api("/keys"), api("/teams"), api("/models")]);
  $("#keys-table tbody").replaceChildren(...keys.map((k) => el("tr", {}, el("td", {}, k.name), el("td", {}, k.key_prefix),
    el("td", {}, k.team_name ?? "–"), el("td", {}, (k.allowed_models || ["all"]).join(", ")), el("td", {}, limitsText(k.limits)),
    el("td", {}, el("button", { type: "button", onclick: () => act(`/keys/${k.id}/revoke`, "POST") }, "revoke")))));
  $("#teams-table tbody").replaceChildren(...teams.map((t) => el("tr", {}, el("td", {}, t.name),
    el("td", {}, (t.allowed_models || ["all"]).join(", ")), el("td", {}, limitsText(t.limits)))));
  $("#models-table tbody").replaceChildren(...models.map((m) => el("tr", {}, el("td", {}, m.name),
    el("td", {}, (m.config?.deployments || []).map((d) => d.name || d.url).join(", ")), el("td", {}, m.source ?? ""),
    el("td", {}, el("button", { type: "button", onclick: () => act(`/models/${m.name}`, "DELETE") }, "remove")))));
}

async function act(path, method, body, errorBox) {
  try {
    const out = await api(path, { method, body });
    if (errorBox) $(errorBox).textContent = "";
    await loadAccess();
    return out;
  } catch (e) {
    if (errorBox) $(errorBox).textContent = e.message; else alert(e.message);
    return null;
  }
}

// -- wiring -------------------------------------------------------------------------------------------------
const PAGES = { overview: loadOverview, requests: loadRequests, feedback: loadFeedback, access: loadAccess };
function route() {
  const page = (location.hash.slice(1) || "overview").split("/")[0];
  const name = PAGES[page] ? page : "overview";
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== `page-${name}`;
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === name);
  PAGES[name]().catch((e) => (e.status === 401 ? showLogin() : console.error(e)));
}

window.addEventListener("hashchange", route);
$("#login-form").addEventListener("submit", (e) => { e.preventDefault(); signIn($("#token").value.trim()); });
$("#logout").addEventListener("click", () => { sessionStorage.removeItem("interlock-token"); state.token = ""; showLogin(); });
$("#filters").addEventListener("submit", (e) => { e.preventDefault(); loadOverview(); });
$("#search").addEventListener("submit", (e) => { e.preventDefault(); loadRequests(); });
$("#feedback-filter").addEventListener("submit", (e) => { e.preventDefault(); loadFeedback(); });
$("#key-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { name: f.name.value, team: f.team.value || null, allowed_models: list(f.allowed_models.value),
    limits: { rpm: num(f.rpm.value), tpm: num(f.tpm.value), budget_daily_usd: num(f.budget_daily_usd.value) } };
  const created = await act("/keys", "POST", body, "#key-error");
  if (created) { $("#new-key").hidden = false; $("#new-key code").textContent = created.key; f.reset(); }
});
$("#team-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { name: f.name.value, allowed_models: list(f.allowed_models.value),
    limits: { budget_monthly_usd: num(f.budget_monthly_usd.value) } };
  if (await act("/teams", "POST", body, "#team-error")) f.reset();
});
$("#model-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  let config;
  try { config = JSON.parse(f.config.value); } catch { $("#model-error").textContent = "The configuration is not valid JSON."; return; }
  if (await act(`/models/${f.name.value}`, "PUT", config, "#model-error")) f.reset();
});

if (state.token) signIn(state.token); else showLogin();
