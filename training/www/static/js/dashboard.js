// Dashboard: stats, the recordings table (filters, search, sort, paging), training with live progress,
// history with a WER chart, and the kept model versions. Everything refreshes in place.
"use strict";

const PAGE = 50;
const PHASES = { queued: "Waiting to start", preparing: "Preparing data", training: "Training",
  evaluating: "Measuring accuracy", saving: "Saving the model", done: "Finished", failed: "Failed", cancelled: "Cancelled" };
// The highest whole-run share each run's bar has shown: an estimate that grows never moves the bar back.
const barHigh = {};

// Filters live in the address bar too, so coming back from the editor shows the same view.
const state = { reviewed: "", trained: "", q: "", rank: "", sort: "id", order: "desc", offset: 0, total: 0 };
let stats = null;
let job = null;           // the latest training run, null when there never was one
// null until the first status answer: a Train click before it raced the page's own first poll, which
// could cancel the click's poll and show an idle page while a run started.
let trainingApi = null;   // false while the training endpoints are not there (404)
let model = null;         // GET /api/model: is there a model to train, and where
let pollTimer = null;
let itemsRequest = 0;     // only the newest list answer is drawn
let durationRetry = null;

// ---- address bar ----------------------------------------------------------

function readUrl() {
  const p = new URLSearchParams(window.location.search);
  const pick = (key, allowed) => (allowed.includes(p.get(key)) ? p.get(key) : state[key]);
  state.reviewed = pick("reviewed", ["", "true", "false", "unusable"]);
  state.trained = pick("trained", ["", "true", "false"]);
  state.rank = pick("rank", ["", "disagreement", "uncertainty"]);
  state.sort = pick("sort", ["id", "timestamp", "transcript"]);
  state.order = pick("order", ["asc", "desc"]);
  state.q = (p.get("q") || "").slice(0, 200);
  const page = Number(p.get("page"));
  state.offset = Number.isInteger(page) && page > 1 ? (page - 1) * PAGE : 0;
  $("f-reviewed").value = state.reviewed;
  $("f-trained").value = state.trained;
  $("f-rank").value = state.rank;
  renderRankNote();
  $("f-q").value = state.q;
}

function writeUrl() {
  const p = new URLSearchParams();
  if (state.reviewed) p.set("reviewed", state.reviewed);
  if (state.trained) p.set("trained", state.trained);
  if (state.q) p.set("q", state.q);
  if (state.rank) p.set("rank", state.rank);
  if (state.sort !== "id" || state.order !== "desc") { p.set("sort", state.sort); p.set("order", state.order); }
  if (state.offset) p.set("page", String(state.offset / PAGE + 1));
  const query = p.toString();
  history.replaceState(null, "", query ? `/?${query}` : "/");
}

// ---- stats ----------------------------------------------------------------

// Why a reviewed item is kept out of every run (utils/training_sets.UNUSABLE_REASON).
const UNUSABLE_REASONS = { not_text: "whose transcript is not text", no_words: "without words", no_audio: "without audio", undecodable: "with audio that does not decode",
  too_long: "longer than 30 s" };

// How often the counts are read again while the page is open.
const STATS_REFRESH_MS = 15000;

async function loadStats() {
  stats = (await api("GET", "/api/data/stats")).data;
  $("stat-total").textContent = stats.total;
  $("stat-reviewed").textContent = stats.reviewed;
  $("stat-trained").textContent = stats.trained;
  $("stat-pending").textContent = stats.pending_training;
  const unreviewed = stats.unreviewed ?? stats.total - stats.reviewed;
  $("stat-unreviewed").textContent = unreviewed ? `${unreviewed} waiting for review` : "all reviewed";
  $("stat-reviewed-bar").style.width = `${stats.total ? (100 * stats.reviewed) / stats.total : 0}%`;
  const aside = [stats.heldout ? `${stats.heldout} more held out for evaluation` : "",
    stats.regression ? `${plural(stats.regression, "regression check")}` : ""].filter(Boolean);
  $("stat-heldout").textContent = aside.length ? aside.join(" · ") : "ready to train on";
  // Every reviewed item is accounted for: those no run can use say why, and list themselves on a click.
  const reasons = Object.entries(stats.unusable_reasons || {}).map(([why, n]) => `${n} ${UNUSABLE_REASONS[why] || why}`);
  $("stat-unusable").textContent = stats.unusable ? `${stats.unusable} not usable: ${reasons.join(", ")}` : "";
  $("stat-unusable").hidden = !stats.unusable;
  const link = $("review-link");
  link.textContent = unreviewed ? `Start reviewing (${unreviewed})` : "Open editor";
  link.classList.toggle("btn-primary", unreviewed > 0);
  loadStyle().catch(() => { $("train-style").hidden = true; });
  $("page-sub").textContent = unreviewed
    ? `${plural(unreviewed, "recording")} to review. Listen, correct, then teach the model.`
    : "Everything is reviewed. New recordings from the assistant appear here.";
  if (!stats.total) renderEmpty();
  updateTrainButton();
}

