// Editor: listen, correct, mark reviewed, save & next. Keyboard first, and never loses an edit:
// unsaved changes are guarded, and a save that would overwrite someone else's change is refused (If-Match).
"use strict";

const audio = $("audio");
const canvas = $("wave");
const textarea = $("transcript");
const SESSION_KEY = "s2s-reviewed-this-session";

const ed = {
  item: null,                                   // the item as last read or saved (with version)
  saved: { transcript: "", reviewed: false },   // what the server holds, to tell unsaved edits
  toggled: false,                               // the reviewer changed the checkbox by hand
  peaks: [],                                    // 0..1 per bucket, scaled so quiet clips still show
  hover: null,                                  // 0..1 position of the mouse over the waveform
  ticket: 0,                                    // only the newest load is shown
  undo: null,                                   // what the last Alt+N replaced: { id, text, reviewed, version }
  busy: false,
  conflict: null,
  nextAfterConflict: null,  // the item whose Save & Next stopped at a conflict
  suggestion: null,
};

function order() { return $("queue-order").value; }
function sessionCount() { return Number(sessionStorage.getItem(SESSION_KEY) || 0); }

// ---- save state -----------------------------------------------------------

function isDirty() {
  if (!ed.item) return false;
  return textarea.value !== ed.saved.transcript || (ed.toggled && $("reviewed").checked !== ed.saved.reviewed) ||
    $("regression").checked !== ed.saved.regression;
}

function setSaveState(text, kind) {
  const box = $("save-state");
  box.textContent = text;
  box.className = `save-state ${kind || ""}`;
}

function refreshDirty() {
  if (isDirty()) setSaveState("Unsaved changes", "warn");
  else if ($("save-state").classList.contains("warn")) setSaveState("", "");
  refreshReviewedHint();
  refreshStyleNote();
  const words = textarea.value.trim() ? textarea.value.trim().split(/\s+/).length : 0;
  // Fast speech is about 4 words a second; far more than that cannot all be in this clip.
  const seconds = ed.item && ed.item.duration_s;
  const tooMany = seconds > 0 && words > 2 + 6 * seconds;
  $("char-count").textContent = textarea.value.length > 9000
    ? `${textarea.value.length} / 10000 characters`
    : words ? `· ${plural(words, "word")}${tooMany ? ` — more than a ${seconds.toFixed(1)} s clip can hold` : ""}` : "";
  $("char-count").classList.toggle("warn", tooMany);
}

const STYLE_NAMES = { capitals: "capitals", punctuation: "punctuation", numbers: "the way numbers are written" };

// An edit that changes only how the words are written: the run scores it as no change, but the model learns it.
function refreshStyleNote() {
  const kinds = ed.item ? styleChange(ed.opened || "", textarea.value) : null;
  const note = $("style-note");
  note.hidden = !kinds;
  if (!kinds) return;
  const named = kinds.map((k) => STYLE_NAMES[k]);
  note.textContent = `Only ${named.join(" and ")} changed, not the words. A run counts no error either way, ` +
    "but the model learns to write the way your transcripts do: keep one style in all of them.";
}

function refreshReviewedHint() {
  const hint = $("reviewed-hint");
  if (!ed.item) { hint.textContent = ""; return; }
  const checked = $("reviewed").checked;
  let text;
  let kind = "";
  if (!ed.saved.reviewed && checked) { text = "Saving marks it reviewed"; kind = "info"; }
  else if (!ed.saved.reviewed) text = "Saving keeps it unreviewed";
  else if (checked) text = "Already reviewed";
  else { text = "Saving marks it unreviewed again"; kind = "warn"; }
  if (checked && !textarea.value.trim()) {
    // What really happens to a reviewed clip without words: trained as silence once marked, else asked about.
    if (ed.saved.noSpeech && !isDirty()) { text = "No speech: trained as silence (the model learns to write nothing)"; kind = "info"; }
    else { text = "No words: saving asks whether no one speaks in it (Alt+N marks it)"; kind = "warn"; }
  }
  hint.textContent = text;
  hint.className = `reviewed-hint ${kind}`;
}

