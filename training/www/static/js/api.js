// Shared by both pages: JSON calls with readable errors, safe DOM building, formatting, toasts.
// Server text is only ever inserted as text nodes (textContent / value), never as HTML.
"use strict";

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The server answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

// fetch() wrapper: JSON in, JSON out; a non-2xx answer throws ApiError carrying the server's message.
async function api(method, url, body, headers) {
  const init = { method, headers: Object.assign({ Accept: "application/json" }, headers || {}) };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, { error: "network", message: "The server cannot be reached. Is it still running?" });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (err) {
    data = { message: `The server answered ${response.status} ${response.statusText}.` };
  }
  if (response.status === 401) {
    // The access token expired or was never given: the login page brings the reviewer back here.
    const next = window.location.pathname + window.location.search;
    window.location.href = `/login?next=${encodeURIComponent(next)}`;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, headers: response.headers, status: response.status };
}

// el("td", {class: "x"}, "text", child): every string becomes a text node, never HTML.
const $ = (id) => document.getElementById(id);

function badge(text, kind, title) { return el("span", { class: `badge ${kind}`, title }, text); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

// The same for SVG elements (the history chart).
function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(node, attrs);
  appendAll(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

function appendAll(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// 1.9 → "1.9 s", 75.2 → "1:15"
function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s - m * 60)).padStart(2, "0")}`;
}

// Player clock: 0:01.4
function fmtClock(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–:––";
  const m = Math.floor(s / 60);
  return `${m}:${(s - m * 60).toFixed(1).padStart(4, "0")}`;
}

function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "–";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// Ties round away from zero on the exact value of x * 100, as utils/formatting.percent does for the
// messages the server writes: a run's banner and its row in the history show the same figure.
function fmtPercent(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "–" : `${(x * 100).toFixed(1)}%`;
}

function parseDate(text) {
  if (!text) return null;
  // SQLite's "YYYY-MM-DD HH:MM:SS" is UTC; ISO strings carry their own zone.
  const iso = text.includes("T") ? text : `${text.replace(" ", "T")}Z`;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

function fmtDate(text) {
  const d = parseDate(text);
  if (!d) return text || "–";
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// "3 min ago", "yesterday": how a reviewer thinks about when something was recorded.
function fmtAgo(text) {
  const d = parseDate(text);
  if (!d) return "";
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 172800) return "yesterday";
  if (s < 30 * 86400) return `${Math.round(s / 86400)} days ago`;
  return "";  // older than a month: the date itself says more
}

function plural(n, word, many) {
  return `${n} ${n === 1 ? word : many || `${word}s`}`;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// A short message at the bottom of the page; errors stay longer and are announced.
function toast(message, isError) {
  let box = document.getElementById("toast");
  if (!box) {
    box = el("p", { id: "toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.textContent = message;
  box.className = isError ? "toast error" : "toast";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 9000 : 4500);
}

// True when a key press happens inside something the user types into.
function isTyping(target) {
  if (!target) return false;
  const tag = target.tagName;
  return tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable
    || (tag === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(target.type));
}

// Longest common subsequence over words, as <del>/<ins> nodes: the editor's suggestion and the dashboard's
// find-and-replace preview show a change the same way.
function wordDiff(a, b) {
  const x = a.split(/\s+/).filter(Boolean), y = b.split(/\s+/).filter(Boolean);
  const norm = (w) => w.toLowerCase().replace(/[^\p{L}\p{N}']/gu, "");
  const dp = Array.from({ length: x.length + 1 }, () => new Array(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--) for (let j = y.length - 1; j >= 0; j--)
    dp[i][j] = norm(x[i]) === norm(y[j]) ? dp[i + 1][j + 1] + 1 : Math.max(dp[i + 1][j], dp[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && norm(x[i]) === norm(y[j])) {
      // Same word; accepting still takes the model's casing and punctuation, so show where they differ.
      out.push(x[i] === y[j] ? el("span", {}, y[j])
        : el("span", { class: "restyled", title: `was “${x[i]}”: only case or punctuation differ` }, y[j]));
      i++; j++;
    }
    else if (j < y.length && (i >= x.length || dp[i][j + 1] >= dp[i + 1][j])) out.push(el("ins", {}, y[j++]));
    else out.push(el("del", {}, x[i++]));
    out.push(" ");
  }
  return out;
}