// A first start on an empty database: say which file is read, and how to try the app without recordings.
let databasePath = null;
function renderEmpty() {
  $("page-sub").textContent = `No recordings yet${databasePath ? ` in ${databasePath}` : ""}. ` +
    "The assistant's recordings appear here as it writes them. To try the app first, start it with --demo " +
    "(./training_server.sh --demo, or python main.py demo to add the demo clips to this database).";
}

// How the transcripts to train on are written: the model learns that style, so say so before Train.
let styleFor = null;
async function loadStyle() {
  const pending = stats ? stats.pending_training : 0;
  if (pending === styleFor) return;  // read again only when what Train would use changed
  styleFor = pending;
  const note = pending ? (await api("GET", "/api/data/style")).data.note : null;
  $("train-style").textContent = note || "";
  $("train-style").hidden = !note;
}

function updateTrainButton() {
  const running = Boolean(job && job.active);
  const pending = stats ? stats.pending_training : 0;
  const button = $("train-btn");
  const noModel = Boolean(model && !model.format);  // no folder, or one that holds no Whisper model
  button.disabled = running || pending === 0 || !trainingApi || noModel;
  let reason;
  let warning = false;  // ready, but with something to know first: not shown as plain good news
  if (trainingApi === null) reason = "";
  else if (!trainingApi) reason = "Training is not available on this server yet.";
  else if (running) reason = "A training run is in progress.";
  else if (!stats) reason = "";
  else if (pending === 0) {
    reason = stats.reviewed > stats.trained
      ? `Nothing new to train on: the reviewed items are held out${stats.unusable ? ", not usable" : ""} or already trained. Review more recordings first.`
      : "Nothing to train on yet: review some items in the editor first.";
  } else if (noModel && model.present) {
    reason = `${model.path} does not hold a Whisper model this app can train; ` +
      "`python main.py model info` says what it found and what is expected.";
  } else if (noModel) {
    reason = "There is no model to fine-tune: run `python main.py model download` (or `python main.py demo` " +
      "for the bundled tiny.en), or point [model].path at your Whisper model.";
  } else {
    reason = `Ready: will fine-tune on ${plural(pending, "reviewed item")}${stats.heldout ? ` and measure on ${stats.heldout} held out` : ""}.`;
    // Under ~100 words one word moves the held-out WER by a point or more: say so before the verdict does.
    const words = stats.heldout_words;  // null: a held-out set too large to count, and large enough
    if (stats.heldout && Number.isFinite(words) && words < 100) {
      reason += ` The held-out items hold ${plural(words, "word")}, too few to tell a better model from a worse one ` +
        `(one word is ${words ? (100 / words).toFixed(1) : "100"} points of WER): review more items to make the verdict surer.`;
      warning = true;
    }
  }
  $("train-reason").textContent = reason;
  $("train-reason").classList.toggle("ready", !button.disabled && !warning);
  $("train-reason").classList.toggle("warn", !button.disabled && warning);
}

// ---- recordings table -----------------------------------------------------

function itemsUrl() {
  const p = new URLSearchParams({ limit: PAGE, offset: state.offset });
  if (state.reviewed === "unusable") p.set("unusable", "true");
  else if (state.reviewed) p.set("reviewed", state.reviewed);
  if (state.trained) p.set("trained", state.trained);
  if (state.q) p.set("q", state.q);
  if (state.rank) p.set("sort", state.rank);
  else { p.set("sort", state.sort); p.set("order", state.order); }
  return `/api/data?${p}`;
}


function openItem(id) { window.location.href = `/editor?id=${encodeURIComponent(id)}`; }

function renderRows(items, measured) {
  const body = $("items-body");
  const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
  body.replaceChildren(...items.map((item) => {
    let preview;
    if (item.transcript === null || item.transcript === "") preview = el("em", { class: "muted" }, "(no transcript)");
    else preview = item.transcript.length > 140 ? `${item.transcript.slice(0, 140)}…` : item.transcript;
    // Audio that cannot play cannot be reviewed by ear: such a row says so instead of "To review".
    const unplayable = Boolean(item.audio_error) && !item.is_reviewed;
    const row = el("tr", { tabindex: "0", dataset: { id: item.id }, title: "Open in the editor",
                           class: unplayable ? "unplayable" : "" },
      el("td", { class: "num col-id" }, item.id),
      el("td", { class: "preview" }, preview),
      el("td", { class: "num col-dur" }, item.duration_s === null ? el("span", { class: "muted", title: measured ? "Length unknown" : "Measuring…" }, measured ? "–" : "…") : fmtSeconds(item.duration_s)),
      el("td", { class: "col-status" },
        item.is_reviewed ? badge("Reviewed", "ok")
          : unplayable ? badge("Won't play", "warn", `The audio cannot be played: ${item.audio_error}`)
          : badge("To review", "new"),
        item.is_trained ? badge("Trained", "trained") : null,
        item.held_out ? badge("Held out", "neutral", "Measures every run's model; never trained on") : null,
        item.regression ? badge("Regression check", "warn", "Every run must still get it right; never trained on") : null,
        item.no_speech ? badge("No speech", "neutral", "Marked as holding no speech: trained as silence") : null,
        item.unusable ? badge("Not usable", "warn", `No run can use it: ${UNUSABLE_REASONS[item.unusable] || item.unusable}`) : null,
        item.problem ? badge("Needs repair", "warn", item.problem) : null),
      el("td", { class: "col-time" }, el("span", { title: fmtDate(item.timestamp) }, fmtAgo(item.timestamp) || fmtShortDate(item.timestamp))));
    row.addEventListener("click", () => openItem(item.id));
    return row;
  }));
  $("items-empty").hidden = items.length > 0;
  if (focusedId) {
    const again = body.querySelector(`tr[data-id="${CSS.escape(focusedId)}"]`);
    if (again) again.focus();
  }
}