// ---- waveform -------------------------------------------------------------

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function sizeCanvas() {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
}

function duration() {
  if (Number.isFinite(audio.duration) && audio.duration > 0) return audio.duration;
  return ed.item && ed.item.duration_s ? ed.item.duration_s : 0;
}

function drawWave() {
  sizeCanvas();
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const dpr = window.devicePixelRatio || 1;
  ctx.clearRect(0, 0, width, height);
  const peaks = ed.peaks;
  const total = duration();
  const played = total ? Math.min(1, audio.currentTime / total) : 0;
  const mid = height / 2;
  // The baseline, so a silent clip still reads as audio.
  ctx.fillStyle = cssVar("--wave", "#c3cbdc");
  ctx.fillRect(0, mid - 0.5 * dpr, width, dpr);
  if (peaks.length) {
    const bar = 2 * dpr, gap = 1 * dpr, step = bar + gap;
    const columns = Math.max(1, Math.floor(width / step));
    const playedColor = cssVar("--accent", "#2f5bd3");
    const restColor = cssVar("--wave", "#c3cbdc");
    const hoverColor = cssVar("--wave-hover", "#93a7dd");
    for (let c = 0; c < columns; c++) {
      const from = Math.floor((c / columns) * peaks.length);
      const to = Math.max(from + 1, Math.floor(((c + 1) / columns) * peaks.length));
      let p = 0;
      for (let i = from; i < to && i < peaks.length; i++) p = Math.max(p, peaks[i]);
      const h = Math.max(dpr, p * (height - 10 * dpr));
      const pos = (c + 0.5) / columns;
      ctx.fillStyle = pos < played ? playedColor : ed.hover !== null && pos < ed.hover ? hoverColor : restColor;
      ctx.fillRect(c * step, mid - h / 2, bar, h);
    }
  }
  if (ed.hover !== null && total) {
    ctx.fillStyle = cssVar("--muted", "#5b6478");
    ctx.fillRect(ed.hover * width - 0.5 * dpr, 0, dpr, height);
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    const label = fmtClock(ed.hover * total);
    const tw = ctx.measureText(label).width;
    const x = Math.min(width - tw - 6 * dpr, ed.hover * width + 5 * dpr);
    ctx.fillText(label, x, 12 * dpr);
  }
  ctx.fillStyle = cssVar("--text", "#172033");
  ctx.fillRect(Math.min(width - 2 * dpr, played * width), 0, 2 * dpr, height);
  canvas.setAttribute("aria-valuenow", audio.currentTime.toFixed(1));
}

function updateTime() {
  $("time").textContent = `${fmtClock(audio.currentTime)} / ${fmtClock(duration() || null)}`;
}

function animate() {
  drawWave();
  updateTime();
  if (!audio.paused && !audio.ended) requestAnimationFrame(animate);
}

async function loadPeaks(id, ticket) {
  ed.peaks = [];
  $("wave-loading").hidden = false;
  drawWave();
  try {
    const buckets = Math.max(50, Math.min(4000, Math.round(canvas.clientWidth) || 800));
    const { data } = await api("GET", `/api/data/${id}/peaks?buckets=${buckets}`);
    if (ticket !== ed.ticket) return;
    const top = Math.max(0.01, ...data.peaks);
    ed.peaks = data.peaks.map((p) => p / top);  // quiet recordings still fill the view
  } catch (err) {
    if (ticket !== ed.ticket) return;
    showAudioError(err.message);
  } finally {
    if (ticket === ed.ticket) $("wave-loading").hidden = true;
  }
  drawWave();
}

// Decoder messages can name Python objects ("<_io.BytesIO object at 0x…>"); that part means nothing to a reviewer.
function readable(message) {
  return String(message || "").replace(/\s*<_io\.\w+ object at 0x[0-9a-f]+>/gi, "").replace(/Error opening:/, "Error opening the file:");
}

