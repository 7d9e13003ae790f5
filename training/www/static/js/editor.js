// Editor: listen, correct, mark reviewed, save & next — keyboard first, never losing an edit.
"use strict";

const $ = (id) => document.getElementById(id);
const audio = $("audio");
const canvas = $("wave");
const ed = { item: null, saved: { transcript: "", reviewed: false }, toggled: false, peaks: [], suggestion: null, busy: false };

function order() { return $("queue-order").value; }

function isDirty() {
  if (!ed.item) return false;
  return $("transcript").value !== ed.saved.transcript || (ed.toggled && $("reviewed").checked !== ed.saved.reviewed);
}

function setSaveState(text, kind) {
  const box = $("save-state");
  box.textContent = text;
  box.className = `save-state ${kind || ""}`;
}

function refreshDirty() {
  if (isDirty()) setSaveState("Unsaved changes", "warn");
  else if ($("save-state").classList.contains("warn")) setSaveState("", "");
}

// ---- waveform -------------------------------------------------------------

function drawWave() {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const peaks = ed.peaks;
  if (!peaks.length) return;
  const played = audio.duration ? audio.currentTime / audio.duration : 0;
  const barW = width / peaks.length;
  const styles = getComputedStyle(document.documentElement);
  const done = styles.getPropertyValue("--accent").trim() || "#2563eb";
  const rest = styles.getPropertyValue("--wave").trim() || "#cbd5e1";
  peaks.forEach((p, i) => {
    const h = Math.max(1, p * (height - 8));
    ctx.fillStyle = i / peaks.length < played ? done : rest;
    ctx.fillRect(i * barW, (height - h) / 2, Math.max(1, barW - 0.5), h);
  });
  ctx.fillStyle = "#0f172a";
  ctx.fillRect(played * width - 1, 0, 2, height);
}

function animate() {
  drawWave();
  $("time").textContent = `${fmtSeconds(audio.currentTime)} / ${fmtSeconds(ed.item ? ed.item.duration_s : null)}`;
  if (!audio.paused) requestAnimationFrame(animate);
}

async function loadPeaks(id) {
  ed.peaks = [];
  drawWave();
  try {
    const buckets = Math.round(canvas.width / 3);
    ed.peaks = (await api("GET", `/api/data/${id}/peaks?buckets=${buckets}`)).data.peaks;
    const top = Math.max(...ed.peaks, 0.01);
    ed.peaks = ed.peaks.map((p) => p / top);  // quiet recordings still fill the view
  } catch (err) {
    showAudioError(err.message);
  }
  drawWave();
}

function showAudioError(message) {
  $("audio-error").textContent = message;
  $("audio-error").hidden = !message;
  canvas.hidden = Boolean(message);
  $("play-btn").disabled = $("replay-btn").disabled = Boolean(message);
}

function togglePlay() {
  if (!ed.item || ed.item.audio_error) return;
  if (audio.paused) audio.play().catch((err) => setSaveState(`Cannot play: ${err.message}`, "error"));
  else audio.pause();
}

function replay() {
  if (!ed.item || ed.item.audio_error) return;
  audio.currentTime = 0;
  audio.play().catch(() => {});
}

// ---- loading --------------------------------------------------------------

function fill(item) {
  ed.item = item;
  ed.saved = { transcript: item.transcript || "", reviewed: Boolean(item.is_reviewed) };
  ed.toggled = false;
  $("transcript").value = ed.saved.transcript;
  // An unreviewed item is being reviewed right now: tick the box so Ctrl+Enter finishes it.
  $("reviewed").checked = true;
  $("d-id").textContent = item.id;
  $("d-time").textContent = fmtDate(item.timestamp);
  $("d-duration").textContent = fmtSeconds(item.duration_s);
  $("d-rate").textContent = item.sample_rate ? `${item.sample_rate} Hz` : "–";
  $("d-format").textContent = item.audio_mime || "–";
  $("d-reviewed").textContent = item.is_reviewed ? "yes" : "no";
  $("d-trained").textContent = item.is_trained ? "yes" : "no";
  $("prev-btn").disabled = item.prev_id === null;
  $("next-btn").disabled = item.next_id === null;
  $("conflict").hidden = true;
  $("suggestion").hidden = true;
  ed.suggestion = null;
  refreshDirty();
}