function renderSortHeaders() {
  document.querySelectorAll("th[data-sort]").forEach((th) => {
    const active = !state.rank && th.dataset.sort === state.sort;
    th.setAttribute("aria-sort", active ? (state.order === "asc" ? "ascending" : "descending") : "none");
  });
}

async function loadItems(isRetry) {
  const ticket = ++itemsRequest;
  writeUrl();
  renderSortHeaders();
  const { data, headers } = await api("GET", itemsUrl());
  if (ticket !== itemsRequest) return;  // a newer request is on its way
  state.total = Number(headers.get("X-Total-Count") ?? data.length);
  if (!data.length && state.offset > 0 && state.total > 0) {  // the page vanished (filters, deletions)
    state.offset = Math.floor((state.total - 1) / PAGE) * PAGE;
    return loadItems(isRetry);
  }
  renderRows(data, isRetry);
  $("page-info").textContent = state.total
    ? `${state.offset + 1}–${state.offset + data.length} of ${state.total}` : "no items";
  $("page-prev").disabled = state.offset === 0;
  $("page-next").disabled = state.offset + PAGE >= state.total;
  // Durations are measured in the background the first time a page is shown: ask once more shortly.
  clearTimeout(durationRetry);
  if (!isRetry && data.some((i) => i.duration_s === null)) {
    durationRetry = setTimeout(() => loadItems(true).catch(() => {}), 1100);
  }
}

function reloadFirstPage() {
  state.offset = 0;
  loadItems().catch((err) => toast(err.message, true));
}

function moveRowFocus(delta) {
  const rows = [...$("items-body").rows];
  if (!rows.length) return;
  const index = rows.indexOf(document.activeElement);
  const next = rows[Math.max(0, Math.min(rows.length - 1, index < 0 ? 0 : index + delta))];
  next.focus();
}

// ---- training -------------------------------------------------------------

function showJob(status) {
  job = status && status.state && status.state !== "idle" ? status : null;
  const running = Boolean(job && job.active);
  $("train-progress").hidden = !running;
  if (running) {
    // One bar for the whole run where an earlier run says how long runs take; never moving back within a run.
    const whole = Number.isFinite(job.overall_percent);
    const raw = Math.max(0, Math.min(100, Number(whole ? job.overall_percent : job.percent) || 0));
    const pct = whole ? Math.max(raw, barHigh[job.job_id] || 0) : raw;
    if (whole) barHigh[job.job_id] = pct;
    $("train-bar").style.width = `${pct}%`;
    $("train-progressbar").setAttribute("aria-valuenow", pct.toFixed(0));
    // "Measuring accuracy before training", "Training · validating": the phase under way, named beside the bar.
    const when = job.state === "evaluating" && job.phase ? ` ${job.phase}`
      : job.state === "training" && job.phase && job.phase !== "training" ? ` · ${job.phase}` : "";
    $("train-phase").textContent = `${PHASES[job.state] || job.state}${when}`;
    $("train-percent").textContent = `${pct.toFixed(0)}%`;
    // Within the phase: its steps (and, without a whole-run estimate, its share, since the bar is the phase's).
    const inPhase = job.total ? `step ${job.step} of ${job.total}` : "";
    $("train-step").textContent = whole || !inPhase ? inPhase : `${inPhase} of this phase`;
    $("train-loss").textContent = Number.isFinite(job.loss) ? `loss ${job.loss.toFixed(3)}` : "";
    const left = whole ? job.remaining_s : job.eta_s;
    $("train-eta").textContent = [Number.isFinite(job.elapsed_s) ? `${fmtDuration(job.elapsed_s)} so far` : "",
      Number.isFinite(left) && left > 0 ? `about ${fmtDuration(left)} left${whole ? "" : " in this phase"}` : ""]
      .filter(Boolean).join(" · ");
    $("train-message").textContent = job.message || "";
    $("train-cancel").disabled = false;
  }
  updateTrainButton();
  return running;
}

function fmtShortDate(text) {
  const d = parseDate(text);
  if (!d) return text || "–";
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString(undefined, { month: "short", day: "numeric", year: sameYear ? undefined : "numeric", hour: "2-digit", minute: "2-digit" });
}