function showAudioError(message) {
  $("audio-error-text").textContent = readable(message);
  $("audio-error").hidden = !message;
  canvas.hidden = Boolean(message);
  $("play-btn").disabled = $("replay-btn").disabled = Boolean(message);
  if (message) { audio.pause(); $("wave-loading").hidden = true; }
}

function canPlay() { return ed.item && !ed.item.audio_error && $("audio-error").hidden; }

function togglePlay() {
  if (!canPlay()) return;
  if (audio.paused || audio.ended) audio.play().catch((err) => { if (err.name !== "AbortError") toast(`Cannot play: ${err.message}`, true); });
  else audio.pause();
}

function replay() {
  if (!canPlay()) return;
  audio.currentTime = 0;
  audio.play().catch(() => {});
}

function seekBy(seconds) {
  if (!canPlay()) return;
  const total = duration();
  audio.currentTime = Math.max(0, Math.min(total || 0, audio.currentTime + seconds));
  animate();
}

// ---- loading --------------------------------------------------------------

function show(which) {
  $("loading").hidden = which !== "loading";
  $("editor").hidden = which !== "editor";
  $("done-panel").hidden = which !== "done";
  $("error-panel").hidden = which !== "error";
}


function fillDetails(item) {
  $("d-id").textContent = item.id;
  $("d-id2").textContent = item.id;
  $("d-time").textContent = fmtDate(item.timestamp);
  $("d-time").title = fmtAgo(item.timestamp);
  $("d-duration").textContent = fmtSeconds(item.duration_s);
  $("d-rate").textContent = item.sample_rate ? `${item.sample_rate.toLocaleString()} Hz` : "–";
  $("d-format").textContent = item.audio_mime || "–";
  $("d-reviewed").textContent = item.is_reviewed ? "yes" : "no";
  $("d-trained").textContent = item.is_trained ? "yes" : "no";
  $("item-badges").replaceChildren(...[
    item.is_reviewed ? badge("Reviewed", "ok") : badge("To review", "new"),
    item.is_trained ? badge("Trained", "trained") : null,
    item.regression ? badge("Regression check", "warn") : null,
    item.held_out ? badge("Held out", "neutral", "Measures every run's model; never trained on") : null,
    item.no_speech ? badge("No speech", "neutral", "Marked as holding no speech: the model learns to write nothing for it") : null,
  ].filter(Boolean));
  $("trained-note").hidden = !item.is_trained;
  // Why training would leave this item out, where the reviewer can act on it.
  const notes = [];
  if (item.problem) notes.push(`${item.problem} Saving stores it as it should be.`);  // wrong types from the assistant
  if (item.duration_s > 30) {
    notes.push(`This recording lasts ${fmtSeconds(item.duration_s)}: Whisper hears 30 s at a time, so training leaves it out.`);
  }
  $("row-problem").textContent = notes.join(" ");
  $("row-problem").hidden = !notes.length;
  // Speech the model has learned cannot show forgetting; the server refuses it too.
  $("regression").disabled = Boolean(item.is_trained) && !item.regression;
  $("regression").closest("label").title = $("regression").disabled
    ? "Already used for training: correct its transcript first, or pick a recording the model has not learned" : "";
  $("prev-btn").disabled = item.prev_id === null || item.prev_id === undefined;
  $("next-btn").disabled = item.next_id === null || item.next_id === undefined;
}

// What the server holds, to tell unsaved edits from saved ones.
function savedState(item) {
  return { transcript: item.transcript || "", reviewed: Boolean(item.is_reviewed), regression: Boolean(item.regression),
    noSpeech: Boolean(item.no_speech) };
}

