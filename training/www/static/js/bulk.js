// Find and replace on the dashboard: preview every change as a word diff, untick any to keep, apply as one
// batch, undo a batch later. The rules (versions, reviewed items, undo) live on the server: utils/bulk.py.
"use strict";

const bulk = { body: null, matches: [], total: 0, tag: null };

function bulkBody() {
  return { find: $("bulk-find").value, replace: $("bulk-replace").value, whole_word: $("bulk-whole").checked,
    match_case: $("bulk-case").checked, include_reviewed: $("bulk-reviewed").checked };
}

async function bulkPreview(e) {
  if (e) e.preventDefault();
  try {
    const body = bulkBody();
    const { data } = await api("POST", "/api/bulk/preview", body);
    Object.assign(bulk, { body, matches: data.matches, total: data.total, tag: data.tag });
    renderMatches();
  } catch (err) { toast(err.message, true); }
}

function renderMatches() {
  $("bulk-matches").replaceChildren(...bulk.matches.map((m) => el("li", {},
    el("label", { class: "check" },
      el("input", { type: "checkbox", checked: !m.refused, disabled: Boolean(m.refused), "data-id": m.id,
        "aria-label": `Change item ${m.id}` }),
      el("a", { href: `/editor?id=${m.id}` }, `#${m.id}`), " ",
      m.is_reviewed ? badge("Reviewed", "ok") : null,
      // Refused: the replacement would make it longer than a transcript may be; it is left as it is.
      m.refused ? badge("Left as it is", "warn", m.refused) : null,
      // One block of text, not a flex item per word: on a phone the words wrap as words.
      el("span", { class: "bulk-diff" }, ...(m.refused ? [el("span", { class: "muted" }, m.refused)]
        : wordDiff(m.transcript, m.replaced)))))));
  const shown = bulk.total > bulk.matches.length ? ` (the first ${bulk.matches.length} shown)` : "";
  $("bulk-summary").textContent = bulk.total
    ? `${plural(bulk.total, "transcript")} would change${shown}.` : "No transcript would change.";
  $("bulk-actions").hidden = !bulk.total;
  updateApplyLabel();
}

function ticked() {
  return new Set([...document.querySelectorAll("#bulk-matches input:checked")].map((i) => Number(i.dataset.id)));
}

function updateApplyLabel() {
  const ids = ticked();
  const all = ids.size === bulk.matches.length;
  $("bulk-apply").textContent = all ? `Apply to all ${bulk.total}` : `Apply to ${ids.size} ticked`;
  $("bulk-apply").disabled = ids.size === 0;
}

async function bulkApply() {
  const ids = ticked();
  // All ticked: every match, guarded by the preview's tag (412 when anything changed since);
  // otherwise the ticked items at the versions the preview showed.
  const everything = ids.size === bulk.matches.length;
  const body = everything ? { ...bulk.body, all: true }
    : { ...bulk.body, items: bulk.matches.filter((m) => ids.has(m.id)).map((m) => ({ id: m.id, version: m.version })) };
  try {
    const { data } = await api("POST", "/api/bulk/apply", body, everything ? { "If-Match": `"${bulk.tag}"` } : {});
    const left = data.skipped.length ? `; ${plural(data.skipped.length, "item")} left alone (changed since the preview)` : "";
    toast(`Changed ${plural(data.changed, "transcript")}${left}.`);
    Object.assign(bulk, { matches: [], total: 0 });
    $("bulk-matches").replaceChildren();
    $("bulk-summary").textContent = "";
    $("bulk-actions").hidden = true;
    refreshAfterBulk();
  } catch (err) {
    toast(err.message, true);
    if (err.status === 412) bulkPreview();
  }
}

async function loadBatches() {
  try {
    const { data } = await api("GET", "/api/bulk");
    $("bulk-batches").replaceChildren(...data.slice(0, 5).map((b) => el("li", {},
      `“${b.find}” → “${b.replace}” · ${plural(b.changed, "change")} · ${fmtAgo(b.created_at) || fmtDate(b.created_at)} `,
      b.undone_at ? badge("Undone", "neutral")
        : el("button", { type: "button", class: "btn btn-small btn-quiet", onclick: () => undoBatch(b.batch_id) }, "Undo"))));
  } catch (err) {
    $("bulk-panel").hidden = err.status === 404;
  }
}

async function undoBatch(batchId) {
  try {
    const { data } = await api("POST", `/api/bulk/${batchId}/undo`);
    const left = data.skipped.length ? `; ${plural(data.skipped.length, "item")} edited since, left alone` : "";
    toast(`Undone: ${plural(data.restored, "transcript")} restored${left}.`);
    refreshAfterBulk();
  } catch (err) { toast(err.message, true); }
}

function refreshAfterBulk() {
  loadBatches();
  Promise.all([loadStats(), loadItems()]).catch((err) => toast(err.message, true));
}

$("bulk-form").addEventListener("submit", bulkPreview);
$("bulk-apply").addEventListener("click", bulkApply);
$("bulk-matches").addEventListener("change", updateApplyLabel);
loadBatches();