function showResult(run, fromBefore) {
  const box = $("train-result");
  if (!run || run.active) { box.hidden = true; return; }
  let title;
  let kind;
  // A set that got worse within chance is deployed by the rule, but never announced as a plain success.
  const worse = (run.result && Array.isArray(run.result.worse_sets)) ? run.result.worse_sets : [];
  const replaced = Boolean(run.version && model && model.version && model.version !== run.version);
  if (run.state === "done" && run.deployed && replaced) {
    // A rollback (or a deploy by hand) since: the banner must not announce a model that is no longer in use.
    title = `Its model (version ${run.version}) was deployed; version ${model.version} is in use now.`;
    kind = "neutral";
  } else if (run.state === "done" && run.deployed && worse.length) {
    title = `New model deployed, though ${worse.map((name) => name === "no_speech" ? "clips without speech" : name).join(" and ")} got worse.`;
    kind = "warn";
  } else if (run.state === "done" && run.deployed) { title = "New model deployed."; kind = "ok"; }
  else if (run.state === "done" && model && model.version && model.version === run.version) {
    title = "Model rejected by the checks, then deployed by hand."; kind = "ok";
  } else if (run.state === "done") { title = "Model not deployed."; kind = "warn"; }
  else if (run.state === "cancelled") { title = "Training cancelled."; kind = "neutral"; }
  else { title = "Training failed."; kind = "error"; }
  const wer = Number.isFinite(run.wer_before) || Number.isFinite(run.wer_after)
    ? ` Held-out WER ${fmtPercent(run.wer_before)} → ${fmtPercent(run.wer_after)}.` : "";
  $("train-result-title").textContent = fromBefore ? `Last run (${fmtAgo(run.finished_at) || fmtShortDate(run.finished_at)}): ${title.charAt(0).toLowerCase()}${title.slice(1)}` : title;
  // The server's message opens with its own verdict ("Deployed: ..."), which the title already says.
  const stripped = (run.message || "").replace(/^(Not deployed|Deployed|Cancelled):\s*/, "");
  const message = stripped.charAt(0).toUpperCase() + stripped.slice(1);
  $("train-result-text").textContent = message.includes("→") || !wer ? ` ${message}` : ` ${message}${wer}`;
  box.className = `train-result ${kind}`;
  box.hidden = false;
}

async function pollJob(announce) {
  clearTimeout(pollTimer);
  let running = false;
  try {
    const status = (await api("GET", "/api/train/status")).data;
    trainingApi = true;
    const wasRunning = Boolean(job && job.active);
    running = showJob(status);
    if (!running && (announce || wasRunning)) showResult(job, !wasRunning);
    if (wasRunning && !running) {
      // The run ended while we watched: counts, flags and history all changed.
      await Promise.all([loadStats(), loadItems(), loadHistory()]).catch((err) => toast(err.message, true));
      pollScoring();  // a deployed model scores the backlog again (training.rescore_after_deploy)
    }
  } catch (err) {
    if (err.status === 404) { trainingApi = false; updateTrainButton(); }
    else toast(`Training status: ${err.message}`, true);
  }
  if (running) pollTimer = setTimeout(() => pollJob(false), 1000);
}

async function startTraining() {
  const button = $("train-btn");
  button.disabled = true;
  $("train-result").hidden = true;
  try {
    const { data } = await api("POST", "/api/train", {});
    toast(data.message || "Training started.");
    showJob({ state: "queued", job_id: data.job_id, percent: 0, step: 0, total: 0, message: data.message });
    pollTimer = setTimeout(() => pollJob(false), 400);
  } catch (err) {
    toast(err.message, true);
    if (err.status === 409) pollJob(false);  // someone else started one: watch it
    updateTrainButton();
  }
}

async function cancelTraining() {
  if (!job) return;
  if (!window.confirm("Stop this training run? The deployed model stays as it is.")) return;
  $("train-cancel").disabled = true;
  try {
    const { data } = await api("POST", `/api/train/${encodeURIComponent(job.job_id)}/cancel`);
    toast(data.message || "Cancelling…");
    $("train-message").textContent = data.message || "Cancelling…";
  } catch (err) {
    toast(err.message, true);
    $("train-cancel").disabled = false;
  }
}

// ---- history and versions -------------------------------------------------

function outcome(run) {
  if (run.active) return badge("Running", "new");
  if (run.state === "done" && run.deployed) {
    // Deployed when it ran; a later run or a rollback may have replaced it since.
    return !model || !model.version || model.version === run.version ? badge("Deployed", "ok")
      : badge("Was deployed", "neutral", `Replaced since: version ${model.version} is in use now`);
  }
  if (run.state === "done" && model && model.version && model.version === run.version) {
    return badge("Deployed by hand", "ok", "Rejected by the checks, then deployed from Model versions");
  }
  if (run.state === "done") return badge("Rejected", "warn", "Accuracy got worse; the model was kept but not deployed");
  if (run.state === "cancelled") return badge("Cancelled", "neutral");
  return badge("Failed", "error");
}