function fill(item) {
  ed.item = item;
  ed.saved = savedState(item);
  ed.opened = ed.saved.transcript;  // what the item said when opened: the style note compares with it
  ed.toggled = false;
  ed.conflict = null;
  ed.nextAfterConflict = null;
  textarea.value = ed.saved.transcript;
  $("regression").checked = ed.saved.regression;
  // Opening an item is reviewing it: the box starts ticked, so Ctrl+Enter finishes the job in one key.
  $("reviewed").checked = true;
  fillDetails(item);
  $("conflict").hidden = true;
  $("suggestion").hidden = true;
  ed.suggestion = null;
  refreshDirty();
}

async function load(id, push) {
  const ticket = ++ed.ticket;
  $("editor").classList.add("is-loading");
  let data;
  try {
    data = (await api("GET", `/api/data/${encodeURIComponent(id)}?audio=0`)).data;
  } finally {
    $("editor").classList.remove("is-loading");
  }
  if (ticket !== ed.ticket) return;
  audio.pause();
  show("editor");
  fill(data);
  setSaveState("", "");
  ed.hover = null;
  showAudioError(data.audio_error ? `This recording cannot be played: ${data.audio_error}` : "");
  if (!data.audio_error) {
    audio.src = `/api/data/${encodeURIComponent(data.id)}/audio`;
    audio.playbackRate = Number($("speed").value);
    audio.preservesPitch = true;
    loadPeaks(data.id, ticket);
    if ($("autoplay").checked) audio.play().catch(() => {});
  } else {
    audio.removeAttribute("src");
    audio.load();
    ed.peaks = [];
  }
  updateTime();
  const url = `/editor?id=${data.id}`;
  if (push) history.pushState({ id: data.id }, "", url);
  else history.replaceState({ id: data.id }, "", url);
  document.title = `Item ${data.id} · Editor · S2S Training`;
  textarea.focus({ preventScroll: true });
  textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  // The cursor waits at the end, ready to type, but a long transcript is read from its start.
  textarea.scrollTop = 0;
  loadQueueInfo();
}

// How often the counts are read again while the editor is open (cheap, index-only on the server), as the dashboard's.
const QUEUE_REFRESH_MS = 15000;

async function loadQueueInfo() {
  try {
    const s = (await api("GET", "/api/data/stats")).data;
    const left = s.unreviewed ?? s.total - s.reviewed;
    $("left-count").textContent = left;
    $("left-label").textContent = "unreviewed left";
    $("left-bar").style.width = `${s.total ? (100 * s.reviewed) / s.total : 100}%`;
    $("queue-info").textContent = left ? `${left} to review · ${s.reviewed} of ${s.total} done` : `All ${s.total} reviewed`;
    const n = sessionCount();
    $("session-line").textContent = n ? `You reviewed ${plural(n, "item")} this session.` : `${s.reviewed} of ${s.total} reviewed so far.`;
    $("done-session").textContent = n ? `You reviewed ${plural(n, "item")} this session. ${s.pending_training} ready to train on.` : "";
  } catch (err) { /* the counter is a nicety; the editor works without it */ }
}