async function load(id, push) {
  const { data } = await api("GET", `/api/data/${id}?audio=0`);
  $("done-panel").hidden = true;
  $("editor").hidden = false;
  fill(data);
  setSaveState("", "");
  audio.pause();
  showAudioError(data.audio_error ? `This recording cannot be played: ${data.audio_error}` : "");
  if (!data.audio_error) {
    audio.src = `/api/data/${id}/audio`;
    audio.playbackRate = Number($("speed").value);
    loadPeaks(id);
  } else {
    audio.removeAttribute("src");
  }
  const url = `/editor?id=${id}`;
  if (push) history.pushState({ id }, "", url); else history.replaceState({ id }, "", url);
  $("transcript").focus();
  loadQueueInfo();
}

async function loadQueueInfo() {
  try {
    const s = (await api("GET", "/api/data/stats")).data;
    $("queue-info").textContent = `${s.unreviewed} unreviewed left · ${s.reviewed} reviewed`;
  } catch (err) { /* the counter is a nicety */ }
}

async function openNextUnreviewed(afterId, push) {
  const { data } = await api("GET", `/api/data/next?after=${afterId || 0}&sort=${order()}`);
  if (data.id === null) {
    ed.item = null;
    audio.pause();
    $("editor").hidden = true;
    $("done-panel").hidden = false;
    history.replaceState({}, "", "/editor");
    loadQueueInfo();
    return;
  }
  await load(data.id, push);
}

function confirmLeave() {
  return !isDirty() || window.confirm("You have unsaved changes to this transcript. Leave without saving?");
}

async function go(id) {
  if (id === null || id === undefined || !confirmLeave()) return;
  try { await load(id, true); } catch (err) { setSaveState(err.message, "error"); }
}

// ---- saving ---------------------------------------------------------------

async function save(overwrite) {
  if (!ed.item || ed.busy) return false;
  ed.busy = true;
  setSaveState("Saving…", "");
  const body = { transcript: $("transcript").value, is_reviewed: $("reviewed").checked };
  const headers = overwrite ? {} : { "If-Match": `"${ed.item.version}"` };
  try {
    const { data } = await api("PUT", `/api/data/${ed.item.id}`, body, headers);
    Object.assign(ed.item, data);
    ed.saved = { transcript: data.transcript || "", reviewed: Boolean(data.is_reviewed) };
    ed.toggled = false;
    $("d-reviewed").textContent = data.is_reviewed ? "yes" : "no";
    $("d-trained").textContent = data.is_trained ? "yes" : "no";
    $("conflict").hidden = true;
    setSaveState("Saved ✓", "ok");
    loadQueueInfo();
    return true;
  } catch (err) {
    if (err.status === 412) showConflict(err.body.current);
    else setSaveState(`Not saved: ${err.message}`, "error");
    return false;
  } finally {
    ed.busy = false;
  }
}

function showConflict(current) {
  ed.conflict = current;
  $("conflict-text").textContent = current.transcript === null ? "(no transcript)" : current.transcript;
  $("conflict").hidden = false;
  setSaveState("Not saved: conflict", "error");
}

async function saveAndNext() {
  if (await save(false)) await openNextUnreviewed(ed.item.id, true);
}

// ---- model suggestion -----------------------------------------------------

function wordDiff(a, b) {
  // Longest common subsequence over words: what the model would remove (del) and add (ins).
  const x = a.split(/\s+/).filter(Boolean), y = b.split(/\s+/).filter(Boolean);
  const norm = (w) => w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, "");
  const dp = Array.from({ length: x.length + 1 }, () => new Array(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) for (let j = y.length - 1; j >= 0; j--)
    dp[i][j] = norm(x[i]) === norm(y[j]) ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && norm(x[i]) === norm(y[j])) { out.push(el("span", {}, y[j])); i++; j++; }
    else if (j < y.length && (i >= x.length || dp[i][j + 1] >= dp[i + 1][j])) out.push(el("ins", {}, y[j++]));
    else out.push(el("del", {}, x[i++]));
    out.push(" ");
  }
  return out;
}