function werChart(runs) {
  const points = runs.filter((r) => Number.isFinite(r.wer_after)).slice().reverse();  // oldest first
  const box = $("wer-chart");
  box.replaceChildren();
  if (!points.length) return;
  const w = 640, h = 150, left = 44, right = 16, top = 14, bottom = 26;
  const highest = Math.max(0.05, ...points.map((r) => Math.max(r.wer_after, Number.isFinite(r.wer_before) ? r.wer_before : 0)));
  const max = Math.ceil((highest * 100) / 10) * 10 / 100;  // a round top line: 10%, 20%, …
  const x = (i) => left + (points.length === 1 ? (w - left - right) / 2 : (i * (w - left - right)) / (points.length - 1));
  const y = (v) => top + (1 - v / max) * (h - top - bottom);
  const svg = svgEl("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "Held-out word error rate before and after each training run" });
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(svgEl("line", { x1: left, x2: w - right, y1: y(v), y2: y(v), class: "chart-grid" }));
    svg.append(svgEl("text", { x: left - 6, y: y(v) + 4, class: "chart-label", "text-anchor": "end" }, `${(v * 100).toFixed(0)}%`));
  }
  // No line from run to run: each run is measured on the held-out set of its day, which grows as
  // reviews come in, so a line across runs could rise while every run improved. Each run is its
  // own before → after stroke.
  points.forEach((r, i) => {
    if (Number.isFinite(r.wer_before)) {
      svg.append(svgEl("line", { x1: x(i), x2: x(i), y1: y(r.wer_before), y2: y(r.wer_after), class: "chart-delta" }));
      svg.append(svgEl("circle", { cx: x(i), cy: y(r.wer_before), r: 3, class: "chart-before" }));
    }
    svg.append(svgEl("circle", { cx: x(i), cy: y(r.wer_after), r: 5, class: `chart-dot ${r.deployed ? "deployed" : "rejected"}` },
      svgEl("title", {}, `${fmtDate(r.started_at)}: WER ${fmtPercent(r.wer_before)} → ${fmtPercent(r.wer_after)} (${r.deployed ? "deployed" : "not deployed"})`)));
    svg.append(svgEl("text", { x: x(i), y: h - 8, class: "chart-label", "text-anchor": "middle" }, `#${i + 1}`));
  });
  // Each symbol stays on one line with its words: wrapped apart, a dot ended a line with no meaning.
  const key = (kind, words) => el("span", { class: "legend-key" }, el("span", { class: `dot ${kind}` }), words);
  const legend = el("p", { class: "chart-legend muted" }, key("deployed", "deployed"), key("rejected", "not deployed"),
    key("before", "WER before the run"),
    el("span", {}, "Each run is measured on the held-out set of its day: compare a run's before and after."));
  box.append(svg, legend);
}

function renderVersions(model) {
  const list = $("versions");
  if (!model) { list.replaceChildren(); $("versions-empty").hidden = false; return; }
  $("model-line").textContent = model.present
    ? `${model.name || "Model"}${model.format ? ` (${model.format})` : ""} at ${model.path}${model.version ? ` · version ${model.version} deployed` : ""}`
    : `No model found at ${model.path}. Run \`python main.py model download\` to fetch one there, or point [model].path at your Whisper model.`;
  renderTold(model);
  const versions = model.versions || [];
  const running = Boolean(job && job.active);
  // Newest first: versions above the deployed one are newer, so choosing one deploys it rather than rolling back.
  const deployedAt = versions.findIndex((v) => v.deployed);
  list.replaceChildren(...versions.map((v, i) => el("li", { class: v.deployed ? "current" : "" },
    el("div", { class: "version-main" },
      el("strong", {}, v.version),
      v.deployed ? badge("Deployed", "ok") : v.accepted === false ? badge("Rejected", "warn") : null,
      el("span", { class: "muted small" }, v.created_at ? fmtDate(v.created_at) : "original")),
    el("span", { class: "muted small version-wer" },
      Number.isFinite(v.wer_after) ? `WER ${fmtPercent(v.wer_before)} → ${fmtPercent(v.wer_after)}` : ""),
    v.deployed ? el("span", { class: "small muted" }, "in use")
      : el("button", { type: "button", class: "btn btn-small", disabled: running, onclick: () => rollback(v.version) },
        deployedAt >= 0 && i > deployedAt ? "Roll back" : "Deploy"))));
  $("versions-empty").hidden = versions.length > 0;
}

// ---- disk use beside the model ---------------------------------------------

function fmtBytes(bytes) {
  if (!Number.isFinite(bytes)) return "–";
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  return `${Math.round(bytes / 1024 ** 2)} MB`;
}

// What the model, its versions and its caches take, and what is free: the caches can be rebuilt, so they can go.
async function loadDisk() {
  const { data } = await api("GET", "/api/model/disk");
  $("disk-use").textContent = `On disk: model ${fmtBytes(data.model_bytes)} · kept versions ` +
    `${fmtBytes(data.versions_bytes)} · caches ${fmtBytes(data.caches_bytes)} (rebuilt when needed) · ` +
    `${fmtBytes(data.free_bytes)} free.`;
  $("clear-caches").disabled = data.caches_bytes === 0 || Boolean(job && job.active);
  $("disk-line").hidden = false;
}