async function openNextUnreviewed(afterId, push) {
  const { data } = await api("GET", `/api/data/next?after=${afterId || 0}&sort=${encodeURIComponent(order())}`);
  if (data.id === null || data.id === undefined) {
    ed.ticket++;
    ed.item = null;
    audio.pause();
    audio.removeAttribute("src");
    show("done");
    if (push) history.pushState({}, "", "/editor"); else history.replaceState({}, "", "/editor");
    document.title = "All caught up · S2S Training";
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
  try { await load(id, true); } catch (err) { toast(err.message, true); }
}

// ---- saving ---------------------------------------------------------------

async function save(overwrite, noSpeech = false) {
  if (!ed.item || ed.busy) return false;
  if (!noSpeech && $("reviewed").checked && !textarea.value.trim() && !ed.saved.noSpeech) {
    // Reviewed with no words is neither trained on nor marked as silence: ask which the reviewer meant.
    if (!window.confirm("This clip has no words. Does no one speak in it?\n\nOK: save it as no speech " +
        "(trained as silence).\nCancel: keep editing, to type what is said.")) {
      setSaveState("Not saved: type what is said, or mark it as no speech (Alt+N)", "warn");
      textarea.focus();
      return false;
    }
    noSpeech = true;
    textarea.value = "";
  }
  const body = { transcript: textarea.value, is_reviewed: $("reviewed").checked, regression: $("regression").checked };
  if (noSpeech) body.no_speech = true;
  const unchanged = body.transcript === ed.saved.transcript && body.is_reviewed === ed.saved.reviewed &&
    body.regression === ed.saved.regression && (!noSpeech || ed.saved.noSpeech);
  if (unchanged && !overwrite && $("conflict").hidden) {
    setSaveState("Saved ✓", "ok");
    return true;
  }
  ed.busy = true;
  setSaveState("Saving…", "");
  // Overwriting is a decision made after seeing their version: it is conditional on exactly that version.
  const version = overwrite && ed.conflict ? ed.conflict.version : ed.item.version;
  const headers = version ? { "If-Match": `"${version}"` } : {};
  const wasReviewed = ed.saved.reviewed;
  try {
    const { data } = await api("PUT", `/api/data/${ed.item.id}`, body, headers);
    Object.assign(ed.item, data);
    ed.saved = savedState(data);
    ed.toggled = false;
    ed.conflict = null;
    if (!wasReviewed && data.is_reviewed) sessionStorage.setItem(SESSION_KEY, String(sessionCount() + 1));
    fillDetails(ed.item);
    $("conflict").hidden = true;
    if (ed.undo && ed.undo.id !== ed.item.id) hideUndo();  // the offer is for the last step only
    setSaveState("Saved ✓", "ok");
    refreshReviewedHint();
    loadQueueInfo();
    return true;
  } catch (err) {
    if (err.status === 412 && err.body.current) showConflict(err.body.current);
    else setSaveState(`Not saved: ${err.message}`, "error");
    return false;
  } finally {
    ed.busy = false;
  }
}

// A false wake, a cough, the television: an empty transcript on purpose, saved at once, so training teaches
// the model to write nothing for such clips. Typing words and saving clears the mark.
// The text it replaces is kept for an Undo, and the editor moves on as Ctrl+Enter does.
async function markNoSpeech() {
  if (!ed.item || ed.busy) return;
  const undo = { id: ed.item.id, text: textarea.value, reviewed: ed.saved.reviewed };
  textarea.value = "";
  $("reviewed").checked = true;
  refreshDirty();
  if (!(await save(false, true))) return;
  undo.version = ed.item.version;
  ed.undo = undo;
  $("undo-text").textContent = `Item ${undo.id} saved as no speech` +
    (undo.text.trim() ? ` (its text was “${undo.text.length > 60 ? `${undo.text.slice(0, 60)}…` : undo.text}”).` : ".");
  $("undo-bar").hidden = false;
  try { await openNextUnreviewed(undo.id, true); } catch (err) { toast(err.message, true); }
}

function hideUndo() {
  ed.undo = null;
  $("undo-bar").hidden = true;
}

// Puts back the text and reviewed flag that Alt+N replaced, then opens that item again.
async function undoNoSpeech() {
  const undo = ed.undo;
  if (!undo || !confirmLeave()) return;
  const body = undo.text.trim() ? { transcript: undo.text, is_reviewed: undo.reviewed }
    : { transcript: undo.text, is_reviewed: undo.reviewed, no_speech: false };
  try {
    await api("PUT", `/api/data/${undo.id}`, body, undo.version ? { "If-Match": `"${undo.version}"` } : {});
  } catch (err) {
    toast(err.status === 412 ? "Not undone: the item was changed since." : `Not undone: ${err.message}`, true);
    return;
  }
  hideUndo();
  await load(undo.id, true);
  setSaveState("Restored ✓", "ok");
}

function showConflict(current) {
  ed.conflict = current;
  $("conflict-text").textContent = current.transcript === null || current.transcript === "" ? "(no transcript)" : current.transcript;
  $("conflict-mine-text").textContent = textarea.value || "(empty)";
  $("conflict-meta").textContent = current.is_reviewed ? "· reviewed" : "· not reviewed";
  $("conflict").hidden = false;
  setSaveState("Not saved: someone else changed this item", "error");
  $("conflict").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function useTheirs() {
  if (!ed.conflict) return;
  const keepAudio = ed.item;
  fill(Object.assign({}, keepAudio, ed.conflict));
  setSaveState("Loaded their version", "ok");
  textarea.focus();
}

async function copyMine() {
  const text = textarea.value;
  try {
    await navigator.clipboard.writeText(text);
    toast("Your version is on the clipboard.");
  } catch (err) {
    textarea.focus();
    textarea.select();
    toast(document.execCommand && document.execCommand("copy") ? "Your version is on the clipboard." : "Select the text and copy it with Ctrl+C.", false);
  }
}

async function saveAndNext() {
  if (!ed.item) return;
  const id = ed.item.id;
  if (await save(false)) {
    try { await openNextUnreviewed(id, true); } catch (err) { toast(err.message, true); }
  } else if (ed.conflict) {
    ed.nextAfterConflict = id;  // resolving the conflict with "Keep mine" finishes what Ctrl+Enter started
  }
}

async function keepMine() {
  const id = ed.nextAfterConflict;
  ed.nextAfterConflict = null;
  if (await save(true) && id === (ed.item && ed.item.id)) {
    try { await openNextUnreviewed(id, true); } catch (err) { toast(err.message, true); }
  }
}

// ---- model suggestion -----------------------------------------------------

async function suggest() {
  if (!ed.item) return;
  const id = ed.item.id;
  setSuggestion(null, "listening…");  // nothing to accept until this answer is in: never a previous one
  $("suggestion").hidden = false;
  $("suggestion-diff").replaceChildren();
  try {
    const { data } = await api("POST", `/api/data/${id}/transcribe`);
    if (!ed.item || ed.item.id !== id) return;
    if (!data.text.trim()) {  // nothing to offer: accepting would only empty the transcript
      setSuggestion(null, "· the model heard no speech in this recording");
      return;
    }
    // No "confident" label: the model's mean token probability is not calibrated (0.55 was seen on
    // suggestions worse than the stored text), so say only what the diff shows.
    const diff = wordDiff(textarea.value, data.text);
    const changed = diff.filter((node) => node.tagName === "INS" || node.tagName === "DEL").length;
    setSuggestion(data.text, changed ? `· ${changed} word change${changed === 1 ? "" : "s"}`
      : diff.some((node) => node.className === "restyled") ? "· same words, other case or punctuation"
        : "· the same as the transcript");
    $("suggestion-diff").replaceChildren(...timeWords(diff, data.words || []));
  } catch (err) {
    setSuggestion(null, err.message);
  }
}

// Below this the model was unsure of a word: underlined, so the ear goes there first.
const UNSURE = 0.5;

// The model's words in the diff (kept and added ones, in order) get their spans in the clip: click one,
// or Tab to it and press Enter, to hear just that word. Without timings the diff stays as it is.
function timeWords(diff, words) {
  const own = diff.filter((node) => node instanceof Element && node.tagName !== "DEL");
  if (!words.length || own.length !== words.length) return diff;
  own.forEach((node, i) => {
    const w = words[i];
    node.classList.add("word");
    if (w.probability < UNSURE) node.classList.add("unsure");
    setAttrs(node, { tabindex: "0", role: "button", "data-start": w.start, "data-end": w.end,
      title: `${fmtClock(w.start)}–${fmtClock(w.end)} · the model's confidence ${Math.round(w.probability * 100)}%` });
  });
  return diff;
}

function playWord(node) {
  if (!canPlay()) return;
  const start = Number(node.dataset.start), end = Number(node.dataset.end);
  audio.currentTime = start;
  clearTimeout(ed.wordStop);
  audio.play().catch(() => {});
  ed.wordStop = setTimeout(() => audio.pause(), Math.max(0.15, end - start) * 1000 / (audio.playbackRate || 1));
}

function setSuggestion(text, meta) {
  ed.suggestion = text;
  $("suggestion-meta").textContent = meta;
  $("accept-btn").disabled = text === null;  // "Use this" is only clickable once there is something to use
}

function acceptSuggestion() {
  if (ed.suggestion === null || $("suggestion").hidden) return;
  // Typed in as one edit, so Ctrl+Z brings the reviewer's own text back; setting .value would not.
  textarea.focus();
  textarea.select();
  if (!document.execCommand("insertText", false, ed.suggestion)) textarea.value = ed.suggestion;
  $("suggestion").hidden = true;
  refreshDirty();
  textarea.focus();
}

function dismissSuggestion() { $("suggestion").hidden = true; textarea.focus(); }

// ---- wiring ---------------------------------------------------------------

function toggleReviewed() {
  $("reviewed").checked = !$("reviewed").checked;
  ed.toggled = true;
  refreshDirty();
}

function onKey(e) {
  if (e.isComposing) return;
  const mod = e.ctrlKey || e.metaKey;
  const alt = e.altKey && !mod;
  let handled = true;
  if (mod && !e.altKey && e.key === "Enter") { if (!e.repeat) saveAndNext(); }
  else if (mod && !e.altKey && !e.shiftKey && e.code === "KeyS") { if (!e.repeat) save(false); }
  else if ((e.ctrlKey && !e.altKey && !e.shiftKey && e.code === "Space") || (alt && e.code === "KeyP")) togglePlay();
  else if (alt && e.code === "KeyR") replay();
  else if (alt && e.code === "KeyJ") seekBy(-2);
  else if (alt && e.code === "KeyL") seekBy(2);
  else if (alt && e.code === "KeyM") toggleReviewed();
  else if (alt && e.key === "ArrowUp") go(ed.item && ed.item.prev_id);
  else if (alt && e.key === "ArrowDown") go(ed.item && ed.item.next_id);
  else if (alt && e.code === "KeyS") suggest();
  else if (alt && e.code === "KeyA") acceptSuggestion();
  else if (alt && e.code === "KeyK") dismissSuggestion();
  else if (alt && e.code === "KeyN") markNoSpeech();
  else handled = false;
  if (handled) e.preventDefault();
}

function seekFromPointer(e) {
  const rect = canvas.getBoundingClientRect();
  return Math.max(0, Math.min(1, (e.clientX - rect.left) / rect.width));
}

function wire() {
  document.addEventListener("keydown", onKey);
  textarea.addEventListener("input", refreshDirty);
  $("reviewed").addEventListener("change", () => { ed.toggled = true; refreshDirty(); });
  $("regression").addEventListener("change", refreshDirty);
  // Controls hand the keyboard back to the transcript: click to seek, then type the fix.
  const thenType = (action) => (e) => { action(e); textarea.focus({ preventScroll: true }); };
  $("play-btn").addEventListener("click", thenType(togglePlay));
  $("replay-btn").addEventListener("click", thenType(replay));
  $("speed").addEventListener("change", (e) => {
    audio.playbackRate = Number(e.target.value);
    localStorage.setItem("s2s-speed", e.target.value);
  });
  $("autoplay").addEventListener("change", (e) => localStorage.setItem("s2s-autoplay", e.target.checked ? "1" : "0"));
  $("save-btn").addEventListener("click", () => save(false));
  $("no-speech-btn").addEventListener("click", markNoSpeech);
  $("undo-btn").addEventListener("click", undoNoSpeech);
  $("suggestion-diff").addEventListener("click", (e) => {
    const word = e.target.closest(".word");
    if (word) playWord(word);
  });
  $("suggestion-diff").addEventListener("keydown", (e) => {
    const word = e.target.closest(".word");
    if (word && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); e.stopPropagation(); playWord(word); }
  });
  $("save-next-btn").addEventListener("click", saveAndNext);
  $("prev-btn").addEventListener("click", () => go(ed.item && ed.item.prev_id));
  $("next-btn").addEventListener("click", () => go(ed.item && ed.item.next_id));
  $("suggest-btn").addEventListener("click", thenType(suggest));
  $("accept-btn").addEventListener("click", acceptSuggestion);
  $("keep-btn").addEventListener("click", dismissSuggestion);
  $("conflict-theirs").addEventListener("click", useTheirs);
  $("conflict-mine").addEventListener("click", keepMine);
  $("conflict-copy").addEventListener("click", copyMine);
  $("error-next").addEventListener("click", () => openNextUnreviewed(0, false).catch((err) => toast(err.message, true)));
  $("queue-order").addEventListener("change", () => { localStorage.setItem("s2s-queue-order", order()); textarea.focus(); });
  audio.addEventListener("play", () => { $("play-btn").textContent = "❚❚ Pause"; $("play-btn").classList.add("playing"); requestAnimationFrame(animate); });
  const stopped = () => { $("play-btn").textContent = "▶ Play"; $("play-btn").classList.remove("playing"); animate(); };
  audio.addEventListener("pause", stopped);
  audio.addEventListener("ended", stopped);
  // Moving on while playing loads the next clip: the browser stops without a "pause" event, then "emptied".
  audio.addEventListener("emptied", stopped);
  audio.addEventListener("loadedmetadata", animate);
  audio.addEventListener("seeked", animate);
  audio.addEventListener("error", () => {
    if (ed.item && !ed.item.audio_error && audio.getAttribute("src")) {
      showAudioError("The browser could not play this recording.");
    }
  });
  canvas.addEventListener("click", thenType((e) => {
    const total = duration();
    if (!total) return;
    audio.currentTime = seekFromPointer(e) * total;
    animate();
  }));
  canvas.addEventListener("mousemove", (e) => { ed.hover = seekFromPointer(e); if (audio.paused) drawWave(); });
  canvas.addEventListener("mouseleave", () => { ed.hover = null; if (audio.paused) drawWave(); });
  if ("ResizeObserver" in window) new ResizeObserver(() => drawWave()).observe(canvas);
  window.addEventListener("beforeunload", (e) => { if (isDirty()) { e.preventDefault(); e.returnValue = ""; } });
  window.addEventListener("popstate", (e) => {
    const id = e.state && e.state.id;
    if (!confirmLeave()) {  // stay: put the current item back in the address bar
      if (ed.item) history.pushState({ id: ed.item.id }, "", `/editor?id=${ed.item.id}`);
      return;
    }
    if (id) load(id, false).catch((err) => toast(err.message, true));
    else openNextUnreviewed(0, false).catch((err) => toast(err.message, true));
  });
}

function restorePreferences() {
  const savedOrder = localStorage.getItem("s2s-queue-order");
  if (savedOrder && [...$("queue-order").options].some((o) => o.value === savedOrder)) $("queue-order").value = savedOrder;
  const speed = localStorage.getItem("s2s-speed");
  if (speed && [...$("speed").options].some((o) => o.value === speed)) $("speed").value = speed;
  $("autoplay").checked = localStorage.getItem("s2s-autoplay") === "1";
}

async function init() {
  restorePreferences();
  wire();
  const id = new URLSearchParams(window.location.search).get("id");
  try {
    if (id !== null && /^-?\d+$/.test(id)) await load(id, false);
    else await openNextUnreviewed(0, false);
  } catch (err) {
    show("error");
    $("error-text").textContent = err.message;
    loadQueueInfo();
  }
  // The assistant keeps adding recordings: the count of what is left follows it, not only each save.
  setInterval(() => { if (!document.hidden) loadQueueInfo(); }, QUEUE_REFRESH_MS);
}

init();