async function suggest() {
  if (!ed.item) return;
  $("suggestion").hidden = false;
  $("suggestion-meta").textContent = "listening…";
  $("suggestion-diff").replaceChildren();
  try {
    const { data } = await api("POST", `/api/data/${ed.item.id}/transcribe`);
    ed.suggestion = data.text;
    $("suggestion-meta").textContent = `confidence ${Math.exp(data.avg_logprob || 0).toFixed(2)}`;
    $("suggestion-diff").replaceChildren(...wordDiff($("transcript").value, data.text));
  } catch (err) {
    $("suggestion-meta").textContent = err.message;
  }
}

function acceptSuggestion() {
  if (ed.suggestion === null) return;
  $("transcript").value = ed.suggestion;
  $("suggestion").hidden = true;
  refreshDirty();
  $("transcript").focus();
}

function dismissSuggestion() { $("suggestion").hidden = true; $("transcript").focus(); }

// ---- wiring ---------------------------------------------------------------

function onKey(e) {
  const mod = e.ctrlKey || e.metaKey;
  const k = e.key.toLowerCase();
  let handled = true;
  if (mod && e.key === "Enter") saveAndNext();
  else if (mod && k === "s" && !e.altKey) save(false);
  else if ((mod && e.code === "Space") || (e.altKey && k === "p")) togglePlay();
  else if (e.altKey && k === "r") replay();
  else if (e.altKey && k === "m") { $("reviewed").checked = !$("reviewed").checked; ed.toggled = true; refreshDirty(); }
  else if (e.altKey && e.key === "ArrowUp") go(ed.item && ed.item.prev_id);
  else if (e.altKey && e.key === "ArrowDown") go(ed.item && ed.item.next_id);
  else if (e.altKey && k === "s") suggest();
  else if (e.altKey && k === "a") acceptSuggestion();
  else if (e.altKey && k === "k") dismissSuggestion();
  else handled = false;
  if (handled) e.preventDefault();
}

function wire() {
  document.addEventListener("keydown", onKey);
  $("transcript").addEventListener("input", refreshDirty);
  $("reviewed").addEventListener("change", () => { ed.toggled = true; refreshDirty(); });
  $("play-btn").addEventListener("click", togglePlay);
  $("replay-btn").addEventListener("click", replay);
  $("speed").addEventListener("change", (e) => { audio.playbackRate = Number(e.target.value); });
  $("save-btn").addEventListener("click", () => save(false));
  $("save-next-btn").addEventListener("click", saveAndNext);
  $("prev-btn").addEventListener("click", () => go(ed.item && ed.item.prev_id));
  $("next-btn").addEventListener("click", () => go(ed.item && ed.item.next_id));
  $("suggest-btn").addEventListener("click", suggest);
  $("accept-btn").addEventListener("click", acceptSuggestion);
  $("keep-btn").addEventListener("click", dismissSuggestion);
  $("conflict-theirs").addEventListener("click", () => { fill(Object.assign({}, ed.item, ed.conflict)); setSaveState("Loaded their version", "ok"); });
  $("conflict-mine").addEventListener("click", () => save(true));
  $("queue-order").addEventListener("change", () => localStorage.setItem("s2s-queue-order", order()));
  audio.addEventListener("play", () => { $("play-btn").textContent = "❚❚ Pause"; requestAnimationFrame(animate); });
  audio.addEventListener("pause", () => { $("play-btn").textContent = "▶ Play"; animate(); });
  audio.addEventListener("ended", () => { $("play-btn").textContent = "▶ Play"; animate(); });
  audio.addEventListener("loadedmetadata", animate);
  canvas.addEventListener("click", (e) => {
    if (!audio.duration) return;
    const rect = canvas.getBoundingClientRect();
    audio.currentTime = ((e.clientX - rect.left) / rect.width) * audio.duration;
    animate();
  });
  window.addEventListener("beforeunload", (e) => { if (isDirty()) { e.preventDefault(); e.returnValue = ""; } });
  window.addEventListener("popstate", (e) => { if (e.state && e.state.id) load(e.state.id, false).catch(() => {}); });
}

async function init() {
  wire();
  const saved = localStorage.getItem("s2s-queue-order");
  if (saved) $("queue-order").value = saved;
  const id = new URLSearchParams(window.location.search).get("id");
  try {
    if (id && /^-?\d+$/.test(id)) await load(Number(id), false);
    else await openNextUnreviewed(0, false);
  } catch (err) {
    $("editor").hidden = false;
    setSaveState(err.message, "error");
  }
}

init();