async function clearCaches() {
  try {
    const { data } = await api("DELETE", "/api/model/caches");
    toast(data.message);
  } catch (err) {
    toast(err.message, true);
  }
  loadDisk().catch(() => {});
}

// Whether the assistant knows about the model deployed now: the on_deploy command's outcome, or the file it may watch.
function renderTold(model) {
  const line = $("assistant-told");
  const told = model.assistant_told;
  const current = told && model.deployed && told.version === model.deployed.version;
  line.hidden = !model.deployed;
  line.className = `small told ${current && !told.ok ? "save-state warn" : "muted"}`;
  line.textContent = current
    ? `${told.message}${told.at ? ` (${fmtDate(told.at)})` : ""}`
    : `The assistant learns of a new model from ${model.deployed_file}, or from a command set in [assistant].on_deploy.`;
}

async function optional(url) {
  try { return (await api("GET", url)).data; }
  catch (err) { if (err.status === 404) return null; throw err; }
}

// Where a run's minutes went (its result's phase_seconds, in run order): "loading 2 s · encoding 31 s · …".
function phaseTimes(run) {
  const phases = run.result && run.result.phase_seconds;
  if (!phases || typeof phases !== "object") return "";
  return Object.entries(phases).filter(([, s]) => Number.isFinite(s) && s >= 0.5)
    .map(([name, s]) => `${name} ${fmtDuration(s)}`).join(" · ");
}

// How a run was judged: the way the assistant decodes, and which clips chose the epoch and which judged the deploy.
function judging(run) {
  const result = run.result || {};
  const heard = typeof result.heard_as === "string" ? `Heard as the assistant hears: ${result.heard_as}.` : "";
  return [heard, typeof result.roles === "string" ? result.roles : ""].filter(Boolean).join(" ");
}

// A run's own held-out clips: what was said, and what the model wrote before and after, word by word
// (struck through: said but not written; highlighted: written but not said).
function heldoutClips(run) {
  const clips = run.result && Array.isArray(run.result.heldout_clips) ? run.result.heldout_clips : [];
  if (!clips.length) return null;
  const changed = clips.filter((c) => c.before !== c.after).length;
  // Where the run counted no error, the words are the same after Whisper's normalizer ("30%" and "thirty
  // percent", case, punctuation): shown dotted as a whole, never struck.
  const line = (label, reference, heard, errors) => el("div", { class: "clip-line diff" },
    el("span", { class: "muted small clip-label" }, label),
    ...(errors === 0 && (reference || "") !== (heard || "")
      ? [el("span", { class: "restyled", title: "The same words as the run counts them: no error" }, heard)]
      : wordDiff(reference || "", heard || "")));
  return el("details", { class: "run-clips" },
    el("summary", {}, `Held-out clips: ${clips.length}, ${plural(changed, "transcript")} changed`),
    el("p", { class: "muted small diff legend" }, el("del", {}, "struck"), ": said, not written · ",
      el("ins", {}, "underlined"), ": written, not said · ",
      el("span", { class: "restyled" }, "dotted"), ": the same words written another way (case, punctuation, " +
      "numbers), which the WER does not count"),
    el("ol", {}, ...clips.map((c) => el("li", {},
      el("div", {}, el("a", { href: `/editor?id=${encodeURIComponent(c.id)}` }, `#${c.id}`), " ",
        el("span", { class: "clip-ref" }, c.reference || "(no words)")),
      line("before", c.reference, c.before, c.before_errors), line("after", c.reference, c.after, c.after_errors)))));
}

// A kept version deployed by hand: its own row, so the history does not read as if the last run's model were in use.
function rollbackRow(r) {
  const what = r.previous ? `version ${r.previous} replaced` : "the original model replaced";
  return el("tr", { class: "rollback-row" },
    el("td", { class: "nowrap" }, el("span", { title: fmtDate(r.at) }, fmtShortDate(r.at))),
    el("td", { class: "num", "data-label": "Items" }, "–"),
    el("td", { "data-label": "Mode" }, "by hand"),
    el("td", { class: "wer", "data-label": "Held-out WER" }, "–"),
    el("td", { class: "num nowrap", "data-label": "Took" }, "–"),
    el("td", { class: "outcome" }, badge("Rolled back", "neutral"),
      el("span", { class: "muted run-message" }, `Version ${r.version} deployed from Model versions (${what}).`)));
}

