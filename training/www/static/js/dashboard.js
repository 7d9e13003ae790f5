// Dashboard: stats, the item table (filters, search, sort, paging), training with live progress, history.
"use strict";

const PAGE = 50;
const ACTIVE = new Set(["queued", "preparing", "training", "evaluating", "saving"]);
const state = { reviewed: "", trained: "", q: "", rank: "", sort: "id", order: "desc", offset: 0, total: 0 };
const $ = (id) => document.getElementById(id);
let stats = null;
let job = null;
let pollTimer = null;

function toast(message, isError) {
  const box = $("toast");
  box.textContent = message;
  box.className = isError ? "toast error" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

async function loadStats() {
  stats = (await api("GET", "/api/data/stats")).data;
  $("stat-total").textContent = stats.total;
  $("stat-reviewed").textContent = stats.reviewed;
  $("stat-trained").textContent = stats.trained;
  $("stat-pending").textContent = stats.pending_training;
  $("stat-heldout").textContent = stats.heldout ? `+ ${stats.heldout} held out to measure accuracy` : "";
  $("review-link").textContent = stats.unreviewed ? `Review ${stats.unreviewed} new item${stats.unreviewed === 1 ? "" : "s"}` : "Open editor";
  updateTrainButton();
}

function updateTrainButton() {
  const running = job && ACTIVE.has(job.state);
  const pending = stats ? stats.pending_training : 0;
  $("train-btn").disabled = running || pending === 0;
  $("train-reason").textContent = running ? "A training run is in progress."
    : pending === 0 ? "Nothing to train on yet: review some items in the editor first."
    : `Will fine-tune on ${pending} reviewed item${pending === 1 ? "" : "s"}.`;
}

function itemsUrl() {
  const p = new URLSearchParams({ limit: PAGE, offset: state.offset });
  if (state.reviewed) p.set("reviewed", state.reviewed);
  if (state.trained) p.set("trained", state.trained);
  if (state.q) p.set("q", state.q);
  if (state.rank) p.set("sort", state.rank);
  else { p.set("sort", state.sort); p.set("order", state.order); }
  return `/api/data?${p}`;
}

function badge(text, kind) { return el("span", { class: `badge ${kind}` }, text); }

function renderRows(items) {
  const body = $("items-body");
  body.replaceChildren(...items.map((item) => {
    const preview = item.transcript === null ? el("em", { class: "muted" }, "(no transcript)")
      : item.transcript.length > 120 ? item.transcript.slice(0, 120) + "…" : item.transcript;
    const row = el("tr", { tabindex: "0", dataset: { id: item.id } },
      el("td", { class: "num" }, item.id),
      el("td", { class: "preview" }, preview),
      el("td", { class: "num" }, fmtSeconds(item.duration_s)),
      el("td", {}, item.is_reviewed ? badge("reviewed", "ok") : badge("new", "new"),
        item.is_trained ? badge("trained", "trained") : null),
      el("td", { class: "muted" }, fmtDate(item.timestamp)));
    const open = () => { window.location.href = `/editor?id=${item.id}`; };
    row.addEventListener("click", open);
    row.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
    return row;
  }));
  $("items-empty").hidden = items.length > 0;
}

async function loadItems(retryDurations = true) {
  const { data, headers } = await api("GET", itemsUrl());
  state.total = Number(headers.get("X-Total-Count") || data.length);
  renderRows(data);
  const first = state.total ? state.offset + 1 : 0;
  $("page-info").textContent = `${first}–${state.offset + data.length} of ${state.total}`;
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + PAGE >= state.total;
  document.querySelectorAll("th.sortable").forEach((th) => {
    th.classList.toggle("asc", !state.rank && th.dataset.sort === state.sort && state.order === "asc");
    th.classList.toggle("desc", !state.rank && th.dataset.sort === state.sort && state.order === "desc");
  });
  // Durations are measured in the background on first view; ask once more shortly.
  if (retryDurations && data.some((i) => i.duration_s === null)) setTimeout(() => loadItems(false).catch(() => {}), 1200);
}

function showJob(status) {
  job = status && status.state !== "idle" ? status : null;
  const running = job && ACTIVE.has(job.state);
  $("train-progress").hidden = !running;
  if (running) {
    const pct = job.percent || 0;
    $("train-bar").style.width = `${pct}%`;
    $("train-phase").textContent = job.state;
    $("train-step").textContent = job.total ? `${job.phase || ""} ${job.step}/${job.total} (${pct.toFixed(0)}%)` : "";
    $("train-loss").textContent = job.loss !== null && job.loss !== undefined ? `loss ${job.loss.toFixed(3)}` : "";
    $("train-eta").textContent = job.eta_s ? `about ${Math.ceil(job.eta_s)} s left` : "";
  }
  const result = $("train-result");
  if (job && !running && job.message) {
    result.textContent = job.message;
    result.className = `train-result ${job.state === "done" ? "ok" : "warn"}`;
    result.hidden = false;
  }
  updateTrainButton();
  return running;
}

async function pollJob() {
  clearTimeout(pollTimer);
  let running = false;
  try {
    running = showJob((await api("GET", "/api/train/status")).data);
  } catch (err) {
    if (err.status !== 404) toast(err.message, true);
  }
  if (running) pollTimer = setTimeout(pollJob, 1000);
  else if (job) { await Promise.all([loadStats(), loadItems(), loadHistory()]).catch(() => {}); }
}

async function startTraining() {
  $("train-btn").disabled = true;
  try {
    const { data } = await api("POST", "/api/train", {});
    toast(data.message);
    $("train-result").hidden = true;
    showJob({ state: "queued", job_id: data.job_id, percent: 0, step: 0, total: 0 });
    pollJob();
  } catch (err) {
    toast(err.message, true);
    updateTrainButton();
  }
}

async function cancelTraining() {
  if (!job) return;
  try { await api("POST", `/api/train/${encodeURIComponent(job.job_id)}/cancel`); toast("Cancelling…"); }
  catch (err) { toast(err.message, true); }
}

function werChart(runs) {
  const points = runs.filter((r) => r.wer_after !== null && r.wer_after !== undefined).reverse();
  const box = $("wer-chart");
  box.replaceChildren();
  if (points.length < 1) return;
  const ns = "http://www.w3.org/2000/svg";
  const w = 560, h = 120, pad = 24;
  const max = Math.max(...points.map((r) => Math.max(r.wer_after, r.wer_before || 0)), 0.05);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Held-out word error rate after each run");
  const x = (i) => pad + (points.length === 1 ? (w - 2 * pad) / 2 : (i * (w - 2 * pad)) / (points.length - 1));
  const y = (v) => h - pad - (v / max) * (h - 2 * pad);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.map((r, i) => `${x(i)},${y(r.wer_after)}`).join(" "));
  line.setAttribute("class", "chart-line");
  svg.append(line);
  points.forEach((r, i) => {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x(i)); dot.setAttribute("cy", y(r.wer_after)); dot.setAttribute("r", 4);
    dot.setAttribute("class", r.deployed ? "chart-dot deployed" : "chart-dot rejected");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${fmtDate(r.started_at)}: WER ${fmtPercent(r.wer_before)} → ${fmtPercent(r.wer_after)}`;
    dot.append(title);
    svg.append(dot);
  });
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", 4); label.setAttribute("y", 14); label.setAttribute("class", "chart-label");
  label.textContent = `held-out WER (max ${fmtPercent(max)})`;
  svg.append(label);
  box.append(svg);
}

async function loadHistory() {
  let runs = [];
  let model = null;
  try { runs = (await api("GET", "/api/train/runs")).data || []; } catch (err) { if (err.status !== 404) throw err; }
  try { model = (await api("GET", "/api/model")).data; } catch (err) { if (err.status !== 404) throw err; }
  $("runs-body").replaceChildren(...runs.map((r) => el("tr", {},
    el("td", {}, fmtDate(r.started_at)),
    el("td", { class: "num" }, r.items ?? "–"),
    el("td", {}, r.mode || "–"),
    el("td", {}, `${fmtPercent(r.wer_before)} → ${fmtPercent(r.wer_after)}`),
    el("td", { class: "num" }, r.duration_s ? `${Math.round(r.duration_s)} s` : "–"),
    el("td", {}, r.deployed ? badge("deployed", "ok") : badge(r.state === "done" ? "rejected" : r.state, r.state === "done" ? "warn" : "new"),
      r.message ? el("span", { class: "muted run-message" }, r.message) : null))));
  $("runs-empty").hidden = runs.length > 0;
  werChart(runs);
  if (model) {
    $("model-line").textContent = model.present
      ? `${model.format || "model"} at ${model.path}${model.version ? ` · version ${model.version}` : ""}`
      : `No model at ${model.path}`;
    $("versions").replaceChildren(...(model.versions || []).map((v) => el("li", {},
      el("span", {}, `${v.version}`), el("span", { class: "muted" }, fmtDate(v.created_at)),
      el("span", { class: "muted" }, v.wer_after !== undefined && v.wer_after !== null ? `WER ${fmtPercent(v.wer_after)}` : ""),
      v.deployed ? badge("deployed", "ok")
        : el("button", { type: "button", class: "btn btn-small", onclick: () => rollback(v.version) }, "Roll back"))));
  }
}

async function rollback(version) {
  if (!window.confirm(`Deploy model version ${version} again? The current model stays kept as a version.`)) return;
  try {
    const { data } = await api("POST", "/api/model/rollback", { version });
    toast(data.message || `Version ${version} deployed.`);
    await loadHistory();
  } catch (err) { toast(err.message, true); }
}

async function pollScoring() {
  try {
    const { data } = await api("GET", "/api/suggestions/score");
    const running = data.state === "running";
    $("score-status").textContent = running ? `Scoring ${data.done}/${data.total}…` : data.message || "";
    $("score-btn").disabled = running;
    if (running) setTimeout(pollScoring, 1500);
    else if (state.rank) loadItems();
  } catch (err) { $("score-status").textContent = ""; }
}

async function startScoring() {
  try { await api("POST", "/api/suggestions/score"); pollScoring(); }
  catch (err) { toast(err.message, true); }
}

function reloadFirstPage() { state.offset = 0; loadItems().catch((err) => toast(err.message, true)); }

function wire() {
  $("f-reviewed").addEventListener("change", (e) => { state.reviewed = e.target.value; reloadFirstPage(); });
  $("f-trained").addEventListener("change", (e) => { state.trained = e.target.value; reloadFirstPage(); });
  $("f-rank").addEventListener("change", (e) => { state.rank = e.target.value; reloadFirstPage(); });
  $("f-q").addEventListener("input", debounce((e) => { state.q = e.target.value.trim(); reloadFirstPage(); }, 250));
  $("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadItems(); });
  $("page-next").addEventListener("click", () => { state.offset += PAGE; loadItems(); });
  document.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => {
    state.order = state.sort === th.dataset.sort && state.order === "asc" ? "desc" : "asc";
    state.sort = th.dataset.sort;
    state.rank = "";
    $("f-rank").value = "";
    reloadFirstPage();
  }));
  $("train-btn").addEventListener("click", startTraining);
  $("train-cancel").addEventListener("click", cancelTraining);
  $("score-btn").addEventListener("click", startScoring);
}

async function init() {
  wire();
  try {
    await Promise.all([loadStats(), loadItems()]);
  } catch (err) { toast(err.message, true); }
  pollJob();
  loadHistory().catch((err) => toast(err.message, true));
  pollScoring();
  // Keep the counts fresh while the assistant adds recordings.
  setInterval(() => { if (!document.hidden) loadStats().catch(() => {}); }, 15000);
}

init();