async function loadHistory() {
  const [runs, info, rolled] = await Promise.all([optional("/api/train/runs"), optional("/api/model"),
                                                  optional("/api/model/rollbacks")]);
  model = info;
  if (info) loadDisk().catch(() => { $("disk-line").hidden = true; });
  updateTrainButton();
  const list = Array.isArray(runs) ? runs : [];
  const rows = [...list.map((r) => ({ at: r.started_at, run: r })),
                ...(Array.isArray(rolled) ? rolled : []).map((r) => ({ at: r.at, rollback: r }))]
    // Newest first; a rollback in the same second as a run's start came after it (times are to the second).
    .sort((a, b) => String(b.at).localeCompare(String(a.at)) || Boolean(b.rollback) - Boolean(a.rollback));
  $("runs-body").replaceChildren(...rows.map(({ run: r, rollback: rb }) => rb ? rollbackRow(rb) : el("tr", {},
    el("td", { class: "nowrap" }, el("span", { title: fmtDate(r.started_at) }, fmtShortDate(r.started_at))),
    // data-label names the column where a phone shows each row as a card without the header.
    el("td", { class: "num", "data-label": "Items" }, r.items ?? "–",
      r.heldout_items ? el("span", { class: "muted small", title: "Held out: measured, never trained on" },
        ` + ${r.heldout_items} held out`) : null),
    el("td", { "data-label": "Mode" }, r.mode || "–"),
    el("td", { class: "wer", "data-label": "Held-out WER" }, Number.isFinite(r.wer_after) || Number.isFinite(r.wer_before)
      ? `${fmtPercent(r.wer_before)} → ${fmtPercent(r.wer_after)}` : "–"),
    el("td", { class: "num nowrap", "data-label": "Took", title: phaseTimes(r) }, fmtDuration(r.duration_s)),
    el("td", { class: "outcome" }, outcome(r), r.message ? el("span", { class: "muted run-message" }, r.message) : null,
      phaseTimes(r) ? el("span", { class: "muted run-message run-phases" }, `Time: ${phaseTimes(r)}`) : null,
      judging(r) ? el("span", { class: "muted run-message run-judging" }, judging(r)) : null,
      heldoutClips(r)))));
  $("runs-empty").hidden = rows.length > 0;
  werChart(list);
  if (model === null) $("model-line").textContent = "Model information is not available on this server yet.";
  renderVersions(model);
}

async function rollback(version) {
  if (!window.confirm(`Deploy model version ${version}? The model in use now stays kept, so you can switch back. ` +
    "Recordings that version has not learned count as pending training again.")) return;
  try {
    const { data } = await api("POST", "/api/model/rollback", { version });
    toast(data.message || `Version ${version} is deployed.`);
  } catch (err) {
    toast(err.message, true);
  }
  // A rollback changes which items count as trained: the counts and badges too, not just the history.
  await Promise.all([loadHistory(), loadStats(), loadItems()]).catch((err) => toast(err.message, true));
  pollScoring();  // the model put back scores the backlog too
  if (job && !job.active) showResult(job, true);  // the last run's banner follows what is deployed now
}

// ---- model scoring (ranking the review queue) ----------------------------

// What the model's order rests on, said whenever it is chosen (utils/suggestion_rows.RANKINGS).
const RANK_BASIS = {
  disagreement: "Ordered by how differently the deployed model writes each recording from its stored transcript " +
    "(word error rate between the two), most different first.",
  uncertainty: "Ordered by how sure the deployed model is of what it heard (average log-probability), least sure first.",
};

function renderRankNote() {
  const basis = RANK_BASIS[state.rank];
  $("rank-note").textContent = basis ? `${basis} Recordings it has not transcribed yet come last, oldest first: ` +
    "Score with model transcribes them all." : "";
  $("rank-note").hidden = !basis;
}

async function pollScoring() {
  try {
    const { data } = await api("GET", "/api/suggestions/score");
    const running = data.state === "running";
    // Ranking by the model's doubt needs its transcripts: say so rather than quietly show oldest first.
    const unscored = state.rank && data.state === "idle"
      ? "Recordings the model has not heard yet come last: Score with model ranks them all." : "";
    // A job that has not counted its clips yet says "Scoring…", not "Scoring 0 of 0…".
    const progress = data.total ? ` ${data.done} of ${data.total}` : "";
    // What a deploy changed for the backlog: how many unreviewed transcripts the deployed model would write otherwise.
    const differ = data.scored ? `The deployed model would write ${data.differ} of ${data.scored} scored unreviewed ` +
      `transcript${data.scored === 1 ? "" : "s"} differently.` : "";
    $("score-status").textContent = running ? `Scoring${progress}…` : [data.message, differ].filter(Boolean).join(" ") || unscored;
    $("score-btn").disabled = running;
    $("score-cancel").hidden = !running;
    if (running) setTimeout(pollScoring, 1500);
    else if (state.rank && data.state === "done") loadItems().catch(() => {});
  } catch (err) {
    $("score-btn").hidden = err.status === 404;
    $("score-status").textContent = "";
  }
}

async function startScoring() {
  try { await api("POST", "/api/suggestions/score"); pollScoring(); }
  catch (err) { toast(err.message, true); }
}

async function stopScoring() {
  try { await api("POST", "/api/suggestions/score/cancel"); }
  catch (err) { if (err.status !== 409) toast(err.message, true); }  // 409: it had just finished
  pollScoring();
}

// ---- wiring ---------------------------------------------------------------

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "/" && !isTyping(e.target)) { e.preventDefault(); $("f-q").focus(); $("f-q").select(); return; }
  if (e.key === "Escape" && e.target === $("f-q")) {
    if ($("f-q").value) { $("f-q").value = ""; state.q = ""; reloadFirstPage(); } else $("f-q").blur();
    return;
  }
  const inTable = e.target instanceof HTMLElement && e.target.closest("#items-body");
  // With nothing focused (the page just loaded), ↓ starts at the first row, as the hint under the table says.
  const fromPage = e.target === document.body || e.target === $("f-q");
  if (e.key === "ArrowDown" && (inTable || fromPage)) { e.preventDefault(); moveRowFocus(inTable ? 1 : 0); }
  else if (e.key === "ArrowUp" && inTable) { e.preventDefault(); if (e.target === $("items-body").rows[0]) $("f-q").focus(); else moveRowFocus(-1); }
  else if (e.key === "Enter" && inTable && e.target.dataset.id) openItem(e.target.dataset.id);
}

function wire() {
  $("clear-caches").addEventListener("click", clearCaches);
  $("f-reviewed").addEventListener("change", (e) => { state.reviewed = e.target.value; reloadFirstPage(); });
  // The export's options, as `main.py export --untrained --wav16k` has them.
  const exportHref = () => {
    const p = new URLSearchParams();
    if ($("export-untrained").checked) p.set("untrained", "true");
    if ($("export-wav16k").checked) p.set("wav16k", "true");
    $("export-link").href = `/api/export${p.toString() ? `?${p}` : ""}`;
  };
  $("export-untrained").addEventListener("change", exportHref);
  $("export-wav16k").addEventListener("change", exportHref);
  $("stat-unusable").addEventListener("click", () => {
    state.reviewed = "unusable";
    $("f-reviewed").value = "unusable";
    reloadFirstPage();
    $("items-panel").focus();
  });
  $("f-trained").addEventListener("change", (e) => { state.trained = e.target.value; reloadFirstPage(); });
  $("f-rank").addEventListener("change", (e) => {
    state.rank = e.target.value; renderRankNote(); reloadFirstPage(); pollScoring();
  });
  $("f-q").addEventListener("input", debounce((e) => {
    const q = e.target.value.trim();
    if (q !== state.q) { state.q = q; reloadFirstPage(); }
  }, 250));
  $("page-prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadItems().catch((err) => toast(err.message, true)); });
  $("page-next").addEventListener("click", () => { state.offset += PAGE; loadItems().catch((err) => toast(err.message, true)); });
  document.querySelectorAll("th[data-sort] .sort-btn").forEach((btn) => btn.addEventListener("click", () => {
    const key = btn.closest("th").dataset.sort;
    // A second click on the same column flips it; a new column starts A→Z for text, newest first otherwise.
    if (!state.rank && state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
    else state.order = key === "transcript" ? "asc" : "desc";
    state.sort = key;
    state.rank = "";
    $("f-rank").value = "";
    renderRankNote();
    reloadFirstPage();
  }));
  $("train-btn").addEventListener("click", startTraining);
  $("train-cancel").addEventListener("click", cancelTraining);
  $("score-btn").addEventListener("click", startScoring);
  $("score-cancel").addEventListener("click", stopScoring);
  document.addEventListener("keydown", onKey);
  // Back from the editor via the browser's cache: show fresh counts.
  window.addEventListener("pageshow", (e) => { if (e.persisted) { loadStats().catch(() => {}); loadItems().catch(() => {}); } });
}

async function loadHealth() {
  try {
    const { data } = await api("GET", "/api/health");
    $("health-line").textContent = data.status === "ok" ? "" : "Database problem";
    // A disk under the assistant's margin, in one sentence: what is short and what to delete.
    const short = data.disk && !data.disk.ok ? data.disk.message : "";
    $("disk-warning").textContent = short;
    $("disk-warning").hidden = !short;
    databasePath = data.database && data.database.path;
    if (stats && !stats.total) renderEmpty();
  } catch (err) {
    $("health-line").textContent = err.status === 503 ? "Database cannot be read" : "";
  }
}

async function init() {
  readUrl();
  wire();
  try {
    await Promise.all([loadStats(), loadItems()]);
  } catch (err) {
    toast(err.message, true);
  }
  await pollJob(true);
  // The last run's banner again once the deployed model is known: a rollback since may have replaced its model.
  loadHistory().then(() => { if (job && !job.active) showResult(job, true); })
    .catch((err) => toast(`Training history: ${err.message}`, true));
  pollScoring();
  loadHealth();
  // Keep the counts fresh while the assistant adds recordings (cheap, index-only on the server), and the list
  // with them: "1–50 of 300" once the cards say 320 reads as if the new rows were missing.
  setInterval(() => {
    if (document.hidden) return;
    const before = stats ? stats.total : null;
    loadStats().then(() => { if (before !== null && stats.total !== before) return loadItems(); }).catch(() => {});
    loadHealth();  // a disk filling up while the page is open
  }, STATS_REFRESH_MS);
}

init();
